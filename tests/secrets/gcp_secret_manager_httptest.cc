// The Google Cloud Secret Manager provider against a fake Google served by cpp-httplib on
// 127.0.0.1: AccessSecretVersion as documented (payload base64 with its CRC32C), the OAuth token
// endpoint (it checks the JWT's RS256 signature with the public half of a key pair this test
// makes, and its claims) and the metadata server. Loopback only: no Kafka, no internet.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "fake_clock.h"
#include "fake_tokens.h"
#include "leak_check.h"
#include "loopback_server.h"
#include "outpost/secrets/gcp.h"
#include "outpost/secrets/reference.h"
#include "outpost/secrets/resolver.h"
#include "temp_dir.h"
#include "test_crypto.h"

namespace outpost::secrets {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::base64;
using test::base64UrlDecode;
using test::closedPortUrl;
using test::FakeBearerTokens;
using test::FakeClock;
using test::LeakCheck;
using test::LoopbackServer;
using test::parseForm;
using test::Pkey;
using test::privatePem;
using test::TempDir;
using test::verifyRs256;
using testing::HasSubstr;
using testing::Not;

constexpr const char* kProject = "proj-1";
constexpr const char* kProjectNumber = "123456";
constexpr const char* kEmail = "outpost@proj-1.iam.gserviceaccount.com";
constexpr const char* kScope = "https://www.googleapis.com/auth/cloud-platform";
// Tokens the fake issues start with this, so that a test can look for any of them.
constexpr const char* kTokenPrefix = "ya29.CANARYTOKEN-";

// --- the server's own crypto and encodings, apart from the provider's ---

// The service account's key pair, and one Google does not know. Made once (it takes a moment).
EVP_PKEY* serviceAccountKey() {
  static Pkey key(EVP_RSA_gen(2048));
  return key.get();
}
EVP_PKEY* strangerKey() {
  static Pkey key(EVP_RSA_gen(2048));
  return key.get();
}

// Bit by bit, as the definition goes (the provider uses a table).
std::uint32_t referenceCrc32c(std::string_view data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : data) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc & 1u) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

// --- the fake Google ---

void googleError(httplib::Response& res, int code, const std::string& status,
                 const std::string& message) {
  res.status = code;
  res.set_content(
      json{{"error", {{"code", code}, {"message", message}, {"status", status}}}}.dump(),
      "application/json");
}

void oauthError(httplib::Response& res, int code, const std::string& error,
                const std::string& description) {
  res.status = code;
  res.set_content(json{{"error", error}, {"error_description", description}}.dump(),
                  "application/json");
}

// Secret Manager (GET /v1/projects/P/secrets/S/versions/V:access), the OAuth token endpoint
// (POST /token) and the metadata server (/computeMetadata/...), on one loopback server. Secrets
// live in project kProject, whose number is kProjectNumber (Google answers with the number).
class FakeGoogle {
 public:
  explicit FakeGoogle(const Clock& clock) : clock_(clock) {
    secrets_["db"] = {"old-password", "current-password"};
    secrets_["db-json"] = {R"({"username":"app","password":"p@ss","nested":{"port":5432}})"};
    secrets_["corrupt"] = {"a-payload-damaged-on-the-way"};
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    secrets_["binary"] = {all};

    auto server = std::make_unique<httplib::Server>();
    server->Post("/token",
                 [this](const httplib::Request& q, httplib::Response& r) { token(q, r); });
    server->Get("/computeMetadata/v1/instance/service-accounts/default/token",
                [this](const httplib::Request& q, httplib::Response& r) { metadata(q, r); });
    server->Get(R"(/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/]+):access)",
                [this](const httplib::Request& q, httplib::Response& r) { access(q, r); });
    server_ = std::make_unique<LoopbackServer>(std::move(server));
  }

  ~FakeGoogle() {
    {
      std::lock_guard l(mutex_);
      released_ = true;
    }
    release_.notify_all();
    server_.reset();
  }

  std::string url(const std::string& path) const { return server_->url(path); }

