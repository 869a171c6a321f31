// The Vault provider against a fake Vault served by cpp-httplib on 127.0.0.1: KV v2 reads,
// token lookup and renewal, Kubernetes and AppRole logins, namespaces, and the failures a real
// server has (5xx, 429, slow answers, revoked tokens, capped leases). Token expiry follows the
// tests' fake clock. Loopback only: no Kafka, no internet.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "fake_clock.h"
#include "leak_check.h"
#include "loopback_server.h"
#include "outpost/secrets/resolver.h"
#include "outpost/secrets/vault.h"
#include "temp_dir.h"

namespace outpost::secrets {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::closedPortUrl;
using test::FakeClock;
using test::LeakCheck;
using test::LoopbackServer;
using test::TempDir;
using testing::HasSubstr;
using testing::Not;

constexpr const char* kK8sRole = "outpost";
constexpr const char* kJwt = "eyJhbGciOiJSUzI1NiJ9.service-account.signature";
constexpr const char* kRoleId = "db02de05-fa39-4855-059b-67221c5c2f63";
constexpr const char* kSecretId = "6a174c20-f6de-a53c-74d2-6018fcceff64";
constexpr const char* kStaticToken = "hvs.static-token-for-tests";

// --- the fake Vault ---

struct IssuedToken {
  std::chrono::system_clock::time_point expires;  // time_point::max(): never
  bool renewable = false;
  std::chrono::seconds ttl{0};  // what a renewal grants
  std::chrono::system_clock::time_point max_expiry = std::chrono::system_clock::time_point::max();
  bool revoked = false;
};

// KV v2 under the mount "kv", token lookup-self and renew-self, and the kubernetes and approle
// logins, as Vault's HTTP API documents them. Every request must carry X-Vault-Request and, when
// a namespace is required, X-Vault-Namespace.
class FakeVault {
 public:
  explicit FakeVault(const Clock& clock) : clock_(clock) {
    auto server = std::make_unique<httplib::Server>();
    server->Get("/v1/auth/token/lookup-self",
                [this](const httplib::Request& q, httplib::Response& r) { lookupSelf(q, r); });
    server->Post("/v1/auth/token/renew-self",
                 [this](const httplib::Request& q, httplib::Response& r) { renewSelf(q, r); });
    server->Post(R"(/v1/auth/([^/]+)/login)",
                 [this](const httplib::Request& q, httplib::Response& r) { login(q, r); });
    server->Get(R"(/v1/([^/]+)/data/(.+))",
                [this](const httplib::Request& q, httplib::Response& r) { read(q, r); });
    server_ = std::make_unique<LoopbackServer>(std::move(server));
  }
  ~FakeVault() {
    {
      std::lock_guard l(mutex_);
      released_ = true;
    }
    release_.notify_all();
    server_.reset();
  }

  std::string url() const { return server_->url(); }

  // Adds a version of kv/<path> (path without the mount).
  void put(const std::string& path, json data) {
    std::lock_guard l(mutex_);
    kv_[path].push_back(std::move(data));
  }
  void deleteVersion(const std::string& path, int version) {
    std::lock_guard l(mutex_);
    deleted_[path].insert(version);
  }
  // A token as `vault token create` makes it; ttl 0: it never expires.
  void addToken(const std::string& id, std::chrono::seconds ttl, bool renewable) {
    std::lock_guard l(mutex_);
    tokens_[id] = issue(ttl, renewable);
  }
  void revokeAll() {
    std::lock_guard l(mutex_);
    for (auto& [id, t] : tokens_) t.revoked = true;
  }
  void requireNamespace(std::string ns) {
    std::lock_guard l(mutex_);
    namespace_ = std::move(ns);
  }
  // What logins grant: the lease, whether it is renewable, and the max TTL (0: none).
  void setLoginLease(std::chrono::seconds ttl, bool renewable,
                     std::chrono::seconds max_ttl = std::chrono::seconds(0)) {
    std::lock_guard l(mutex_);
    login_ttl_ = ttl;
    login_renewable_ = renewable;
    login_max_ttl_ = max_ttl;
  }
  void setLoginDelay(std::chrono::milliseconds d) {
    std::lock_guard l(mutex_);
    login_delay_ = d;
  }
  void setJwt(std::string jwt) {
    std::lock_guard l(mutex_);
    jwt_ = std::move(jwt);
  }
  // The next n KV reads answer `status`.
  void failReads(int n, int status) {
    std::lock_guard l(mutex_);
    fail_reads_ = n;
    fail_status_ = status;
  }
  void refuseRenewals(int status) {
    std::lock_guard l(mutex_);
    refuse_renewals_ = status;
  }
  // Error answers repeat the credential they were given, as a careless server or proxy might.
  void echoCredentialsInErrors() {
    std::lock_guard l(mutex_);
    echo_ = true;
  }
  std::string lastLoginRole() {
    std::lock_guard l(mutex_);
    return last_login_role_;
  }

