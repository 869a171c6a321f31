// The Azure Key Vault provider against a fake Azure served by cpp-httplib on 127.0.0.1: Get
// Secret as documented (api-version 7.4, bearer tokens, Retry-After on throttling), the instance
// metadata service's managed-identity token endpoint and Microsoft Entra ID's client-credentials
// token endpoint. Loopback only: no Kafka, no internet.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

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
#include "outpost/secrets/azure.h"
#include "outpost/secrets/reference.h"
#include "outpost/secrets/resolver.h"
#include "temp_dir.h"

namespace outpost::secrets {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::closedPortUrl;
using test::FakeBearerTokens;
using test::FakeClock;
using test::LeakCheck;
using test::LoopbackServer;
using test::parseForm;
using test::TempDir;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::Not;

constexpr const char* kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
constexpr const char* kClientId = "0f8fad5b-d9cb-469f-a165-70867728950e";
constexpr const char* kClientSecret = "client-secret-0123456789";
constexpr const char* kUserAssignedId = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
constexpr const char* kResource = "https://vault.azure.net";
constexpr const char* kV1 = "0a1b2c3d4e5f40718293a4b5c6d7e8f9";
constexpr const char* kV2 = "4387e9f3d6e14c459867679a90fd0f79";
// Tokens the fake issues start with this, so that a test can look for any of them.
constexpr const char* kTokenPrefix = "eyJ0eXAiOi.CANARYTOKEN-";

// --- the fake Azure ---

void vaultError(httplib::Response& res, int status, const std::string& code,
                const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", {{"code", code}, {"message", message}}}}.dump(),
                  "application/json; charset=utf-8");
}

void oauthError(httplib::Response& res, int status, const std::string& error,
                const std::string& description) {
  res.status = status;
  res.set_content(json{{"error", error}, {"error_description", description}}.dump(),
                  "application/json; charset=utf-8");
}

// Key Vault (GET /secrets/NAME[/VERSION]?api-version=7.4), IMDS (GET
// /metadata/identity/oauth2/token) and Entra ID (POST /TENANT/oauth2/v2.0/token), on one loopback
// server.
class FakeAzure {
 public:
  explicit FakeAzure(const Clock& clock) : clock_(clock) {
    secrets_["db"] = {{kV1, "old-password"}, {kV2, "current-password"}};
    secrets_["db-json"] = {{kV1, R"({"username":"app","password":"p@ss","nested":{"port":5432}})"}};

    auto server = std::make_unique<httplib::Server>();
    server->Get("/metadata/identity/oauth2/token",
                [this](const httplib::Request& q, httplib::Response& r) { imds(q, r); });
    server->Post(R"(/([^/]+)/oauth2/v2\.0/token)",
                 [this](const httplib::Request& q, httplib::Response& r) { entra(q, r); });
    server->Get(R"(/secrets/([^/]+)(?:/([^/]+))?)",
                [this](const httplib::Request& q, httplib::Response& r) { vault(q, r); });
    server_ = std::make_unique<LoopbackServer>(std::move(server));
  }

  ~FakeAzure() {
    {
      std::lock_guard l(mutex_);
      released_ = true;
    }
    release_.notify_all();
    server_.reset();
  }

  std::string url(const std::string& path = "") const { return server_->url(path); }

  void setSecret(const std::string& name, const std::string& value) {
    std::lock_guard l(mutex_);
    secrets_[name] = {{kV1, value}};
  }
  // The next n vault calls answer `status`; a 429 carries Retry-After: retry_after.
  void failNext(int n, int status, const std::string& retry_after = "") {
    std::lock_guard l(mutex_);
    fail_next_ = n;
    fail_status_ = status;
    retry_after_ = retry_after;
  }
  void revokeAllTokens() { tokens_.revokeAll(); }
  void slowTokens(std::chrono::milliseconds d) {
    std::lock_guard l(mutex_);
    token_delay_ = d;
  }

  std::atomic<int> imds_calls{0}, entra_calls{0}, vault_calls{0};

 private:
  // A token valid for an hour, recorded as one Key Vault accepts until then.
  std::string issue() {
    std::chrono::milliseconds delay;
    {
      std::lock_guard l(mutex_);
      delay = token_delay_;
    }
    std::this_thread::sleep_for(delay);
    return tokens_.issue();
  }

