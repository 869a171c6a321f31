// parseConfig / loadConfig / parseDuration: defaults, every section, unknown keys named by their
// full path, wrong types, OUTPOST_* overrides and the checks made on templates.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_printers.h"
#include "outpost/common/config.h"

namespace outpost {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The message parseConfig throws for `yaml` (with `env`), or "" when it does not throw.
std::string errorOf(const std::string& yaml, const Environment& env = {}) {
  try {
    parseConfig(yaml, env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// Defaults

TEST(ConfigDefaults, EmptyTextGivesDefaultsWithTopicsFromThePrefix) {
  Config c = parseConfig("", {});
  EXPECT_EQ(c.topics.prefix, "outpost.");
  EXPECT_EQ(c.topics.jobs, "outpost.jobs");
  EXPECT_EQ(c.topics.control, "outpost.control");
  EXPECT_EQ(c.topics.events, "outpost.events");
  EXPECT_EQ(c.topics.lineage, "outpost.lineage");
  EXPECT_EQ(c.topics.dlq, "outpost.dlq");
  EXPECT_EQ(c.topics.workers, "outpost.workers");
  EXPECT_EQ(c.topics.runs, "outpost.runs");
}

TEST(ConfigHttp, ListenIsLoopbackByDefaultAndTakesHostPortOrOff) {
  Config c = parseConfig("", {});
  EXPECT_TRUE(c.http.enabled());
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.port, 9464);
  EXPECT_EQ(c.http.live_timeout, seconds(30));
  c = parseConfig("http: {listen: '0.0.0.0:8080', live_timeout: 15s}", {});
  EXPECT_EQ(c.http.host, "0.0.0.0");
  EXPECT_EQ(c.http.port, 8080);
  EXPECT_EQ(c.http.live_timeout, seconds(15));
  c = parseConfig("http: {listen: '[::1]:0'}", {});
  EXPECT_EQ(c.http.host, "::1");
  EXPECT_EQ(c.http.port, 0);
  c = parseConfig("", {{"OUTPOST_HTTP__LISTEN", "off"}});
  EXPECT_FALSE(c.http.enabled());
}

TEST(ConfigHttp, ABadListenOrTimeoutNamesTheKey) {
  for (const char* bad : {"9464", "localhost", "host:port", ":9464", "127.0.0.1:70000"}) {
    EXPECT_THAT(errorOf(std::string("http: {listen: '") + bad + "'}"),
                AllOf(HasSubstr("'http.listen' must be host:port"), HasSubstr(bad)))
        << bad;
  }
  EXPECT_THAT(errorOf("http: {live_timeout: 100ms}"),
              HasSubstr("'http.live_timeout' (100 ms) must be longer than 10000 ms"));
  EXPECT_THAT(errorOf("http: {port: 9464}"), HasSubstr("http.port"));
}

// Settings that parse one by one but contradict each other are refused (outpost check and
// outpost run alike): the poll thread's waits against what watches it.
TEST(ConfigWaits, LivenessAndTheGroupMustOutlastThePollThreadsWaits) {
  EXPECT_THAT(errorOf("http: {live_timeout: 10s}"),
              HasSubstr("the longest wait of the poll thread that the probes are not told of"));
  EXPECT_NO_THROW(parseConfig("http: {live_timeout: 11s}", {}));
  EXPECT_THAT(errorOf("worker: {revoke_timeout: 60s}\n"
                      "kafka: {consumer_properties: {max.poll.interval.ms: '30000'}}"),
              AllOf(HasSubstr("'worker.revoke_timeout' (60000 ms)"),
                    HasSubstr("max.poll.interval.ms (30000 ms)")));
  EXPECT_THAT(errorOf("worker: {revoke_timeout: 301s}"), HasSubstr("300000 ms"));
  EXPECT_NO_THROW(parseConfig("worker: {revoke_timeout: 299s}", {}));
  // A lease must outlast a status that is a moment late.
  EXPECT_THAT(errorOf("worker: {status_interval: 20s}"),
              AllOf(HasSubstr("'worker.lease_timeout' (30000 ms)"),
                    HasSubstr("'worker.status_interval' (20000 ms)")));
  EXPECT_NO_THROW(parseConfig("worker: {status_interval: 20s, lease_timeout: 60s}", {}));
}

TEST(ConfigLog, FormatIsAutoByDefaultAndOnlyTextJsonOrAuto) {
  EXPECT_EQ(parseConfig("", {}).log.format, "auto");
  EXPECT_EQ(parseConfig("log: {format: json}", {}).log.format, "json");
  EXPECT_EQ(parseConfig("", {{"OUTPOST_LOG__FORMAT", "text"}}).log.format, "text");
  EXPECT_THAT(errorOf("log: {format: xml}"),
              AllOf(HasSubstr("'log.format' must be auto, text or json"), HasSubstr("xml")));
  EXPECT_THAT(errorOf("log: {level: debug}"), HasSubstr("log.level"));
}

TEST(ConfigDefaults, WorkerHasPoolSlotsWorkDirAndAGeneratedId) {
  Config c = parseConfig("", {});
  EXPECT_EQ(c.worker.pool, "default");
  EXPECT_EQ(c.worker.slots, 4u);
  EXPECT_EQ(c.worker.work_dir, "/tmp/outpost-runs");
  EXPECT_EQ(c.worker.log_level, "info");
  EXPECT_EQ(c.worker.drain_timeout, seconds(60));
  EXPECT_EQ(c.worker.revoke_timeout, seconds(20));
  EXPECT_EQ(c.worker.status_interval, seconds(10));
  EXPECT_EQ(c.worker.lease_timeout, seconds(30));
  ASSERT_FALSE(c.worker.id.empty());
  // "<host>-<pid>"
  EXPECT_THAT(c.worker.id, ::testing::EndsWith("-" + std::to_string(getpid())));
}

TEST(ConfigDefaults, OtherSectionsHaveTheirDocumentedDefaults) {
  Config c = parseConfig("", {});
  EXPECT_EQ(c.kafka.bootstrap_servers, "127.0.0.1:9092");
  EXPECT_TRUE(c.kafka.properties.empty());
  EXPECT_EQ(c.output.tail_bytes, 64u * 1024u);
  EXPECT_TRUE(c.lineage.enabled);
  EXPECT_EQ(c.lineage.job_namespace, "outpost");
  EXPECT_TRUE(c.templates.empty());
}

TEST(ConfigDefaults, EmptySectionsAreAllowed) {
  Config c = parseConfig("worker:\nkafka:\ntopics:\noutput:\nlineage:\ntemplates:\n", {});
  EXPECT_EQ(c.worker.slots, 4u);
  EXPECT_EQ(c.topics.jobs, "outpost.jobs");
}

TEST(ConfigDefaults, TopicNamesFollowACustomPrefixUnlessSetExplicitly) {
  Config c = parseConfig("topics:\n  prefix: acme.\n  dlq: acme-dead-letters\n", {});
  EXPECT_EQ(c.topics.jobs, "acme.jobs");
  EXPECT_EQ(c.topics.events, "acme.events");
  EXPECT_EQ(c.topics.dlq, "acme-dead-letters");
}

TEST(ConfigDefaults, TemplateDefaultsApplyToOmittedTemplateKeys) {
  Config c = parseConfig("templates:\n  t:\n    argv: [echo, hi]\n", {});
  ASSERT_EQ(c.templates.count("t"), 1u);
  const TemplateConfig& t = c.templates.at("t");
  EXPECT_EQ(t.name, "t");
  EXPECT_EQ(t.argv, (std::vector<std::string>{"echo", "hi"}));
  EXPECT_EQ(t.recipe, RecipeDelivery::kFile);
  EXPECT_EQ(t.recipe_env, "OUTPOST_RECIPE");
  EXPECT_EQ(t.default_timeout, hours(1));
  EXPECT_EQ(t.max_timeout, hours(24));
  EXPECT_EQ(t.kill_grace, seconds(30));
  EXPECT_EQ(t.env_passthrough,
            (std::vector<std::string>{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"}));
  EXPECT_TRUE(t.accept_env.empty());
  EXPECT_FALSE(t.keep_run_dir_on_failure);
  EXPECT_EQ(t.concurrency, 0u);
}

// ---------------------------------------------------------------------------------------------
// A full file

constexpr const char* kFullYaml = R"yaml(
worker:
  id: worker-7
  pool: etl
  slots: 8
  max_queued_bytes: 8MiB
  work_dir: /var/lib/outpost/runs
  drain_timeout: 90s
  revoke_timeout: 15s
  status_interval: 500ms
  log_level: debug
kafka:
  bootstrap_servers: "broker-1:9092,broker-2:9092"
  properties:
    security.protocol: SASL_SSL
    sasl.mechanism: SCRAM-SHA-512
  consumer_properties:
    fetch.max.bytes: "1048576"
  producer_properties:
    linger.ms: "5"
topics:
  prefix: "acme."
  jobs: custom-jobs
output:
  tail_bytes: 4096
lineage:
  enabled: false
  job_namespace: acme-lineage
templates:
  ingest:
    argv: [datahub, ingest, -c, "{recipe_file}", --source, "{source}", --level, "{level}"]
    dry_run_args: [--dry-run, "--tag={source}"]
    params:
      source:
        pattern: "[a-z]+"
      level:
        pattern: "(debug|info)"
        default: info
    env:
      DATAHUB_TELEMETRY_ENABLED: "false"
    env_passthrough: [PATH, HOME]
    accept_env: ["DATAHUB_*"]
    recipe: file
    recipe_env: UNUSED_RECIPE
    working_dir: /srv/ingest
    timeout: 30m
    max_timeout: 2h
    kill_grace: 10s
    secrets: ["datahub/*", "mysql-password"]
    concurrency: 2
    keep_run_dir_on_failure: true
  report:
    argv: [report, --run, "{run_id}", --dir, "{run_dir}"]
    recipe: stdin
)yaml";

TEST(ConfigFull, WorkerSectionIsRead) {
  Config c = parseConfig(kFullYaml, {});
  EXPECT_EQ(c.worker.id, "worker-7");
  EXPECT_EQ(c.worker.pool, "etl");
  EXPECT_EQ(c.worker.slots, 8u);
  EXPECT_EQ(c.worker.max_queued_bytes, 8u * 1024 * 1024);
  EXPECT_EQ(c.worker.work_dir, "/var/lib/outpost/runs");
  EXPECT_EQ(c.worker.drain_timeout, seconds(90));
  EXPECT_EQ(c.worker.revoke_timeout, seconds(15));
  EXPECT_EQ(c.worker.status_interval, milliseconds(500));
  EXPECT_EQ(c.worker.log_level, "debug");
}

TEST(ConfigFull, KafkaSectionAndItsPassThroughPropertiesAreRead) {
  Config c = parseConfig(kFullYaml, {});
  EXPECT_EQ(c.kafka.bootstrap_servers, "broker-1:9092,broker-2:9092");
  EXPECT_EQ(c.kafka.properties,
            (std::map<std::string, std::string>{{"security.protocol", "SASL_SSL"},
                                                {"sasl.mechanism", "SCRAM-SHA-512"}}));
  EXPECT_EQ(c.kafka.consumer_properties,
            (std::map<std::string, std::string>{{"fetch.max.bytes", "1048576"}}));
  EXPECT_EQ(c.kafka.producer_properties, (std::map<std::string, std::string>{{"linger.ms", "5"}}));
}

TEST(ConfigFull, TopicsOutputAndLineageSectionsAreRead) {
  Config c = parseConfig(kFullYaml, {});
  EXPECT_EQ(c.topics.prefix, "acme.");
  EXPECT_EQ(c.topics.jobs, "custom-jobs");
  EXPECT_EQ(c.topics.control, "acme.control");
  EXPECT_EQ(c.topics.workers, "acme.workers");
  EXPECT_EQ(c.output.tail_bytes, 4096u);
  EXPECT_FALSE(c.lineage.enabled);
  EXPECT_EQ(c.lineage.job_namespace, "acme-lineage");
}

TEST(ConfigFull, EveryTemplateKeyIsRead) {
  Config c = parseConfig(kFullYaml, {});
  ASSERT_EQ(c.templates.size(), 2u);
  const TemplateConfig& t = c.templates.at("ingest");
  EXPECT_EQ(t.name, "ingest");
  EXPECT_EQ(t.argv, (std::vector<std::string>{"datahub", "ingest", "-c", "{recipe_file}",
                                              "--source", "{source}", "--level", "{level}"}));
  EXPECT_EQ(t.dry_run_args, (std::vector<std::string>{"--dry-run", "--tag={source}"}));
  ASSERT_EQ(t.params.size(), 2u);
  EXPECT_EQ(t.params.at("source").pattern, "[a-z]+");
  EXPECT_FALSE(t.params.at("source").default_value.has_value());
  EXPECT_EQ(t.params.at("level").pattern, "(debug|info)");
  EXPECT_EQ(t.params.at("level").default_value, std::optional<std::string>("info"));
  EXPECT_EQ(t.env, (std::map<std::string, std::string>{{"DATAHUB_TELEMETRY_ENABLED", "false"}}));
  EXPECT_EQ(t.env_passthrough, (std::vector<std::string>{"PATH", "HOME"}));
  EXPECT_EQ(t.accept_env, (std::vector<std::string>{"DATAHUB_*"}));
  EXPECT_EQ(t.recipe, RecipeDelivery::kFile);
  EXPECT_EQ(t.recipe_env, "UNUSED_RECIPE");
  EXPECT_EQ(t.working_dir, "/srv/ingest");
  EXPECT_EQ(t.default_timeout, minutes(30));
  EXPECT_EQ(t.max_timeout, hours(2));
  EXPECT_EQ(t.kill_grace, seconds(10));
  EXPECT_EQ(t.secrets, (std::vector<std::string>{"datahub/*", "mysql-password"}));
  EXPECT_EQ(t.concurrency, 2u);
  EXPECT_TRUE(t.keep_run_dir_on_failure);

  const TemplateConfig& r = c.templates.at("report");
  EXPECT_EQ(r.recipe, RecipeDelivery::kStdin);
  EXPECT_TRUE(r.params.empty());
}

TEST(ConfigFull, EveryRecipeDeliveryNameIsAccepted) {
  for (auto [name, want] : {std::pair{"none", RecipeDelivery::kNone},
                            {"file", RecipeDelivery::kFile},
                            {"stdin", RecipeDelivery::kStdin},
                            {"env", RecipeDelivery::kEnv}}) {
    Config c =
        parseConfig(std::string("templates:\n  t:\n    argv: [x]\n    recipe: ") + name + "\n", {});
    EXPECT_EQ(c.templates.at("t").recipe, want) << name;
  }
}

TEST(ConfigFull, BooleansAcceptTheUsualSpellings) {
  for (const char* yes : {"true", "yes", "on", "1"}) {
    EXPECT_TRUE(parseConfig(std::string("lineage:\n  enabled: ") + yes + "\n", {}).lineage.enabled)
        << yes;
  }
  for (const char* no : {"false", "no", "off", "0"}) {
    EXPECT_FALSE(parseConfig(std::string("lineage:\n  enabled: ") + no + "\n", {}).lineage.enabled)
        << no;
  }
}

// ---------------------------------------------------------------------------------------------
// Unknown keys: rejected at every level, with their full path.

TEST(ConfigUnknownKeys, TopLevelKeyIsRejectedByName) {
  EXPECT_THAT(errorOf("wokrer:\n  slots: 2\n"),
              AllOf(HasSubstr("unknown setting 'wokrer'"), StartsWith("config: ")));
}

TEST(ConfigUnknownKeys, WorkerKeyIsRejectedWithItsPath) {
  EXPECT_THAT(errorOf("worker:\n  slotz: 2\n"), HasSubstr("unknown setting 'worker.slotz'"));
}

TEST(ConfigUnknownKeys, KafkaKeyIsRejectedWithItsPath) {
  EXPECT_THAT(errorOf("kafka:\n  bootstrap.servers: x:1\n"),
              HasSubstr("unknown setting 'kafka.bootstrap.servers'"));
}

TEST(ConfigUnknownKeys, TopicsOutputAndLineageKeysAreRejectedWithTheirPaths) {
  EXPECT_THAT(errorOf("topics:\n  job: x\n"), HasSubstr("unknown setting 'topics.job'"));
  EXPECT_THAT(errorOf("output:\n  tail: 1\n"), HasSubstr("unknown setting 'output.tail'"));
  EXPECT_THAT(errorOf("lineage:\n  namespace: x\n"),
              HasSubstr("unknown setting 'lineage.namespace'"));
}

TEST(ConfigUnknownKeys, TemplateKeyIsRejectedWithItsPath) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x]\n    timout: 5s\n"),
              HasSubstr("unknown setting 'templates.t.timout'"));
}

TEST(ConfigUnknownKeys, ParamKeyIsRejectedWithItsPath) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x, '{p}']\n    params:\n      p:\n"
                      "        defualt: a\n"),
              HasSubstr("unknown setting 'templates.t.params.p.defualt'"));
}