  std::atomic<int> reads{0}, k8s_logins{0}, approle_logins{0}, renewals{0}, lookups{0};
  int logins() const { return k8s_logins + approle_logins; }

 private:
  IssuedToken issue(std::chrono::seconds ttl, bool renewable,
                    std::chrono::seconds max_ttl = std::chrono::seconds(0)) {
    const auto now = clock_.now();
    IssuedToken t;
    t.expires = ttl.count() > 0 ? now + ttl : std::chrono::system_clock::time_point::max();
    t.renewable = renewable;
    t.ttl = ttl;
    if (max_ttl.count() > 0) t.max_expiry = now + max_ttl;
    return t;
  }

  static void error(httplib::Response& r, int status, const std::string& message) {
    r.status = status;
    r.set_content(json{{"errors", json::array({message})}}.dump(), "application/json");
  }
  void deny(httplib::Response& r, const std::string& presented) {
    error(r, 403, echo_ ? "permission denied for " + presented : "permission denied");
  }

  // The headers every request needs; mutex_ held. False when the answer is already set.
  bool admitLocked(const httplib::Request& q, httplib::Response& r) {
    if (q.get_header_value("X-Vault-Request") != "true") {
      error(r, 412, "missing X-Vault-Request");
      return false;
    }
    if (q.get_header_value("X-Vault-Namespace") != namespace_) {
      deny(r, q.get_header_value("X-Vault-Token"));
      return false;
    }
    return true;
  }
  // The request's token, if it is valid now; mutex_ held.
  IssuedToken* tokenLocked(const httplib::Request& q) {
    auto it = tokens_.find(q.get_header_value("X-Vault-Token"));
    if (it == tokens_.end() || it->second.revoked || clock_.now() >= it->second.expires) {
      return nullptr;
    }
    return &it->second;
  }

  void lookupSelf(const httplib::Request& q, httplib::Response& r) {
    ++lookups;
    std::lock_guard l(mutex_);
    if (!admitLocked(q, r)) return;
    auto* t = tokenLocked(q);
    if (t == nullptr) return deny(r, q.get_header_value("X-Vault-Token"));
    long long ttl = 0;
    if (t->expires != std::chrono::system_clock::time_point::max()) {
      ttl = std::chrono::duration_cast<std::chrono::seconds>(t->expires - clock_.now()).count();
    }
    json out{{"data",
              {{"id", q.get_header_value("X-Vault-Token")},
               {"ttl", ttl},
               {"renewable", t->renewable},
               {"policies", {"default", "outpost"}}}}};
    r.set_content(out.dump(), "application/json");
  }

  void renewSelf(const httplib::Request& q, httplib::Response& r) {
    ++renewals;
    std::lock_guard l(mutex_);
    if (!admitLocked(q, r)) return;
    auto* t = tokenLocked(q);
    if (t == nullptr) return deny(r, q.get_header_value("X-Vault-Token"));
    if (refuse_renewals_ != 0) return error(r, refuse_renewals_, "renewal refused");
    if (!t->renewable) return error(r, 400, "lease is not renewable");
    const auto now = clock_.now();
    t->expires = std::min(now + t->ttl, t->max_expiry);
    const auto lease = std::chrono::duration_cast<std::chrono::seconds>(t->expires - now).count();
    json out{{"auth",
              {{"client_token", q.get_header_value("X-Vault-Token")},
               {"lease_duration", lease},
               {"renewable", true}}}};
    r.set_content(out.dump(), "application/json");
  }