  void imds(const httplib::Request& q, httplib::Response& r) {
    ++imds_calls;
    if (q.get_header_value("Metadata") != "true") {
      oauthError(r, 400, "invalid_request", "Required metadata header not specified");
      return;
    }
    if (q.get_param_value("api-version") != "2018-02-01" ||
        q.get_param_value("resource") != kResource) {
      oauthError(r, 400, "invalid_request", "Bad api-version or resource");
      return;
    }
    if (q.has_param("client_id") && q.get_param_value("client_id") != kUserAssignedId) {
      oauthError(r, 400, "invalid_request", "Identity not found");
      return;
    }
    const auto expires_on =
        std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()) + 1h;
    // IMDS sends its numbers as strings.
    r.set_content(json{{"access_token", issue()},
                       {"client_id", q.get_param_value("client_id")},
                       {"expires_in", "3600"},
                       {"expires_on", std::to_string(expires_on.count())},
                       {"ext_expires_in", "3600"},
                       {"not_before", std::to_string(expires_on.count() - 3600)},
                       {"resource", kResource},
                       {"token_type", "Bearer"}}
                      .dump(),
                  "application/json; charset=utf-8");
  }

  void entra(const httplib::Request& q, httplib::Response& r) {
    ++entra_calls;
    if (q.matches[1] != kTenant) {
      oauthError(r, 400, "invalid_request",
                 "AADSTS90002: Tenant '" + std::string(q.matches[1]) + "' not found.");
      return;
    }
    auto form = parseForm(q.body);
    if (form["grant_type"] != "client_credentials" ||
        form["scope"] != std::string(kResource) + "/.default") {
      oauthError(r, 400, "invalid_request", "AADSTS900144: bad grant_type or scope");
      return;
    }
    if (form["client_id"] != kClientId || form["client_secret"] != kClientSecret) {
      oauthError(r, 401, "invalid_client",
                 "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in "
                 "the request is the client secret value, not the client secret ID.");
      return;
    }
    r.set_content(json{{"token_type", "Bearer"},
                       {"expires_in", 3599},
                       {"ext_expires_in", 3599},
                       {"access_token", issue()}}
                      .dump(),
                  "application/json; charset=utf-8");
  }

  void vault(const httplib::Request& q, httplib::Response& r) {
    ++vault_calls;
    const std::string name = q.matches[1];
    const std::string version = q.matches.size() > 2 ? std::string(q.matches[2]) : "";
    {
      std::lock_guard l(mutex_);
      if (!tokens_.accepts(q.get_header_value("Authorization"))) {
        r.set_header("WWW-Authenticate", std::string("Bearer authorization=\"https://login.") +
                                             "microsoftonline.com/" + kTenant + "\", resource=\"" +
                                             kResource + "\"");
        vaultError(r, 401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.");
        return;
      }
      if (fail_next_ > 0) {
        --fail_next_;
        if (!retry_after_.empty()) r.set_header("Retry-After", retry_after_);
        if (fail_status_ == 429) {
          vaultError(r, 429, "Throttled",
                     "Request was not processed because too many requests were received.");
        } else {
          vaultError(r, fail_status_, "ServiceUnavailable", "The service is unavailable.");
        }
        return;
      }
    }
    if (q.get_param_value("api-version") != "7.4") {
      vaultError(r, 400, "BadParameter", "The api-version is missing or not supported");
      return;
    }
    if (name == "denied") {
      vaultError(r, 403, "Forbidden",
                 "Caller is not authorized to perform action on resource. Action: "
                 "'Microsoft.KeyVault/vaults/secrets/getSecret/action'");
      return;
    }
    if (name == "slow") {
      std::unique_lock l(mutex_);
      release_.wait_for(l, 10s, [this] { return released_; });
      vaultError(r, 503, "ServiceUnavailable", "late");
      return;
    }
    std::lock_guard l(mutex_);
    auto s = secrets_.find(name);
    const std::pair<std::string, std::string>* found = nullptr;
    if (s != secrets_.end()) {
      for (const auto& v : s->second) {
        if (version.empty() || v.first == version) found = &v;  // the last one is the current
      }
    }
    if (found == nullptr) {
      vaultError(r, 404, version.empty() ? "SecretNotFound" : "SecretVersionNotFound",
                 "A secret with (name/id) " + name + (version.empty() ? "" : "/" + version) +
                     " was not found in this key vault.");
      return;
    }
    r.set_content(json{{"value", found->second},
                       {"id", url("/secrets/" + name + "/" + found->first)},
                       {"attributes",
                        {{"enabled", true},
                         {"created", 1700000000},
                         {"updated", 1700000000},
                         {"recoveryLevel", "Recoverable+Purgeable"}}},
                       {"tags", json::object()}}
                      .dump(),
                  "application/json; charset=utf-8");
  }

  const Clock& clock_;
  FakeBearerTokens tokens_{clock_, kTokenPrefix};
  std::unique_ptr<LoopbackServer> server_;

  std::mutex mutex_;  // guards what follows; handlers run on the server's threads
  std::condition_variable release_;
  bool released_ = false;
  // Versions of each secret, oldest first.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> secrets_;
  int fail_next_ = 0;
  int fail_status_ = 503;
  std::string retry_after_;
  std::chrono::milliseconds token_delay_{0};
};