TEST(ConfigUnknownKeys, SourceNameStartsTheMessage) {
  try {
    parseConfig("bogus: 1\n", {}, "/etc/outpost/worker.yaml");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), StartsWith("/etc/outpost/worker.yaml: "));
    EXPECT_THAT(e.what(), HasSubstr("'bogus'"));
  }
}

// ---------------------------------------------------------------------------------------------
// Wrong types and values

TEST(ConfigTypes, NonNumericSlotsIsRejectedNamingTheSettingAndValue) {
  EXPECT_THAT(errorOf("worker:\n  slots: abc\n"),
              AllOf(HasSubstr("'worker.slots'"), HasSubstr("whole number"), HasSubstr("'abc'")));
}

TEST(ConfigTypes, NegativeOrFractionalNumbersAreRejected) {
  EXPECT_THAT(errorOf("worker:\n  slots: -1\n"),
              HasSubstr("'worker.slots' must be a whole number"));
  EXPECT_THAT(errorOf("worker:\n  slots: 2.5\n"),
              HasSubstr("'worker.slots' must be a whole number"));
  EXPECT_THAT(errorOf("output:\n  tail_bytes: 4k\n"),
              HasSubstr("'output.tail_bytes' must be a size"));
}

TEST(ConfigTypes, SizesTakeBinaryAndDecimalUnits) {
  auto c = parseConfig("output:\n  tail_bytes: 8KiB\n  log_file_bytes: 2GB\n", {});
  EXPECT_EQ(c.output.tail_bytes, 8192u);
  EXPECT_EQ(c.output.log_file_bytes, 2'000'000'000u);
  EXPECT_EQ(parseBytes("512MiB"), 512ULL << 20);
  EXPECT_EQ(parseBytes("99999999999999999999"), std::nullopt);
  EXPECT_EQ(parseBytes("20000000000TiB"), std::nullopt);
  EXPECT_EQ(parseBytes("1.5GiB"), std::nullopt);
}

TEST(ConfigTemplates, AShellNeedsAllowShell) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [/bin/bash, -c, 'echo hi']\n"),
              AllOf(HasSubstr("starts a shell ('/bin/bash')"), HasSubstr("allow_shell: true")));
  auto c =
      parseConfig("templates:\n  t:\n    argv: [sh, -c, 'echo hi']\n    allow_shell: true\n", {});
  EXPECT_TRUE(c.templates.at("t").allow_shell);
}

