// The AWS Secrets Manager provider and its credential chain against a fake AWS served by
// cpp-httplib on 127.0.0.1: GetSecretValue as documented (the server checks every request's SigV4
// signature itself), STS AssumeRoleWithWebIdentity, the container credentials endpoint and
// IMDSv2. Loopback only: no Kafka, no internet. The HTTP client on its own is tested with its
// module (tests/common/http_client_httptest.cc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "fake_clock.h"
#include "leak_check.h"
#include "loopback_server.h"
#include "outpost/common/http_client.h"
#include "outpost/secrets/aws.h"
#include "outpost/secrets/sigv4.h"
#include "temp_dir.h"
#include "test_crypto.h"

namespace outpost::secrets {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::HasSubstr;
using testing::Not;

constexpr const char* kRegion = "us-east-1";
constexpr const char* kAccessKey = "AKIDSTATIC";
constexpr const char* kSecretKey = "static-secret-key-0123456789";
constexpr const char* kRoleArn = "arn:aws:iam::123456789012:role/outpost";
constexpr const char* kWebToken = "eyJ.web-identity-token.sig";
constexpr const char* kEcsToken = "ecs-auth-token-42";
constexpr const char* kPrevId = "2d3c1a4e-0000-4000-8000-000000000001";
constexpr const char* kCurId = "2d3c1a4e-0000-4000-8000-000000000002";
constexpr const char* kArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";

using test::base64;
using test::closedPortUrl;
using test::FakeClock;
using test::LeakCheck;
using test::LoopbackServer;
using test::parseForm;
using test::Pkey;
using test::TempDir;

// --- the server's own crypto, apart from the signer's ---

std::string hex(const unsigned char* p, std::size_t n) {
  std::string out;
  static constexpr char d[] = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out += d[p[i] >> 4];
    out += d[p[i] & 15];
  }
  return out;
}

std::string sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t n = 0;
  EXPECT_EQ(EVP_Q_digest(nullptr, "SHA256", nullptr, data.data(), data.size(), md, &n), 1);
  return hex(md, n);
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t n = 0;
  EXPECT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                      reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
                      sizeof out, &n),
            nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

// --- the fake AWS ---

struct IssuedKey {
  std::string secret;
  std::string token;  // empty for long-term keys
  bool expired = false;
};

struct FakeVersion {
  std::string id;
  std::vector<std::string> stages;
  std::optional<std::string> text;
  std::optional<std::string> binary;  // raw bytes; sent base64-encoded
};

struct FakeSecret {
  std::string name;
  std::string arn;
  std::vector<FakeVersion> versions;
};

void awsJsonError(httplib::Response& res, int status, const std::string& type,
                  const std::string& message) {
  res.status = status;
  res.set_content(json{{"__type", type}, {"message", message}}.dump(),
                  "application/x-amz-json-1.1");
}

void stsError(httplib::Response& res, int status, const std::string& code,
              const std::string& message) {
  res.status = status;
  res.set_content(
      "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
      "<Type>Sender</Type><Code>" +
          code + "</Code><Message>" + message +
          "</Message></Error><RequestId>r-1</RequestId></ErrorResponse>",
      "text/xml");
}

// Secrets Manager (POST /), STS (POST /sts/), the container endpoint (GET /ecs/creds) and IMDSv2
// (/latest/...), all on one loopback server.
class FakeAws {
 public:
  explicit FakeAws(const Clock& clock,
                   std::unique_ptr<httplib::Server> server = std::make_unique<httplib::Server>())
      : clock_(clock) {
    keys_[kAccessKey] = {kSecretKey, "", false};
    addSecret({"prod/db",
               kArn,
               {{kPrevId, {"AWSPREVIOUS"}, "old-password", {}},
                {kCurId, {"AWSCURRENT"}, "current-password", {}}}});
    addSecret({"prod/db-json",
               "",
               {{kCurId,
                 {"AWSCURRENT"},
                 R"({"username":"app","password":"p@ss","nested":{"port":5432}})",
                 {}}}});
    std::string all_bytes;
    for (int i = 0; i < 256; ++i) all_bytes += static_cast<char>(i);
    addSecret({"prod/cert", "", {{kCurId, {"AWSCURRENT"}, {}, all_bytes}}});

    server->Post("/", [this](const httplib::Request& q, httplib::Response& r) { secrets(q, r); });
    server->Post("/sts/", [this](const httplib::Request& q, httplib::Response& r) { sts(q, r); });
    server->Get("/ecs/creds",
                [this](const httplib::Request& q, httplib::Response& r) { container(q, r); });
    server->Put("/latest/api/token", [this](const httplib::Request& q, httplib::Response& r) {
      ++imds_calls;
      if (q.get_header_value("X-aws-ec2-metadata-token-ttl-seconds").empty()) {
        r.status = 400;
        return;
      }
      r.set_content(imds_token_, "text/plain");
    });
    server->Get("/latest/meta-data/iam/security-credentials/",
                [this](const httplib::Request& q, httplib::Response& r) {
                  ++imds_calls;
                  if (q.get_header_value("X-aws-ec2-metadata-token") != imds_token_) {
                    r.status = 401;  // IMDSv2 only
                    return;
                  }
                  r.set_content("outpost-role\n", "text/plain");
                });
    server->Get(R"(/latest/meta-data/iam/security-credentials/([^/]+))",
                [this](const httplib::Request& q, httplib::Response& r) {
                  ++imds_calls;
                  if (q.get_header_value("X-aws-ec2-metadata-token") != imds_token_) {
                    r.status = 401;
                    return;
                  }
                  if (q.matches[1] != "outpost-role") {
                    r.status = 404;
                    return;
                  }
                  auto c = issue("ASIAIMDS");
                  c["Code"] = "Success";
                  c["Type"] = "AWS-HMAC";
                  r.set_content(c.dump(), "application/json");
                });
    server_ = std::make_unique<LoopbackServer>(std::move(server));
  }