SecretRef kvRef(const std::string& path, const std::string& field = "",
                const std::string& version = "") {
  return SecretRef{"azure-kv", path, field, version,
                   "${azure-kv:" + path + (field.empty() ? "" : "#" + field) + "}"};
}

class AzureKeyVaultTest : public testing::Test {
 protected:
  AzureConfig config() {
    AzureConfig c;
    c.vault_url = azure_.url();
    c.imds_endpoint = azure_.url();
    c.authority_host = azure_.url();
    c.transport.connect_timeout = 2s;
    c.transport.timeout = 5s;
    c.transport.max_attempts = 3;
    c.transport.retry_base_delay = 1ms;
    c.metadata_timeout = 2s;
    // Waits between tries are recorded, not slept.
    c.sleep = [this](std::chrono::milliseconds d) {
      std::lock_guard l(waits_mutex_);
      waits_.push_back(d);
    };
    return c;
  }
  AzureConfig clientCredentials() {
    auto c = config();
    c.auth = AzureAuth::kClientCredentials;
    c.tenant_id = kTenant;
    c.client_id = kClientId;
    c.client_secret_file = dir_.write("client-secret", std::string(kClientSecret) + "\n");
    return c;
  }
  std::vector<std::chrono::milliseconds> waits() {
    std::lock_guard l(waits_mutex_);
    return waits_;
  }

  FakeClock clock_;
  FakeAzure azure_{clock_};
  TempDir dir_;
  std::mutex waits_mutex_;
  std::vector<std::chrono::milliseconds> waits_;
};

// --- Get Secret ---

