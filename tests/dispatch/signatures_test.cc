// Signed commands in the run lifecycle, on fakes (fakes.h): under require only what a trusted key
// signed runs and every refusal names its check; under warn everything runs and what require would
// refuse is reported; another pool's command is skipped whatever its signature; key policies.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes.h"
#include "outpost/dispatch/signatures.h"

namespace outpost::dispatch::test {
namespace {

using security::SigningKey;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Signer {
  SigningKey key = SigningKey::generateEd25519();
  std::string kid = "k1";

  std::shared_ptr<const security::KeySet> keySet() const {
    return std::make_shared<const security::KeySet>(
        *security::KeySet::parseJwks(*security::addToJwks("", key.publicJwk(kid))));
  }
  std::vector<events::Header> sign(
      const Harness& h, const std::string& value, const std::string& run_id,
      const std::function<void(security::CommandClaims&)>& change = {}) const {
    auto claims = security::claimsFor(value, h.config.topics.jobs, {h.config.worker.pool},
                                      security::CommandKind::kJob, run_id, "protobuf", "test",
                                      h.clock.now(), std::chrono::minutes(5));
    if (change) change(claims);
    return {{"outpost-signature", security::signCommandToken(key, kid, claims)}};
  }
};

SignatureSettings settings(CommandSigning mode, const Signer& signer,
                           std::map<std::string, KeyPolicy> policies = {}) {
  SignatureSettings s;
  s.mode = mode;
  s.keys = signer.keySet();
  s.policies = std::move(policies);
  return s;
}

TEST(DispatcherSignatures, RequireRunsASignedCommandAndRefusesAnUnsignedOneNamingTheCheck) {
  Harness h;
  Signer signer;
  h.dispatcher->setSignatures(settings(CommandSigning::kRequire, signer));
  auto good = command("ok");
  const auto value = good.SerializeAsString();
  h.sendBytes(value, 0, signer.sign(h, value, good.run_id()));
  EXPECT_NE(h.executor.find(good.run_id()), nullptr) << "a signed command runs";

  auto bare = command("ok");
  h.send(bare);
  EXPECT_EQ(h.executor.find(bare.run_id()), nullptr);
  auto t = h.terminalsOf(bare.run_id());
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state(), v1::REJECTED);
  EXPECT_THAT(t[0].message(), HasSubstr("signature: unsigned"));
  EXPECT_EQ(h.deadLetters(), 1u);
  EXPECT_THAT(h.observer.calls, ::testing::Contains("rejected signature_missing"));
}

TEST(DispatcherSignatures, WarnRunsWhatRequireWouldRefuseAndReportsIt) {
  Harness h;
  Signer signer;
  h.dispatcher->setSignatures(settings(CommandSigning::kWarn, signer));
  auto bare = command("ok");
  h.send(bare);
  EXPECT_NE(h.executor.find(bare.run_id()), nullptr);
  EXPECT_EQ(h.deadLetters(), 0u);
  EXPECT_THAT(h.observer.calls, ElementsAre("signature warning signature_missing"));
}

TEST(DispatcherSignatures, TheIdInsideTheValueMustBeTheSignedOne) {
  Harness h;
  Signer signer;
  h.dispatcher->setSignatures(settings(CommandSigning::kRequire, signer));
  auto c = command("ok");
  const auto value = c.SerializeAsString();
  h.sendBytes(value, 0,
              signer.sign(h, value, c.run_id(), [](auto& claims) { claims.jti = "another"; }));
  EXPECT_THAT(h.statesOf(c.run_id()), ElementsAre(v1::REJECTED));
  EXPECT_THAT(h.terminalsOf(c.run_id())[0].message(), HasSubstr("signed for id another"));
}

TEST(DispatcherSignatures, AnotherPoolsCommandIsSkippedWhateverItsSignature) {
  Harness h;
  Signer signer;
  h.dispatcher->setSignatures(settings(CommandSigning::kRequire, signer));
  auto c = command("ok");
  c.set_pool("gpu");
  h.send(c);  // unsigned, and signed for no pool of ours: not ours to refuse
  EXPECT_TRUE(h.events().empty());
  EXPECT_EQ(h.deadLetters(), 0u);
  EXPECT_EQ(h.dispatcher->skippedForOtherPools(), 1u);
}

TEST(DispatcherSignatures, AKeysPolicyLimitsTemplatesActionsAndPools) {
  Harness h;
  Signer signer;
  KeyPolicy only_ok;
  only_ok.templates = {"o*"};
  only_ok.actions = {"run"};
  h.dispatcher->setSignatures(settings(CommandSigning::kRequire, signer, {{"k1", only_ok}}));
  auto allowed = command("ok");
  auto v1 = allowed.SerializeAsString();
  h.sendBytes(v1, 0, signer.sign(h, v1, allowed.run_id()));
  EXPECT_NE(h.executor.find(allowed.run_id()), nullptr);
  auto refused = command("sleep", {{"secs", "1"}});
  auto v2 = refused.SerializeAsString();
  h.sendBytes(v2, 0, signer.sign(h, v2, refused.run_id()));
  EXPECT_THAT(h.terminalsOf(refused.run_id())[0].message(),
              HasSubstr("key k1 may not run template sleep"));

  security::VerifiedCommand v;
  v.kid = "k1";
  auto s = settings(CommandSigning::kRequire, signer, {{"k1", only_ok}});
  EXPECT_THAT(checkKeyPolicy(v, "drain", "", "main", s)->message,
              HasSubstr("key k1 may not drain"));
  only_ok.pools = {"etl"};
  s.policies["k1"] = only_ok;
  EXPECT_THAT(checkKeyPolicy(v, "run", "ok", "main", s)->message,
              HasSubstr("may not sign for pool main"));
  v.kid = "k2";  // no policy: anything
  EXPECT_EQ(checkKeyPolicy(v, "drain", "", "main", s), std::nullopt);
}

// The pool's record of first uses, as the test says it is.
struct FakeUses : UseRecords {
  std::map<std::string, consumer::ReadAt> first;
  std::vector<
      std::pair<std::string, std::function<void(std::expected<consumer::ReadAt, std::string>)>>>
      pending;
  std::optional<consumer::ReadAt> firstUse(const std::string& run_id) const override {
    auto it = first.find(run_id);
    return it == first.end() ? std::nullopt : std::optional(it->second);
  }
  void recordUse(const std::string& run_id, const consumer::ReadAt& at,
                 std::function<void(std::expected<consumer::ReadAt, std::string>)> done) override {
    first.try_emplace(run_id, at);
    pending.emplace_back(run_id, std::move(done));
  }
  // The use records are read back: each gets the first use then known.
  void readBack() {
    for (auto& [run_id, done] : std::exchange(pending, {})) done(first.at(run_id));
  }
};

// A worker requiring signatures, with single use recorded in `uses`.
class DispatcherSingleUse : public ::testing::Test {
 protected:
  void SetUp() override {
    h.dispatcher->setSignatures(settings(CommandSigning::kRequire, signer));
    h.dispatcher->setUseRecords(&uses);
  }
  // Sends `c` signed; returns its offset.
  std::int64_t sendSigned(const v1::JobCommand& c, std::int32_t partition = 0) {
    const auto value = c.SerializeAsString();
    return h.sendBytes(value, partition, signer.sign(h, value, c.run_id()));
  }

