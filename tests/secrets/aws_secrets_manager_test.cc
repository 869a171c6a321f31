// The AWS provider's pieces that need no network: settings, credential sources that read the
// environment and files, the caching chain, retry and proxy rules. The provider against a fake
// AWS on loopback is in aws_secrets_manager_httptest.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fake_clock.h"
#include "outpost/common/http_client.h"
#include "outpost/secrets/aws.h"
#include "outpost/secrets/aws_credentials.h"
#include "temp_dir.h"

namespace outpost::secrets {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::HasSubstr;
using testing::Not;

using test::FakeClock;
using test::TempDir;

HttpClientConfig directConfig() {
  HttpClientConfig c;
  c.proxy = ProxyConfig{};
  return c;
}

// --- HTTP rules ---

TEST(ProxyConfig, ReadsBothCasesLowerFirstAndHonoursUpperCaseHttpProxy) {
  auto p = ProxyConfig::fromEnvironment({{"HTTP_PROXY", "http://upper:1"},
                                         {"HTTPS_PROXY", "http://upper:2"},
                                         {"https_proxy", "http://lower:2"},
                                         {"NO_PROXY", "169.254.169.254,.internal"}});
  EXPECT_EQ(p.http_proxy, "http://upper:1");  // libcurl alone would ignore HTTP_PROXY
  EXPECT_EQ(p.https_proxy, "http://lower:2");
  EXPECT_EQ(p.no_proxy, "169.254.169.254,.internal");
}

TEST(ProxyConfig, FallsBackToAllProxy) {
  auto p = ProxyConfig::fromEnvironment({{"ALL_PROXY", "socks5h://p:1080"}});
  EXPECT_EQ(p.http_proxy, "socks5h://p:1080");
  EXPECT_EQ(p.https_proxy, "socks5h://p:1080");
  EXPECT_TRUE(ProxyConfig::fromEnvironment({}).https_proxy.empty());
}

TEST(RetryPolicy, BackoffGrowsExponentiallyUpToTheCapWithFullJitter) {
  RetryPolicy r;
  r.base_delay = 100ms;
  r.max_delay = 1000ms;
  EXPECT_EQ(r.backoff(2, 0.999999), 99ms);
  EXPECT_EQ(r.backoff(3, 0.5), 100ms);
  EXPECT_EQ(r.backoff(4, 0.5), 200ms);
  EXPECT_EQ(r.backoff(10, 0.5), 500ms);  // capped at 1000 ms, then jittered
  EXPECT_EQ(r.backoff(50, 0.0), 0ms);
}

TEST(RetryPolicy, RetriesServerErrorsThrottlingAndWhatTheProviderAdds) {
  RetryPolicy r;
  HttpResponse resp;
  for (long s : {500L, 502L, 503L, 429L}) {
    resp.status = s;
    EXPECT_TRUE(r.shouldRetry(resp)) << s;
  }
  resp.status = 400;
  resp.body = R"({"__type":"ThrottlingException","message":"Rate exceeded"})";
  EXPECT_FALSE(r.shouldRetry(resp));
  r.retry_response = isAwsThrottling;
  EXPECT_TRUE(r.shouldRetry(resp));
  resp.body = R"({"__type":"ResourceNotFoundException"})";
  EXPECT_FALSE(r.shouldRetry(resp));
}

TEST(AwsErrors, ThrottlingIsFoundInJsonHeaderAndXml) {
  HttpResponse json{400, {}, R"({"__type":"com.amazonaws.secretsmanager#ThrottlingException"})"};
  HttpResponse header{400, {{"x-amzn-ErrorType", "ThrottlingException:http://internal/"}}, ""};
  HttpResponse xml{
      400, {}, "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>"};
  HttpResponse ok{200, {}, R"({"__type":"ThrottlingException"})"};
  EXPECT_TRUE(isAwsThrottling(json));
  EXPECT_TRUE(isAwsThrottling(header));
  EXPECT_TRUE(isAwsThrottling(xml));
  EXPECT_FALSE(isAwsThrottling(ok));
}

TEST(Url, SplitsAndShowsNoQueryOrUserInfo) {
  auto u = parseUrl("https://user:pw@[::1]:8443/a/b?x=1#frag");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "8443");
  EXPECT_EQ(u->path, "/a/b");
  EXPECT_EQ(u->query, "x=1");
  EXPECT_EQ(u->authority(), "[::1]:8443");
  EXPECT_EQ(urlForMessages("https://user:pw@h/p?token=abc"), "https://h/p");
  EXPECT_FALSE(parseUrl("file:///etc/passwd"));
  EXPECT_FALSE(parseUrl("https:///nohost"));
  EXPECT_TRUE(isLoopbackHost("127.0.0.1"));
  EXPECT_FALSE(isLoopbackHost("127.0.0.1.evil.com"));
}

TEST(HttpClient, RefusesHeadersWithLineBreaksWithoutShowingTheValue) {
  HttpClient http(directConfig());
  auto r = http.send({"GET", "http://127.0.0.1:9/", {{"X-Token", "abc\r\nInjected: yes"}}, ""});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, HttpError::Kind::kInvalid);
  EXPECT_THAT(r.error().message, HasSubstr("X-Token"));
  EXPECT_THAT(r.error().message, Not(HasSubstr("abc")));
}

