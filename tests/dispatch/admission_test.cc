// admit(): may this command run here, and with what. Pure: a command and a configuration in, a
// plan and the secret references to resolve (or the reason why not) out.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/common/utf8.h"
#include "outpost/dispatch/admission.h"

namespace outpost::dispatch {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class AdmissionTest : public ::testing::Test {
 protected:
  AdmissionTest() {
    TemplateConfig ingest;
    ingest.name = "ingest";
    ingest.argv = {"datahub", "ingest", "--source", "{source}", "-c", "{recipe_file}"};
    ingest.params["source"] = ParamSpec{"[a-z]+", std::nullopt};
    ingest.accept_env = {"DB_*"};
    ingest.env = {{"API_TOKEN", "${API_TOKEN}"}};
    ingest.secrets = {"API_*", "DB_*", "aws-sm:prod/*"};
    templates_["ingest"] = ingest;
    TemplateConfig plain;
    plain.name = "plain";
    plain.argv = {"true"};
    plain.recipe = RecipeDelivery::kNone;
    templates_["plain"] = plain;
    policy_ = AdmissionPolicy{&templates_, &env_, "/var/lib/outpost/runs"};
  }

  v1::JobCommand cmd(const std::string& type = "ingest") {
    v1::JobCommand c;
    c.set_run_id("0190a5d2-7c3e-7abc-8def-0123456789ab");
    c.set_job_id("job-1");
    c.set_job_type(type);
    if (type == "ingest") (*c.mutable_args())["source"] = "mysql";
    return c;
  }

  std::map<std::string, TemplateConfig> templates_;
  Environment env_{{"PATH", "/usr/bin"}, {"HOME", "/root"}};
  AdmissionPolicy policy_;
};

TEST_F(AdmissionTest, AKnownTemplateWithGoodArgumentsIsAdmittedWithItsPlan) {
  auto a = admit(cmd(), 1, policy_);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->tmpl, &templates_.at("ingest"));
  EXPECT_EQ(a->plan.argv[3], "mysql");
  EXPECT_EQ(a->plan.run_dir, "/var/lib/outpost/runs/0190a5d2-7c3e-7abc-8def-0123456789ab");
}

TEST_F(AdmissionTest, TheAttemptReachesThePlan) {
  auto a = admit(cmd(), 3, policy_);
  ASSERT_TRUE(a.has_value());
  EXPECT_THAT(a->plan.env, ::testing::Contains("OUTPOST_ATTEMPT=3"));
}

TEST_F(AdmissionTest, AnUnknownTemplateIsRefusedByName) {
  auto a = admit(cmd("rm-rf"), 1, policy_);
  ASSERT_FALSE(a.has_value());
  EXPECT_THAT(a.error().message, HasSubstr("unknown job_type 'rm-rf'"));
  EXPECT_EQ(a.error().reason, Refusal::kUnknownTemplate);
}

TEST_F(AdmissionTest, ASecretReferenceInAnArgumentIsRefused) {
  auto c = cmd();
  (*c.mutable_args())["source"] = "${DB_PASSWORD}";
  auto a = admit(c, 1, policy_);
  ASSERT_FALSE(a.has_value());
  EXPECT_THAT(a.error().message, HasSubstr("secrets never go on a command line"));
  EXPECT_EQ(a.error().reason, Refusal::kSecretInArguments);
  (*c.mutable_args())["source"] = "secret:/prod/db";
  EXPECT_FALSE(admit(c, 1, policy_).has_value());
}

TEST_F(AdmissionTest, AnArgumentOutsideItsPatternIsRefused) {
  auto c = cmd();
  (*c.mutable_args())["source"] = "mysql; rm -rf /";
  auto a = admit(c, 1, policy_);
  ASSERT_FALSE(a.has_value());
  EXPECT_THAT(a.error().message, HasSubstr("does not match the pattern"));
  EXPECT_EQ(a.error().reason, Refusal::kInvalidArguments);
}

TEST_F(AdmissionTest, AnEnvironmentNameTheTemplateDoesNotAcceptIsRefused) {
  auto c = cmd();
  (*c.mutable_env())["LD_PRELOAD"] = "/tmp/evil.so";
  auto a = admit(c, 1, policy_);
  ASSERT_FALSE(a.has_value());
  EXPECT_THAT(a.error().message, HasSubstr("'LD_PRELOAD' is not accepted"));
  EXPECT_EQ(a.error().reason, Refusal::kInvalidArguments);
}

TEST_F(AdmissionTest, SecretReferencesInEnvAndRecipeAreCollectedForResolving) {
  auto c = cmd();
  (*c.mutable_env())["DB_PASS"] = "${DB_PASSWORD}";
  c.set_recipe("password: ${aws-sm:prod/db#pw}\n");
  auto a = admit(c, 1, policy_);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  std::vector<std::string> refs;
  for (const auto& r : a->secrets) refs.push_back(r.text);
  EXPECT_THAT(refs, ::testing::UnorderedElementsAre("${API_TOKEN}", "${DB_PASSWORD}",
                                                    "${aws-sm:prod/db#pw}"));
}

TEST_F(AdmissionTest, ASecretTheTemplateDoesNotAllowIsRefusedNamingIt) {
  auto c = cmd();
  c.set_recipe("password: ${aws-sm:staging/db}\n");
  auto a = admit(c, 1, policy_);
  ASSERT_FALSE(a.has_value());
  EXPECT_THAT(a.error().message, HasSubstr("may not use the secret(s) ${aws-sm:staging/db}"));
  EXPECT_EQ(a.error().reason, Refusal::kSecretNotAllowed);
}

TEST_F(AdmissionTest, AMalformedReferenceIsRefusedNamingTheFieldNotQuotingIt) {
  auto c = cmd();
  c.set_recipe("user: x\npassword: ${hunter2-and-more \xff");
  auto a = admit(c, 1, policy_);
  ASSERT_FALSE(a.has_value());
  EXPECT_THAT(a.error().message, HasSubstr("recipe: "));
  EXPECT_THAT(a.error().message, HasSubstr("at byte 18"));
  EXPECT_EQ(a.error().reason, Refusal::kBadSecretReference);
  EXPECT_THAT(a.error().message, Not(HasSubstr("hunter2")));
  EXPECT_TRUE(isValidUtf8(a.error().message));
}

TEST_F(AdmissionTest, ARecipeIsNotScannedWhenTheTemplateDeliversNone) {
  auto c = cmd("plain");
  c.set_recipe("${not a reference at all");
  EXPECT_TRUE(admit(c, 1, policy_).has_value());
}

TEST_F(AdmissionTest, ResolvedValuesReplaceTheReferencesInEnvAndRecipe) {
  auto c = cmd();
  (*c.mutable_env())["DB_PASS"] = "x-${DB_PASSWORD}-y";
  c.set_recipe("password: ${DB_PASSWORD}\n");
  auto a = admit(c, 1, policy_);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  resolveInto(*a, c,
              {{"${DB_PASSWORD}", secrets::SecretValue("s3cret")},
               {"${API_TOKEN}", secrets::SecretValue("tok")}});
  EXPECT_THAT(a->plan.env, ::testing::Contains("DB_PASS=x-s3cret-y"));
  EXPECT_THAT(a->plan.env, ::testing::Contains("API_TOKEN=tok"));
  EXPECT_EQ(a->plan.recipe, "password: s3cret\n");
}

}  // namespace
}  // namespace outpost::dispatch