TEST(ConfigTemplates, LimitsAreParsedWithUnits) {
  auto c = parseConfig(
      "templates:\n  t:\n    argv: [x]\n    limits:\n      address_space: 2GiB\n      open_files: "
      "256\n"
      "      processes: 64\n      cpu_time: 90s\n      file_size: 10MiB\n      core_dumps: true\n",
      {});
  const auto& l = c.templates.at("t").limits;
  EXPECT_EQ(l.address_space_bytes, 2ULL << 30);
  EXPECT_EQ(l.open_files, 256u);
  EXPECT_EQ(l.processes, 64u);
  EXPECT_EQ(l.cpu_time_seconds, 90u);
  EXPECT_EQ(l.file_size_bytes, 10ULL << 20);
  EXPECT_TRUE(l.core_dumps);
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x]\n    limits:\n      memory: 1GiB\n"),
              HasSubstr("'templates.t.limits.memory'"));
  auto o = parseConfig(
      "templates:\n  t:\n    argv: [x]\n    output: {tail_bytes: 1KiB, log_rate_bytes: 2KiB}\n",
      {});
  EXPECT_EQ(o.templates.at("t").output.tail_bytes, 1024u);
  EXPECT_EQ(o.templates.at("t").output.log_rate_bytes, 2048u);
  EXPECT_EQ(o.templates.at("t").output.log_file_bytes, 0u) << "0: the worker's setting";
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x]\n    output: {tail: 1}\n"),
              HasSubstr("'templates.t.output.tail'"));
}

TEST(ConfigRuns, RunsTopicFollowsThePrefixOrIsSetAndMaxAttemptsDefaultsToThree) {
  Config c = parseConfig("topics:\n  prefix: acme.\n", {});
  EXPECT_EQ(c.topics.runs, "acme.runs");
  EXPECT_EQ(c.worker.max_attempts, 3u);
  c = parseConfig("topics:\n  runs: run-state\nworker:\n  max_attempts: 5\n", {});
  EXPECT_EQ(c.topics.runs, "run-state");
  EXPECT_EQ(c.worker.max_attempts, 5u);
  EXPECT_EQ(parseConfig("", {{"OUTPOST_WORKER__MAX_ATTEMPTS", "1"}}).worker.max_attempts, 1u);
}

TEST(ConfigRuns, ZeroOrNonNumericMaxAttemptsIsRejected) {
  EXPECT_THAT(errorOf("worker:\n  max_attempts: 0\n"),
              HasSubstr("'worker.max_attempts' must be at least 1"));
  EXPECT_THAT(errorOf("worker:\n  max_attempts: many\n"),
              AllOf(HasSubstr("'worker.max_attempts'"), HasSubstr("whole number")));
}