  ~FakeAws() {
    {
      std::lock_guard l(mutex_);
      released_ = true;
    }
    release_.notify_all();
    server_.reset();
  }

  std::string url(const std::string& path, const std::string& scheme = "http") const {
    return server_->url(path, scheme);
  }
  int port() const { return server_->port(); }

  void addSecret(FakeSecret s) {
    std::lock_guard l(mutex_);
    secrets_.push_back(std::move(s));
  }
  void addKey(const std::string& id, IssuedKey k) {
    std::lock_guard l(mutex_);
    keys_[id] = std::move(k);
  }
  void expireAllTemporaryKeys() {
    std::lock_guard l(mutex_);
    for (auto& [id, k] : keys_) k.expired = !k.token.empty();
  }
  void throttleNext(int n) { throttle_ = n; }
  void expectWebToken(std::string t) {
    std::lock_guard l(mutex_);
    web_token_ = std::move(t);
  }

  std::atomic<int> sm_calls{0}, sts_calls{0}, ecs_calls{0}, imds_calls{0};

 private:
  // Temporary credentials, as the container and instance-metadata endpoints return them; also
  // registered as keys Secrets Manager accepts.
  json issue(const std::string& prefix) {
    std::lock_guard l(mutex_);
    const int n = ++issued_;
    const std::string id = prefix + std::to_string(n);
    IssuedKey k{"tmp-secret-" + std::to_string(n), "tmp-token-" + std::to_string(n), false};
    keys_[id] = k;
    return {{"AccessKeyId", id},
            {"SecretAccessKey", k.secret},
            {"Token", k.token},
            {"Expiration", formatRfc3339Millis(clock_.now() + 1h)}};
  }

