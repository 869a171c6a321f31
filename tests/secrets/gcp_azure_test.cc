// The Google Secret Manager and Azure Key Vault providers' pieces that need no network: CRC32C
// against known answers, the service-account JWT (checked with OpenSSL, apart from the signer),
// reference forms, token and secret answers, and settings. The providers against fake services on
// loopback are in gcp_secret_manager_httptest.cc and azure_key_vault_httptest.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <memory>

#include <nlohmann/json.hpp>

#include "fake_clock.h"
#include "outpost/secrets/access_token.h"
#include "outpost/secrets/azure.h"
#include "outpost/secrets/crc32c.h"
#include "outpost/secrets/gcp.h"
#include "outpost/secrets/resolver.h"
#include "temp_dir.h"
#include "test_crypto.h"

namespace outpost::secrets {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::base64UrlDecode;
using test::FakeClock;
using test::Pkey;
using test::privatePem;
using test::TempDir;
using test::verifyRs256;
using testing::HasSubstr;
using testing::Not;

// --- the test's own crypto, apart from the provider's ---

// One RSA key pair for the whole test program (generating one takes a moment).
EVP_PKEY* testKey() {
  static Pkey key(EVP_RSA_gen(2048));
  return key.get();
}

std::string keyFileJson(const std::string& pem, const std::string& type = "service_account") {
  return json{{"type", type},
              {"project_id", "proj-1"},
              {"private_key_id", "kid-123"},
              {"private_key", pem},
              {"client_email", "outpost@proj-1.iam.gserviceaccount.com"},
              {"client_id", "1234567890"},
              {"token_uri", "https://oauth2.googleapis.com/token"}}
      .dump();
}

SecretRef gcpRef(const std::string& path, const std::string& version = "") {
  return SecretRef{"gcp-sm", path, "", version, "${gcp-sm:" + path + "}"};
}

// --- CRC32C ---

TEST(Crc32c, KnownAnswers) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("a"), 0xC1D04330u);
  EXPECT_EQ(crc32c("The quick brown fox jumps over the lazy dog"), 0x22620404u);
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up += static_cast<char>(i);
    down += static_cast<char>(31 - i);
  }
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down), 0x113FDB5Cu);
}

TEST(Crc32c, ContinuesOverPieces) {
  const std::string text = "The quick brown fox jumps over the lazy dog";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    EXPECT_EQ(crc32c(text.substr(cut), crc32c(text.substr(0, cut))), crc32c(text)) << cut;
  }
}

// --- GCP reference forms ---

TEST(GcpVersionName, FullShortAndProjectRelativeForms) {
  EXPECT_EQ(gcpVersionName(gcpRef("projects/p1/secrets/db/versions/3"), ""),
            "projects/p1/secrets/db/versions/3");
  EXPECT_EQ(gcpVersionName(gcpRef("projects/p1/secrets/db"), ""),
            "projects/p1/secrets/db/versions/latest");
  EXPECT_EQ(gcpVersionName(gcpRef("projects/p1/secrets/db", "7"), ""),
            "projects/p1/secrets/db/versions/7");
  EXPECT_EQ(gcpVersionName(gcpRef("db"), "proj-2"), "projects/proj-2/secrets/db/versions/latest");
  EXPECT_EQ(gcpVersionName(gcpRef("db", "2"), "proj-2"), "projects/proj-2/secrets/db/versions/2");
  // A project in the reference wins over the setting.
  EXPECT_EQ(gcpVersionName(gcpRef("projects/other/secrets/db"), "proj-2"),
            "projects/other/secrets/db/versions/latest");
}