  void login(const httplib::Request& q, httplib::Response& r) {
    const std::string mount = q.matches[1];
    std::chrono::milliseconds delay;
    {
      std::lock_guard l(mutex_);
      delay = login_delay_;
    }
    std::this_thread::sleep_for(delay);  // widens the window for concurrent callers
    std::lock_guard l(mutex_);
    if (!admitLocked(q, r)) return;
    auto body = json::parse(q.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() ||
        q.get_header_value("Content-Type") != "application/json") {
      return error(r, 400, "invalid request");
    }
    if (mount == "kubernetes" || mount == "k8s-prod") {
      ++k8s_logins;
      last_login_role_ = body.value("role", "");
      if (last_login_role_ != kK8sRole) {
        return error(r, 400, "invalid role name \"" + last_login_role_ + "\"");
      }
      if (body.value("jwt", "") != jwt_) return deny(r, body.value("jwt", ""));
    } else if (mount == "approle") {
      ++approle_logins;
      if (body.value("role_id", "") != kRoleId || body.value("secret_id", "") != kSecretId) {
        return error(r, 400,
                     echo_ ? "invalid role or secret ID " + body.value("secret_id", "")
                           : "invalid role or secret ID");
      }
    } else {
      return error(r, 403, "permission denied");
    }
    const std::string id = "hvs.login-" + std::to_string(++issued_);
    tokens_[id] = issue(login_ttl_, login_renewable_, login_max_ttl_);
    json out{{"auth",
              {{"client_token", id},
               {"accessor", "accessor-" + id},
               {"policies", {"default", "outpost"}},
               {"lease_duration", login_ttl_.count()},
               {"renewable", login_renewable_}}}};
    r.set_content(out.dump(), "application/json");
  }

  void read(const httplib::Request& q, httplib::Response& r) {
    ++reads;
    const std::string mount = q.matches[1];
    const std::string path = q.matches[2];
    std::unique_lock l(mutex_);
    if (!admitLocked(q, r)) return;
    if (tokenLocked(q) == nullptr) return deny(r, q.get_header_value("X-Vault-Token"));
    if (fail_reads_ > 0) {
      --fail_reads_;
      return error(r, fail_status_, fail_status_ == 429 ? "rate limit quota exceeded" : "internal");
    }
    if (path == "slow") {
      release_.wait_for(l, 10s, [this] { return released_; });
      return error(r, 503, "too late");
    }
    if (path.starts_with("forbidden")) return deny(r, q.get_header_value("X-Vault-Token"));
    auto it = kv_.find(path);
    if (mount != "kv" || it == kv_.end()) return error(r, 404, "");
    int version = static_cast<int>(it->second.size());
    if (q.has_param("version")) version = std::stoi(q.get_param_value("version"));
    if (version < 1 || version > static_cast<int>(it->second.size())) return error(r, 404, "");
    json metadata{{"created_time", "2026-11-21T10:00:00Z"},
                  {"custom_metadata", nullptr},
                  {"deletion_time", ""},
                  {"destroyed", false},
                  {"version", version}};
    if (deleted_[path].contains(version)) {
      metadata["deletion_time"] = "2026-11-21T11:00:00Z";
      r.status = 404;
      r.set_content(json{{"data", {{"data", nullptr}, {"metadata", metadata}}}}.dump(),
                    "application/json");
      return;
    }
    json out{
        {"request_id", "r-1"},
        {"lease_duration", 0},
        {"renewable", false},
        {"data",
         {{"data", it->second[static_cast<std::size_t>(version - 1)]}, {"metadata", metadata}}}};
    r.set_content(out.dump(), "application/json");
  }

  const Clock& clock_;
  std::unique_ptr<LoopbackServer> server_;