// --- settings ---

TEST(AwsConfig, RegionComesFromSettingThenEnvironmentThenConfigFile) {
  TempDir dir;
  auto conf =
      dir.write("config", "[profile work]\nregion = eu-central-1\n[default]\nregion=us-west-2\n");
  Environment env{{"AWS_CONFIG_FILE", conf}, {"HOME", "/nonexistent"}};
  EXPECT_EQ(resolveAwsConfig({}, env).region, "us-west-2");
  env["AWS_PROFILE"] = "work";
  EXPECT_EQ(resolveAwsConfig({}, env).region, "eu-central-1");
  env["AWS_DEFAULT_REGION"] = "ap-south-1";
  EXPECT_EQ(resolveAwsConfig({}, env).region, "ap-south-1");
  env["AWS_REGION"] = "sa-east-1";
  EXPECT_EQ(resolveAwsConfig({}, env).region, "sa-east-1");
  AwsConfig c;
  c.region = "eu-west-1";
  EXPECT_EQ(resolveAwsConfig(c, env).region, "eu-west-1");
}

TEST(AwsConfig, NoRegionIsAConfigErrorThatSaysWhatToSet) {
  try {
    resolveAwsConfig({}, {{"HOME", "/nonexistent"}});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("AWS_REGION"));
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/.aws/config"));
  }
  EXPECT_THROW(resolveAwsConfig({}, {{"AWS_REGION", "us-east-1.evil.com/"}}), ConfigError);
}

TEST(AwsConfig, EndpointsDefaultToHttpsAndOverridesMayBeHttp) {
  Environment env{{"AWS_REGION", "cn-north-1"}, {"HOME", "/h"}};
  auto c = resolveAwsConfig({}, env);
  EXPECT_EQ(c.sts_endpoint, "https://sts.cn-north-1.amazonaws.com.cn/");
  EXPECT_EQ(c.instance_metadata_endpoint, "http://169.254.169.254");
  EXPECT_EQ(c.shared_credentials_file, "/h/.aws/credentials");
  env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = "http://127.0.0.1:4566";
  env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://[fd00:ec2::254]";
  env["AWS_EC2_METADATA_DISABLED"] = "TRUE";
  c = resolveAwsConfig({}, env);
  EXPECT_EQ(c.endpoint, "http://127.0.0.1:4566");
  EXPECT_EQ(c.instance_metadata_endpoint, "http://[fd00:ec2::254]");
  EXPECT_TRUE(c.instance_metadata_disabled);
  AwsConfig bad;
  bad.endpoint = "secretsmanager.local";
  EXPECT_THROW(resolveAwsConfig(bad, env), ConfigError);
  EXPECT_THROW(resolveAwsConfig({}, {{"AWS_REGION", "x"}, {"AWS_METADATA_SERVICE_TIMEOUT", "a"}}),
               ConfigError);
}