TEST(GcpVersionName, RefusesWhatItCannotSendAndSaysWhichFormsWork) {
  auto no_project = gcpVersionName(gcpRef("db"), "");
  ASSERT_FALSE(no_project);
  EXPECT_THAT(no_project.error(), HasSubstr("secrets.gcp.project"));
  for (const char* bad : {"projects/p/secrets/db/versions", "projects/p/db", "a/b",
                          "projects/p/secrets/d%2Fb", "projects/p/secrets/db?x=1/versions/1",
                          "projects//secrets/db", "projects/p/secrets/db/versions/1/extra"}) {
    auto r = gcpVersionName(gcpRef(bad), "proj");
    EXPECT_FALSE(r) << bad;
  }
  auto shape = gcpVersionName(gcpRef("a/b"), "proj");
  ASSERT_FALSE(shape);
  EXPECT_THAT(shape.error(), HasSubstr("projects/PROJECT/secrets/SECRET"));
}

// --- service-account keys and the JWT ---

TEST(GcpServiceAccountKey, ParsesAServiceAccountKeyFile) {
  auto key = parseGcpServiceAccountKey(keyFileJson(privatePem(testKey())));
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->client_email, "outpost@proj-1.iam.gserviceaccount.com");
  EXPECT_EQ(key->private_key_id, "kid-123");
  EXPECT_EQ(key->token_uri, "https://oauth2.googleapis.com/token");
  EXPECT_THAT(std::string(key->private_key.reveal()), HasSubstr("BEGIN PRIVATE KEY"));
}

TEST(GcpServiceAccountKey, RefusesOtherCredentialTypesAndIncompleteKeysWithoutShowingThem) {
  const std::string pem = privatePem(testKey());
  auto user = parseGcpServiceAccountKey(keyFileJson(pem, "authorized_user"));
  ASSERT_FALSE(user);
  EXPECT_THAT(user.error(), HasSubstr("'authorized_user'"));
  EXPECT_THAT(user.error(), HasSubstr("metadata server"));

  auto j = json::parse(keyFileJson(pem));
  j.erase("private_key");
  auto no_key = parseGcpServiceAccountKey(j.dump());
  ASSERT_FALSE(no_key);
  EXPECT_THAT(no_key.error(), HasSubstr("private_key"));

  auto junk = parseGcpServiceAccountKey("{not json");
  ASSERT_FALSE(junk);
  EXPECT_THAT(junk.error(), Not(HasSubstr("not json")));

  j = json::parse(keyFileJson(pem));
  j.erase("token_uri");
  auto defaulted = parseGcpServiceAccountKey(j.dump());
  ASSERT_TRUE(defaulted);
  EXPECT_EQ(defaulted->token_uri, "https://oauth2.googleapis.com/token");
}

TEST(GcpJwt, IsSignedWithRs256AndCarriesTheClaimsGoogleAsksFor) {
  auto key = parseGcpServiceAccountKey(keyFileJson(privatePem(testKey())));
  ASSERT_TRUE(key);
  FakeClock clock;
  const std::string aud = "https://oauth2.googleapis.com/token";
  auto jwt = makeGcpJwtAssertion(*key, aud, clock.now());
  ASSERT_TRUE(jwt) << jwt.error();
  const std::string text(jwt->reveal());
  const auto dot1 = text.find('.');
  const auto dot2 = text.find('.', dot1 + 1);
  ASSERT_NE(dot2, std::string::npos);
  EXPECT_EQ(text.find('='), std::string::npos);  // no padding

  const auto header = json::parse(base64UrlDecode(text.substr(0, dot1)).value());
  EXPECT_EQ(header["alg"], "RS256");
  EXPECT_EQ(header["typ"], "JWT");
  EXPECT_EQ(header["kid"], "kid-123");

  const auto claims = json::parse(base64UrlDecode(text.substr(dot1 + 1, dot2 - dot1 - 1)).value());
  const auto iat =
      std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
  EXPECT_EQ(claims["iss"], "outpost@proj-1.iam.gserviceaccount.com");
  EXPECT_EQ(claims["scope"], "https://www.googleapis.com/auth/cloud-platform");
  EXPECT_EQ(claims["aud"], aud);
  EXPECT_EQ(claims["iat"].get<long long>(), iat);
  EXPECT_EQ(claims["exp"].get<long long>(), iat + 3600);

  const std::string signature = base64UrlDecode(text.substr(dot2 + 1)).value();
  EXPECT_EQ(signature.size(), 256u);  // RSA-2048
  EXPECT_TRUE(verifyRs256(testKey(), text.substr(0, dot2), signature));
  // Any change to what was signed breaks it.
  EXPECT_FALSE(verifyRs256(testKey(), text.substr(0, dot2) + "x", signature));
  Pkey other(EVP_RSA_gen(2048));
  EXPECT_FALSE(verifyRs256(other.get(), text.substr(0, dot2), signature));
}