  std::mutex mutex_;  // guards what follows; handlers run on the server's threads
  std::condition_variable release_;
  bool released_ = false;
  std::map<std::string, std::vector<json>> kv_;
  std::map<std::string, std::set<int>> deleted_;
  std::map<std::string, IssuedToken> tokens_;
  std::string namespace_;
  std::string jwt_ = kJwt;
  std::chrono::seconds login_ttl_{3600};
  bool login_renewable_ = true;
  std::chrono::seconds login_max_ttl_{0};
  std::chrono::milliseconds login_delay_{0};
  int fail_reads_ = 0;
  int fail_status_ = 500;
  int refuse_renewals_ = 0;
  bool echo_ = false;
  std::string last_login_role_;
  int issued_ = 0;
};

SecretRef ref(const std::string& path, const std::string& field = "",
              const std::string& version = "") {
  const std::string text = "${vault:" + path + (version.empty() ? "" : "?version=" + version) +
                           (field.empty() ? "" : "#" + field) + "}";
  return SecretRef{"vault", path, field, version, text};
}

class VaultTest : public testing::Test {
 protected:
  VaultTest() {
    vault_.put("app/db", {{"username", "app"}, {"password", "old-password"}});
    vault_.put("app/db", {{"username", "app"}, {"password", "current-password"}, {"port", 5432}});
    vault_.put("app/api-key", {{"key", "only-value-here"}});
    vault_.addToken(kStaticToken, 0s, false);
  }

  VaultConfig config(VaultAuthMethod auth = VaultAuthMethod::kToken) {
    VaultConfig c;
    c.address = vault_.url();
    c.auth = auth;
    c.transport.connect_timeout = 2s;
    c.transport.timeout = 5s;
    c.transport.max_attempts = 3;
    c.transport.retry_base_delay = 1ms;
    c.transport.retry_max_delay = 5ms;
    if (auth == VaultAuthMethod::kKubernetes) {
      c.role = kK8sRole;
      c.jwt_file = dir_.write("jwt", std::string(kJwt) + "\n");
    }
    if (auth == VaultAuthMethod::kAppRole) {
      c.role_id = kRoleId;
      c.secret_id_file = dir_.write("secret-id", kSecretId);
    }
    return c;
  }
  // Only what a test gives: the real environment (VAULT_*, proxies) never leaks in.
  static Environment token(const std::string& t = kStaticToken) { return {{"VAULT_TOKEN", t}}; }

