// The Vault provider's pieces that need no network: settings, the KV v2 URL, reading an answer,
// when a token is renewed, the reference form, and building the provider from the
// configuration. The provider against a fake Vault on loopback is in
// vault_httptest.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_clock.h"
#include "outpost/secrets/reference.h"
#include "outpost/secrets/resolver.h"
#include "outpost/secrets/vault.h"

namespace outpost::secrets {
namespace {

using namespace std::chrono_literals;
using test::FakeClock;
using testing::AllOf;
using testing::HasSubstr;
using testing::Not;

std::string configError(const VaultConfig& c, const Environment& env = {}) {
  try {
    resolveVaultConfig(c, env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

VaultConfig withAddress(std::string address) {
  VaultConfig c;
  c.address = std::move(address);
  return c;
}

SecretRef ref(const std::string& path, const std::string& field = "",
              const std::string& version = "") {
  return SecretRef{"vault", path, field, version, "${vault:" + path + "}"};
}

// --- settings ---

TEST(VaultConfig, AuthMethodNames) {
  for (auto m :
       {VaultAuthMethod::kToken, VaultAuthMethod::kKubernetes, VaultAuthMethod::kAppRole}) {
    EXPECT_EQ(parseVaultAuthMethod(vaultAuthMethodName(m)), m);
  }
  EXPECT_FALSE(parseVaultAuthMethod("userpass"));
  EXPECT_FALSE(parseVaultAuthMethod(""));
}

TEST(VaultConfig, TheAddressIsRequiredAndPlainHttpOnlyOnLoopback) {
  EXPECT_THAT(configError(VaultConfig{}), HasSubstr("secrets.vault.address"));
  EXPECT_THAT(configError(withAddress("vault.example.com:8200")), HasSubstr("not an http://"));
  EXPECT_THAT(configError(withAddress("http://vault.example.com:8200")),
              AllOf(HasSubstr("plain http://"), HasSubstr("https://")));
  EXPECT_THAT(configError(withAddress("https://vault.example.com?x=1")), HasSubstr("query"));
  EXPECT_EQ(configError(withAddress("https://vault.example.com:8200")), "");
  for (const char* local :
       {"http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200"}) {
    EXPECT_EQ(configError(withAddress(local)), "") << local;
  }
  EXPECT_EQ(resolveVaultConfig(withAddress("https://vault.example.com:8200//"), {}).address,
            "https://vault.example.com:8200");
}

TEST(VaultConfig, NamespaceAndCaBundleComeFromTheEnvironmentWhenNotSet) {
  const Environment env{{"VAULT_NAMESPACE", "/team-a/"}, {"VAULT_CACERT", "/etc/vault-ca.pem"}};
  auto c = resolveVaultConfig(withAddress("https://v:8200"), env);
  EXPECT_EQ(c.vault_namespace, "team-a");
  EXPECT_EQ(c.transport.ca_bundle, "/etc/vault-ca.pem");
  auto own = withAddress("https://v:8200");
  own.vault_namespace = "team-b";
  own.transport.ca_bundle = "/mine.pem";
  own = resolveVaultConfig(own, env);
  EXPECT_EQ(own.vault_namespace, "team-b");
  EXPECT_EQ(own.transport.ca_bundle, "/mine.pem");
}

TEST(VaultConfig, EachLoginMethodNeedsItsSettingsAndHasADefaultMount) {
  auto k8s = withAddress("https://v:8200");
  k8s.auth = VaultAuthMethod::kKubernetes;
  EXPECT_THAT(configError(k8s), HasSubstr("secrets.vault.role"));
  k8s.role = "outpost";
  auto resolved = resolveVaultConfig(k8s, {});
  EXPECT_EQ(resolved.auth_mount, "kubernetes");
  EXPECT_EQ(resolved.jwt_file, "/var/run/secrets/kubernetes.io/serviceaccount/token");
  k8s.auth_mount = "/k8s-prod/";
  EXPECT_EQ(resolveVaultConfig(k8s, {}).auth_mount, "k8s-prod");

  auto approle = withAddress("https://v:8200");
  approle.auth = VaultAuthMethod::kAppRole;
  EXPECT_THAT(configError(approle), HasSubstr("secrets.vault.role_id"));
  approle.role_id = "r";
  EXPECT_EQ(resolveVaultConfig(approle, {}).auth_mount, "approle");

  auto attempts = withAddress("https://v:8200");
  attempts.transport.max_attempts = 0;
  EXPECT_THAT(configError(attempts), HasSubstr("max_attempts"));
}

// --- the KV v2 read ---

TEST(VaultKvReadUrl, TheFirstSegmentIsTheMountAndEachSegmentIsEncoded) {
  EXPECT_EQ(vaultKvReadUrl("https://v:8200", ref("kv/team/db")).value(),
            "https://v:8200/v1/kv/data/team/db");
  EXPECT_EQ(vaultKvReadUrl("https://v:8200/", ref("secret/app", "", "3")).value(),
            "https://v:8200/v1/secret/data/app?version=3");
  EXPECT_EQ(vaultKvReadUrl("https://v", ref("kv/a b/c@d+e")).value(),
            "https://v/v1/kv/data/a%20b/c%40d%2Be");
}

TEST(VaultKvReadUrl, RefusesPathsWithoutMountOrWithDotSegmentsAndBadVersions) {
  for (const char* bad : {"kv", "kv/", "/kv/x", "kv//x", "kv/../sys/raw", "kv/./x"}) {
    auto u = vaultKvReadUrl("https://v", ref(bad));
    ASSERT_FALSE(u) << bad;
    EXPECT_EQ(u.error().kind, SecretError::Kind::kInvalid);
    EXPECT_THAT(u.error().message, HasSubstr("MOUNT/PATH"));
  }
  for (const char* bad : {"0", "x", "-1", "1.5"}) {
    auto u = vaultKvReadUrl("https://v", ref("kv/x", "", bad));
    ASSERT_FALSE(u) << bad;
    EXPECT_THAT(u.error().message, HasSubstr("version"));
  }
}

std::expected<FetchedSecret, SecretError> answer(const SecretRef& r, const std::string& body) {
  std::string copy = body;
  auto out = vaultSecretFromAnswer(r, copy);
  EXPECT_TRUE(copy.empty());  // wiped
  return out;
}

const std::string kAnswer = R"({"data":{"data":{"password":"s3cret-pw","port":5432,
  "tls.crt":"CERT","db":{"user":"app"}},"metadata":{"version":4,"deletion_time":""}}})";

TEST(VaultAnswer, TakesAFieldAndTheVersion) {
  auto pw = answer(ref("kv/app", "password"), kAnswer);
  ASSERT_TRUE(pw) << pw.error().message;
  EXPECT_EQ(pw->value.reveal(), "s3cret-pw");
  EXPECT_EQ(pw->version, "4");
  EXPECT_EQ(answer(ref("kv/app", "port"), kAnswer)->value.reveal(), "5432");
  EXPECT_EQ(answer(ref("kv/app", "tls.crt"), kAnswer)->value.reveal(), "CERT");  // whole key
  EXPECT_EQ(answer(ref("kv/app", "db.user"), kAnswer)->value.reveal(), "app");   // a path
}

TEST(VaultAnswer, WithoutAFieldTheOnlyValueOrAnErrorCountingTheKeys) {
  auto one = answer(ref("kv/app"), R"({"data":{"data":{"token":"t0k3n"},"metadata":{}}})");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->value.reveal(), "t0k3n");