TEST(GcpJwt, AKeyThatIsNotAnRsaPrivateKeyIsRefused) {
  GcpServiceAccountKey key{"a@b.iam.gserviceaccount.com", "", "https://x/token",
                           SecretValue("-----BEGIN PRIVATE KEY-----\nnot a key\n")};
  auto jwt = makeGcpJwtAssertion(key, "https://x/token", FakeClock().now());
  ASSERT_FALSE(jwt);
  EXPECT_THAT(jwt.error(), HasSubstr("not an unencrypted RSA key"));
  EXPECT_THAT(jwt.error(), Not(HasSubstr("not a key")));
}

// --- GCP answers ---

TEST(GcpTokenResponse, ReadsTheTokenAndItsLifetime) {
  FakeClock clock;
  auto t = parseGcpTokenResponse(
      R"({"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"})", clock.now());
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->token.reveal(), "ya29.abc");
  EXPECT_EQ(t->expires, clock.now() + 3599s);

  EXPECT_FALSE(parseGcpTokenResponse(R"({"expires_in":3599})", clock.now()));
  EXPECT_FALSE(parseGcpTokenResponse(R"({"access_token":"x"})", clock.now()));
  EXPECT_FALSE(parseGcpTokenResponse(R"({"access_token":"x","expires_in":0})", clock.now()));
  auto mac = parseGcpTokenResponse(R"({"access_token":"x","expires_in":5,"token_type":"MAC"})",
                                   clock.now());
  ASSERT_FALSE(mac);
  EXPECT_THAT(mac.error(), HasSubstr("not Bearer"));
  auto broken =
      parseGcpTokenResponse("{\"access_token\":\"a\\r\\nX: y\",\"expires_in\":5}", clock.now());
  ASSERT_FALSE(broken);
  EXPECT_THAT(broken.error(), HasSubstr("line break"));
}

std::string accessAnswer(const std::string& data_b64, const json& crc) {
  json j = {{"name", "projects/123456/secrets/db/versions/4"}, {"payload", {{"data", data_b64}}}};
  if (!crc.is_null()) j["payload"]["dataCrc32c"] = crc;
  return j.dump();
}

TEST(GcpAccessResponse, DecodesThePayloadChecksItsCrcAndTakesTheVersionFromTheName) {
  // "hunter2-password" in base64; its CRC32C as the decimal string Google sends.
  const std::string b64 = "aHVudGVyMi1wYXNzd29yZA==";
  const std::string crc = std::to_string(crc32c("hunter2-password"));
  auto ok = parseGcpAccessResponse(accessAnswer(b64, crc));
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(ok->value.reveal(), "hunter2-password");
  EXPECT_EQ(ok->version, "4");

  auto as_number = parseGcpAccessResponse(accessAnswer(b64, crc32c("hunter2-password")));
  ASSERT_TRUE(as_number) << as_number.error();

  auto unchecked = parseGcpAccessResponse(accessAnswer(b64, nullptr));
  ASSERT_TRUE(unchecked);
  EXPECT_EQ(unchecked->value.reveal(), "hunter2-password");

  auto empty = parseGcpAccessResponse(R"({"name":"projects/1/secrets/e/versions/1","payload":{}})");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->value.empty());
}