TEST(ConfigDelivery, ExactlyOnceByDefaultAtLeastOnceOnRequestAnythingElseRefused) {
  EXPECT_TRUE(parseConfig("", {}).exactlyOnce());
  EXPECT_FALSE(parseConfig("worker:\n  delivery: at-least-once\n", {}).exactlyOnce());
  EXPECT_THAT(errorOf("worker:\n  delivery: at-most-once\n"),
              HasSubstr("'worker.delivery' must be exactly-once or at-least-once"));
}

TEST(ConfigDelivery, AConfiguredWorkerIdIsStaticAndTheDefaultOneIsNot) {
  EXPECT_FALSE(parseConfig("", {}).worker.static_id);
  auto c = parseConfig("worker:\n  id: ingest-0\n", {});
  EXPECT_TRUE(c.worker.static_id);
  EXPECT_EQ(c.worker.id, "ingest-0");
}

TEST(ConfigTypes, ZeroSlotsIsRejected) {
  EXPECT_THAT(errorOf("worker:\n  slots: 0\n"), HasSubstr("'worker.slots' must be at least 1"));
}

TEST(ConfigTypes, SlotsBeyondTheUnsignedRangeAreRejectedNotTruncated) {
  EXPECT_THAT(errorOf("worker:\n  slots: 4294967297\n"), HasSubstr("'worker.slots'"));
}

TEST(ConfigTypes, BadBooleanIsRejectedNamingTheSettingAndValue) {
  EXPECT_THAT(errorOf("lineage:\n  enabled: maybe\n"),
              AllOf(HasSubstr("'lineage.enabled' must be true or false"), HasSubstr("'maybe'")));
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x]\n    keep_run_dir_on_failure: perhaps\n"),
              HasSubstr("'templates.t.keep_run_dir_on_failure' must be true or false"));
}

TEST(ConfigTypes, BadDurationIsRejectedNamingTheSettingAndValue) {
  EXPECT_THAT(
      errorOf("worker:\n  drain_timeout: 10 parsecs\n"),
      AllOf(HasSubstr("'worker.drain_timeout' must be a duration"), HasSubstr("'10 parsecs'")));
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x]\n    kill_grace: soon\n"),
              HasSubstr("'templates.t.kill_grace' must be a duration"));
}

TEST(ConfigTypes, HugeDurationIsAConfigErrorNamingTheSetting) {
  EXPECT_THAT(errorOf("worker:\n  drain_timeout: 99999999999999999999s\n"),
              HasSubstr("'worker.drain_timeout'"));
}

TEST(ConfigTypes, SectionThatIsNotAMappingIsRejected) {
  EXPECT_THAT(errorOf("worker: 5\n"), HasSubstr("'worker' must be a mapping"));
  EXPECT_THAT(errorOf("kafka:\n  properties: [a, b]\n"),
              HasSubstr("'kafka.properties' must be a mapping"));
}

TEST(ConfigTypes, ListWhereAValueIsExpectedIsRejected) {
  EXPECT_THAT(errorOf("worker:\n  pool: [a, b]\n"),
              HasSubstr("'worker.pool' must be a single value"));
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: echo\n"),
              HasSubstr("'templates.t.argv' must be a list"));
}

TEST(ConfigTypes, UnknownRecipeDeliveryIsRejected) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x]\n    recipe: pigeon\n"),
              AllOf(HasSubstr("'templates.t.recipe' must be one of none, file, stdin, env"),
                    HasSubstr("'pigeon'")));
}

TEST(ConfigTypes, InvalidYamlIsRejected) {
  EXPECT_THAT(errorOf("worker: [unclosed\n"), HasSubstr("not valid YAML"));
}

TEST(ConfigTypes, TooSmallTailAndEmptyPoolAndBrokersAreRejected) {
  EXPECT_THAT(errorOf("output:\n  tail_bytes: 100\n"),
              HasSubstr("'output.tail_bytes' must be at least 256"));
  EXPECT_THAT(errorOf("worker:\n  pool: ''\n"), HasSubstr("'worker.pool' must not be empty"));
  EXPECT_THAT(errorOf("kafka:\n  bootstrap_servers: ''\n"), HasSubstr("'kafka.bootstrap_servers'"));
}

// ---------------------------------------------------------------------------------------------
// OUTPOST_* environment overrides

TEST(ConfigEnvOverrides, WorkerSlotsOverrideSetsTheValue) {
  EXPECT_EQ(parseConfig("", {{"OUTPOST_WORKER__SLOTS", "8"}}).worker.slots, 8u);
}

TEST(ConfigEnvOverrides, OverrideWinsOverTheFile) {
  Config c = parseConfig("worker:\n  slots: 2\n  pool: etl\n", {{"OUTPOST_WORKER__SLOTS", "16"}});
  EXPECT_EQ(c.worker.slots, 16u);
  EXPECT_EQ(c.worker.pool, "etl");
}

TEST(ConfigEnvOverrides, UnderscoresInsidePropertiesBecomeDots) {
  Config c = parseConfig("", {{"OUTPOST_KAFKA__PROPERTIES__SECURITY_PROTOCOL", "SSL"},
                              {"OUTPOST_KAFKA__PRODUCER_PROPERTIES__LINGER_MS", "7"}});
  EXPECT_EQ(c.kafka.properties, (std::map<std::string, std::string>{{"security.protocol", "SSL"}}));
  EXPECT_EQ(c.kafka.producer_properties, (std::map<std::string, std::string>{{"linger.ms", "7"}}));
}

TEST(ConfigEnvOverrides, UnderscoresOutsidePropertiesStayUnderscores) {
  Config c = parseConfig("", {{"OUTPOST_KAFKA__BOOTSTRAP_SERVERS", "kafka:29092"}});
  EXPECT_EQ(c.kafka.bootstrap_servers, "kafka:29092");
}

TEST(ConfigEnvOverrides, OverrideMergesIntoExistingProperties) {
  Config c = parseConfig("kafka:\n  properties:\n    client.id: me\n",
                         {{"OUTPOST_KAFKA__PROPERTIES__SECURITY_PROTOCOL", "SSL"}});
  EXPECT_EQ(c.kafka.properties, (std::map<std::string, std::string>{{"client.id", "me"},
                                                                    {"security.protocol", "SSL"}}));
}

TEST(ConfigEnvOverrides, OverrideOfAnUnknownKeyIsRejectedNamingTheKey) {
  EXPECT_THAT(errorOf("", {{"OUTPOST_WORKER__SLOTZ", "8"}}),
              HasSubstr("unknown setting 'worker.slotz'"));
  EXPECT_THAT(errorOf("", {{"OUTPOST_NOPE__X", "1"}}), HasSubstr("unknown setting 'nope'"));
}

TEST(ConfigEnvOverrides, OverrideValueIsCheckedLikeTheFile) {
  EXPECT_THAT(errorOf("", {{"OUTPOST_WORKER__SLOTS", "many"}}),
              AllOf(HasSubstr("'worker.slots'"), HasSubstr("'many'")));
}

TEST(ConfigEnvOverrides, VariablesWithoutPrefixOrPathAreIgnored) {
  Config c = parseConfig(
      "", {{"OUTPOST_CONFIG", "/etc/outpost.yaml"}, {"WORKER__SLOTS", "9"}, {"HOME", "/root"}});
  EXPECT_EQ(c.worker.slots, 4u);
}

