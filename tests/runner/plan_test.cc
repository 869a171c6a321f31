// planRun: how a command's request and a worker template become the exact argv, environment,
// directories and limits of a run, and which requests are refused.
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_printers.h"
#include "outpost/runner/plan.h"

namespace outpost::runner {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Key;
using ::testing::Not;

constexpr const char* kRunId = "0190a5d2-7c3e-7abc-8def-0123456789ab";
constexpr const char* kWorkDir = "/var/lib/outpost/runs";
const std::string kRunDir = std::string(kWorkDir) + "/" + kRunId;

TemplateConfig ingestTemplate() {
  TemplateConfig t;
  t.name = "ingest";
  t.argv = {"datahub",  "--source={source}", "--level",      "{level}",
            "{run_id}", "{run_dir}",         "{recipe_file}"};
  t.params["source"] = ParamSpec{"[a-z]+", std::nullopt};
  t.params["level"] = ParamSpec{"(debug|info|warn)", "info"};
  t.default_timeout = minutes(30);
  t.max_timeout = hours(2);
  t.kill_grace = seconds(7);
  return t;
}

RunRequest request(std::map<std::string, std::string> args = {{"source", "mysql"}}) {
  RunRequest r;
  r.run_id = kRunId;
  r.job_id = "job-42";
  r.attempt = 3;
  r.args = std::move(args);
  r.recipe = "source: mysql\n";
  return r;
}

// NAME=value entries as a map; fails the test if a name appears twice.
std::map<std::string, std::string> envOf(const LaunchPlan& plan) {
  std::map<std::string, std::string> out;
  for (const auto& kv : plan.env) {
    auto eq = kv.find('=');
    EXPECT_NE(eq, std::string::npos) << kv;
    auto [it, inserted] = out.emplace(kv.substr(0, eq), kv.substr(eq + 1));
    EXPECT_TRUE(inserted) << "duplicate env name " << it->first;
  }
  return out;
}

LaunchPlan planOk(const TemplateConfig& t, const RunRequest& r,
                  const Environment& worker_env = {}) {
  auto plan = planRun(t, r, worker_env, kWorkDir);
  EXPECT_TRUE(plan.has_value()) << plan.error();
  return plan.value_or(LaunchPlan{});
}

std::string planError(const TemplateConfig& t, const RunRequest& r,
                      const Environment& worker_env = {}) {
  auto plan = planRun(t, r, worker_env, kWorkDir);
  EXPECT_FALSE(plan.has_value());
  return plan.has_value() ? "" : plan.error();
}

// ---------------------------------------------------------------------------------------------
// argv

TEST(PlanArgv, PlaceholdersAreFilledFromArgsAndDefaults) {
  LaunchPlan p = planOk(ingestTemplate(), request());
  ASSERT_EQ(p.argv.size(), 7u);
  EXPECT_EQ(p.argv[0], "datahub");
  EXPECT_EQ(p.argv[1], "--source=mysql");
  EXPECT_EQ(p.argv[3], "info");  // default
}

TEST(PlanArgv, GivenArgOverridesTheDefault) {
  LaunchPlan p = planOk(ingestTemplate(), request({{"source", "pg"}, {"level", "debug"}}));
  EXPECT_EQ(p.argv[1], "--source=pg");
  EXPECT_EQ(p.argv[3], "debug");
}

TEST(PlanArgv, BuiltInPlaceholdersNameTheRunAndItsDirectory) {
  LaunchPlan p = planOk(ingestTemplate(), request());
  EXPECT_EQ(p.argv[4], kRunId);
  EXPECT_EQ(p.argv[5], kRunDir);
  EXPECT_EQ(p.argv[6], kRunDir + "/recipe");
}

TEST(PlanArgv, SeveralPlaceholdersInOneArgumentAreAllFilled) {
  TemplateConfig t;
  t.name = "t";
  t.argv = {"x", "{a}-{b}:{a}", "pre{run_id}post"};
  t.params["a"] = ParamSpec{"[a-z]+", std::nullopt};
  t.params["b"] = ParamSpec{"[a-z]+", std::nullopt};
  LaunchPlan p = planOk(t, request({{"a", "one"}, {"b", "two"}}));
  EXPECT_THAT(p.argv, ElementsAre("x", "one-two:one", std::string("pre") + kRunId + "post"));
}

TEST(PlanArgv, ValueThatLooksLikeAPlaceholderStaysLiteral) {
  TemplateConfig t;
  t.name = "t";
  t.argv = {"x", "{a}{b}", "{b}"};
  t.params["a"] = ParamSpec{".*", std::nullopt};
  t.params["b"] = ParamSpec{".*", std::nullopt};
  LaunchPlan p = planOk(t, request({{"a", "{b}"}, {"b", "{run_id}"}}));
  EXPECT_THAT(p.argv, ElementsAre("x", "{b}{run_id}", "{run_id}"));
}

TEST(PlanArgv, TextWithoutPlaceholdersIsCopiedUnchanged) {
  TemplateConfig t;
  t.name = "t";
  t.argv = {"sh", "-c", "echo '{not a placeholder}' { } {1x}"};
  LaunchPlan p = planOk(t, request({}));
  EXPECT_THAT(p.argv, ElementsAre("sh", "-c", "echo '{not a placeholder}' { } {1x}"));
}

// ---------------------------------------------------------------------------------------------
// Refused arguments and run ids

TEST(PlanArgs, MissingRequiredArgIsRefusedByName) {
  EXPECT_THAT(planError(ingestTemplate(), request({})),
              AllOf(HasSubstr("argument 'source' is required"), HasSubstr("'ingest'")));
}

TEST(PlanArgs, UndeclaredArgIsRefusedByName) {
  EXPECT_THAT(planError(ingestTemplate(), request({{"source", "mysql"}, {"extra", "1"}})),
              AllOf(HasSubstr("argument 'extra' is not a parameter"), HasSubstr("'ingest'")));
}

TEST(PlanArgs, ArgMustMatchTheWholePattern) {
  EXPECT_THAT(planError(ingestTemplate(), request({{"source", "abc;rm"}})),
              AllOf(HasSubstr("argument 'source' does not match the pattern [a-z]+"),
                    HasSubstr("'ingest'")));
  EXPECT_THAT(planError(ingestTemplate(), request({{"source", ";abc"}})),
              HasSubstr("argument 'source'"));
  EXPECT_THAT(planError(ingestTemplate(), request({{"source", "abc\nrm -rf /"}})),
              HasSubstr("argument 'source'"));
  EXPECT_THAT(planError(ingestTemplate(), request({{"source", ""}})),
              HasSubstr("argument 'source'"));
}

TEST(PlanArgs, AlternationPatternMatchesOnlyWholeAlternatives) {
  EXPECT_THAT(planError(ingestTemplate(), request({{"source", "a"}, {"level", "infox"}})),
              HasSubstr("argument 'level'"));
  EXPECT_TRUE(planRun(ingestTemplate(), request({{"source", "a"}, {"level", "warn"}}), {}, kWorkDir)
                  .has_value());
}

TEST(PlanArgs, DefaultPatternRefusesShellMetacharacters) {
  TemplateConfig t;
  t.name = "t";
  t.argv = {"x", "{p}"};
  t.params["p"] = ParamSpec{};  // the default pattern
  EXPECT_TRUE(
      planRun(t, request({{"p", "db.example.com:5432/orders@v=1+x"}}), {}, kWorkDir).has_value());
  for (const char* bad : {"a b", "a;b", "$(id)", "`id`", "a|b", "a&b", "a'b", "a\"b", "a\\b"}) {
    EXPECT_THAT(planError(t, request({{"p", bad}})), HasSubstr("argument 'p'")) << bad;
  }
}

// Argument values are any length a Kafka message holds. std::regex recursed once per character
// (a 200 KB value overflowed the stack and killed the worker) and backtracks exponentially on
// nested repeats; the patterns are matched in linear time, without recursion, whatever the value.
TEST(PlanArgs, AValueOfAnyLengthIsMatchedWithoutRecursingOnIt) {
  auto t = ingestTemplate();
  auto got = planRun(t, request({{"source", std::string(4 << 20, 'a')}}), {}, kWorkDir);
  ASSERT_TRUE(got.has_value()) << got.error();
  got = planRun(t, request({{"source", std::string(4 << 20, 'a') + "!"}}), {}, kWorkDir);
  ASSERT_FALSE(got.has_value());
  EXPECT_THAT(got.error(), HasSubstr("does not match the pattern"));
  // A pattern that makes a backtracking matcher take 2^n steps on "aaaa...!".
  t.params["source"] = ParamSpec{"(a+)+", std::nullopt};
  got = planRun(t, request({{"source", std::string(64, 'a') + "!"}}), {}, kWorkDir);
  EXPECT_FALSE(got.has_value());
}

TEST(PlanArgs, AnUndeclaredArgumentIsQuotedOnlyAsAShortEscapedExcerpt) {
  auto got =
      planRun(ingestTemplate(),
              request({{"source", "mysql"}, {std::string(5000, 'x') + "\x01", "1"}}), {}, kWorkDir);
  ASSERT_FALSE(got.has_value());
  EXPECT_THAT(got.error(), HasSubstr("is not a parameter"));
  EXPECT_LT(got.error().size(), 200u) << got.error();
}

TEST(PlanRunId, NonUuidRunIdIsRefused) {
  for (const char* bad : {"../etc", "", "not-a-uuid", "0190a5d2-7c3e-7abc-8def-0123456789ab/..",
                          "../../../../../../../../../../../etc"}) {
    RunRequest r = request();
    r.run_id = bad;
    EXPECT_THAT(planError(ingestTemplate(), r), HasSubstr("run_id is not a UUID")) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// Directories

TEST(PlanDirs, RunDirIsUnderTheWorkDirAndIsTheDefaultWorkingDir) {
  LaunchPlan p = planOk(ingestTemplate(), request());
  EXPECT_EQ(p.run_id, kRunId);
  EXPECT_EQ(p.run_dir, kRunDir);
  EXPECT_EQ(p.working_dir, kRunDir);
}

TEST(PlanDirs, TemplateWorkingDirIsUsedWhenSet) {
  TemplateConfig t = ingestTemplate();
  t.working_dir = "/srv/ingest";
  LaunchPlan p = planOk(t, request());
  EXPECT_EQ(p.working_dir, "/srv/ingest");
  EXPECT_EQ(p.run_dir, kRunDir);
}

// ---------------------------------------------------------------------------------------------
// Environment

const Environment kWorkerEnv = {{"PATH", "/usr/bin:/bin"},
                                {"HOME", "/home/outpost"},
                                {"AWS_SECRET_ACCESS_KEY", "worker-secret"},
                                {"OUTPOST_KAFKA__PROPERTIES__SASL_PASSWORD", "kafka-secret"}};

TEST(PlanEnv, OnlyPassthroughNamesOfTheWorkerEnvironmentReachThePlan) {
  TemplateConfig t = ingestTemplate();
  t.env_passthrough = {"PATH", "LANG"};  // LANG is not set on the worker
  auto env = envOf(planOk(t, request(), kWorkerEnv));
  EXPECT_EQ(env.at("PATH"), "/usr/bin:/bin");
  EXPECT_THAT(env, Not(Contains(Key("HOME"))));
  EXPECT_THAT(env, Not(Contains(Key("LANG"))));
  EXPECT_THAT(env, Not(Contains(Key("AWS_SECRET_ACCESS_KEY"))));
  EXPECT_THAT(env, Not(Contains(Key("OUTPOST_KAFKA__PROPERTIES__SASL_PASSWORD"))));
}

TEST(PlanEnv, DefaultPassthroughKeepsPathAndHomeButNotSecrets) {
  auto env = envOf(planOk(ingestTemplate(), request(), kWorkerEnv));
  EXPECT_EQ(env.at("PATH"), "/usr/bin:/bin");
  EXPECT_EQ(env.at("HOME"), "/home/outpost");
  EXPECT_THAT(env, Not(Contains(Key("AWS_SECRET_ACCESS_KEY"))));
}

TEST(PlanEnv, TemplateEnvIsAddedAndWinsOverPassthrough) {
  TemplateConfig t = ingestTemplate();
  t.env = {{"DATAHUB_TELEMETRY_ENABLED", "false"}, {"PATH", "/opt/datahub/bin"}};
  auto env = envOf(planOk(t, request(), kWorkerEnv));
  EXPECT_EQ(env.at("DATAHUB_TELEMETRY_ENABLED"), "false");
  EXPECT_EQ(env.at("PATH"), "/opt/datahub/bin");
}

TEST(PlanEnv, CommandEnvIsAddedWhenAcceptedByAGlob) {
  TemplateConfig t = ingestTemplate();
  t.accept_env = {"DATAHUB_*", "EXACT_NAME"};
  RunRequest r = request();
  r.env = {{"DATAHUB_GMS_URL", "http://gms:8080"}, {"EXACT_NAME", "1"}};
  auto env = envOf(planOk(t, r));
  EXPECT_EQ(env.at("DATAHUB_GMS_URL"), "http://gms:8080");
  EXPECT_EQ(env.at("EXACT_NAME"), "1");
}

TEST(PlanEnv, CommandEnvNotAcceptedIsRefusedByName) {
  TemplateConfig t = ingestTemplate();
  t.accept_env = {"DATAHUB_*"};
  RunRequest r = request();
  r.env = {{"LD_PRELOAD", "/tmp/evil.so"}};
  EXPECT_THAT(planError(t, r), AllOf(HasSubstr("env 'LD_PRELOAD' is not accepted"),
                                     HasSubstr("'ingest'"), HasSubstr("accept_env")));
}

TEST(PlanEnv, WithoutAcceptEnvNoCommandEnvIsAccepted) {
  RunRequest r = request();
  r.env = {{"ANYTHING", "x"}};
  EXPECT_THAT(planError(ingestTemplate(), r), HasSubstr("env 'ANYTHING' is not accepted"));
}

TEST(PlanEnv, InvalidEnvNameIsRefusedEvenWhenEverythingIsAccepted) {
  TemplateConfig t = ingestTemplate();
  t.accept_env = {"*"};
  for (const char* bad : {"A=B", "1ABC", "A-B", "", "A B", "A\nB"}) {
    RunRequest r = request();
    r.env = {{bad, "x"}};
    EXPECT_THAT(planError(t, r), HasSubstr("is not valid")) << "'" << bad << "'";
  }
}

TEST(PlanEnv, OutpostVariablesDescribeTheRun) {
  auto env = envOf(planOk(ingestTemplate(), request()));
  EXPECT_EQ(env.at("OUTPOST_RUN_ID"), kRunId);
  EXPECT_EQ(env.at("OUTPOST_RUN_DIR"), kRunDir);
  EXPECT_EQ(env.at("OUTPOST_JOB_ID"), "job-42");
  EXPECT_EQ(env.at("OUTPOST_ATTEMPT"), "3");
  EXPECT_EQ(env.at("OUTPOST_RECIPE_FILE"), kRunDir + "/recipe");
}

TEST(PlanEnv, CommandCannotOverrideOutpostVariables) {
  TemplateConfig t = ingestTemplate();
  t.accept_env = {"*"};
  RunRequest r = request();
  r.env = {{"OUTPOST_RUN_ID", "spoofed"}, {"OUTPOST_RUN_DIR", "/etc"}};
  auto env = envOf(planOk(t, r));
  EXPECT_EQ(env.at("OUTPOST_RUN_ID"), kRunId);
  EXPECT_EQ(env.at("OUTPOST_RUN_DIR"), kRunDir);
}

// ---------------------------------------------------------------------------------------------
// Recipe

TEST(PlanRecipe, FileDeliveryCarriesTheRecipeAndNamesTheFile) {
  LaunchPlan p = planOk(ingestTemplate(), request());
  EXPECT_EQ(p.recipe_delivery, RecipeDelivery::kFile);
  EXPECT_EQ(p.recipe, "source: mysql\n");
  EXPECT_THAT(envOf(p), Not(Contains(Key("OUTPOST_RECIPE"))));
}

TEST(PlanRecipe, EnvDeliveryPutsTheRecipeInTheConfiguredVariable) {
  TemplateConfig t = ingestTemplate();
  t.argv = {"x"};
  t.recipe = RecipeDelivery::kEnv;
  t.recipe_env = "INGEST_RECIPE";
  LaunchPlan p = planOk(t, request());
  auto env = envOf(p);
  EXPECT_EQ(p.recipe_delivery, RecipeDelivery::kEnv);
  EXPECT_EQ(env.at("INGEST_RECIPE"), "source: mysql\n");
  EXPECT_THAT(env, Not(Contains(Key("OUTPOST_RECIPE_FILE"))));
}

TEST(PlanRecipe, StdinAndNoneDeliveriesSetNoRecipeVariables) {
  for (RecipeDelivery d : {RecipeDelivery::kStdin, RecipeDelivery::kNone}) {
    TemplateConfig t = ingestTemplate();
    t.argv = {"x"};
    t.recipe = d;
    LaunchPlan p = planOk(t, request());
    auto env = envOf(p);
    EXPECT_EQ(p.recipe_delivery, d);
    EXPECT_THAT(env, Not(Contains(Key("OUTPOST_RECIPE_FILE"))));
    EXPECT_THAT(env, Not(Contains(Key("OUTPOST_RECIPE"))));
  }
}

// ---------------------------------------------------------------------------------------------
// Limits

TEST(PlanLimits, ZeroTimeoutMeansTheTemplateDefault) {
  EXPECT_EQ(planOk(ingestTemplate(), request()).timeout, minutes(30));
}

TEST(PlanLimits, TimeoutWithinTheMaximumIsKept) {
  RunRequest r = request();
  r.timeout = milliseconds(1500);
  EXPECT_EQ(planOk(ingestTemplate(), r).timeout, milliseconds(1500));
}

TEST(PlanLimits, TimeoutLongerThanTheMaximumIsCapped) {
  RunRequest r = request();
  r.timeout = hours(100);
  EXPECT_EQ(planOk(ingestTemplate(), r).timeout, hours(2));
}

TEST(PlanLimits, NegativeTimeoutIsRefused) {
  RunRequest r = request();
  r.timeout = milliseconds(-1);
  EXPECT_THAT(planError(ingestTemplate(), r), HasSubstr("timeout_ms is negative"));
}

TEST(PlanLimits, KillGraceAndKeepRunDirComeFromTheTemplate) {
  TemplateConfig t = ingestTemplate();
  t.keep_run_dir_on_failure = true;
  LaunchPlan p = planOk(t, request());
  EXPECT_EQ(p.kill_grace, seconds(7));
  EXPECT_TRUE(p.keep_run_dir_on_failure);
}

}  // namespace
}  // namespace outpost::runner