TEST(GcpAccessResponse, AWrongChecksumIsRefusedWithoutShowingThePayload) {
  const std::string b64 = "aHVudGVyMi1wYXNzd29yZA==";
  const std::string wrong = std::to_string(crc32c("hunter2-password") ^ 1u);
  auto r = parseGcpAccessResponse(accessAnswer(b64, wrong));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), HasSubstr("CRC32C"));
  EXPECT_THAT(r.error(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(r.error(), Not(HasSubstr(b64)));

  EXPECT_FALSE(parseGcpAccessResponse(accessAnswer(b64, "12ab")));
  EXPECT_FALSE(parseGcpAccessResponse(accessAnswer(b64, "-5")));
  auto bad64 = parseGcpAccessResponse(accessAnswer("aHVud*GVy", nullptr));
  ASSERT_FALSE(bad64);
  EXPECT_THAT(bad64.error(), HasSubstr("base64"));
  EXPECT_FALSE(parseGcpAccessResponse(R"({"name":"x"})"));
  EXPECT_FALSE(parseGcpAccessResponse("<html>"));
}

// --- GCP settings ---

TEST(GcpConfig, ResolvesFromTheEnvironmentAndRefusesPlainHttpBeyondLoopback) {
  GcpConfig c;
  auto r = resolveGcpConfig(c, {{"GOOGLE_APPLICATION_CREDENTIALS", "/keys/sa.json"},
                                {"GCE_METADATA_HOST", "metadata.internal:8080"}});
  EXPECT_EQ(r.credentials_file, "/keys/sa.json");
  EXPECT_EQ(r.metadata_endpoint, "http://metadata.internal:8080");
  EXPECT_EQ(r.endpoint, "https://secretmanager.googleapis.com");
  EXPECT_EQ(resolveGcpConfig(c, {}).metadata_endpoint, "http://169.254.169.254");

  c.endpoint = "http://127.0.0.1:8080/";
  EXPECT_EQ(resolveGcpConfig(c, {}).endpoint, "http://127.0.0.1:8080");
  c.endpoint = "http://secretmanager.example.com";
  try {
    resolveGcpConfig(c, {});
    ADD_FAILURE() << "plain http to a remote endpoint was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("endpoint"));
    EXPECT_THAT(e.what(), HasSubstr("https://"));
  }
  c.endpoint = "";
  c.token_uri = "http://oauth.example.com/token";
  EXPECT_THROW(resolveGcpConfig(c, {}), ConfigError);
  c.token_uri = "";
  c.transport.max_attempts = 0;
  EXPECT_THROW(resolveGcpConfig(c, {}), ConfigError);
}

TEST(GcpProvider, AKeyFileThatCannotBeUsedStopsStartupNamingTheSetting) {
  TempDir dir;
  FakeClock clock;
  GcpConfig c;
  try {
    GcpSecretManagerProvider p(c, {{"GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json"}},
                               clock);
    ADD_FAILURE() << "a missing key file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/sa.json"));
    EXPECT_THAT(e.what(), HasSubstr("GOOGLE_APPLICATION_CREDENTIALS"));
  }
  c.credentials_file =
      dir.write("user.json", keyFileJson(privatePem(testKey()), "authorized_user"));
  EXPECT_THROW(GcpSecretManagerProvider(c, {}, clock), ConfigError);
  auto j = json::parse(keyFileJson(privatePem(testKey())));
  j["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  c.credentials_file = dir.write("bad.json", j.dump());
  EXPECT_THROW(GcpSecretManagerProvider(c, {}, clock), ConfigError);

  c.credentials_file = dir.write("good.json", keyFileJson(privatePem(testKey())));
  GcpSecretManagerProvider ok(c, {}, clock);
  EXPECT_EQ(ok.tokenSource(), "service account outpost@proj-1.iam.gserviceaccount.com");
  c.credentials_file.clear();
  GcpSecretManagerProvider metadata(c, {}, clock);
  EXPECT_EQ(metadata.tokenSource(), "metadata server");
}

// --- Azure ---