  auto many = answer(ref("kv/app"), kAnswer);
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().kind, SecretError::Kind::kInvalid);
  EXPECT_THAT(many.error().message,
              AllOf(HasSubstr("${vault:kv/app}"), HasSubstr("4 keys"), HasSubstr("#field"),
                    Not(HasSubstr("s3cret-pw")), Not(HasSubstr("CERT"))));
}

TEST(VaultAnswer, MissingFieldsDeletedVersionsAndOtherAnswers) {
  auto missing = answer(ref("kv/app", "pasword"), kAnswer);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(missing.error().message,
              AllOf(HasSubstr("'pasword'"), HasSubstr("4 keys"), Not(HasSubstr("s3cret-pw"))));
  EXPECT_FALSE(answer(ref("kv/app", "password.x"), kAnswer));

  auto deleted = answer(ref("kv/app", "password"),
                        R"({"data":{"data":null,"metadata":{"version":2,
                            "deletion_time":"2026-01-01T00:00:00Z"}}})");
  ASSERT_FALSE(deleted);
  EXPECT_EQ(deleted.error().kind, SecretError::Kind::kNotFound);
  EXPECT_THAT(deleted.error().message, HasSubstr("version 2"));

  EXPECT_EQ(answer(ref("kv/app"), "<html>").error().kind, SecretError::Kind::kUnavailable);
  EXPECT_THAT(answer(ref("kv/app"), R"({"password":"x"})").error().message,
              HasSubstr("KV version 2"));
}

// --- leases ---

TEST(VaultRenewThreshold, AThirdOfTheLeaseOrRenewBeforeAtMostHalf) {
  EXPECT_EQ(vaultRenewThreshold(3600s, 0s), 1200s);
  EXPECT_EQ(vaultRenewThreshold(3600s, 300s), 300s);
  EXPECT_EQ(vaultRenewThreshold(600s, 3600s), 300s);
  EXPECT_EQ(vaultRenewThreshold(0s, 300s), 0s);
}

// --- references and the resolver ---

TEST(VaultReferences, AVersionIsANumberAfterThePath) {
  auto parts = parseReferences("${vault:kv/team/db?version=3#password} ${vault:kv/app}");
  ASSERT_TRUE(parts) << parts.error();
  ASSERT_EQ(parts->size(), 3u);
  const auto& r = (*parts)[0].ref;
  EXPECT_EQ(r.provider, "vault");
  EXPECT_EQ(r.path, "kv/team/db");
  EXPECT_EQ(r.field, "password");
  EXPECT_EQ(r.version, "3");
  EXPECT_EQ(scopeName(r), "vault:kv/team/db");
  EXPECT_EQ((*parts)[2].ref.version, "");
  EXPECT_THAT(parseReferences("${vault:kv/x?version=latest}").error(), HasSubstr("?version="));
  EXPECT_THAT(parseReferences("${vault:kv/x?version=}").error(), HasSubstr("?version="));
}

TEST(VaultResolver, TheProviderIsBuiltWhenUsedWithoutTouchingTheNetwork) {
  FakeClock clock;
  SecretsConfig sc;
  sc.clouds = {"vault"};
  sc.vault.address = "https://vault.invalid:8200";
  sc.vault.auth = "kubernetes";
  sc.vault.role = "outpost";
  EXPECT_NO_THROW(SecretResolver::fromConfig(sc, {}, clock));

  sc.vault.auth = "ldap";
  try {
    SecretResolver::fromConfig(sc, {}, clock);
    ADD_FAILURE() << "an unknown auth method was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("secrets.vault.auth"));
  }

  SecretsConfig no_address;
  no_address.clouds = {"vault"};
  try {
    SecretResolver::fromConfig(no_address, {}, clock);
    ADD_FAILURE() << "vault without an address was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("secrets.vault.address"));
  }
}

}  // namespace
}  // namespace outpost::secrets