  FakeClock clock_;
  FakeVault vault_{clock_};
  TempDir dir_;
};

// --- KV v2 reads ---

TEST_F(VaultTest, ReadsAFieldOfTheCurrentVersionWithAToken) {
  VaultProvider p(config(), token(), clock_);
  EXPECT_EQ(p.name(), "vault");
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
  EXPECT_EQ(s->version, "2");
  auto port = p.fetch(ref("kv/app/db", "port"));
  ASSERT_TRUE(port) << port.error().message;
  EXPECT_EQ(port->value.reveal(), "5432");
  EXPECT_EQ(vault_.lookups, 1);  // once, when the token is first used
  EXPECT_EQ(vault_.reads, 2);
}

TEST_F(VaultTest, ReadsAnOlderVersion) {
  VaultProvider p(config(), token(), clock_);
  auto s = p.fetch(ref("kv/app/db", "password", "1"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "old-password");
  EXPECT_EQ(s->version, "1");
  auto none = p.fetch(ref("kv/app/db", "password", "7"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, SecretError::Kind::kNotFound);
}

TEST_F(VaultTest, ASecretWithOneKeyNeedsNoFieldAndOneWithMoreSaysHowMany) {
  VaultProvider p(config(), token(), clock_);
  auto one = p.fetch(ref("kv/app/api-key"));
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->value.reveal(), "only-value-here");

  auto many = p.fetch(ref("kv/app/db"));
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().kind, SecretError::Kind::kInvalid);
  EXPECT_THAT(many.error().message, HasSubstr("${vault:kv/app/db}"));
  EXPECT_THAT(many.error().message, HasSubstr("3 keys"));
  EXPECT_THAT(many.error().message, Not(HasSubstr("current-password")));

  auto missing = p.fetch(ref("kv/app/db", "pasword"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(missing.error().message, HasSubstr("${vault:kv/app/db#pasword}"));
  EXPECT_THAT(missing.error().message, HasSubstr("'pasword'"));
}

TEST_F(VaultTest, MissingAndDeletedSecretsAreNotFound) {
  vault_.deleteVersion("app/db", 1);
  VaultProvider p(config(), token(), clock_);
  auto nope = p.fetch(ref("kv/nope", "x"));
  ASSERT_FALSE(nope);
  EXPECT_EQ(nope.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(nope.error().message, HasSubstr("${vault:kv/nope#x}"));
  EXPECT_THAT(nope.error().message, HasSubstr("vault"));
  EXPECT_THAT(nope.error().message, HasSubstr("HTTP 404"));

  auto deleted = p.fetch(ref("kv/app/db", "password", "1"));
  ASSERT_FALSE(deleted);
  EXPECT_EQ(deleted.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(deleted.error().message, HasSubstr("version 1 was deleted"));
}

TEST_F(VaultTest, APolicyDenialIsDeniedWithoutANewLogin) {
  VaultProvider p(config(VaultAuthMethod::kKubernetes), {}, clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  auto s = p.fetch(ref("kv/forbidden/x", "password"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("${vault:kv/forbidden/x#password}"));
  EXPECT_THAT(s.error().message, HasSubstr("HTTP 403: permission denied"));
  EXPECT_EQ(vault_.logins(), 1);  // the token still looks itself up: the policy said no
  EXPECT_EQ(vault_.lookups, 1);
}

// --- logging in ---

TEST_F(VaultTest, ATokenFileIsReadAgainWhenItsTokenIsRefused) {
  auto c = config();
  c.token_file = dir_.write("token", std::string(kStaticToken) + "\n");
  VaultProvider p(c, {}, clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));

  // A Vault Agent rotates the sink file; the old token is revoked.
  vault_.revokeAll();
  vault_.addToken("hvs.rotated", 0s, false);
  dir_.write("token", "hvs.rotated");
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
}

TEST_F(VaultTest, NoTokenAnywhereIsDeniedAndSaysWhatToSet) {
  VaultProvider p(config(), {}, clock_);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("token_file"));
  EXPECT_THAT(s.error().message, HasSubstr("VAULT_TOKEN"));
  EXPECT_EQ(vault_.reads, 0);
}

TEST_F(VaultTest, AnExpiredTokenIsDenied) {
  vault_.addToken("hvs.short", 60s, false);
  VaultProvider p(config(), token("hvs.short"), clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  clock_.advance(120s);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("permission denied"));
}

TEST_F(VaultTest, KubernetesLoginPresentsTheRoleAndTheServiceAccountToken) {
  VaultProvider p(config(VaultAuthMethod::kKubernetes), {}, clock_);
  for (int i = 0; i < 3; ++i) {
    auto s = p.fetch(ref("kv/app/db", "password"));
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->value.reveal(), "current-password");
  }
  EXPECT_EQ(vault_.k8s_logins, 1);
  EXPECT_EQ(vault_.lastLoginRole(), kK8sRole);
}

TEST_F(VaultTest, KubernetesLoginAtAnotherMount) {
  auto c = config(VaultAuthMethod::kKubernetes);
  c.auth_mount = "k8s-prod";
  VaultProvider p(c, {}, clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.k8s_logins, 1);
}

TEST_F(VaultTest, ARefusedServiceAccountTokenOrRoleIsDenied) {
  vault_.setJwt("another-jwt");
  VaultProvider p(config(VaultAuthMethod::kKubernetes), {}, clock_);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("${vault:kv/app/db#password}"));
  EXPECT_THAT(s.error().message, HasSubstr("kubernetes login at auth/kubernetes (role outpost)"));
  EXPECT_THAT(s.error().message, HasSubstr("permission denied"));
  EXPECT_EQ(vault_.reads, 0);

  auto c = config(VaultAuthMethod::kKubernetes);
  c.role = "intruder";
  VaultProvider wrong_role(c, {}, clock_);
  auto r = wrong_role.fetch(ref("kv/app/db", "password"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(r.error().message, HasSubstr("invalid role name"));
}

TEST_F(VaultTest, AMissingServiceAccountTokenFileIsDenied) {
  auto c = config(VaultAuthMethod::kKubernetes);
  c.jwt_file = "/nonexistent/outpost/jwt";
  VaultProvider p(c, {}, clock_);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("/nonexistent/outpost/jwt"));
  EXPECT_EQ(vault_.logins(), 0);
}

TEST_F(VaultTest, AppRoleLoginWithTheSecretIdFromAFileOrTheEnvironment) {
  VaultProvider from_file(config(VaultAuthMethod::kAppRole), {}, clock_);
  auto s = from_file.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");

  auto c = config(VaultAuthMethod::kAppRole);
  c.secret_id_file.clear();
  VaultProvider from_env(c, {{"VAULT_SECRET_ID", kSecretId}}, clock_);
  auto e = from_env.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(vault_.approle_logins, 2);
}

TEST_F(VaultTest, AWrongSecretIdIsDenied) {
  auto c = config(VaultAuthMethod::kAppRole);
  c.secret_id_file = dir_.write("wrong", "not-the-secret-id");
  VaultProvider p(c, {}, clock_);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kDenied);
  EXPECT_THAT(s.error().message, HasSubstr("approle login at auth/approle"));
  EXPECT_THAT(s.error().message, HasSubstr("invalid role or secret ID"));
  EXPECT_EQ(vault_.reads, 0);
}

TEST_F(VaultTest, ANamespaceIsSentOnEveryRequest) {
  vault_.requireNamespace("team-a");
  auto c = config(VaultAuthMethod::kKubernetes);
  c.vault_namespace = "team-a";
  VaultProvider p(c, {}, clock_);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;

  VaultProvider from_env(config(), {{"VAULT_TOKEN", kStaticToken}, {"VAULT_NAMESPACE", "team-a"}},
                         clock_);
  EXPECT_TRUE(from_env.fetch(ref("kv/app/db", "password")));

  VaultProvider without(config(VaultAuthMethod::kKubernetes), {}, clock_);
  auto w = without.fetch(ref("kv/app/db", "password"));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().kind, SecretError::Kind::kDenied);
}

// --- leases ---

TEST_F(VaultTest, ATokenNearTheEndOfItsLeaseIsRenewedBeforeTheNextFetch) {
  vault_.setLoginLease(3600s, true);
  VaultProvider p(config(VaultAuthMethod::kKubernetes), {}, clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  clock_.advance(2300s);  // 1300 s left: more than a third
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.renewals, 0);
  clock_.advance(200s);  // 1100 s left
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(vault_.renewals, 1);
  // Renewed at 2500 s for another hour: past the first lease's end, and due again at 4900 s.
  clock_.advance(2000s);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.renewals, 1);
  clock_.advance(500s);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.renewals, 2);
  EXPECT_EQ(vault_.logins(), 1);
}