SecretRef azureRef(const std::string& path, const std::string& version = "") {
  return SecretRef{"azure-kv", path, "", version, "${azure-kv:" + path + "}"};
}

TEST(AzureVaultResource, FollowsTheVaultsCloud) {
  EXPECT_EQ(azureVaultResource("https://my-vault.vault.azure.net"), "https://vault.azure.net");
  EXPECT_EQ(azureVaultResource("https://MY-VAULT.Vault.Azure.Net/"), "https://vault.azure.net");
  EXPECT_EQ(azureVaultResource("https://v.vault.azure.cn"), "https://vault.azure.cn");
  EXPECT_EQ(azureVaultResource("https://v.vault.usgovcloudapi.net"),
            "https://vault.usgovcloudapi.net");
  EXPECT_EQ(azureVaultResource("http://127.0.0.1:8443"), "https://vault.azure.net");
  EXPECT_EQ(azureVaultResource("https://evilvault.azure.cn.example.com"),
            "https://vault.azure.net");
}

TEST(AzureSecretPath, NameAndVersionInThePathOrTheReference) {
  EXPECT_EQ(azureSecretPath(azureRef("db-password")), "/secrets/db-password");
  EXPECT_EQ(azureSecretPath(azureRef("db", "0123abcd")), "/secrets/db/0123abcd");
  EXPECT_EQ(azureSecretPath(azureRef("db/0123abcd")), "/secrets/db/0123abcd");
  EXPECT_FALSE(azureSecretPath(azureRef("db/0123", "0123")));
  EXPECT_FALSE(azureSecretPath(azureRef("db/")));
  EXPECT_FALSE(azureSecretPath(azureRef("db_password")));
  EXPECT_FALSE(azureSecretPath(azureRef("db?api-version=1")));
  EXPECT_FALSE(azureSecretPath(azureRef("db", "../x")));
  EXPECT_FALSE(azureSecretPath(azureRef(std::string(128, 'a'))));
  auto bad = azureSecretPath(azureRef("a.b"));
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error(), HasSubstr("letters, digits and '-'"));
}

TEST(AzureTokenResponse, EntraIdAndImdsShapes) {
  FakeClock clock;
  const auto now = clock.now();
  const auto unix = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  auto entra = parseAzureTokenResponse(
      R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0"})",
      now);
  ASSERT_TRUE(entra) << entra.error();
  EXPECT_EQ(entra->token.reveal(), "eyJ0");
  EXPECT_EQ(entra->expires, now + 3599s);

  // IMDS sends numbers as strings.
  auto imds = parseAzureTokenResponse(json{{"access_token", "eyJ1"},
                                           {"expires_in", "86399"},
                                           {"expires_on", std::to_string(unix.count() + 86399)},
                                           {"resource", "https://vault.azure.net"},
                                           {"token_type", "Bearer"}}
                                          .dump(),
                                      now);
  ASSERT_TRUE(imds) << imds.error();
  EXPECT_EQ(imds->expires, now + 86399s);

  auto on_only = parseAzureTokenResponse(
      json{{"access_token", "t"}, {"expires_on", std::to_string(unix.count() + 600)}}.dump(), now);
  ASSERT_TRUE(on_only) << on_only.error();
  EXPECT_EQ(on_only->expires, now + 600s);

  // With both, the earlier wins.
  auto both = parseAzureTokenResponse(
      json{{"access_token", "t"}, {"expires_in", 3600}, {"expires_on", unix.count() + 60}}.dump(),
      now);
  ASSERT_TRUE(both);
  EXPECT_EQ(both->expires, now + 60s);

  EXPECT_FALSE(parseAzureTokenResponse(R"({"access_token":"t"})", now));
  EXPECT_FALSE(parseAzureTokenResponse(R"({"access_token":"t","expires_in":"soon"})", now));
  EXPECT_FALSE(parseAzureTokenResponse(
      json{{"access_token", "t"}, {"expires_on", unix.count() - 1}}.dump(), now));
  EXPECT_FALSE(parseAzureTokenResponse(R"({"expires_in":5})", now));
}