TEST(ConfigEnvOverrides, EmptyPathSegmentIsRejectedNamingTheVariable) {
  EXPECT_THAT(errorOf("", {{"OUTPOST_WORKER____SLOTS", "8"}}),
              AllOf(HasSubstr("OUTPOST_WORKER____SLOTS"), HasSubstr("empty path segment")));
}

TEST(ConfigEnvOverrides, OverrideInsideAScalarIsRejected) {
  EXPECT_THAT(errorOf("worker: 5\n", {{"OUTPOST_WORKER__SLOTS", "8"}}),
              AllOf(HasSubstr("OUTPOST_WORKER__SLOTS"), HasSubstr("not a mapping")));
}

// ---------------------------------------------------------------------------------------------
// Template checks

TEST(ConfigTemplates, EmptyArgvIsRejected) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: []\n"),
              HasSubstr("'templates.t'.argv must name a program to run"));
  EXPECT_THAT(errorOf("templates:\n  t:\n    timeout: 5s\n"),
              HasSubstr("'templates.t'.argv must name a program to run"));
}

TEST(ConfigTemplates, UndeclaredPlaceholderIsRejectedByName) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [echo, '--x={who}']\n"),
              AllOf(HasSubstr("uses {who}"), HasSubstr("not declared under 'templates.t'.params")));
}

TEST(ConfigTemplates, DryRunArgsAreCheckedLikeArgv) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [echo]\n    dry_run_args: ['--as={who}']\n"),
              AllOf(HasSubstr("'templates.t'.dry_run_args uses {who}"),
                    HasSubstr("not declared under 'templates.t'.params")));
  EXPECT_TRUE(parseConfig("templates:\n  t:\n    argv: [echo]\n", {})
                  .templates.at("t")
                  .dry_run_args.empty());
}

TEST(ConfigTemplates, BuiltInPlaceholdersNeedNoDeclaration) {
  Config c = parseConfig(
      "templates:\n  t:\n    argv: [x, '{run_id}', '{run_dir}', '{recipe_file}']\n", {});
  EXPECT_EQ(c.templates.at("t").argv.size(), 4u);
}

TEST(ConfigTemplates, RecipeFilePlaceholderNeedsFileDelivery) {
  for (const char* recipe : {"stdin", "env", "none"}) {
    EXPECT_THAT(
        errorOf(std::string("templates:\n  t:\n    argv: [x, '{recipe_file}']\n    recipe: ") +
                recipe + "\n"),
        HasSubstr("uses {recipe_file} but 'templates.t'.recipe is not 'file'"))
        << recipe;
  }
}

TEST(ConfigTemplates, InvalidPatternIsRejectedNamingTheParam) {
  EXPECT_THAT(
      errorOf("templates:\n  t:\n    argv: [x, '{p}']\n    params:\n      p:\n        pattern: "
              "'[a-'\n"),
      HasSubstr("'templates.t'.params.p.pattern is not a valid regular expression"));
}

TEST(ConfigTemplates, DefaultNotMatchingItsPatternIsRejected) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x, '{p}']\n    params:\n      p:\n"
                      "        pattern: '[a-z]+'\n        default: ABC\n"),
              HasSubstr("'templates.t'.params.p.default does not match its pattern"));
}

TEST(ConfigTemplates, DefaultMustMatchTheWholePattern) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x, '{p}']\n    params:\n      p:\n"
                      "        pattern: '[a-z]+'\n        default: 'abc;rm'\n"),
              HasSubstr("'templates.t'.params.p.default does not match its pattern"));
}

TEST(ConfigTemplates, TimeoutLongerThanMaxTimeoutIsRejected) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x]\n    timeout: 3h\n    max_timeout: 2h\n"),
              HasSubstr("'templates.t'.timeout is longer than 'templates.t'.max_timeout"));
}

TEST(ConfigTemplates, ZeroTimeoutIsRejected) {
  EXPECT_THAT(errorOf("templates:\n  t:\n    argv: [x]\n    timeout: 0s\n"),
              HasSubstr("'templates.t'.timeout must be positive"));
}

// ---------------------------------------------------------------------------------------------
// parseDuration

TEST(ParseDuration, EveryUnitIsConverted) {
  EXPECT_EQ(parseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(parseDuration("30s"), seconds(30));
  EXPECT_EQ(parseDuration("5m"), minutes(5));
  EXPECT_EQ(parseDuration("2h"), hours(2));
  EXPECT_EQ(parseDuration("1d"), hours(24));
}

TEST(ParseDuration, PlainNumberIsSeconds) {
  EXPECT_EQ(parseDuration("45"), seconds(45));
  EXPECT_EQ(parseDuration("0"), milliseconds(0));
}

TEST(ParseDuration, SurroundingAndInnerSpacesAreAllowed) {
  EXPECT_EQ(parseDuration(" 10 s "), seconds(10));
}

TEST(ParseDuration, InvalidTextGivesNothing) {
  for (const char* bad :
       {"", "abc", "10 parsecs", "-5s", "1.5s", "5ms5", "s", "10S", "5 m s", "10sec"}) {
    EXPECT_EQ(parseDuration(bad), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ParseDuration, NumberTooLargeGivesNothing) {
  EXPECT_EQ(parseDuration("99999999999999999999"), std::nullopt);
  EXPECT_EQ(parseDuration("999999999999999d"), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// loadConfig

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "outpost-config-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(LoadConfigTest, MissingFileIsAnErrorNamingThePath) {
  std::string path = dir_ + "/does-not-exist.yaml";
  try {
    loadConfig(path, {});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'" + path + "'"));
  }
}

TEST_F(LoadConfigTest, FileIsReadAndOverridesApplied) {
  std::string path = write("worker.yaml", "worker:\n  pool: etl\n");
  Config c = loadConfig(path, {{"OUTPOST_WORKER__SLOTS", "3"}});
  EXPECT_EQ(c.worker.pool, "etl");
  EXPECT_EQ(c.worker.slots, 3u);
}

TEST_F(LoadConfigTest, ErrorsInTheFileStartWithItsPath) {
  std::string path = write("bad.yaml", "worker:\n  slotz: 1\n");
  try {
    loadConfig(path, {});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), StartsWith(path + ": "));
    EXPECT_THAT(e.what(), HasSubstr("'worker.slotz'"));
  }
}

TEST_F(LoadConfigTest, DirectoryInsteadOfAFileIsAnErrorNamingThePath) {
  try {
    loadConfig(dir_, {});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir_));
  }
}

}  // namespace
}  // namespace outpost

namespace outpost {
namespace {

// The shipped examples must stay loadable: they are what a newcomer copies first.
TEST(Examples, TheExampleConfigurationLoadsWithEveryDocumentedTemplate) {
  auto c = loadConfig(std::string(OUTPOST_SOURCE_DIR) + "/examples/outpost.yaml", {});
  for (const char* name :
       {"hello", "datahub-ingest", "openmetadata-ingest", "sql-probe", "script"}) {
    EXPECT_TRUE(c.templates.contains(name)) << name;
  }
  EXPECT_EQ(c.templates.at("datahub-ingest").argv,
            (std::vector<std::string>{"datahub", "ingest", "-c", "{recipe_file}"}));
  EXPECT_FALSE(c.templates.at("sql-probe").allow_shell);
  EXPECT_TRUE(c.templates.at("script").allow_shell);
  auto standalone = loadConfig(std::string(OUTPOST_SOURCE_DIR) + "/examples/templates.yaml", {});
  EXPECT_EQ(standalone.templates.size(), 4u);
}

}  // namespace
}  // namespace outpost