  Harness h;
  Signer signer;
  FakeUses uses;
};

TEST_F(DispatcherSingleUse, ASignedCommandRunsOnceItsFirstUseIsReadBackAndACopyIsAReplay) {
  auto c = command("sleep", {{"secs", "5"}});
  const auto first = sendSigned(c);
  EXPECT_EQ(h.executor.find(c.run_id()), nullptr) << "not before its use is read back";
  uses.readBack();
  h.settle();
  ASSERT_NE(h.executor.find(c.run_id()), nullptr);
  EXPECT_EQ(uses.first.at(c.run_id()), (consumer::ReadAt{h.jobs(0), first}));

  // A copy at another offset (and one on another partition), while the first runs: refused,
  // without a second terminal event for the run.
  sendSigned(c, 0);
  sendSigned(c, 1);
  EXPECT_EQ(h.deadLetters(), 2u);
  EXPECT_TRUE(h.terminalsOf(c.run_id()).empty());
  EXPECT_EQ(h.executor.launched.size(), 1u);
  EXPECT_THAT(h.observer.calls, ::testing::Contains("rejected replayed"));
  // And after it ended.
  h.succeed(c.run_id());
  sendSigned(c, 1);
  EXPECT_EQ(h.deadLetters(), 3u);
  EXPECT_THAT(h.statesOf(c.run_id()), ElementsAre(v1::STARTED, v1::SUCCEEDED));
}

TEST_F(DispatcherSingleUse, OfTwoCopiesReadAtOnceOnlyTheOneRecordedFirstRuns) {
  auto c = command("ok");
  sendSigned(c);
  // Another worker's copy was recorded first: this worker learns it when its own is read back.
  uses.first[c.run_id()] = {h.jobs(1), 40};
  uses.readBack();
  h.settle();
  EXPECT_EQ(h.executor.find(c.run_id()), nullptr);
  EXPECT_EQ(h.deadLetters(), 1u);
  EXPECT_TRUE(h.events().empty());
}

TEST_F(DispatcherSingleUse, AUseThatCannotBeReadBackEndsTheRunFailedWithoutStarting) {
  auto c = command("ok");
  sendSigned(c);
  for (auto& [run_id, done] : std::exchange(uses.pending, {})) {
    done(std::unexpected("the runs topic did not give back its use record in time"));
  }
  h.settle();
  EXPECT_THAT(h.statesOf(c.run_id()), ElementsAre(v1::FAILED));
  EXPECT_THAT(h.terminalsOf(c.run_id())[0].message(), HasSubstr("used before"));
  EXPECT_EQ(h.executor.launched.size(), 0u);
}

TEST(SingleUse, AnIdIsUsedOnceWhereverElseItComesAgainUntilItExpires) {
  SingleUse uses;
  const auto t0 = std::chrono::system_clock::time_point{} + std::chrono::hours(1000);
  const auto until = t0 + std::chrono::minutes(5);
  EXPECT_TRUE(uses.use("c1", "control[0]@7", until, t0));
  EXPECT_TRUE(uses.use("c1", "control[0]@7", until, t0 + std::chrono::seconds(1)))
      << "the same record read again";
  EXPECT_FALSE(uses.use("c1", "control[0]@9", until, t0 + std::chrono::minutes(4))) << "a copy";
  EXPECT_TRUE(uses.use("c2", "control[0]@9", until, t0));
  // Past its expiry it is forgotten (its token is refused as expired by then anyway).
  EXPECT_TRUE(uses.use("c3", "control[0]@10", until + std::chrono::minutes(10),
                       until + std::chrono::seconds(1)));
  EXPECT_EQ(uses.size(), 1u);
}

}  // namespace
}  // namespace outpost::dispatch::test