TEST(AzureSecretResponse, ValueAndVersionFromTheId) {
  auto s = parseAzureSecretResponse(
      R"({"value":"p@ss","id":"https://v.vault.azure.net/secrets/db/4387e9f3d6e14c459867679a90fd0f79",)"
      R"("attributes":{"enabled":true}})");
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->value.reveal(), "p@ss");
  EXPECT_EQ(s->version, "4387e9f3d6e14c459867679a90fd0f79");
  auto none = parseAzureSecretResponse(R"({"id":"x"})");
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error(), HasSubstr("no value"));
}

TEST(AzureConfig, NeedsAVaultAndSettlesTheAuthMethod) {
  AzureConfig c;
  try {
    resolveAzureConfig(c, {});
    ADD_FAILURE() << "no vault_url was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("secrets.azure.vault_url"));
  }
  c.vault_url = "http://my-vault.vault.azure.net";
  EXPECT_THROW(resolveAzureConfig(c, {}), ConfigError);
  c.vault_url = "https://my-vault.vault.azure.net/";
  auto mi = resolveAzureConfig(c, {});
  EXPECT_EQ(mi.vault_url, "https://my-vault.vault.azure.net");
  EXPECT_EQ(mi.auth, AzureAuth::kManagedIdentity);
  EXPECT_EQ(mi.imds_endpoint, "http://169.254.169.254");
  EXPECT_EQ(mi.authority_host, "https://login.microsoftonline.com");

  auto cc = resolveAzureConfig(c, {{"AZURE_TENANT_ID", "contoso.onmicrosoft.com"},
                                   {"AZURE_CLIENT_ID", "app-1"},
                                   {"AZURE_CLIENT_SECRET", "s3cr3t"},
                                   {"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"}});
  EXPECT_EQ(cc.auth, AzureAuth::kClientCredentials);
  EXPECT_EQ(cc.tenant_id, "contoso.onmicrosoft.com");
  EXPECT_EQ(cc.client_id, "app-1");
  EXPECT_EQ(cc.authority_host, "https://login.microsoftonline.us");

  c.auth = AzureAuth::kClientCredentials;
  auto message = [&](const Environment& env) {
    try {
      resolveAzureConfig(c, env);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_THAT(message({{"AZURE_CLIENT_ID", "a"}, {"AZURE_CLIENT_SECRET", "s"}}),
              HasSubstr("AZURE_TENANT_ID"));
  EXPECT_THAT(message({{"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_SECRET", "s"}}),
              HasSubstr("AZURE_CLIENT_ID"));
  EXPECT_THAT(message({{"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "a"}}),
              HasSubstr("client_secret_file"));
  EXPECT_THAT(
      message(
          {{"AZURE_TENANT_ID", "t/../x"}, {"AZURE_CLIENT_ID", "a"}, {"AZURE_CLIENT_SECRET", "s"}}),
      HasSubstr("tenant_id"));
  EXPECT_THAT(message({{"AZURE_TENANT_ID", "t"},
                       {"AZURE_CLIENT_ID", "a"},
                       {"AZURE_CLIENT_SECRET", "s"},
                       {"AZURE_AUTHORITY_HOST", "http://login.example.com"}}),
              HasSubstr("authority_host"));
}

TEST(AzureProvider, AClientSecretFileThatIsMissingStopsStartup) {
  FakeClock clock;
  AzureConfig c;
  c.vault_url = "https://v.vault.azure.net";
  c.tenant_id = "t";
  c.client_id = "a";
  c.client_secret_file = "/nonexistent/client-secret";
  try {
    AzureKeyVaultProvider p(c, {}, clock);
    ADD_FAILURE() << "a missing secret file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/client-secret"));
    EXPECT_THAT(e.what(), HasSubstr("secrets.azure.client_secret_file"));
  }
}

// --- the access token cache both providers use ---

// A token source that answers "token-N" valid for `lifetime`, or fails when told to.
struct ScriptedTokens {
  const Clock& clock;
  std::chrono::seconds lifetime{3600};
  bool fail = false;
  int fetches = 0;

  AccessTokenCache::Fetch fetch() {
    return [this]() -> std::expected<AccessToken, SecretError> {
      ++fetches;
      if (fail) return std::unexpected(SecretError{SecretError::Kind::kUnavailable, "down"});
      return AccessToken{SecretValue("token-" + std::to_string(fetches)), clock.now() + lifetime};
    };
  }
};

std::string tokenOf(AccessTokenCache& cache) {
  auto t = cache.token();
  return t ? std::string(t->reveal()) : "error: " + t.error().message;
}

TEST(AccessTokenCache, RenewsAheadOfExpiryButNotBeforeHalfTheLifetime) {
  FakeClock clock;
  ScriptedTokens source{clock};
  AccessTokenCache cache("test", "script", source.fetch(), clock, 5min);
  EXPECT_EQ(tokenOf(cache), "token-1");
  clock.advance(54min);
  EXPECT_EQ(tokenOf(cache), "token-1");
  clock.advance(2min);  // within 5 minutes of expiry
  EXPECT_EQ(tokenOf(cache), "token-2");
  EXPECT_EQ(source.fetches, 2);

  source.lifetime = 6min;  // 5 minutes ahead would be most of it: half its lifetime instead
  clock.advance(1h);
  EXPECT_EQ(tokenOf(cache), "token-3");
  clock.advance(2min);
  EXPECT_EQ(tokenOf(cache), "token-3");
  clock.advance(1min);
  EXPECT_EQ(tokenOf(cache), "token-4");
}

TEST(AccessTokenCache, AFailedRenewalKeepsTheCurrentTokenUntilItExpires) {
  FakeClock clock;
  ScriptedTokens source{clock};
  AccessTokenCache cache("test", "script", source.fetch(), clock, 5min);
  EXPECT_EQ(tokenOf(cache), "token-1");
  source.fail = true;
  clock.advance(56min);
  EXPECT_EQ(tokenOf(cache), "token-1");
  EXPECT_EQ(source.fetches, 2);  // it did try
  clock.advance(4min);           // expired
  EXPECT_EQ(tokenOf(cache), "error: down");
  source.fail = false;
  EXPECT_EQ(tokenOf(cache), "token-4");
}

TEST(AccessTokenCache, ARefusedTokenIsReplacedAtTheNextCall) {
  FakeClock clock;
  ScriptedTokens source{clock};
  AccessTokenCache cache("test", "script", source.fetch(), clock, 5min);
  EXPECT_EQ(tokenOf(cache), "token-1");
  cache.invalidate();
  EXPECT_EQ(tokenOf(cache), "token-2");
  EXPECT_EQ(tokenOf(cache), "token-2");
  source.fail = true;
  cache.invalidate();  // nothing to fall back on
  EXPECT_EQ(tokenOf(cache), "error: down");
}

// --- the resolver builds both from the settings ---

TEST(CloudResolver, BuildsTheGoogleAndAzureProvidersItsSettingsName) {
  FakeClock clock;
  SecretsConfig sc;
  sc.gcp.project = "proj-1";
  sc.azure.vault_url = "https://v.vault.azure.net";
  sc.clouds = {"gcp-sm", "azure-kv"};
  EXPECT_NE(SecretResolver::fromConfig(sc, {}, clock), nullptr);

  sc.azure.vault_url.clear();
  try {
    SecretResolver::fromConfig(sc, {}, clock);
    ADD_FAILURE() << "azure-kv without a vault was built";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("vault_url"));
  }
  sc.azure.vault_url = "https://v.vault.azure.net";
  sc.azure.auth = "password";
  EXPECT_THROW(SecretResolver::fromConfig(sc, {}, clock), ConfigError);
}

}  // namespace
}  // namespace outpost::secrets
