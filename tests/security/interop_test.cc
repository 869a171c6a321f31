// The command token against PyJWT, an independent implementation: PyJWT verifies what SigningKey
// signs (Ed25519 and P-256, with the JWK publicJwk() writes), and verifyCommandToken verifies what
// PyJWT signs (with the PEM privatePem() writes). Runs /usr/bin/python3 pyjwt_interop.py with
// files in a scratch directory; skipped, naming the package, without python3-jwt or
// python3-cryptography.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <expected>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "outpost/common/base64.h"
#include "outpost/security/command_token.h"
#include "outpost/security/keys.h"
#include "scratch_dir.h"

namespace outpost::security {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::ScratchDir;
using testing::HasSubstr;

constexpr const char* kPython = "/usr/bin/python3";
const std::string kScript = std::string(OUTPOST_SOURCE_DIR) + "/tests/security/pyjwt_interop.py";

struct Ran {
  int status = -1;  // the exit status, or -1 when it did not exit normally
  std::string out;
  std::string err;
};

struct PcloseOnExit {
  void operator()(FILE* f) const { ::pclose(f); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs python with these arguments (paths in the scratch directory and plain words: each is
// single-quoted and none holds a quote), standard error to a file.
Ran runPython(const ScratchDir& dir, const std::vector<std::string>& args) {
  std::string cmd = std::string(kPython) + " -I";
  for (const auto& a : args) {
    EXPECT_EQ(a.find('\''), std::string::npos) << a;
    cmd += " '" + a + "'";
  }
  const std::string err_path = dir.path("stderr.txt");
  cmd += " 2>'" + err_path + "'";
  std::unique_ptr<FILE, PcloseOnExit> pipe(::popen(cmd.c_str(), "r"));
  Ran ran;
  if (!pipe) return ran;
  std::array<char, 4096> buf;
  while (std::fgets(buf.data(), buf.size(), pipe.get())) ran.out += buf.data();
  const int status = ::pclose(pipe.release());
  ran.status = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  ran.err = slurp(err_path);
  return ran;
}

class PyJwtInterop : public testing::Test {
 protected:
  void SetUp() override {
    if (::access(kPython, X_OK) != 0) {
      GTEST_SKIP() << kPython << " is missing: install python3, python3-jwt and "
                   << "python3-cryptography (scripts/install-deps does)";
    }
    for (const auto& [module, package] :
         {std::pair{"cryptography", "python3-cryptography"}, std::pair{"jwt", "python3-jwt"}}) {
      const Ran ran = runPython(dir_, {"-c", std::string("import ") + module});
      if (ran.status != 0) {
        GTEST_SKIP() << "PyJWT interop not run: " << kPython << " cannot import " << module
                     << "; install " << package << " (scripts/install-deps does)";
      }
    }
  }

  ScratchDir dir_;
};

std::string aValue() {
  return R"({"run_id":"r-42","job_type":"nightly"})";
}

// (a) Outpost signs, PyJWT verifies. PyJWT checks exp against its own clock, so this token is
// issued at the wall clock's now; nothing here asserts a time.
void pyjwtVerifies(const ScratchDir& dir, const SigningKey& key, const std::string& kid) {
  const CommandClaims claims =
      claimsFor(aValue(), "outpost.commands", {"ingest", "etl"}, CommandKind::kJob, "r-42", "json",
                "scheduler", std::chrono::system_clock::now(), 300s);
  const std::string token = signCommandToken(key, kid, claims);
  const std::string jwk = dir.write("key.jwk", key.publicJwk(kid));
  const std::string alg = nameOf(key.algorithm());

  const Ran ran = runPython(
      dir, {kScript, "verify", alg, jwk, dir.write("token.txt", token), "outpost:ingest"});
  ASSERT_EQ(ran.status, 0) << ran.err << ran.out;
  const json got = json::parse(ran.out);
  EXPECT_EQ(got["header"], json({{"alg", alg}, {"kid", kid}, {"typ", kTokenType}}));
  EXPECT_EQ(got["claims"]["sha256"], claims.sha256);
  EXPECT_EQ(got["claims"]["topic"], "outpost.commands");
  EXPECT_EQ(got["claims"]["aud"], json::array({"outpost:ingest", "outpost:etl"}));
  EXPECT_EQ(got["claims"]["kind"], "job");
  EXPECT_EQ(got["claims"]["jti"], "r-42");
  EXPECT_EQ(got["claims"]["iat"], claims.iat);
  EXPECT_EQ(got["claims"]["exp"], claims.exp);

  // And PyJWT is really checking: a flipped signature bit, or another pool, is refused.
  std::string signature = decodeBase64Url(token.substr(token.rfind('.') + 1)).value();
  signature[3] ^= 0x01;
  const std::string forged = token.substr(0, token.rfind('.') + 1) + encodeBase64Url(signature);
  const Ran refused = runPython(
      dir, {kScript, "verify", alg, jwk, dir.write("token.txt", forged), "outpost:ingest"});
  EXPECT_EQ(refused.status, 1) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("InvalidSignatureError"));
  const Ran elsewhere =
      runPython(dir, {kScript, "verify", alg, jwk, dir.write("token.txt", token), "outpost:batch"});
  EXPECT_EQ(elsewhere.status, 1) << elsewhere.err;
  EXPECT_THAT(elsewhere.err, HasSubstr("InvalidAudienceError"));
}

// (b) PyJWT signs with the PEM privatePem() wrote, Outpost verifies (the clock injected).
void outpostVerifies(const ScratchDir& dir, const SigningKey& key, const std::string& kid) {
  constexpr std::int64_t kIat = 1'800'000'000;
  const json claims = {{"iss", "pyjwt"},
                       {"topic", "outpost.control"},
                       {"aud", "outpost:ingest"},
                       {"kind", "control"},
                       {"jti", "c-7"},
                       {"cty", "protobuf"},
                       {"iat", kIat},
                       {"nbf", kIat},
                       {"exp", kIat + 120}};
  const std::string alg = nameOf(key.algorithm());
  const Ran ran =
      runPython(dir, {kScript, "sign", alg, dir.write("key.pem", key.privatePem()), kid,
                      dir.write("claims.json", claims.dump()), dir.write("value.bin", aValue())});
  ASSERT_EQ(ran.status, 0) << ran.err << ran.out;
  std::string token = ran.out;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();

  const KeySet trusted = KeySet::parseJwks(addToJwks("", key.publicJwk(kid)).value()).value();
  const std::string value = aValue();
  const RecordFacts record{value, "outpost.control", "ingest", CommandKind::kControl, "protobuf"};
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(kIat + 60));
  auto verified = verifyCommandToken(token, record, trusted, {}, now);
  ASSERT_TRUE(verified) << verified.error().message << "\n" << token;
  EXPECT_EQ(verified->kid, kid);
  EXPECT_EQ(verified->alg, key.algorithm());
  EXPECT_EQ(verified->claims.aud, std::vector<std::string>{"outpost:ingest"});
  EXPECT_EQ(verified->claims.kind, CommandKind::kControl);
  EXPECT_EQ(verified->claims.jti, "c-7");
  EXPECT_EQ(verified->claims.iss, "pyjwt");
  EXPECT_EQ(verified->claims.nbf, kIat);
  EXPECT_EQ(verified->claims.exp, kIat + 120);

  // The same token after its time, or for another value, is refused as it should be.
  EXPECT_EQ(verifyCommandToken(token, record, trusted, {}, now + 200s).error().check,
            SignatureCheck::kExpired);
  RecordFacts changed = record;
  changed.value = "{}";
  EXPECT_EQ(verifyCommandToken(token, changed, trusted, {}, now).error().check,
            SignatureCheck::kValueChanged);
}

TEST_F(PyJwtInterop, PyJwtVerifiesOurEd25519Tokens) {
  pyjwtVerifies(dir_, SigningKey::generateEd25519(), "ed-2026");
}

// A P-256 key made by the cryptography package (the signer generates only Ed25519 keys), so the
// PEM is foreign to us as well.
std::expected<SigningKey, std::string> foreignP256Key(const ScratchDir& dir) {
  const Ran ran = runPython(dir, {kScript, "keygen-p256"});
  if (ran.status != 0) return std::unexpected("keygen-p256 failed: " + ran.err);
  return SigningKey::parsePem(ran.out);
}

TEST_F(PyJwtInterop, PyJwtVerifiesOurEs256Tokens) {
  auto key = foreignP256Key(dir_);
  ASSERT_TRUE(key) << key.error();
  ASSERT_EQ(key->algorithm(), Algorithm::kES256);
  // ECDSA is randomized: several signatures, so that a short r or s is met now and then.
  for (int i = 0; i < 3; ++i) pyjwtVerifies(dir_, *key, "p256-2026");
}

TEST_F(PyJwtInterop, WeVerifyPyJwtEd25519Tokens) {
  outpostVerifies(dir_, SigningKey::generateEd25519(), "ed-2026");
}

TEST_F(PyJwtInterop, WeVerifyPyJwtEs256Tokens) {
  auto key = foreignP256Key(dir_);
  ASSERT_TRUE(key) << key.error();
  for (int i = 0; i < 3; ++i) outpostVerifies(dir_, *key, "p256-2026");
}

}  // namespace
}  // namespace outpost::security