  // The SigV4 check, done as a service does: the signer's canonicalization, our own hashing,
  // scope, key derivation and HMAC. An empty result means the request is authentic.
  bool verify(const httplib::Request& q, httplib::Response& r) {
    auto auth = q.get_header_value("Authorization");
    if (auth.empty()) {
      awsJsonError(r, 400, "MissingAuthenticationTokenException", "Missing Authentication Token");
      return false;
    }
    const std::string prefix = "AWS4-HMAC-SHA256 ";
    std::map<std::string, std::string> parts;
    if (!auth.starts_with(prefix)) {
      awsJsonError(r, 400, "IncompleteSignatureException", "Unsupported algorithm");
      return false;
    }
    std::istringstream items(auth.substr(prefix.size()));
    std::string item;
    while (std::getline(items, item, ',')) {
      item.erase(0, item.find_first_not_of(' '));
      auto eq = item.find('=');
      if (eq != std::string::npos) parts[item.substr(0, eq)] = item.substr(eq + 1);
    }
    std::vector<std::string> scope;
    std::istringstream cred(parts["Credential"]);
    for (std::string s; std::getline(cred, s, '/');) scope.push_back(s);
    if (scope.size() != 5 || scope[4] != "aws4_request" || parts["SignedHeaders"].empty() ||
        parts["Signature"].empty()) {
      awsJsonError(r, 400, "IncompleteSignatureException", "Authorization header is malformed");
      return false;
    }
    IssuedKey key;
    {
      std::lock_guard l(mutex_);
      auto it = keys_.find(scope[0]);
      if (it == keys_.end()) {
        awsJsonError(r, 400, "UnrecognizedClientException",
                     "The security token included in the request is invalid.");
        return false;
      }
      key = it->second;
    }
    if (key.token != q.get_header_value("X-Amz-Security-Token")) {
      awsJsonError(r, 400, "UnrecognizedClientException",
                   "The security token included in the request is invalid.");
      return false;
    }
    const std::string amz_date = q.get_header_value("X-Amz-Date");
    if (amz_date.size() != 16 || amz_date.substr(0, 8) != scope[1] ||
        amz_date != sigV4Time(clock_.now())) {
      awsJsonError(r, 400, "InvalidSignatureException", "Signature expired or date mismatch");
      return false;
    }
    if (scope[2] != kRegion || scope[3] != "secretsmanager") {
      awsJsonError(r, 400, "InvalidSignatureException", "Credential should be scoped correctly");
      return false;
    }
    HttpHeaders signed_headers;
    std::set<std::string> names;
    std::istringstream sh(parts["SignedHeaders"]);
    for (std::string name; std::getline(sh, name, ';');) {
      names.insert(name);
      auto [b, e] = q.headers.equal_range(name);
      if (b == e) {
        awsJsonError(r, 400, "InvalidSignatureException", "Signed header missing: " + name);
        return false;
      }
      for (auto it = b; it != e; ++it) signed_headers.push_back({name, it->second});
    }
    for (const char* must : {"host", "x-amz-date", "x-amz-target", "content-type"}) {
      if (!names.contains(must)) {
        awsJsonError(r, 400, "InvalidSignatureException", std::string("unsigned ") + must);
        return false;
      }
    }
    if (!key.token.empty() && !names.contains("x-amz-security-token")) {
      awsJsonError(r, 400, "InvalidSignatureException", "unsigned token");
      return false;
    }
    auto q_at = q.target.find('?');
    const std::string path = q.target.substr(0, q_at);
    const std::string query = q_at == std::string::npos ? "" : q.target.substr(q_at + 1);
    const std::string creq =
        canonicalRequest(q.method, path, query, signed_headers, sha256(q.body));
    const std::string sts = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope[1] + "/" + scope[2] +
                            "/" + scope[3] + "/aws4_request\n" + sha256(creq);
    std::string k = hmac("AWS4" + key.secret, scope[1]);
    k = hmac(k, scope[2]);
    k = hmac(k, scope[3]);
    k = hmac(k, "aws4_request");
    const std::string mac = hmac(k, sts);
    if (hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size()) != parts["Signature"]) {
      awsJsonError(r, 400, "InvalidSignatureException",
                   "The request signature we calculated does not match the signature you "
                   "provided. Check your AWS Secret Access Key and signing method.");
      return false;
    }
    if (key.expired) {
      awsJsonError(r, 400, "ExpiredTokenException",
                   "The security token included in the "
                   "request is expired");
      return false;
    }
    return true;
  }

  void secrets(const httplib::Request& q, httplib::Response& r) {
    ++sm_calls;
    if (!verify(q, r)) return;
    if (q.get_header_value("X-Amz-Target") != "secretsmanager.GetSecretValue" ||
        q.get_header_value("Content-Type") != "application/x-amz-json-1.1") {
      awsJsonError(r, 400, "UnknownOperationException", "");
      return;
    }
    auto body = json::parse(q.body, nullptr, false);
    if (body.is_discarded() || !body.contains("SecretId")) {
      awsJsonError(r, 400, "InvalidParameterException", "SecretId is required");
      return;
    }
    const std::string id = body["SecretId"];
    if (id == "slow") {
      std::unique_lock l(mutex_);
      release_.wait_for(l, 10s, [this] { return released_; });
      r.set_content("{}", "application/x-amz-json-1.1");
      return;
    }
    if (id == "broken") {
      awsJsonError(r, 500, "InternalServiceError", "try later");
      return;
    }
    if (id == "denied") {
      awsJsonError(r, 400, "AccessDeniedException",
                   "User: arn:aws:iam::123456789012:user/x is not authorized to perform: "
                   "secretsmanager:GetSecretValue");
      return;
    }
    if (throttle_ > 0) {
      --throttle_;
      awsJsonError(r, 400, "ThrottlingException", "Rate exceeded");
      return;
    }
    std::lock_guard l(mutex_);
    for (const auto& s : secrets_) {
      if (s.name != id && s.arn != id) continue;
      for (const auto& v : s.versions) {
        bool match =
            body.contains("VersionId") ? v.id == body["VersionId"]
            : body.contains("VersionStage")
                ? std::find(v.stages.begin(), v.stages.end(),
                            body["VersionStage"].get<std::string>()) != v.stages.end()
                : std::find(v.stages.begin(), v.stages.end(), "AWSCURRENT") != v.stages.end();
        if (!match) continue;
        json out{
            {"ARN", s.arn.empty() ? "arn:aws:secretsmanager:us-east-1:1:secret:" + s.name : s.arn},
            {"Name", s.name},
            {"VersionId", v.id},
            {"VersionStages", v.stages},
            {"CreatedDate", 1.7e9}};
        if (v.text) out["SecretString"] = *v.text;
        if (v.binary) out["SecretBinary"] = base64(*v.binary);
        r.set_content(out.dump(), "application/x-amz-json-1.1");
        return;
      }
    }
    awsJsonError(r, 400, "ResourceNotFoundException",
                 "Secrets Manager can't find the specified secret.");
  }

  void sts(const httplib::Request& q, httplib::Response& r) {
    ++sts_calls;
    auto form = parseForm(q.body);
    if (q.has_header("Authorization") || form["Action"] != "AssumeRoleWithWebIdentity" ||
        form["Version"] != "2011-06-15" || form["RoleSessionName"].empty()) {
      stsError(r, 400, "InvalidAction", "bad request");
      return;
    }
    std::string expected;
    {
      std::lock_guard l(mutex_);
      expected = web_token_;
    }
    if (form["RoleArn"] != kRoleArn || form["WebIdentityToken"] != expected) {
      stsError(r, 400, "InvalidIdentityToken",
               "The web identity token that was passed could "
               "not be validated by AWS.");
      return;
    }
    auto c = issue("ASIAWEB");
    r.set_content(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult><Credentials><SessionToken>" +
            c["Token"].get<std::string>() + "</SessionToken><SecretAccessKey>" +
            c["SecretAccessKey"].get<std::string>() + "</SecretAccessKey><Expiration>" +
            c["Expiration"].get<std::string>() + "</Expiration><AccessKeyId>" +
            c["AccessKeyId"].get<std::string>() +
            "</AccessKeyId></Credentials><Audience>sts.amazonaws.com</Audience>"
            "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        "text/xml");
  }

  void container(const httplib::Request& q, httplib::Response& r) {
    ++ecs_calls;
    if (q.get_header_value("Authorization") != kEcsToken) {
      r.status = 401;
      r.set_content(R"({"message":"unauthorized"})", "application/json");
      return;
    }
    r.set_content(issue("ASIAECS").dump(), "application/json");
  }

  const Clock& clock_;
  std::unique_ptr<LoopbackServer> server_;
  std::atomic<int> throttle_{0};
  const std::string imds_token_ = "imds-session-token";

  std::mutex mutex_;  // guards what follows; handlers run on the server's threads
  std::condition_variable release_;
  bool released_ = false;
  std::map<std::string, IssuedKey> keys_;
  std::vector<FakeSecret> secrets_;
  std::string web_token_ = kWebToken;
  int issued_ = 0;
};