  void setSecret(const std::string& name, std::vector<std::string> versions) {
    std::lock_guard l(mutex_);
    secrets_[name] = std::move(versions);
  }
  // The next n access calls answer `status` (429 or a 5xx).
  void failNext(int n, int status) {
    std::lock_guard l(mutex_);
    fail_next_ = n;
    fail_status_ = status;
  }
  void revokeAllTokens() { tokens_.revokeAll(); }
  void slowTokens(std::chrono::milliseconds d) {
    std::lock_guard l(mutex_);
    token_delay_ = d;
  }
  void metadataFlavorHeader(bool on) { metadata_flavor_ = on; }

  std::atomic<int> token_calls{0}, metadata_calls{0}, access_calls{0};

 private:
  json issue() {
    return {{"access_token", tokens_.issue()}, {"expires_in", 3600}, {"token_type", "Bearer"}};
  }

  // The JWT bearer grant (RFC 7523) as Google checks it.
  void token(const httplib::Request& q, httplib::Response& r) {
    ++token_calls;
    std::chrono::milliseconds delay;
    {
      std::lock_guard l(mutex_);
      delay = token_delay_;
    }
    std::this_thread::sleep_for(delay);
    auto form = parseForm(q.body);
    if (q.get_header_value("Content-Type") != "application/x-www-form-urlencoded" ||
        form["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      oauthError(r, 400, "unsupported_grant_type", "Invalid grant_type: " + form["grant_type"]);
      return;
    }
    const std::string jwt = form["assertion"];
    const auto dot1 = jwt.find('.');
    const auto dot2 = dot1 == std::string::npos ? dot1 : jwt.find('.', dot1 + 1);
    if (dot2 == std::string::npos) {
      oauthError(r, 400, "invalid_grant", "Invalid JWT: not three parts");
      return;
    }
    auto header = base64UrlDecode(jwt.substr(0, dot1));
    auto claims = base64UrlDecode(jwt.substr(dot1 + 1, dot2 - dot1 - 1));
    auto signature = base64UrlDecode(jwt.substr(dot2 + 1));
    if (!header || !claims || !signature) {
      oauthError(r, 400, "invalid_grant", "Invalid JWT: not base64url");
      return;
    }
    auto h = json::parse(*header, nullptr, false);
    auto c = json::parse(*claims, nullptr, false);
    if (h.is_discarded() || c.is_discarded() || h.value("alg", "") != "RS256" ||
        h.value("typ", "") != "JWT" || h.value("kid", "") != "kid-1") {
      oauthError(r, 400, "invalid_grant", "Invalid JWT header");
      return;
    }
    if (!verifyRs256(serviceAccountKey(), jwt.substr(0, dot2), *signature)) {
      oauthError(r, 400, "invalid_grant", "Invalid JWT Signature.");
      return;
    }
    const long long now =
        std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
    if (c.value("iss", "") != kEmail || c.value("scope", "") != kScope ||
        c.value("aud", "") != url("/token") || !c["iat"].is_number_integer() ||
        !c["exp"].is_number_integer() || c["iat"].get<long long>() != now ||
        c["exp"].get<long long>() != now + 3600) {
      oauthError(r, 400, "invalid_grant", "Invalid JWT: claims are wrong");
      return;
    }
    r.set_content(issue().dump(), "application/json");
  }

  void metadata(const httplib::Request& q, httplib::Response& r) {
    ++metadata_calls;
    if (q.get_header_value("Metadata-Flavor") != "Google") {
      r.status = 403;
      r.set_content("Missing Metadata-Flavor:Google header.", "text/html");
      return;
    }
    if (metadata_flavor_) r.set_header("Metadata-Flavor", "Google");
    r.set_content(issue().dump(), "application/json");
  }

  void access(const httplib::Request& q, httplib::Response& r) {
    ++access_calls;
    const std::string project = q.matches[1], name = q.matches[2], version = q.matches[3];
    {
      std::lock_guard l(mutex_);
      if (!tokens_.accepts(q.get_header_value("Authorization"))) {
        googleError(r, 401, "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential.");
        return;
      }
      if (fail_next_ > 0) {
        --fail_next_;
        if (fail_status_ == 429) {
          googleError(r, 429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Access'");
        } else {
          googleError(r, fail_status_, "UNAVAILABLE", "The service is currently unavailable.");
        }
        return;
      }
    }
    if (project != kProject && project != kProjectNumber) {
      googleError(r, 403, "PERMISSION_DENIED", "Permission denied on resource project " + project);
      return;
    }
    const std::string resource = std::string("projects/") + kProjectNumber + "/secrets/" + name;
    if (name == "denied") {
      googleError(r, 403, "PERMISSION_DENIED",
                  "Permission 'secretmanager.versions.access' denied for resource '" + resource +
                      "/versions/" + version + "' (or it may not exist).");
      return;
    }
    if (name == "slow") {
      std::unique_lock l(mutex_);
      release_.wait_for(l, 10s, [this] { return released_; });
      googleError(r, 503, "UNAVAILABLE", "late");
      return;
    }
    std::lock_guard l(mutex_);
    auto s = secrets_.find(name);
    if (s == secrets_.end()) {
      googleError(r, 404, "NOT_FOUND", "Secret [" + resource + "] not found or has no versions.");
      return;
    }
    std::size_t n = s->second.size();
    if (version != "latest") {
      n = 0;
      for (char ch : version)
        n = std::isdigit(static_cast<unsigned char>(ch)) ? n * 10 + (ch - '0') : 0;
    }
    if (n == 0 || n > s->second.size()) {
      googleError(r, 404, "NOT_FOUND",
                  "Secret Version [" + resource + "/versions/" + version + "] not found.");
      return;
    }
    const std::string& data = s->second[n - 1];
    std::uint32_t crc = referenceCrc32c(data);
    if (name == "corrupt") crc ^= 0x10u;  // as if a bit had flipped on the way
    r.set_content(json{{"name", resource + "/versions/" + std::to_string(n)},
                       {"payload", {{"data", base64(data)}, {"dataCrc32c", std::to_string(crc)}}}}
                      .dump(),
                  "application/json");
  }

  const Clock& clock_;
  FakeBearerTokens tokens_{clock_, kTokenPrefix};
  std::unique_ptr<LoopbackServer> server_;
  std::atomic<bool> metadata_flavor_{true};

  std::mutex mutex_;  // guards what follows; handlers run on the server's threads
  std::condition_variable release_;
  bool released_ = false;
  std::map<std::string, std::vector<std::string>> secrets_;  // versions 1, 2, ...
  int fail_next_ = 0;
  int fail_status_ = 503;
  std::chrono::milliseconds token_delay_{0};
};

SecretRef smRef(const std::string& path, const std::string& field = "",
                const std::string& version = "") {
  return SecretRef{"gcp-sm", path, field, version,
                   "${gcp-sm:" + path + (field.empty() ? "" : "#" + field) + "}"};
}

std::string full(const std::string& secret, const std::string& version = "latest") {
  return std::string("projects/") + kProject + "/secrets/" + secret + "/versions/" + version;
}

class GcpSecretManagerTest : public testing::Test {
 protected:
  // A key file as the Cloud console writes one, but for the fake's token endpoint.
  std::string keyFile(EVP_PKEY* key = serviceAccountKey()) {
    return dir_.write("sa-" + std::to_string(++files_) + ".json",
                      json{{"type", "service_account"},
                           {"project_id", kProject},
                           {"private_key_id", "kid-1"},
                           {"private_key", privatePem(key)},
                           {"client_email", kEmail},
                           {"client_id", "1234567890"},
                           {"auth_uri", "https://accounts.google.com/o/oauth2/auth"},
                           {"token_uri", google_.url("/token")}}
                          .dump());
  }
  GcpConfig config() {
    GcpConfig c;
    c.endpoint = google_.url("");
    c.credentials_file = keyFile();
    c.metadata_endpoint = closedPortUrl();
    c.transport.connect_timeout = 2s;
    c.transport.timeout = 5s;
    c.transport.max_attempts = 3;
    c.transport.retry_base_delay = 1ms;
    c.transport.retry_max_delay = 5ms;
    c.metadata_timeout = 2s;
    return c;
  }
  GcpConfig metadataConfig() {
    auto c = config();
    c.credentials_file.clear();
    c.metadata_endpoint = google_.url("");
    return c;
  }

  FakeClock clock_;
  FakeGoogle google_{clock_};
  TempDir dir_;
  int files_ = 0;
};

// --- AccessSecretVersion ---

TEST_F(GcpSecretManagerTest, AServiceAccountKeyGetsATokenAndTheLatestVersion) {
  GcpSecretManagerProvider p(config(), {}, clock_);
  EXPECT_EQ(p.name(), "gcp-sm");
  auto s = p.fetch(smRef(full("db")));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
  EXPECT_EQ(s->version, "2");
  EXPECT_EQ(google_.token_calls, 1);
  EXPECT_EQ(google_.access_calls, 1);
}

TEST_F(GcpSecretManagerTest, ShortFormsAndExplicitVersions) {
  auto c = config();
  GcpSecretManagerProvider no_project(c, {}, clock_);
  auto by_path = no_project.fetch(smRef(full("db", "1")));
  ASSERT_TRUE(by_path) << by_path.error().message;
  EXPECT_EQ(by_path->value.reveal(), "old-password");
  EXPECT_EQ(by_path->version, "1");
  auto latest = no_project.fetch(smRef("projects/proj-1/secrets/db"));
  ASSERT_TRUE(latest) << latest.error().message;
  EXPECT_EQ(latest->value.reveal(), "current-password");
  auto bare = no_project.fetch(smRef("db"));
  ASSERT_FALSE(bare);
  EXPECT_EQ(bare.error().kind, SecretError::Kind::kInvalid);
  EXPECT_THAT(bare.error().message, HasSubstr("secrets.gcp.project"));

  c.project = kProject;
  GcpSecretManagerProvider with_project(c, {}, clock_);
  auto short_name = with_project.fetch(smRef("db"));
  ASSERT_TRUE(short_name) << short_name.error().message;
  EXPECT_EQ(short_name->value.reveal(), "current-password");
  auto short_versioned = with_project.fetch(smRef("db", "", "1"));
  ASSERT_TRUE(short_versioned) << short_versioned.error().message;
  EXPECT_EQ(short_versioned->value.reveal(), "old-password");

  auto binary = with_project.fetch(smRef("binary"));
  ASSERT_TRUE(binary) << binary.error().message;
  ASSERT_EQ(binary->value.size(), 256u);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(static_cast<unsigned char>(binary->value.reveal()[i]), i);
}

TEST_F(GcpSecretManagerTest, ExtractsJsonFieldsAndNamesTheMissingOne) {
  GcpSecretManagerProvider p(config(), {}, clock_);
  auto pw = p.fetch(smRef(full("db-json"), "password"));
  ASSERT_TRUE(pw) << pw.error().message;
  EXPECT_EQ(pw->value.reveal(), "p@ss");
  auto port = p.fetch(smRef(full("db-json"), "nested.port"));
  ASSERT_TRUE(port) << port.error().message;
  EXPECT_EQ(port->value.reveal(), "5432");
  auto missing = p.fetch(smRef(full("db-json"), "pasword"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(missing.error().message, HasSubstr("'pasword'"));
  EXPECT_THAT(missing.error().message, HasSubstr("${gcp-sm:" + full("db-json") + "#pasword}"));
}

TEST_F(GcpSecretManagerTest, NotFoundAndPermissionDeniedAreMappedAndNamed) {
  GcpSecretManagerProvider p(config(), {}, clock_);
  auto nf = p.fetch(smRef(full("nope")));
  ASSERT_FALSE(nf);
  EXPECT_EQ(nf.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(nf.error().message, HasSubstr("${gcp-sm:" + full("nope") + "}"));
  EXPECT_THAT(nf.error().message, HasSubstr("gcp-sm"));
  EXPECT_THAT(nf.error().message, HasSubstr("HTTP 404 NOT_FOUND"));

  auto no_version = p.fetch(smRef(full("db", "9")));
  ASSERT_FALSE(no_version);
  EXPECT_EQ(no_version.error().kind, SecretError::Kind::kNotFound);

  auto denied = p.fetch(smRef(full("denied")));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(denied.error().message, HasSubstr("HTTP 403 PERMISSION_DENIED"));
  EXPECT_EQ(google_.access_calls, 3);  // none retried
}

TEST_F(GcpSecretManagerTest, AWrongChecksumIsRefusedWithAClearError) {
  GcpSecretManagerProvider p(config(), {}, clock_);
  auto s = p.fetch(smRef(full("corrupt")));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("${gcp-sm:" + full("corrupt") + "}"));
  EXPECT_THAT(s.error().message, HasSubstr("does not match its CRC32C checksum"));
  EXPECT_THAT(s.error().message, Not(HasSubstr("damaged-on-the-way")));
}

// --- retries and limits ---

TEST_F(GcpSecretManagerTest, ThrottlingIsRetriedUntilItPasses) {
  GcpSecretManagerProvider p(config(), {}, clock_);
  google_.failNext(2, 429);
  auto s = p.fetch(smRef(full("db")));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
  EXPECT_EQ(google_.access_calls, 3);

  google_.failNext(100, 429);
  auto gave_up = p.fetch(smRef(full("db")));
  ASSERT_FALSE(gave_up);
  EXPECT_EQ(gave_up.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(gave_up.error().message, HasSubstr("HTTP 429 RESOURCE_EXHAUSTED"));
  EXPECT_THAT(gave_up.error().message, HasSubstr("3 attempts"));
  EXPECT_EQ(google_.access_calls, 6);
}

TEST_F(GcpSecretManagerTest, ServerErrorsAreRetriedUntilItPasses) {
  GcpSecretManagerProvider p(config(), {}, clock_);
  google_.failNext(1, 503);
  auto s = p.fetch(smRef(full("db")));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(google_.access_calls, 2);

  google_.failNext(100, 500);
  auto gave_up = p.fetch(smRef(full("db")));
  ASSERT_FALSE(gave_up);
  EXPECT_EQ(gave_up.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(gave_up.error().message, HasSubstr("HTTP 500"));
}

TEST_F(GcpSecretManagerTest, ASlowAnswerTimesOutAfterABoundedNumberOfTries) {
  auto c = config();
  c.transport.timeout = 300ms;
  c.transport.max_attempts = 2;
  GcpSecretManagerProvider p(c, {}, clock_);
  auto s = p.fetch(smRef(full("slow")));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("Timeout"));
  EXPECT_THAT(s.error().message, HasSubstr("2 attempts"));
  EXPECT_EQ(google_.access_calls, 2);
}

// --- tokens ---

TEST_F(GcpSecretManagerTest, TheTokenIsReusedUntilShortlyBeforeItExpiresThenRenewed) {
  GcpSecretManagerProvider p(config(), {}, clock_);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.fetch(smRef(full("db"))));
  EXPECT_EQ(google_.token_calls, 1);
  clock_.advance(54min);
  ASSERT_TRUE(p.fetch(smRef(full("db"))));
  EXPECT_EQ(google_.token_calls, 1);
  clock_.advance(2min);  // within five minutes of the one-hour expiry
  auto renewed = p.fetch(smRef(full("db")));
  ASSERT_TRUE(renewed) << renewed.error().message;
  EXPECT_EQ(google_.token_calls, 2);
  // The first token has expired by now (the fake refuses it); the second one serves.
  clock_.advance(10min);
  auto later = p.fetch(smRef(full("db")));
  ASSERT_TRUE(later) << later.error().message;
  EXPECT_EQ(google_.token_calls, 2);
}

TEST_F(GcpSecretManagerTest, ARefusedTokenIsDeniedAndTheNextFetchGetsANewOne) {
  GcpSecretManagerProvider p(config(), {}, clock_);
  ASSERT_TRUE(p.fetch(smRef(full("db"))));
  google_.revokeAllTokens();
  auto refused = p.fetch(smRef(full("db")));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(refused.error().message, HasSubstr("HTTP 401 UNAUTHENTICATED"));
  auto again = p.fetch(smRef(full("db")));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(google_.token_calls, 2);
}

TEST_F(GcpSecretManagerTest, ConcurrentFetchesShareOneTokenRequest) {
  google_.slowTokens(100ms);  // so that the threads really wait on the same request
  GcpSecretManagerProvider p(config(), {}, clock_);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto s = i % 2 ? p.fetch(smRef(full("db"))) : p.fetch(smRef(full("db-json"), "password"));
        if (s) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 40);
  EXPECT_EQ(google_.token_calls, 1);
  EXPECT_EQ(google_.access_calls, 40);
}

TEST_F(GcpSecretManagerTest, AJwtSignedWithAnotherKeyIsRefusedByTheTokenEndpoint) {
  auto c = config();
  c.credentials_file = keyFile(strangerKey());
  GcpSecretManagerProvider p(c, {}, clock_);
  auto s = p.fetch(smRef(full("db")));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("invalid_grant: Invalid JWT Signature."));
  EXPECT_THAT(s.error().message, HasSubstr("service account " + std::string(kEmail)));
  EXPECT_EQ(google_.token_calls, 1);  // a refusal is not retried
  EXPECT_EQ(google_.access_calls, 0);
}

TEST_F(GcpSecretManagerTest, TheKeyFileComesFromGoogleApplicationCredentials) {
  auto c = config();
  const std::string file = c.credentials_file;
  c.credentials_file.clear();
  GcpSecretManagerProvider p(c, {{"GOOGLE_APPLICATION_CREDENTIALS", file}}, clock_);
  EXPECT_EQ(p.tokenSource(), "service account " + std::string(kEmail));
  ASSERT_TRUE(p.fetch(smRef(full("db"))));
  EXPECT_EQ(google_.token_calls, 1);
}

TEST_F(GcpSecretManagerTest, TheMetadataServerGivesTokensWhenThereIsNoKeyFile) {
  GcpSecretManagerProvider p(metadataConfig(), {}, clock_);
  EXPECT_EQ(p.tokenSource(), "metadata server");
  for (int i = 0; i < 3; ++i) {
    auto s = p.fetch(smRef(full("db")));
    ASSERT_TRUE(s) << s.error().message;
  }
  EXPECT_EQ(google_.metadata_calls, 1);
  EXPECT_EQ(google_.token_calls, 0);
  clock_.advance(58min);
  ASSERT_TRUE(p.fetch(smRef(full("db"))));
  EXPECT_EQ(google_.metadata_calls, 2);
}

TEST_F(GcpSecretManagerTest, TheMetadataHostComesFromGceMetadataHost) {
  auto c = metadataConfig();
  c.metadata_endpoint.clear();
  const std::string host = google_.url("").substr(std::string("http://").size());
  GcpSecretManagerProvider p(c, {{"GCE_METADATA_HOST", host}}, clock_);
  ASSERT_TRUE(p.fetch(smRef(full("db"))));
  EXPECT_EQ(google_.metadata_calls, 1);
}

TEST_F(GcpSecretManagerTest, AMetadataServerThatIsNotGooglesIsNotBelieved) {
  google_.metadataFlavorHeader(false);
  GcpSecretManagerProvider p(metadataConfig(), {}, clock_);
  auto s = p.fetch(smRef(full("db")));
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("Metadata-Flavor: Google"));
  EXPECT_EQ(google_.access_calls, 0);
}

TEST_F(GcpSecretManagerTest, NoKeyFileAndNoMetadataServerSaysWhatToConfigure) {
  auto c = metadataConfig();
  c.metadata_endpoint = closedPortUrl();
  GcpSecretManagerProvider p(c, {}, clock_);
  auto s = p.fetch(smRef(full("db")));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("${gcp-sm:" + full("db") + "}"));
  EXPECT_THAT(s.error().message, HasSubstr("metadata server"));
  EXPECT_THAT(s.error().message, HasSubstr("GOOGLE_APPLICATION_CREDENTIALS"));
}