TEST_F(VaultTest, RenewBeforeSetsWhenTheTokenIsRenewed) {
  vault_.setLoginLease(3600s, true);
  auto c = config(VaultAuthMethod::kAppRole);
  c.renew_before = 600s;
  VaultProvider p(c, {}, clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  clock_.advance(2900s);  // 700 s left
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.renewals, 0);
  clock_.advance(200s);  // 500 s left
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.renewals, 1);
  EXPECT_EQ(vault_.logins(), 1);
}

TEST_F(VaultTest, AGivenTokenWithALeaseIsRenewedToo) {
  vault_.addToken("hvs.periodic", 600s, true);
  VaultProvider p(config(), token("hvs.periodic"), clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  clock_.advance(450s);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.renewals, 1);
  clock_.advance(450s);  // past the first lease
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(vault_.renewals, 2);
}

TEST_F(VaultTest, ANonRenewableTokenIsReplacedByANewLogin) {
  vault_.setLoginLease(3600s, false);
  VaultProvider p(config(VaultAuthMethod::kKubernetes), {}, clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  clock_.advance(2500s);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(vault_.k8s_logins, 2);
  EXPECT_EQ(vault_.renewals, 0);
  clock_.advance(3000s);  // the first token has expired; the second is due again
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.k8s_logins, 3);
}