SecretRef ref(const std::string& path, const std::string& field = "",
              const std::string& version = "") {
  std::string text = "${aws-sm:" + path + (field.empty() ? "" : "#" + field) + "}";
  return SecretRef{"aws-sm", path, field, version, text};
}

class AwsSecretsManagerTest : public testing::Test {
 protected:
  AwsConfig config() {
    AwsConfig c;
    c.region = kRegion;
    c.endpoint = aws_.url("/");
    c.sts_endpoint = aws_.url("/sts/");
    c.container_endpoint = aws_.url("");
    c.instance_metadata_endpoint = closedPortUrl();
    c.transport.connect_timeout = 2s;
    c.transport.timeout = 5s;
    c.transport.max_attempts = 3;
    c.transport.retry_base_delay = 1ms;
    c.transport.retry_max_delay = 5ms;
    c.metadata_timeout = 2s;
    return c;
  }
  // Only what a test gives, plus HOME at an empty directory: the real environment (proxies,
  // ~/.aws) never leaks in.
  Environment env(Environment extra = {}) {
    extra.emplace("HOME", home_.path());
    return extra;
  }
  Environment staticKeys() {
    return env({{"AWS_ACCESS_KEY_ID", kAccessKey}, {"AWS_SECRET_ACCESS_KEY", kSecretKey}});
  }

  FakeClock clock_;
  FakeAws aws_{clock_};
  TempDir home_;
};

// --- GetSecretValue ---