// --- credential sources ---

TEST(EnvironmentCredentials, KeysAndTokenOrNotConfiguredOrHalfConfigured) {
  auto c = EnvironmentCredentialSource(Environment{{"AWS_ACCESS_KEY_ID", "AKID"},
                                                   {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                                                   {"AWS_SESSION_TOKEN", "TOKEN"}})
               .load();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->access_key_id, "AKID");
  EXPECT_EQ(c->secret_access_key.reveal(), "SECRET");
  EXPECT_EQ(c->session_token.reveal(), "TOKEN");
  EXPECT_FALSE(c->expiration);

  auto none = EnvironmentCredentialSource(Environment{}).load();
  ASSERT_FALSE(none);
  EXPECT_TRUE(none.error().not_configured);

  auto half = EnvironmentCredentialSource(Environment{{"AWS_SECRET_ACCESS_KEY", "SECRET"}}).load();
  ASSERT_FALSE(half);
  EXPECT_FALSE(half.error().not_configured);
  EXPECT_THAT(half.error().error.message, HasSubstr("AWS_ACCESS_KEY_ID"));
  EXPECT_THAT(half.error().error.message, Not(HasSubstr("SECRET\"")));
}

TEST(Ini, SectionsKeysCommentsAndNestedSettings) {
  auto ini = parseIni(
      "# comment\n[default]\naws_access_key_id = A1 \r\n; other\n"
      "s3 =\n  max_concurrent_requests = 2\n[profile x]\nregion=eu-west-1\nkey = a=b\n");
  EXPECT_EQ(ini["default"]["aws_access_key_id"], "A1");
  EXPECT_EQ(ini["default"].count("max_concurrent_requests"), 0u);
  EXPECT_EQ(ini["profile x"]["region"], "eu-west-1");
  EXPECT_EQ(ini["profile x"]["key"], "a=b");
}

TEST(ProfileCredentials, CredentialsFileUsesBareNamesConfigFileUsesProfilePrefix) {
  TempDir dir;
  auto creds = dir.write("credentials",
                         "[default]\naws_access_key_id=DEF\naws_secret_access_key=defsecret\n"
                         "[work]\naws_access_key_id=WORK\naws_secret_access_key=worksecret\n"
                         "aws_session_token=worktoken\n");
  auto conf = dir.write("config",
                        "[work]\naws_access_key_id=WRONG\naws_secret_access_key=wrong\n"
                        "[profile ci]\naws_access_key_id=CI\naws_secret_access_key=cisecret\n");
  auto work = ProfileCredentialSource(creds, conf, "work", true).load();
  ASSERT_TRUE(work);
  EXPECT_EQ(work->access_key_id, "WORK");
  EXPECT_EQ(work->session_token.reveal(), "worktoken");
  auto ci = ProfileCredentialSource(creds, conf, "ci", true).load();
  ASSERT_TRUE(ci);
  EXPECT_EQ(ci->access_key_id, "CI");
  auto def = ProfileCredentialSource(creds, conf, "default", false).load();
  ASSERT_TRUE(def);
  EXPECT_EQ(def->access_key_id, "DEF");
}

TEST(ProfileCredentials, MissingNamedProfileFailsMissingDefaultIsSkipped) {
  TempDir dir;
  auto creds = dir.write("credentials", "[other]\naws_access_key_id=A\naws_secret_access_key=B\n");
  auto named = ProfileCredentialSource(creds, dir.path("none"), "prod", true).load();
  ASSERT_FALSE(named);
  EXPECT_FALSE(named.error().not_configured);
  EXPECT_THAT(named.error().error.message, HasSubstr("'prod'"));
  auto def = ProfileCredentialSource(creds, dir.path("none"), "default", false).load();
  ASSERT_FALSE(def);
  EXPECT_TRUE(def.error().not_configured);
}