TEST_F(VaultTest, AFailedRenewalIsFollowedByANewLogin) {
  vault_.setLoginLease(3600s, true);
  vault_.refuseRenewals(403);
  VaultProvider p(config(VaultAuthMethod::kAppRole), {}, clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  clock_.advance(2500s);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(vault_.renewals, 1);
  EXPECT_EQ(vault_.approle_logins, 2);
}

TEST_F(VaultTest, ATokenAtItsMaxTtlIsReplacedByANewLogin) {
  vault_.setLoginLease(3600s, true, 5000s);
  VaultProvider p(config(VaultAuthMethod::kKubernetes), {}, clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  clock_.advance(2500s);  // renewed for 2500 s, up to the max TTL
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.renewals, 1);
  EXPECT_EQ(vault_.k8s_logins, 1);
  clock_.advance(1400s);  // 1100 s left; a renewal gives no more than that
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  EXPECT_EQ(vault_.renewals, 2);
  EXPECT_EQ(vault_.k8s_logins, 2);
}

TEST_F(VaultTest, ARevokedTokenIsReplacedOnceAndTheReadTriedAgain) {
  VaultProvider p(config(VaultAuthMethod::kKubernetes), {}, clock_);
  ASSERT_TRUE(p.fetch(ref("kv/app/db", "password")));
  vault_.revokeAll();
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
  EXPECT_EQ(vault_.k8s_logins, 2);
  EXPECT_EQ(vault_.reads, 3);  // ok, refused, ok
}

TEST_F(VaultTest, ConcurrentFetchesShareOneLogin) {
  vault_.setLoginDelay(50ms);
  VaultProvider p(config(VaultAuthMethod::kKubernetes), {}, clock_);
  auto hammer = [&] {
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 5; ++i) {
          auto s = p.fetch(ref(t % 2 ? "kv/app/db" : "kv/app/api-key", t % 2 ? "password" : ""));
          if (s) ++ok;
        }
      });
    }
    for (auto& t : threads) t.join();
    return ok.load();
  };
  EXPECT_EQ(hammer(), 40);
  EXPECT_EQ(vault_.k8s_logins, 1);
  EXPECT_EQ(vault_.reads, 40);

  // All of them find the token revoked at once: still one new login.
  vault_.revokeAll();
  EXPECT_EQ(hammer(), 40);
  EXPECT_EQ(vault_.k8s_logins, 2);
}

// --- retries and limits ---

TEST_F(VaultTest, ServerErrorsAndThrottlingAreRetried) {
  VaultProvider p(config(), token(), clock_);
  vault_.failReads(2, 500);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(vault_.reads, 3);

  vault_.failReads(2, 429);
  auto t = p.fetch(ref("kv/app/db", "password"));
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(vault_.reads, 6);
}

TEST_F(VaultTest, ServerErrorsBeyondTheAttemptsAreUnavailable) {
  VaultProvider p(config(), token(), clock_);
  vault_.failReads(100, 503);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("${vault:kv/app/db#password}"));
  EXPECT_THAT(s.error().message, HasSubstr("HTTP 503"));
  EXPECT_THAT(s.error().message, HasSubstr("3 attempts"));
  EXPECT_EQ(vault_.reads, 3);
}