TEST_F(AzureKeyVaultTest, AManagedIdentityGetsTheCurrentVersion) {
  AzureKeyVaultProvider p(config(), {}, clock_);
  EXPECT_EQ(p.name(), "azure-kv");
  EXPECT_EQ(p.tokenSource(), "managed identity (system-assigned)");
  auto s = p.fetch(kvRef("db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
  EXPECT_EQ(s->version, kV2);
  EXPECT_EQ(azure_.imds_calls, 1);
  EXPECT_EQ(azure_.vault_calls, 1);
}

TEST_F(AzureKeyVaultTest, AVersionInThePathOrInTheReference) {
  AzureKeyVaultProvider p(config(), {}, clock_);
  auto in_path = p.fetch(kvRef(std::string("db/") + kV1));
  ASSERT_TRUE(in_path) << in_path.error().message;
  EXPECT_EQ(in_path->value.reveal(), "old-password");
  EXPECT_EQ(in_path->version, kV1);
  auto in_ref = p.fetch(kvRef("db", "", kV1));
  ASSERT_TRUE(in_ref) << in_ref.error().message;
  EXPECT_EQ(in_ref->value.reveal(), "old-password");
  auto no_such = p.fetch(kvRef("db", "", "ffffffffffffffffffffffffffffffff"));
  ASSERT_FALSE(no_such);
  EXPECT_EQ(no_such.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(no_such.error().message, HasSubstr("SecretVersionNotFound"));
}

TEST_F(AzureKeyVaultTest, ExtractsJsonFieldsAndNamesTheMissingOne) {
  AzureKeyVaultProvider p(config(), {}, clock_);
  auto pw = p.fetch(kvRef("db-json", "password"));
  ASSERT_TRUE(pw) << pw.error().message;
  EXPECT_EQ(pw->value.reveal(), "p@ss");
  auto port = p.fetch(kvRef("db-json", "nested.port"));
  ASSERT_TRUE(port) << port.error().message;
  EXPECT_EQ(port->value.reveal(), "5432");
  auto missing = p.fetch(kvRef("db-json", "pasword"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(missing.error().message, HasSubstr("${azure-kv:db-json#pasword}"));
}

TEST_F(AzureKeyVaultTest, NotFoundAndForbiddenAreMappedAndNamed) {
  AzureKeyVaultProvider p(config(), {}, clock_);
  auto nf = p.fetch(kvRef("nope"));
  ASSERT_FALSE(nf);
  EXPECT_EQ(nf.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(nf.error().message, HasSubstr("${azure-kv:nope}"));
  EXPECT_THAT(nf.error().message, HasSubstr("azure-kv (" + azure_.url("/") + ")"));
  EXPECT_THAT(nf.error().message, HasSubstr("HTTP 404 SecretNotFound"));

  auto denied = p.fetch(kvRef("denied"));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(denied.error().message, HasSubstr("HTTP 403 Forbidden"));

  auto bad_name = p.fetch(kvRef("db_password"));
  ASSERT_FALSE(bad_name);
  EXPECT_EQ(bad_name.error().kind, SecretError::Kind::kInvalid);
  EXPECT_EQ(azure_.vault_calls, 2);  // none retried; the bad name never sent
}

// --- retries and limits ---

TEST_F(AzureKeyVaultTest, ThrottlingWaitsAsRetryAfterSaysThenPasses) {
  AzureKeyVaultProvider p(config(), {}, clock_);
  azure_.failNext(2, 429, "2");
  auto s = p.fetch(kvRef("db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
  EXPECT_EQ(azure_.vault_calls, 3);
  EXPECT_THAT(waits(), ElementsAre(2000ms, 2000ms));

  // Beyond the attempts: unavailable, saying so.
  azure_.failNext(100, 429, "1");
  auto gave_up = p.fetch(kvRef("db"));
  ASSERT_FALSE(gave_up);
  EXPECT_EQ(gave_up.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(gave_up.error().message, HasSubstr("HTTP 429 Throttled"));
  EXPECT_THAT(gave_up.error().message, HasSubstr("3 attempts"));
}

TEST_F(AzureKeyVaultTest, RetryAfterIsCappedByTheLongestWait) {
  auto c = config();
  c.transport.retry_max_delay = 500ms;
  AzureKeyVaultProvider p(c, {}, clock_);
  azure_.failNext(1, 429, "3600");
  ASSERT_TRUE(p.fetch(kvRef("db")));
  EXPECT_THAT(waits(), ElementsAre(500ms));
}

TEST_F(AzureKeyVaultTest, ServerErrorsAreRetriedUntilItPasses) {
  AzureKeyVaultProvider p(config(), {}, clock_);
  azure_.failNext(1, 503);
  auto s = p.fetch(kvRef("db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(azure_.vault_calls, 2);

  azure_.failNext(100, 500);
  auto gave_up = p.fetch(kvRef("db"));
  ASSERT_FALSE(gave_up);
  EXPECT_EQ(gave_up.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(gave_up.error().message, HasSubstr("HTTP 500"));
}

TEST_F(AzureKeyVaultTest, ASlowAnswerTimesOutAfterABoundedNumberOfTries) {
  auto c = config();
  c.transport.timeout = 300ms;
  c.transport.max_attempts = 2;
  AzureKeyVaultProvider p(c, {}, clock_);
  auto s = p.fetch(kvRef("slow"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("Timeout"));
  EXPECT_THAT(s.error().message, HasSubstr("2 attempts"));
  EXPECT_EQ(azure_.vault_calls, 2);
}

// --- tokens ---

TEST_F(AzureKeyVaultTest, TheTokenIsReusedUntilShortlyBeforeItExpiresThenRenewed) {
  AzureKeyVaultProvider p(config(), {}, clock_);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.fetch(kvRef("db")));
  EXPECT_EQ(azure_.imds_calls, 1);
  clock_.advance(54min);
  ASSERT_TRUE(p.fetch(kvRef("db")));
  EXPECT_EQ(azure_.imds_calls, 1);
  clock_.advance(2min);  // within five minutes of the one-hour expiry
  auto renewed = p.fetch(kvRef("db"));
  ASSERT_TRUE(renewed) << renewed.error().message;
  EXPECT_EQ(azure_.imds_calls, 2);
  clock_.advance(10min);  // the first token has expired; the second serves
  ASSERT_TRUE(p.fetch(kvRef("db")));
  EXPECT_EQ(azure_.imds_calls, 2);
}

TEST_F(AzureKeyVaultTest, ARefusedTokenIsDeniedAndTheNextFetchGetsANewOne) {
  AzureKeyVaultProvider p(config(), {}, clock_);
  ASSERT_TRUE(p.fetch(kvRef("db")));
  azure_.revokeAllTokens();
  auto refused = p.fetch(kvRef("db"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(refused.error().message, HasSubstr("HTTP 401 Unauthorized"));
  auto again = p.fetch(kvRef("db"));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(azure_.imds_calls, 2);
}

TEST_F(AzureKeyVaultTest, ConcurrentFetchesShareOneTokenRequest) {
  azure_.slowTokens(100ms);  // so that the threads really wait on the same request
  AzureKeyVaultProvider p(config(), {}, clock_);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto s = i % 2 ? p.fetch(kvRef("db")) : p.fetch(kvRef("db-json", "password"));
        if (s) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 40);
  EXPECT_EQ(azure_.imds_calls, 1);
  EXPECT_EQ(azure_.vault_calls, 40);
}

TEST_F(AzureKeyVaultTest, AUserAssignedIdentityIsAskedForByClientId) {
  auto c = config();
  c.client_id = kUserAssignedId;
  AzureKeyVaultProvider p(c, {}, clock_);
  EXPECT_EQ(p.tokenSource(), std::string("managed identity ") + kUserAssignedId);
  ASSERT_TRUE(p.fetch(kvRef("db")));

  AzureKeyVaultProvider unknown(config(), {{"AZURE_CLIENT_ID", "11111111-2222-3333-4444-5555"}},
                                clock_);
  auto s = unknown.fetch(kvRef("db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("Identity not found"));
  EXPECT_THAT(s.error().message, HasSubstr("${azure-kv:db}"));
}

TEST_F(AzureKeyVaultTest, NoImdsSaysWhatToConfigure) {
  auto c = config();
  c.imds_endpoint = closedPortUrl();
  AzureKeyVaultProvider p(c, {}, clock_);
  auto s = p.fetch(kvRef("db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("IMDS"));
  EXPECT_THAT(s.error().message, HasSubstr("client_credentials"));
  EXPECT_EQ(azure_.vault_calls, 0);
}

TEST_F(AzureKeyVaultTest, ClientCredentialsFromASecretFile) {
  AzureKeyVaultProvider p(clientCredentials(), {}, clock_);
  EXPECT_EQ(p.tokenSource(), std::string("service principal ") + kClientId);
  for (int i = 0; i < 3; ++i) {
    auto s = p.fetch(kvRef("db"));
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->value.reveal(), "current-password");
  }
  EXPECT_EQ(azure_.entra_calls, 1);
  EXPECT_EQ(azure_.imds_calls, 0);
  clock_.advance(56min);
  ASSERT_TRUE(p.fetch(kvRef("db")));
  EXPECT_EQ(azure_.entra_calls, 2);
}

TEST_F(AzureKeyVaultTest, ClientCredentialsFromTheEnvironmentAsAzureSdksReadIt) {
  auto c = config();  // auth left to be settled: a client secret means client credentials
  AzureKeyVaultProvider p(c,
                          {{"AZURE_TENANT_ID", kTenant},
                           {"AZURE_CLIENT_ID", kClientId},
                           {"AZURE_CLIENT_SECRET", kClientSecret},
                           {"AZURE_AUTHORITY_HOST", azure_.url()}},
                          clock_);
  auto s = p.fetch(kvRef("db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(azure_.entra_calls, 1);
}

TEST_F(AzureKeyVaultTest, AWrongClientSecretIsDeniedAndNotRetried) {
  auto c = clientCredentials();
  c.client_secret_file = dir_.write("wrong", "not-the-secret");
  AzureKeyVaultProvider p(c, {}, clock_);
  auto s = p.fetch(kvRef("db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("invalid_client: AADSTS7000215"));
  EXPECT_THAT(s.error().message, HasSubstr(std::string("service principal ") + kClientId));
  EXPECT_EQ(azure_.entra_calls, 1);
  EXPECT_EQ(azure_.vault_calls, 0);

  // The file is read at every token request: a rotated secret is picked up without a restart.
  dir_.write("wrong", kClientSecret);
  ASSERT_TRUE(p.fetch(kvRef("db")));
}

// --- from the configuration, through the resolver ---

TEST_F(AzureKeyVaultTest, TheResolverBuildsItFromSettingsForSecretReferences) {
  SecretsConfig sc;
  sc.chain = {"env", "azure-kv"};
  sc.default_cloud = "azure-kv";
  sc.clouds = {"azure-kv"};
  sc.azure.vault_url = azure_.url();
  sc.azure.auth = "client_credentials";
  sc.azure.tenant_id = kTenant;
  sc.azure.client_id = kClientId;
  sc.azure.client_secret_file = dir_.write("cs", kClientSecret);
  sc.azure.authority_host = azure_.url();
  auto resolver = SecretResolver::fromConfig(sc, {}, clock_);
  auto parts =
      parseReferences(std::string("secret:/db/") + kV1 + " ${azure-kv:db-json#username} ${db}");
  ASSERT_TRUE(parts) << parts.error();
  std::vector<std::string> values;
  for (const auto& part : *parts) {
    if (!part.is_reference) continue;
    auto r = resolver->resolve(part.ref);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->provider, "azure-kv");
    values.emplace_back(r->value.reveal());
  }
  EXPECT_EQ(values, (std::vector<std::string>{"old-password", "app", "current-password"}));
  EXPECT_EQ(azure_.entra_calls, 1);
}

// --- secrets stay out of errors and logs ---

TEST_F(AzureKeyVaultTest, NoSecretOrTokenAppearsInAnyErrorOrLog) {
  const std::string value = "canary-VALUE-3a9c77";
  const std::string json_value = "canary-JSONVALUE-c01d";
  const std::string client_secret = "canary-CLIENTSECRET-8e21";
  azure_.setSecret("leaky", value);
  azure_.setSecret("leaky-json", R"({"password":")" + json_value + "\"}");

  LeakCheck leaks;
  {
    AzureKeyVaultProvider p(config(), {}, clock_);
    ASSERT_TRUE(p.fetch(kvRef("leaky")));                     // a value and a token are in play
    leaks.expectError(p, kvRef("leaky", "password"));         // not JSON
    leaks.expectError(p, kvRef("leaky-json", "user"));        // no such field
    leaks.expectError(p, kvRef("leaky-json", "password.x"));  // not an object
    leaks.expectError(p, kvRef("denied"));
    leaks.expectError(p, kvRef("nope"));
    azure_.revokeAllTokens();
    leaks.expectError(p, kvRef("leaky"));  // 401
    azure_.failNext(100, 429, "0");
    leaks.expectError(p, kvRef("leaky"));
    azure_.failNext(0, 503);
  }
  {
    auto c = clientCredentials();
    c.client_secret_file.clear();
    AzureKeyVaultProvider p(c, {{"AZURE_CLIENT_SECRET", client_secret}}, clock_);
    leaks.expectError(p, kvRef("leaky"));  // Entra ID refuses the secret
  }
  {
    auto c = config();
    c.vault_url = closedPortUrl();
    AzureKeyVaultProvider p(c, {}, clock_);
    leaks.expectError(p, kvRef("leaky"));  // nothing listens, with a token in hand
  }
  {
    auto c = clientCredentials();
    c.authority_host = closedPortUrl();
    c.client_secret_file = dir_.write("cs-canary", client_secret);
    AzureKeyVaultProvider p(c, {}, clock_);
    leaks.expectError(p, kvRef("leaky"));  // the authority is not there
  }

  EXPECT_GE(leaks.messages(), 10u);
  leaks.expectNoneHolds({value, json_value, client_secret, kClientSecret, kTokenPrefix});
}

}  // namespace
}  // namespace outpost::secrets