// --- from the configuration, through the resolver ---

TEST_F(GcpSecretManagerTest, TheResolverBuildsItFromSettingsForSecretReferences) {
  SecretsConfig sc;
  sc.default_cloud = "gcp-sm";
  sc.clouds = {"gcp-sm"};
  sc.gcp.project = kProject;
  sc.gcp.endpoint = google_.url("");
  sc.gcp.credentials_file = keyFile();
  sc.gcp.token_uri = google_.url("/token");
  sc.gcp.metadata_endpoint = closedPortUrl();
  auto resolver = SecretResolver::fromConfig(sc, {}, clock_);
  auto parts = parseReferences("secret:/db ${gcp-sm:projects/proj-1/secrets/db-json#username}");
  ASSERT_TRUE(parts) << parts.error();
  std::vector<std::string> values;
  for (const auto& part : *parts) {
    if (!part.is_reference) continue;
    auto r = resolver->resolve(part.ref);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->provider, "gcp-sm");
    values.emplace_back(r->value.reveal());
  }
  EXPECT_EQ(values, (std::vector<std::string>{"current-password", "app"}));
}

// --- secrets stay out of errors and logs ---

TEST_F(GcpSecretManagerTest, NoSecretOrTokenAppearsInAnyErrorOrLog) {
  const std::string value = "canary-VALUE-5e0b1c";
  const std::string json_value = "canary-JSONVALUE-77f3";
  google_.setSecret("leaky", {value});
  google_.setSecret("leaky-json", {R"({"password":")" + json_value + "\"}"});
  google_.setSecret("corrupt", {value});
  const std::string pem = privatePem(serviceAccountKey());
  const std::string pem_line = pem.substr(pem.find('\n') + 1, 40);
  const std::string stranger_line = [] {
    const std::string p = privatePem(strangerKey());
    return p.substr(p.find('\n') + 1, 40);
  }();

  LeakCheck leaks;
  {
    GcpSecretManagerProvider p(config(), {}, clock_);
    ASSERT_TRUE(p.fetch(smRef(full("leaky"))));               // a value and a token are in play
    leaks.expectError(p, smRef(full("leaky"), "password"));   // not JSON
    leaks.expectError(p, smRef(full("leaky-json"), "user"));  // no such field
    leaks.expectError(p, smRef(full("leaky-json"), "password.x"));  // not an object
    leaks.expectError(p, smRef(full("corrupt")));                   // checksum
    leaks.expectError(p, smRef(full("denied")));
    leaks.expectError(p, smRef(full("nope")));
    google_.revokeAllTokens();
    leaks.expectError(p, smRef(full("leaky")));  // 401
    google_.failNext(100, 503);
    leaks.expectError(p, smRef(full("leaky")));
    google_.failNext(0, 503);
  }
  {
    auto c = config();
    c.credentials_file = keyFile(strangerKey());
    GcpSecretManagerProvider p(c, {}, clock_);
    leaks.expectError(p, smRef(full("leaky")));  // the JWT is refused
  }
  {
    auto c = metadataConfig();
    c.metadata_endpoint = closedPortUrl();
    GcpSecretManagerProvider p(c, {}, clock_);
    leaks.expectError(p, smRef(full("leaky")));
  }
  {
    auto c = config();
    c.endpoint = closedPortUrl();
    GcpSecretManagerProvider p(c, {}, clock_);
    leaks.expectError(p, smRef(full("leaky")));  // nothing listens, with a token in hand
  }

  EXPECT_GE(leaks.messages(), 11u);
  leaks.expectNoneHolds(
      {value, json_value, kTokenPrefix, pem_line, stranger_line, "PRIVATE KEY", "eyJ"});
}

}  // namespace
}  // namespace outpost::secrets