TEST_F(AwsSecretsManagerTest, ReturnsSecretStringAndVersionId) {
  AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
  EXPECT_EQ(p.name(), "aws-sm");
  auto s = p.fetch(ref("prod/db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
  EXPECT_EQ(s->version, kCurId);
}

TEST_F(AwsSecretsManagerTest, AcceptsAnArnAsThePath) {
  AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
  auto s = p.fetch(ref(kArn));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
}

TEST_F(AwsSecretsManagerTest, VersionStageOrVersionId) {
  AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
  auto by_stage = p.fetch(ref("prod/db", "", "AWSPREVIOUS"));
  ASSERT_TRUE(by_stage) << by_stage.error().message;
  EXPECT_EQ(by_stage->value.reveal(), "old-password");
  EXPECT_EQ(by_stage->version, kPrevId);
  auto by_id = p.fetch(ref("prod/db", "", kPrevId));
  ASSERT_TRUE(by_id) << by_id.error().message;
  EXPECT_EQ(by_id->value.reveal(), "old-password");
  auto no_such = p.fetch(ref("prod/db", "", "AWSPENDING"));
  ASSERT_FALSE(no_such);
  EXPECT_EQ(no_such.error().kind, SecretError::Kind::kNotFound);
}

TEST_F(AwsSecretsManagerTest, SecretBinaryIsBase64Decoded) {
  AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
  auto s = p.fetch(ref("prod/cert"));
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s->value.size(), 256u);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(static_cast<unsigned char>(s->value.reveal()[i]), i);
  auto field = p.fetch(ref("prod/cert", "x"));
  ASSERT_FALSE(field);
  EXPECT_EQ(field.error().kind, SecretError::Kind::kInvalid);
}

TEST_F(AwsSecretsManagerTest, ExtractsJsonFieldsAndNamesTheMissingOne) {
  AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
  auto pw = p.fetch(ref("prod/db-json", "password"));
  ASSERT_TRUE(pw) << pw.error().message;
  EXPECT_EQ(pw->value.reveal(), "p@ss");
  auto port = p.fetch(ref("prod/db-json", "nested.port"));
  ASSERT_TRUE(port) << port.error().message;
  EXPECT_EQ(port->value.reveal(), "5432");

  auto missing = p.fetch(ref("prod/db-json", "pasword"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(missing.error().message, HasSubstr("${aws-sm:prod/db-json#pasword}"));
  EXPECT_THAT(missing.error().message, HasSubstr("'pasword'"));

  auto not_json = p.fetch(ref("prod/db", "password"));
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().kind, SecretError::Kind::kInvalid);
  EXPECT_THAT(not_json.error().message, HasSubstr("${aws-sm:prod/db#password}"));
  EXPECT_THAT(not_json.error().message, HasSubstr("not a JSON object"));
}

TEST_F(AwsSecretsManagerTest, MapsAwsErrors) {
  AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
  auto nf = p.fetch(ref("nope"));
  ASSERT_FALSE(nf);
  EXPECT_EQ(nf.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(nf.error().message, HasSubstr("${aws-sm:nope}"));
  EXPECT_THAT(nf.error().message, HasSubstr("ResourceNotFoundException"));

  auto denied = p.fetch(ref("denied"));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(denied.error().message, HasSubstr("AccessDeniedException"));
}

TEST_F(AwsSecretsManagerTest, AWrongSecretKeyIsRefusedAsAnInvalidSignature) {
  AwsSecretsManagerProvider p(
      config(), env({{"AWS_ACCESS_KEY_ID", kAccessKey}, {"AWS_SECRET_ACCESS_KEY", "not-it"}}),
      clock_);
  auto s = p.fetch(ref("prod/db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("InvalidSignatureException"));
  EXPECT_EQ(aws_.sm_calls, 1);  // not retried
}

TEST_F(AwsSecretsManagerTest, AnUnknownKeyIdIsUnrecognized) {
  AwsSecretsManagerProvider p(
      config(), env({{"AWS_ACCESS_KEY_ID", "AKIDWHO"}, {"AWS_SECRET_ACCESS_KEY", kSecretKey}}),
      clock_);
  auto s = p.fetch(ref("prod/db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("UnrecognizedClientException"));
}

// The fake's signature check is real: whatever is changed after signing is refused.
TEST_F(AwsSecretsManagerTest, TheServerRefusesTamperedOrUnsignedRequests) {
  HttpClientConfig hc;
  hc.proxy = ProxyConfig{};
  HttpClient http(hc);
  AwsCredentials creds{kAccessKey, SecretValue(kSecretKey), {}, std::nullopt};
  auto signedRequest = [&] {
    HttpRequest r{"POST",
                  aws_.url("/"),
                  {{"Content-Type", "application/x-amz-json-1.1"},
                   {"X-Amz-Target", "secretsmanager.GetSecretValue"}},
                  R"({"SecretId":"prod/db"})"};
    EXPECT_TRUE(signSigV4(r, creds, {kRegion, "secretsmanager", clock_.now()}));
    return r;
  };
  auto code = [&](const HttpRequest& r) {
    auto resp = http.send(r);
    if (!resp) return std::string("transport: ") + resp.error().message;
    return resp->status == 200 ? std::string("200")
                               : json::parse(resp->body).value("__type", std::string("?"));
  };
  EXPECT_EQ(code(signedRequest()), "200");

  auto header = signedRequest();
  setHeader(header.headers, "X-Amz-Target", "secretsmanager.DeleteSecret");
  EXPECT_EQ(code(header), "InvalidSignatureException");

  auto body = signedRequest();
  body.body = R"({"SecretId":"prod/db-json"})";
  EXPECT_EQ(code(body), "InvalidSignatureException");

  auto date = signedRequest();
  setHeader(date.headers, "X-Amz-Date", sigV4Time(clock_.now() + 1s));
  EXPECT_EQ(code(date), "InvalidSignatureException");

  auto unsigned_ = signedRequest();
  removeHeader(unsigned_.headers, "Authorization");
  EXPECT_EQ(code(unsigned_), "MissingAuthenticationTokenException");

  // An added header that is not signed changes nothing.
  auto extra = signedRequest();
  extra.headers.push_back({"X-Extra", "1"});
  EXPECT_EQ(code(extra), "200");
}

// --- retries and limits ---

TEST_F(AwsSecretsManagerTest, ThrottlingIsRetriedUntilItPasses) {
  AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
  aws_.throttleNext(2);
  auto s = p.fetch(ref("prod/db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
  EXPECT_EQ(aws_.sm_calls, 3);
}

TEST_F(AwsSecretsManagerTest, ThrottlingBeyondTheAttemptsIsUnavailable) {
  AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
  aws_.throttleNext(100);
  auto s = p.fetch(ref("prod/db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("ThrottlingException"));
  EXPECT_THAT(s.error().message, HasSubstr("3 attempts"));
  EXPECT_EQ(aws_.sm_calls, 3);
}

TEST_F(AwsSecretsManagerTest, ServerErrorsAreRetriedThenUnavailable) {
  AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
  auto s = p.fetch(ref("broken"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("HTTP 500"));
  EXPECT_EQ(aws_.sm_calls, 3);
}

TEST_F(AwsSecretsManagerTest, ASlowAnswerTimesOutAfterABoundedNumberOfTries) {
  auto c = config();
  c.transport.timeout = 300ms;
  c.transport.max_attempts = 2;
  AwsSecretsManagerProvider p(c, staticKeys(), clock_);
  auto s = p.fetch(ref("slow"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("Timeout"));
  EXPECT_THAT(s.error().message, HasSubstr("2 attempts"));
  EXPECT_EQ(aws_.sm_calls, 2);
}

// --- credential chain, end to end ---

TEST_F(AwsSecretsManagerTest, WebIdentityCredentialsAreCachedAndRefreshedBeforeExpiry) {
  TempDir dir;
  auto token_file = dir.write("token", std::string(kWebToken) + "\n");
  AwsSecretsManagerProvider p(
      config(), env({{"AWS_ROLE_ARN", kRoleArn}, {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file}}),
      clock_);
  for (int i = 0; i < 3; ++i) {
    auto s = p.fetch(ref("prod/db"));
    ASSERT_TRUE(s) << s.error().message;
  }
  EXPECT_EQ(aws_.sts_calls, 1);

  // The platform rotates the token file; the next refresh must present the new token.
  aws_.expectWebToken("rotated-token");
  dir.write("token", "rotated-token");
  clock_.advance(56min);  // within five minutes of the one-hour expiry
  auto s = p.fetch(ref("prod/db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(aws_.sts_calls, 2);
}

TEST_F(AwsSecretsManagerTest, AnExpiredTokenAnswerMakesTheNextFetchRenewCredentials) {
  TempDir dir;
  auto token_file = dir.write("token", kWebToken);
  AwsSecretsManagerProvider p(
      config(), env({{"AWS_ROLE_ARN", kRoleArn}, {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file}}),
      clock_);
  ASSERT_TRUE(p.fetch(ref("prod/db")));
  aws_.expireAllTemporaryKeys();
  auto refused = p.fetch(ref("prod/db"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(refused.error().message, HasSubstr("ExpiredTokenException"));
  auto again = p.fetch(ref("prod/db"));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(aws_.sts_calls, 2);
}

TEST_F(AwsSecretsManagerTest, ARejectedWebIdentityTokenIsDenied) {
  TempDir dir;
  auto token_file = dir.write("token", "forged");
  AwsSecretsManagerProvider p(
      config(), env({{"AWS_ROLE_ARN", kRoleArn}, {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file}}),
      clock_);
  auto s = p.fetch(ref("prod/db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("InvalidIdentityToken"));
  EXPECT_THAT(s.error().message, HasSubstr("web identity"));
  EXPECT_EQ(aws_.sm_calls, 0);
}

TEST_F(AwsSecretsManagerTest, ContainerCredentialsByRelativeUriWithATokenFile) {
  TempDir dir;
  auto token_file = dir.write("token", std::string(kEcsToken) + "\n");
  AwsSecretsManagerProvider p(config(),
                              env({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds"},
                                   {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file}}),
                              clock_);
  ASSERT_TRUE(p.fetch(ref("prod/db")));
  ASSERT_TRUE(p.fetch(ref("prod/db-json", "username")));
  EXPECT_EQ(aws_.ecs_calls, 1);
}

TEST_F(AwsSecretsManagerTest, ContainerCredentialsByFullUriWithAToken) {
  AwsSecretsManagerProvider p(config(),
                              env({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", aws_.url("/ecs/creds")},
                                   {"AWS_CONTAINER_AUTHORIZATION_TOKEN", kEcsToken}}),
                              clock_);
  auto s = p.fetch(ref("prod/db"));
  ASSERT_TRUE(s) << s.error().message;

  AwsSecretsManagerProvider wrong(
      config(),
      env({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", aws_.url("/ecs/creds")},
           {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong"}}),
      clock_);
  auto w = wrong.fetch(ref("prod/db"));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(w.error().message, HasSubstr("HTTP 401"));
}

TEST_F(AwsSecretsManagerTest, InstanceMetadataV2) {
  auto c = config();
  c.instance_metadata_endpoint = aws_.url("");
  AwsSecretsManagerProvider p(c, env(), clock_);
  auto s = p.fetch(ref("prod/db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(aws_.imds_calls, 3);  // token, role name, role credentials
  ASSERT_TRUE(p.fetch(ref("prod/db")));
  EXPECT_EQ(aws_.imds_calls, 3);
}

TEST_F(AwsSecretsManagerTest, TheEnvironmentComesFirst) {
  AwsSecretsManagerProvider p(config(),
                              env({{"AWS_ACCESS_KEY_ID", kAccessKey},
                                   {"AWS_SECRET_ACCESS_KEY", kSecretKey},
                                   {"AWS_CONTAINER_CREDENTIALS_FULL_URI", aws_.url("/ecs/creds")},
                                   {"AWS_CONTAINER_AUTHORIZATION_TOKEN", kEcsToken}}),
                              clock_);
  ASSERT_TRUE(p.fetch(ref("prod/db")));
  EXPECT_EQ(aws_.ecs_calls, 0);
}

TEST_F(AwsSecretsManagerTest, SharedCredentialsFileProfile) {
  TempDir dir;
  auto file = dir.write("credentials", std::string("[ci]\naws_access_key_id = ") + kAccessKey +
                                           "\naws_secret_access_key = " + kSecretKey + "\n");
  AwsSecretsManagerProvider p(
      config(), env({{"AWS_SHARED_CREDENTIALS_FILE", file}, {"AWS_PROFILE", "ci"}}), clock_);
  auto s = p.fetch(ref("prod/db"));
  ASSERT_TRUE(s) << s.error().message;
}

TEST_F(AwsSecretsManagerTest, NoCredentialsAnywhereIsDeniedAndSaysWhereItLooked) {
  AwsSecretsManagerProvider p(config(), env(), clock_);
  auto s = p.fetch(ref("prod/db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  for (const char* where :
       {"environment", "profile default", "web identity", "container", "instance metadata"}) {
    EXPECT_THAT(s.error().message, HasSubstr(where));
  }
  EXPECT_EQ(aws_.sm_calls, 0);
}

TEST_F(AwsSecretsManagerTest, ConcurrentFetchesShareOneCredentialLoad) {
  TempDir dir;
  auto token_file = dir.write("token", kWebToken);
  AwsSecretsManagerProvider p(
      config(), env({{"AWS_ROLE_ARN", kRoleArn}, {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file}}),
      clock_);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto s = p.fetch(ref(i % 2 ? "prod/db" : "prod/db-json", i % 2 ? "" : "password"));
        if (s) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 40);
  EXPECT_EQ(aws_.sts_calls, 1);
  EXPECT_EQ(aws_.sm_calls, 40);
}

// Without an endpoint setting, an ARN's region picks the endpoint (and the signing region). The
// explicit proxy is a closed loopback port, so nothing leaves the machine and no DNS is needed.
TEST_F(AwsSecretsManagerTest, AnArnInAnotherRegionGoesToThatRegionsEndpoint) {
  auto c = config();
  c.endpoint.clear();
  c.transport.proxy = closedPortUrl();
  c.transport.max_attempts = 1;
  AwsSecretsManagerProvider p(c, staticKeys(), clock_);
  auto s = p.fetch(ref("arn:aws:secretsmanager:eu-west-3:123456789012:secret:x-AbCdEf"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("aws-sm (eu-west-3)"));
  EXPECT_THAT(s.error().message, HasSubstr("https://secretsmanager.eu-west-3.amazonaws.com/"));
  auto plain = p.fetch(ref("prod/db"));
  ASSERT_FALSE(plain);
  EXPECT_THAT(plain.error().message, HasSubstr("https://secretsmanager.us-east-1.amazonaws.com/"));
}

// --- secrets stay out of errors and logs ---

TEST_F(AwsSecretsManagerTest, NoSecretAppearsInAnyErrorOrLog) {
  const std::string value = "canary-VALUE-6b1f0e";
  const std::string json_value = "canary-JSONVALUE-93ad";
  const std::string secret_key = "canary-SECRETKEY-55c2";
  const std::string session_token = "canary-SESSIONTOKEN-1d7e";
  const std::string web_token = "canary-WEBTOKEN-a4f9";
  const std::string ecs_token = "canary-ECSTOKEN-08b3";
  const std::string body_secret = "canary-BODY-77aa";
  const std::vector<std::string> canaries = {value,     json_value, secret_key, session_token,
                                             web_token, ecs_token,  body_secret};
  aws_.addSecret({"leaky", "", {{kCurId, {"AWSCURRENT"}, value, {}}}});
  aws_.addSecret(
      {"leaky-json", "", {{kCurId, {"AWSCURRENT"}, R"({"password":")" + json_value + "\"}", {}}}});
  aws_.addSecret({"leaky-bin", "", {{kCurId, {"AWSCURRENT"}, {}, value}}});
  aws_.addKey("AKIDSESSION", {kSecretKey, "the-real-token", false});

  LeakCheck leaks;
  {
    AwsSecretsManagerProvider p(config(), staticKeys(), clock_);
    ASSERT_TRUE(p.fetch(ref("leaky")));                     // the value is in play
    leaks.expectError(p, ref("leaky", "password"));         // not JSON
    leaks.expectError(p, ref("leaky-json", "user"));        // no such field
    leaks.expectError(p, ref("leaky-json", "password.x"));  // not an object
    leaks.expectError(p, ref("leaky-bin", "password"));     // binary
  }
  {
    AwsSecretsManagerProvider p(
        config(), env({{"AWS_ACCESS_KEY_ID", kAccessKey}, {"AWS_SECRET_ACCESS_KEY", secret_key}}),
        clock_);
    leaks.expectError(p, ref("leaky"));  // invalid signature
  }
  {
    AwsSecretsManagerProvider p(config(),
                                env({{"AWS_ACCESS_KEY_ID", "AKIDSESSION"},
                                     {"AWS_SECRET_ACCESS_KEY", kSecretKey},
                                     {"AWS_SESSION_TOKEN", session_token}}),
                                clock_);
    leaks.expectError(p, ref("leaky"));  // unrecognized token
  }
  {
    AwsSecretsManagerProvider p(config(), env({{"AWS_ACCESS_KEY_ID", kAccessKey}}), clock_);
    leaks.expectError(p, ref("leaky"));  // half-configured environment
  }
  {
    TempDir dir;
    auto token_file = dir.write("token", web_token);
    AwsSecretsManagerProvider p(
        config(), env({{"AWS_ROLE_ARN", kRoleArn}, {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file}}),
        clock_);
    leaks.expectError(p, ref("leaky"));  // STS refuses the token
  }
  {
    AwsSecretsManagerProvider p(config(),
                                env({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", aws_.url("/ecs/creds")},
                                     {"AWS_CONTAINER_AUTHORIZATION_TOKEN", ecs_token}}),
                                clock_);
    leaks.expectError(p, ref("leaky"));  // container endpoint refuses the token
  }
  {
    AwsSecretsManagerProvider p(
        config(),
        env({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://198.51.100.7/creds"},
             {"AWS_CONTAINER_AUTHORIZATION_TOKEN", ecs_token}}),
        clock_);
    leaks.expectError(p, ref("leaky"));  // refused URL
  }
  {
    auto c = config();
    c.endpoint = closedPortUrl() + "/?token=" + body_secret;
    AwsSecretsManagerProvider p(c,
                                env({{"AWS_ACCESS_KEY_ID", kAccessKey},
                                     {"AWS_SECRET_ACCESS_KEY", secret_key},
                                     {"AWS_SESSION_TOKEN", session_token}}),
                                clock_);
    leaks.expectError(p, ref("leaky"));  // nothing listens
  }
  {
    HttpClientConfig hc;
    hc.proxy = ProxyConfig{};
    hc.retry.max_attempts = 1;
    HttpClient http(hc);
    auto r = http.send({"POST", closedPortUrl() + "/", {{"X-Token", session_token}}, body_secret});
    ASSERT_FALSE(r);
    leaks.addMessage(r.error().message);
  }

  EXPECT_GE(leaks.messages(), 11u);
  leaks.expectNoneHolds(canaries);
}

// --- TLS with a certificate made for this test ---

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};

struct SelfSigned {
  Pkey key;
  std::unique_ptr<X509, X509Deleter> cert;
};

// A self-signed CA certificate for IP 127.0.0.1, valid for an hour.
SelfSigned makeCertificate() {
  SelfSigned s;
  s.key.reset(EVP_EC_gen("P-256"));
  s.cert.reset(X509_new());
  X509* x = s.cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, s.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("outpost test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, s.key.get(), EVP_sha256());
  return s;
}

TEST(AwsSecretsManagerTls, VerifiesTheServerAgainstTheConfiguredCaBundle) {
  auto tls = makeCertificate();
  ASSERT_TRUE(tls.key && tls.cert);
  TempDir dir;
  const std::string ca = dir.path("ca.pem");
  {
    FILE* f = std::fopen(ca.c_str(), "w");
    ASSERT_NE(f, nullptr);
    PEM_write_X509(f, tls.cert.get());
    std::fclose(f);
  }
  FakeClock clock;
  FakeAws aws(clock, std::make_unique<httplib::SSLServer>(tls.cert.get(), tls.key.get()));

  AwsConfig c;
  c.region = kRegion;
  c.endpoint = aws.url("/", "https");
  c.instance_metadata_disabled = true;
  c.transport.retry_base_delay = 1ms;
  c.transport.retry_max_delay = 5ms;
  c.transport.ca_bundle = ca;
  Environment env{{"HOME", dir.path()},
                  {"AWS_ACCESS_KEY_ID", kAccessKey},
                  {"AWS_SECRET_ACCESS_KEY", kSecretKey}};
  AwsSecretsManagerProvider trusted(c, env, clock);
  auto s = trusted.fetch(ref("prod/db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");

  // Without the bundle the certificate is not trusted: refused at once, never retried.
  c.transport.ca_bundle.clear();
  AwsSecretsManagerProvider untrusted(c, env, clock);
  const int before = aws.sm_calls;
  auto u = untrusted.fetch(ref("prod/db"));
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(u.error().message, HasSubstr("certificate"));
  EXPECT_THAT(u.error().message, Not(HasSubstr("attempts")));
  EXPECT_EQ(aws.sm_calls, before);
}

}  // namespace
}  // namespace outpost::secrets