TEST(ProfileCredentials, UnsupportedProfileKindsAndHalfKeysAreErrors) {
  TempDir dir;
  auto conf = dir.write("config",
                        "[profile role]\nrole_arn=arn:aws:iam::1:role/r\nsource_profile=default\n"
                        "[profile half]\naws_access_key_id=A\n[profile regiononly]\nregion=x\n");
  auto role = ProfileCredentialSource(dir.path("none"), conf, "role", true).load();
  ASSERT_FALSE(role);
  EXPECT_THAT(role.error().error.message, HasSubstr("role_arn"));
  auto half = ProfileCredentialSource(dir.path("none"), conf, "half", true).load();
  ASSERT_FALSE(half);
  EXPECT_FALSE(half.error().not_configured);
  auto region_only = ProfileCredentialSource(dir.path("none"), conf, "regiononly", true).load();
  ASSERT_FALSE(region_only);
  EXPECT_TRUE(region_only.error().not_configured);
}

TEST(ContainerCredentials, RefusesPlainHttpToOtherHostsBeforeSendingTheToken) {
  auto http = std::make_shared<HttpClient>(directConfig());
  ContainerCredentialSource source("http://attacker.example/creds", SecretValue("tok-123"), "",
                                   http);
  auto c = source.load();
  ASSERT_FALSE(c);
  EXPECT_FALSE(c.error().not_configured);
  EXPECT_EQ(c.error().error.kind, SecretError::Kind::kInvalid);
  EXPECT_THAT(c.error().error.message, Not(HasSubstr("tok-123")));
  auto none = ContainerCredentialSource("", {}, "", http).load();
  ASSERT_FALSE(none);
  EXPECT_TRUE(none.error().not_configured);
}

TEST(InstanceMetadataCredentials, DisabledIsNotConfigured) {
  auto http = std::make_shared<HttpClient>(directConfig());
  auto c = InstanceMetadataCredentialSource("http://127.0.0.1:9", true, http).load();
  ASSERT_FALSE(c);
  EXPECT_TRUE(c.error().not_configured);
}

TEST(Iso8601, ParsesAwsForms) {
  auto base = std::chrono::sys_days{std::chrono::year{2026} / 11 / 21} + 10h;
  EXPECT_EQ(parseIso8601("2026-11-21T10:00:00Z"), base);
  EXPECT_EQ(parseIso8601("2026-11-21T10:00:00.123Z"), base);
  EXPECT_EQ(parseIso8601("2026-11-21T11:00:00+01:00"), base);
  EXPECT_FALSE(parseIso8601("2026-11-21 10:00:00"));
  EXPECT_FALSE(parseIso8601("yesterday"));
}

// --- the chain ---