TEST_F(VaultTest, ASlowAnswerTimesOutAfterABoundedNumberOfTries) {
  auto c = config();
  c.transport.timeout = 300ms;
  c.transport.max_attempts = 2;
  VaultProvider p(c, token(), clock_);
  auto s = p.fetch(ref("kv/slow", "x"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("Timeout"));
  EXPECT_THAT(s.error().message, HasSubstr("2 attempts"));
  EXPECT_EQ(vault_.reads, 2);
}

TEST_F(VaultTest, NothingListeningIsUnavailable) {
  auto c = config();
  c.address = closedPortUrl();
  c.transport.max_attempts = 1;
  VaultProvider p(c, token(), clock_);
  auto s = p.fetch(ref("kv/app/db", "password"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, SecretError::Kind::kUnavailable);
}

// --- from the configuration file to a resolved reference ---

TEST_F(VaultTest, TheResolverBuildsTheProviderFromTheConfiguration) {
  const std::string jwt_file = dir_.write("sa-token", kJwt);
  auto config = parseConfig("secrets:\n  chain: [env, vault]\n  vault:\n    address: '" +
                                vault_.url() + "'\n    auth: kubernetes\n    role: outpost\n" +
                                "    jwt_file: '" + jwt_file + "'\n    max_attempts: 2\n",
                            {});
  auto resolver = SecretResolver::fromConfig(config.secrets, {}, clock_);
  auto s = resolver->resolve(ref("kv/app/db", "password"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->value.reveal(), "current-password");
  EXPECT_EQ(s->provider, "vault");
  EXPECT_EQ(s->version, "2");
  EXPECT_EQ(vault_.k8s_logins, 1);
}

// --- secrets stay out of errors and logs ---

TEST_F(VaultTest, NoSecretOrTokenAppearsInAnyErrorOrLog) {
  const std::string value = "canary-VALUE-5d2c81";
  const std::string other = "canary-OTHERVALUE-77e0";
  const std::string token_value = "hvs.canary-TOKEN-0a9b";
  const std::string jwt = "canary-JWT-3c4d";
  const std::string secret_id = "canary-SECRETID-e1f2";
  const std::vector<std::string> canaries = {value, other, token_value, jwt, secret_id};
  vault_.put("leaky", {{"password", value}, {"other", other}});
  vault_.addToken(token_value, 0s, false);
  vault_.echoCredentialsInErrors();

  LeakCheck leaks;
  {
    VaultProvider p(config(), token(token_value), clock_);
    ASSERT_TRUE(p.fetch(ref("kv/leaky", "password")));       // the value is in play
    leaks.expectError(p, ref("kv/leaky"));                   // two keys, no field
    leaks.expectError(p, ref("kv/leaky", "user"));           // no such field
    leaks.expectError(p, ref("kv/leaky", "password.x"));     // not an object
    leaks.expectError(p, ref("kv/forbidden", "password"));   // denied, the server echoes the token
    leaks.expectError(p, ref("kv/leaky", "password", "9"));  // no such version
    vault_.failReads(100, 500);
    leaks.expectError(p, ref("kv/leaky", "password"));  // unavailable
    vault_.failReads(0, 500);
  }
  {
    VaultProvider p(config(), token("hvs.canary-TOKEN-0a9b-wrong"), clock_);
    leaks.expectError(p, ref("kv/leaky", "password"));  // unknown token
  }
  {
    vault_.setJwt("the-real-jwt");
    auto c = config(VaultAuthMethod::kKubernetes);
    c.jwt_file = dir_.write("canary-jwt", jwt);
    VaultProvider p(c, {}, clock_);
    leaks.expectError(p, ref("kv/leaky", "password"));  // the JWT is refused, and echoed
  }
  {
    auto c = config(VaultAuthMethod::kAppRole);
    c.secret_id_file.clear();
    VaultProvider p(c, {{"VAULT_SECRET_ID", secret_id}}, clock_);
    leaks.expectError(p, ref("kv/leaky", "password"));  // the secret id is refused, and echoed
  }
  {
    auto c = config();
    c.address = closedPortUrl();
    c.transport.max_attempts = 1;
    VaultProvider p(c, token(token_value), clock_);
    leaks.expectError(p, ref("kv/leaky", "password"));  // nothing listens
  }

  EXPECT_GE(leaks.messages(), 10u);
  leaks.expectNoneHolds(canaries);
}

}  // namespace
}  // namespace outpost::secrets