namespace outpost {
namespace {

TEST(SecretsConfig, AwsIsUsedWhenNamedAndItsSettingsAreChecked) {
  auto c = parseConfig(
      "secrets:\n  chain: [env, aws-sm]\n  aws: {region: eu-west-1, endpoint: "
      "'http://127.0.0.1:9', "
      "max_attempts: 2}\n",
      {});
  EXPECT_TRUE(c.secrets.uses("aws-sm"));
  EXPECT_EQ(c.secrets.aws.region, "eu-west-1");
  EXPECT_EQ(c.secrets.aws.transport.max_attempts, 2u);
  EXPECT_FALSE(parseConfig("", {}).secrets.uses("aws-sm"));
  EXPECT_TRUE(parseConfig("secrets:\n  default_cloud: aws-sm\n", {}).secrets.uses("aws-sm"));
  EXPECT_THAT(errorOf("secrets:\n  default_cloud: env\n"), HasSubstr("must be a cloud provider"));
  EXPECT_THAT(errorOf("secrets:\n  chain: [env, keepass]\n"), HasSubstr("not a provider"));
  EXPECT_THAT(errorOf("secrets:\n  aws: {regoin: x}\n"), HasSubstr("'secrets.aws.regoin'"));
}

TEST(SecretsConfig, VaultIsUsedWhenGivenAndItsSettingsAreChecked) {
  auto c = parseConfig(
      "secrets:\n  vault:\n    address: https://vault.example.com:8200\n    namespace: team-a\n"
      "    auth: kubernetes\n    role: outpost\n    auth_mount: k8s-prod\n"
      "    jwt_file: /run/sa/token\n    ca_bundle: /etc/vault-ca.pem\n    proxy: http://p:3128\n"
      "    timeout: 3s\n    max_attempts: 2\n    renew_before: 5m\n",
      {});
  EXPECT_TRUE(c.secrets.uses("vault"));
  const auto& v = c.secrets.vault;
  EXPECT_EQ(v.address, "https://vault.example.com:8200");
  EXPECT_EQ(v.namespace_name, "team-a");
  EXPECT_EQ(v.auth, "kubernetes");
  EXPECT_EQ(v.role, "outpost");
  EXPECT_EQ(v.auth_mount, "k8s-prod");
  EXPECT_EQ(v.jwt_file, "/run/sa/token");
  EXPECT_EQ(v.transport.ca_bundle, "/etc/vault-ca.pem");
  EXPECT_EQ(v.transport.proxy, "http://p:3128");
  EXPECT_EQ(v.transport.timeout, seconds(3));
  EXPECT_EQ(v.transport.max_attempts, 2u);
  EXPECT_EQ(v.renew_before, minutes(5));

  auto approle = parseConfig(
      "secrets:\n  vault: {address: 'http://127.0.0.1:8200', auth: approle, role_id: r-1, "
      "secret_id_file: /run/secret-id}\n",
      {});
  EXPECT_EQ(approle.secrets.vault.role_id, "r-1");
  EXPECT_EQ(approle.secrets.vault.secret_id_file, "/run/secret-id");
  auto token =
      parseConfig("secrets:\n  vault: {address: 'https://v:8200', token_file: /run/token}\n", {});
  EXPECT_EQ(token.secrets.vault.auth, "token");
  EXPECT_EQ(token.secrets.vault.token_file, "/run/token");
  EXPECT_FALSE(parseConfig("", {}).secrets.uses("vault"));
  EXPECT_TRUE(parseConfig("secrets:\n  chain: [env, vault]\n", {}).secrets.uses("vault"));

  EXPECT_THAT(errorOf("secrets:\n  vault: {auth: token}\n"), HasSubstr("'secrets.vault.address'"));
  EXPECT_THAT(errorOf("secrets:\n  vault: {address: 'http://vault.example.com'}\n"),
              AllOf(HasSubstr("'secrets.vault.address'"), HasSubstr("loopback")));
  EXPECT_THAT(errorOf("secrets:\n  vault: {address: 'https://v', auth: ldap}\n"),
              AllOf(HasSubstr("'secrets.vault.auth'"), HasSubstr("'ldap'")));
  EXPECT_THAT(errorOf("secrets:\n  vault: {address: 'https://v', auth: kubernetes}\n"),
              HasSubstr("'secrets.vault.role'"));
  EXPECT_THAT(errorOf("secrets:\n  vault: {address: 'https://v', auth: approle}\n"),
              HasSubstr("'secrets.vault.role_id'"));
  EXPECT_THAT(errorOf("secrets:\n  vault: {address: 'https://v', max_attempts: 0}\n"),
              HasSubstr("'secrets.vault.max_attempts'"));
  EXPECT_THAT(errorOf("secrets:\n  vault: {address: 'https://v', tokn_file: x}\n"),
              HasSubstr("'secrets.vault.tokn_file'"));
}

// The transport settings (StoreTransport) are read and checked by one function for every cloud
// store: each store's section refuses the same out-of-range values, naming its own path.
TEST(ConfigSecrets, EveryCloudStoreChecksItsTransportSettingsTheSameWay) {
  const std::map<std::string, std::string> stores = {
      {"aws", "region: eu-west-1"},
      {"vault", "address: 'https://v'"},
      {"gcp", "project: p"},
      {"azure", "vault_url: 'https://kv.vault.azure.net'"}};
  for (const auto& [store, required] : stores) {
    SCOPED_TRACE(store);
    const std::string head = "secrets:\n  " + store + ": {" + required + ", ";
    EXPECT_THAT(errorOf(head + "max_attempts: 0}\n"),
                HasSubstr("'secrets." + store + ".max_attempts' must be at least 1"));
    EXPECT_THAT(errorOf(head + "timeout: 0s}\n"),
                HasSubstr("'secrets." + store + ".timeout' must be positive"));
    auto c = parseConfig(head +
                             "ca_bundle: /ca.pem, proxy: 'http://p:3128', timeout: 2s, "
                             "max_attempts: 7}\n",
                         {});
    const auto& t = store == "aws"     ? c.secrets.aws.transport
                    : store == "vault" ? c.secrets.vault.transport
                    : store == "gcp"   ? c.secrets.gcp.transport
                                       : c.secrets.azure.transport;
    EXPECT_EQ(t.ca_bundle, "/ca.pem");
    EXPECT_EQ(t.proxy, "http://p:3128");
    EXPECT_EQ(t.timeout, std::chrono::seconds(2));
    EXPECT_EQ(t.max_attempts, 7u);
  }
}

}  // namespace
}  // namespace outpost