// A source that answers from a script and counts its loads.
class ScriptedSource final : public AwsCredentialSource {
 public:
  explicit ScriptedSource(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::expected<AwsCredentials, CredentialSourceError> load() override {
    ++loads;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    if (fail)
      return std::unexpected(
          CredentialSourceError{false, {SecretError::Kind::kUnavailable, "down"}});
    if (!configured)
      return std::unexpected(CredentialSourceError{true, {SecretError::Kind::kDenied, "not here"}});
    AwsCredentials c{"AKID" + std::to_string(loads.load()), SecretValue("s"), {}, expiration};
    return c;
  }
  std::atomic<int> loads{0};
  bool configured = true;
  bool fail = false;
  int delay_ms = 0;
  std::optional<std::chrono::system_clock::time_point> expiration;

 private:
  std::string name_;
};

TEST(CredentialChain, FirstConfiguredSourceWinsAndNoneListsWhy) {
  FakeClock clock;
  auto a = std::make_unique<ScriptedSource>("a");
  auto b = std::make_unique<ScriptedSource>("b");
  a->configured = false;
  b->configured = false;
  auto* bp = b.get();
  std::vector<std::unique_ptr<AwsCredentialSource>> sources;
  sources.push_back(std::move(a));
  sources.push_back(std::move(b));
  AwsCredentialChain chain(std::move(sources), clock);
  auto none = chain.credentials();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(none.error().message, HasSubstr("a: not here; b: not here"));
  bp->configured = true;
  auto got = chain.credentials();
  ASSERT_TRUE(got);
  EXPECT_EQ(chain.currentSource(), "b");
}

TEST(CredentialChain, AConfiguredSourceThatFailsStopsTheChain) {
  FakeClock clock;
  auto a = std::make_unique<ScriptedSource>("a");
  a->fail = true;
  auto b = std::make_unique<ScriptedSource>("b");
  auto* bp = b.get();
  std::vector<std::unique_ptr<AwsCredentialSource>> sources;
  sources.push_back(std::move(a));
  sources.push_back(std::move(b));
  AwsCredentialChain chain(std::move(sources), clock);
  auto r = chain.credentials();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(r.error().message, HasSubstr("(a): down"));
  EXPECT_EQ(bp->loads, 0);
}

TEST(CredentialChain, KeepsTemporaryCredentialsUntilShortlyBeforeExpiry) {
  FakeClock clock;
  auto s = std::make_unique<ScriptedSource>("sts");
  auto* sp = s.get();
  sp->expiration = clock.now() + 1h;
  std::vector<std::unique_ptr<AwsCredentialSource>> sources;
  sources.push_back(std::move(s));
  AwsCredentialChain chain(std::move(sources), clock, 5min);
  EXPECT_EQ(chain.credentials()->access_key_id, "AKID1");
  clock.advance(54min);
  EXPECT_EQ(chain.credentials()->access_key_id, "AKID1");
  EXPECT_EQ(sp->loads, 1);
  clock.advance(2min);  // within 5 minutes of expiry: refresh
  sp->expiration = clock.now() + 1h;
  EXPECT_EQ(chain.credentials()->access_key_id, "AKID2");
  EXPECT_EQ(sp->loads, 2);
}

TEST(CredentialChain, AFailedRefreshKeepsStillValidCredentialsThenFails) {
  FakeClock clock;
  auto s = std::make_unique<ScriptedSource>("sts");
  auto* sp = s.get();
  sp->expiration = clock.now() + 10min;
  std::vector<std::unique_ptr<AwsCredentialSource>> sources;
  sources.push_back(std::move(s));
  AwsCredentialChain chain(std::move(sources), clock, 5min);
  ASSERT_TRUE(chain.credentials());
  sp->fail = true;
  clock.advance(6min);
  auto stale = chain.credentials();
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->access_key_id, "AKID1");
  clock.advance(5min);  // expired now
  EXPECT_FALSE(chain.credentials());
}

TEST(CredentialChain, LongTermKeysAreLoadedOnceUnlessInvalidated) {
  FakeClock clock;
  auto s = std::make_unique<ScriptedSource>("env");
  auto* sp = s.get();
  std::vector<std::unique_ptr<AwsCredentialSource>> sources;
  sources.push_back(std::move(s));
  AwsCredentialChain chain(std::move(sources), clock);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(chain.credentials());
  clock.advance(24h * 365);
  ASSERT_TRUE(chain.credentials());
  EXPECT_EQ(sp->loads, 1);
  chain.invalidate();
  EXPECT_EQ(chain.credentials()->access_key_id, "AKID2");
}

TEST(CredentialChain, ConcurrentCallersShareOneLoad) {
  FakeClock clock;
  auto s = std::make_unique<ScriptedSource>("slow");
  auto* sp = s.get();
  sp->delay_ms = 50;
  std::vector<std::unique_ptr<AwsCredentialSource>> sources;
  sources.push_back(std::move(s));
  AwsCredentialChain chain(std::move(sources), clock);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { ok += chain.credentials().has_value() ? 1 : 0; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(sp->loads, 1);
}

}  // namespace
}  // namespace outpost::secrets