namespace outpost {
namespace {

TEST(SecretsConfig, GcpIsUsedWhenGivenAndItsSettingsAreChecked) {
  auto c = parseConfig(
      "secrets:\n  gcp:\n    project: proj-1\n    endpoint: 'http://127.0.0.1:8085'\n"
      "    credentials_file: /run/gcp/sa.json\n    token_uri: 'https://oauth2.example.com/token'\n"
      "    metadata_endpoint: 'http://metadata.google.internal'\n    ca_bundle: /etc/ca.pem\n"
      "    proxy: http://p:3128\n    timeout: 3s\n    max_attempts: 2\n",
      {});
  EXPECT_TRUE(c.secrets.uses("gcp-sm"));
  const auto& g = c.secrets.gcp;
  EXPECT_EQ(g.project, "proj-1");
  EXPECT_EQ(g.endpoint, "http://127.0.0.1:8085");
  EXPECT_EQ(g.credentials_file, "/run/gcp/sa.json");
  EXPECT_EQ(g.token_uri, "https://oauth2.example.com/token");
  EXPECT_EQ(g.metadata_endpoint, "http://metadata.google.internal");
  EXPECT_EQ(g.transport.ca_bundle, "/etc/ca.pem");
  EXPECT_EQ(g.transport.proxy, "http://p:3128");
  EXPECT_EQ(g.transport.timeout, seconds(3));
  EXPECT_EQ(g.transport.max_attempts, 2u);

  EXPECT_FALSE(parseConfig("", {}).secrets.uses("gcp-sm"));
  EXPECT_TRUE(parseConfig("secrets:\n  gcp: {project: p}\n", {}).secrets.uses("gcp-sm"));
  EXPECT_TRUE(parseConfig("secrets:\n  default_cloud: gcp-sm\n", {}).secrets.uses("gcp-sm"));
  EXPECT_EQ(
      parseConfig("secrets:\n  gcp: {project: p}\n", {}, "x").secrets.gcp.transport.max_attempts,
      4u);

  EXPECT_THAT(errorOf("secrets:\n  gcp: {endpoint: 'http://secretmanager.example.com'}\n"),
              AllOf(HasSubstr("'secrets.gcp.endpoint'"), HasSubstr("loopback")));
  EXPECT_THAT(errorOf("secrets:\n  gcp: {token_uri: 'http://oauth2.example.com/token'}\n"),
              HasSubstr("'secrets.gcp.token_uri'"));
  EXPECT_THAT(errorOf("secrets:\n  gcp: {endpoint: 'ftp://x'}\n"),
              HasSubstr("'secrets.gcp.endpoint'"));
  EXPECT_THAT(errorOf("secrets:\n  gcp: {max_attempts: 0}\n"),
              HasSubstr("'secrets.gcp.max_attempts'"));
  EXPECT_THAT(errorOf("secrets:\n  gcp: {projet: p}\n"), HasSubstr("'secrets.gcp.projet'"));
}

TEST(SecretsConfig, AzureIsUsedWhenGivenAndItsSettingsAreChecked) {
  auto c = parseConfig(
      "secrets:\n  azure:\n    vault_url: 'https://my-vault.vault.azure.net'\n"
      "    auth: client_credentials\n    tenant_id: contoso.onmicrosoft.com\n    client_id: app-1\n"
      "    client_secret_file: /run/azure/secret\n    imds_endpoint: 'http://169.254.169.254'\n"
      "    authority_host: 'https://login.microsoftonline.us'\n    ca_bundle: /etc/ca.pem\n"
      "    proxy: http://p:3128\n    timeout: 4s\n    max_attempts: 3\n",
      {});
  EXPECT_TRUE(c.secrets.uses("azure-kv"));
  const auto& z = c.secrets.azure;
  EXPECT_EQ(z.vault_url, "https://my-vault.vault.azure.net");
  EXPECT_EQ(z.auth, "client_credentials");
  EXPECT_EQ(z.tenant_id, "contoso.onmicrosoft.com");
  EXPECT_EQ(z.client_id, "app-1");
  EXPECT_EQ(z.client_secret_file, "/run/azure/secret");
  EXPECT_EQ(z.imds_endpoint, "http://169.254.169.254");
  EXPECT_EQ(z.authority_host, "https://login.microsoftonline.us");
  EXPECT_EQ(z.transport.ca_bundle, "/etc/ca.pem");
  EXPECT_EQ(z.transport.proxy, "http://p:3128");
  EXPECT_EQ(z.transport.timeout, seconds(4));
  EXPECT_EQ(z.transport.max_attempts, 3u);

  EXPECT_FALSE(parseConfig("", {}).secrets.uses("azure-kv"));
  auto managed = parseConfig("secrets:\n  azure: {vault_url: 'https://v.vault.azure.net'}\n", {});
  EXPECT_TRUE(managed.secrets.uses("azure-kv"));
  EXPECT_EQ(managed.secrets.azure.auth, "");
  EXPECT_TRUE(parseConfig("secrets:\n  chain: [env, azure-kv]\n", {}).secrets.uses("azure-kv"));

  EXPECT_THAT(errorOf("secrets:\n  azure: {auth: managed_identity}\n"),
              HasSubstr("'secrets.azure.vault_url'"));
  EXPECT_THAT(errorOf("secrets:\n  azure: {vault_url: 'http://v.vault.azure.net'}\n"),
              AllOf(HasSubstr("'secrets.azure.vault_url'"), HasSubstr("loopback")));
  EXPECT_THAT(errorOf("secrets:\n  azure: {vault_url: 'http://127.0.0.1:8443', "
                      "authority_host: 'http://login.example.com'}\n"),
              HasSubstr("'secrets.azure.authority_host'"));
  EXPECT_THAT(errorOf("secrets:\n  azure: {vault_url: 'https://v', auth: password}\n"),
              AllOf(HasSubstr("'secrets.azure.auth'"), HasSubstr("'password'")));
  EXPECT_THAT(errorOf("secrets:\n  azure: {vault_url: 'https://v', max_attempts: 0}\n"),
              HasSubstr("'secrets.azure.max_attempts'"));
  EXPECT_THAT(errorOf("secrets:\n  azure: {vault_url: 'https://v', tenant: t}\n"),
              HasSubstr("'secrets.azure.tenant'"));
}

TEST(LineageConfig, TransportIsKafkaByDefaultWithHttpDefaults) {
  auto c = parseConfig("", {});
  EXPECT_EQ(c.lineage.transport, LineageTransport::kKafka);
  EXPECT_TRUE(c.lineage.toKafka());
  EXPECT_FALSE(c.lineage.toHttp());
  EXPECT_EQ(c.lineage.http.url, "");
  EXPECT_EQ(c.lineage.http.endpoint, "/api/v1/lineage");
  EXPECT_EQ(c.lineage.http.timeout, seconds(10));
  EXPECT_EQ(c.lineage.http.max_attempts, 4u);
  EXPECT_EQ(c.lineage.http.delivery_timeout, milliseconds(0));
  EXPECT_EQ(c.lineage.http.queue_size, 10000u);
  EXPECT_EQ(c.lineage.http.flush_timeout, seconds(10));
}

TEST(LineageConfig, EveryHttpKeyIsRead) {
  auto c = parseConfig(
      "lineage:\n  transport: both\n  http:\n    url: 'https://marquez.internal:5000'\n"
      "    endpoint: /api/v2/lineage\n    token_env: MARQUEZ_TOKEN\n    ca_bundle: /etc/ca.pem\n"
      "    proxy: http://proxy:3128\n    timeout: 5s\n    max_attempts: 6\n"
      "    delivery_timeout: 10m\n    queue_size: 500\n    flush_timeout: 30s\n",
      {});
  EXPECT_EQ(c.lineage.transport, LineageTransport::kBoth);
  EXPECT_TRUE(c.lineage.toKafka());
  EXPECT_TRUE(c.lineage.toHttp());
  const auto& h = c.lineage.http;
  EXPECT_EQ(h.url, "https://marquez.internal:5000");
  EXPECT_EQ(h.endpoint, "/api/v2/lineage");
  EXPECT_EQ(h.token_env, "MARQUEZ_TOKEN");
  EXPECT_EQ(h.token_file, "");
  EXPECT_EQ(h.ca_bundle, "/etc/ca.pem");
  EXPECT_EQ(h.proxy, "http://proxy:3128");
  EXPECT_EQ(h.timeout, seconds(5));
  EXPECT_EQ(h.max_attempts, 6u);
  EXPECT_EQ(h.delivery_timeout, minutes(10));
  EXPECT_EQ(h.queue_size, 500u);
  EXPECT_EQ(h.flush_timeout, seconds(30));

  auto only_http = parseConfig(
      "lineage:\n  transport: http\n  http: {url: 'http://127.0.0.1:5000', token_file: /t}\n", {});
  EXPECT_EQ(only_http.lineage.transport, LineageTransport::kHttp);
  EXPECT_FALSE(only_http.lineage.toKafka());
  EXPECT_EQ(only_http.lineage.http.token_file, "/t");
}

TEST(LineageConfig, HttpSettingsComeFromTheEnvironmentToo) {
  auto c = parseConfig("", {{"OUTPOST_LINEAGE__TRANSPORT", "http"},
                            {"OUTPOST_LINEAGE__HTTP__URL", "http://marquez:5000"},
                            {"OUTPOST_LINEAGE__HTTP__QUEUE_SIZE", "42"}});
  EXPECT_EQ(c.lineage.transport, LineageTransport::kHttp);
  EXPECT_EQ(c.lineage.http.url, "http://marquez:5000");
  EXPECT_EQ(c.lineage.http.queue_size, 42u);
}

TEST(LineageConfig, BadTransportSettingsNameTheSettingAndTheFix) {
  EXPECT_THAT(errorOf("lineage:\n  transport: marquez\n"),
              AllOf(HasSubstr("'lineage.transport'"), HasSubstr("kafka, http or both"),
                    HasSubstr("'marquez'")));
  EXPECT_THAT(errorOf("lineage:\n  transport: http\n"), HasSubstr("'lineage.http.url'"));
  EXPECT_THAT(errorOf("lineage:\n  transport: both\n  http: {url: 'marquez:5000'}\n"),
              AllOf(HasSubstr("'lineage.http.url'"), HasSubstr("http:// or https://")));
  EXPECT_THAT(errorOf("lineage:\n  transport: http\n  http: {url: 'http://m:5000?x=1'}\n"),
              HasSubstr("without query"));
  EXPECT_THAT(errorOf("lineage:\n  http: {url: 'http://m:5000'}\n"),
              AllOf(HasSubstr("'lineage.http' is set"), HasSubstr("'lineage.transport' is kafka")));
  EXPECT_THAT(errorOf("lineage:\n  transport: http\n  http: {url: 'http://m', endpoint: x}\n"),
              HasSubstr("'lineage.http.endpoint' must start with '/'"));
  EXPECT_THAT(errorOf("lineage:\n  transport: http\n"
                      "  http: {url: 'http://m', token_file: /t, token_env: T}\n"),
              HasSubstr("keep one"));
  EXPECT_THAT(errorOf("lineage:\n  transport: http\n  http: {url: 'http://m', max_attempts: 0}\n"),
              HasSubstr("'lineage.http.max_attempts'"));
  EXPECT_THAT(errorOf("lineage:\n  transport: http\n  http: {url: 'http://m', queue_size: 0}\n"),
              HasSubstr("'lineage.http.queue_size'"));
  EXPECT_THAT(errorOf("lineage:\n  transport: http\n  http: {url: 'http://m', timeout: 0s}\n"),
              HasSubstr("'lineage.http.timeout'"));
}

TEST(LineageConfig, UnknownHttpKeysAreRejectedWithTheirPath) {
  EXPECT_THAT(errorOf("lineage:\n  transport: http\n  http: {url: 'http://m', tokn: x}\n"),
              HasSubstr("unknown setting 'lineage.http.tokn'"));
  EXPECT_THAT(errorOf("lineage:\n  transport: http\n  http: [a]\n"),
              HasSubstr("'lineage.http' must be a mapping"));
}

}  // namespace
}  // namespace outpost

// ---------------------------------------------------------------------------------------------
// security

namespace outpost {
namespace {

TEST(ConfigSecurity, CommandsAreNotCheckedUnlessAskedAndRequireNeedsTrustedKeys) {
  Config c = parseConfig("", {});
  EXPECT_EQ(c.security.commands, CommandSigning::kOff);
  EXPECT_EQ(c.security.max_command_lifetime, minutes(15));
  EXPECT_EQ(c.security.clock_leeway, seconds(60));
  EXPECT_THAT(errorOf("security: {commands: require}"),
              AllOf(HasSubstr("'security.trusted_keys'"), HasSubstr("require")));
  EXPECT_THAT(errorOf("security: {commands: sometimes}"),
              HasSubstr("'security.commands' must be off, warn or require"));
  c = parseConfig(R"(security:
  commands: warn
  trusted_keys: /etc/outpost/jwks.json
  max_command_lifetime: 5m
  clock_leeway: 10s
  keys:
    scheduler: {templates: ["ingest-*"], actions: [run, cancel], pools: [etl]}
)",
                  {});
  EXPECT_EQ(c.security.commands, CommandSigning::kWarn);
  EXPECT_EQ(c.security.max_command_lifetime, minutes(5));
  EXPECT_EQ(c.security.clock_leeway, seconds(10));
  const auto& p = c.security.keys.at("scheduler");
  EXPECT_EQ(p.templates, std::vector<std::string>{"ingest-*"});
  EXPECT_EQ(p.actions, (std::vector<std::string>{"run", "cancel"}));
  EXPECT_EQ(p.pools, std::vector<std::string>{"etl"});
}

TEST(ConfigSecurity, TheTrustedKeysComeFromAFileOrAVariableNotBoth) {
  Config c = parseConfig("security: {commands: require, trusted_keys_env: OUTPOST_JWKS}", {});
  EXPECT_EQ(c.security.trusted_keys_env, "OUTPOST_JWKS");
  EXPECT_THAT(errorOf("security: {commands: require, trusted_keys: /k.json, "
                      "trusted_keys_env: OUTPOST_JWKS}"),
              HasSubstr("are both set: keep one"));
  // As the Helm chart and the ECS task set them.
  c = parseConfig("", {{"OUTPOST_SECURITY__COMMANDS", "require"},
                       {"OUTPOST_SECURITY__TRUSTED_KEYS", "/etc/outpost-trusted-keys/jwks.json"}});
  EXPECT_EQ(c.security.commands, CommandSigning::kRequire);
  EXPECT_EQ(c.security.trusted_keys, "/etc/outpost-trusted-keys/jwks.json");
}

TEST(ConfigSecurity, AKeyPolicyTakesOnlyKnownActionsAndKeys) {
  EXPECT_THAT(errorOf("security: {keys: {k1: {actions: [run, delete]}}}"),
              AllOf(HasSubstr("'security.keys.k1.actions'"), HasSubstr("'delete'")));
  EXPECT_THAT(errorOf("security: {keys: {k1: {template: [x]}}}"),
              HasSubstr("security.keys.k1.template"));
  EXPECT_THAT(errorOf("security: {max_command_lifetime: 0s}"),
              HasSubstr("'security.max_command_lifetime' must be at least 1s"));
}

}  // namespace
}  // namespace outpost
