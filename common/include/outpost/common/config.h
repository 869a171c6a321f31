// Outpost's configuration: plain structs with defaults, and the one loader that fills them from a
// YAML file plus OUTPOST_* environment overrides. Unknown keys are errors naming their path.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace outpost {

using Millis = std::chrono::milliseconds;

// The longest wait of the worker's poll thread that the probes are not told of (an awaited offset
// commit, consumer::JobConsumer::kAwaitCommit): http.live_timeout must be longer, or /livez could
// fail a healthy worker. The waits it announces (restore, revoke) count as alive up to their
// bounds.
inline constexpr Millis kLongestUnannouncedWait{10'000};

// A configuration problem: the message names the setting (its path) and what to change.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How a run's recipe (JobCommand.recipe) reaches its process.
enum class RecipeDelivery {
  kNone,   // not passed
  kFile,   // a 0600 file in the run's private directory, named by the {recipe_file} placeholder
  kStdin,  // on the process's standard input
  kEnv,    // in the environment variable named by TemplateConfig::recipe_env
};

// One {placeholder} a template's argv may use, filled from JobCommand.args.
struct ParamSpec {
  // Regular expression (RE2 syntax: no backreferences or lookaround) the whole value must match.
  // Matched in time linear in the value, whatever its length.
  std::string pattern = "[A-Za-z0-9_.:/@=+-]*";
  // Used when the command gives no value; a parameter without a default is required.
  std::optional<std::string> default_value;
};

// Resource limits of a run's processes (setrlimit); 0 means not limited by Outpost.
struct ResourceLimits {
  std::uint64_t address_space_bytes = 0;  // RLIMIT_AS
  std::uint64_t open_files = 0;           // RLIMIT_NOFILE
  std::uint64_t processes = 0;            // RLIMIT_NPROC (counts the user's processes)
  std::uint64_t cpu_time_seconds = 0;     // RLIMIT_CPU: SIGXCPU, then SIGKILL
  std::uint64_t file_size_bytes = 0;      // RLIMIT_FSIZE
  bool core_dumps = false;                // RLIMIT_CORE 0 unless true
};

// Output limits of a template's runs; 0 means the worker's `output` setting.
struct OutputLimits {
  std::size_t tail_bytes = 0;
  std::size_t log_rate_bytes = 0;
  std::size_t log_file_bytes = 0;
};

// A worker-side template: what a command's job_type names. It decides everything that runs.
struct TemplateConfig {
  std::string name;
  // Program and arguments, with {name} placeholders; argv[0] is looked up on PATH. No shell.
  std::vector<std::string> argv;
  // Appended to argv when a run is a dry run (`outpost replay local --dry-run`), e.g. DataHub's
  // ["--dry-run"]: the tool reads its sources but writes nothing. Same placeholders as argv.
  // Empty: the template has no dry run, and a dry replay does not run its commands.
  std::vector<std::string> dry_run_args;
  std::map<std::string, ParamSpec> params;
  // Extra environment for the process.
  std::map<std::string, std::string> env;
  // Variables copied from the worker's own environment; nothing else of it reaches the job.
  std::vector<std::string> env_passthrough = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"};
  // Names a command may set through JobCommand.env; anything else is rejected.
  std::vector<std::string> accept_env;
  RecipeDelivery recipe = RecipeDelivery::kFile;
  std::string recipe_env = "OUTPOST_RECIPE";
  // Working directory of the process; empty means the run's private directory.
  std::string working_dir;
  Millis default_timeout = std::chrono::hours(1);
  Millis max_timeout = std::chrono::hours(24);
  // Time between SIGTERM and SIGKILL when a run is stopped.
  Millis kill_grace = std::chrono::seconds(30);
  // Secret references runs of this template may resolve (names or glob patterns).
  std::vector<std::string> secrets;
  // Most runs of this template at once on one worker; 0 means only the worker's slots limit.
  unsigned concurrency = 0;
  // Keep the run's private directory when the run does not succeed, for debugging.
  bool keep_run_dir_on_failure = false;
  // Whether its runs get a lineage channel (OUTPOST_LINEAGE_FD / OUTPOST_LINEAGE_FILE) for
  // OpenLineage events of their own; only while lineage.enabled.
  bool child_lineage = true;
  // Whether argv may start a shell (sh, bash, ...). Off: a shell would turn arguments into code.
  bool allow_shell = false;
  ResourceLimits limits;
  OutputLimits output;
};

struct KafkaConfig {
  std::string bootstrap_servers = "127.0.0.1:9092";
  // librdkafka properties for both the consumer and the producer, passed through unchanged.
  std::map<std::string, std::string> properties;
  std::map<std::string, std::string> consumer_properties;
  std::map<std::string, std::string> producer_properties;
  bool operator==(const KafkaConfig&) const = default;
};

struct TopicsConfig {
  std::string prefix = "outpost.";
  std::string jobs;     // default prefix + "jobs"
  std::string control;  // default prefix + "control"
  std::string events;   // default prefix + "events"
  std::string lineage;  // default prefix + "lineage"
  std::string dlq;      // default prefix + "dlq"
  std::string workers;  // default prefix + "workers"
  // Run state (RunRecord, key run_id), compacted; at least as many partitions as jobs.
  std::string runs;  // default prefix + "runs"
  bool operator==(const TopicsConfig&) const = default;
};

struct WorkerConfig {
  // Identifier in events and status; default "<host>-<pid>".
  std::string id;
  // The consumer group is "outpost.<pool>".
  std::string pool = "default";
  // Runs held at once.
  unsigned slots = 4;
  // Admitted commands waiting for a slot before the partitions pause (they resume at half).
  // librdkafka refetches only after fetch.wait.max.ms once resumed, so this backlog must cover
  // that long at the job rate; commands waiting here stay uncommitted.
  unsigned max_queued = 1000;
  // The same bound in bytes of the waiting commands (a command may carry a recipe of up to a
  // megabyte) and of the dead letters not yet acknowledged (each carries its refused command):
  // the partitions pause once this much waits, and resume at half.
  std::size_t max_queued_bytes = 8 * 1024 * 1024;
  // Parent of the runs' private directories.
  std::string work_dir;
  // On SIGTERM/SIGINT: how long running jobs may take to finish before they are stopped.
  Millis drain_timeout = std::chrono::seconds(60);
  // When partitions are taken away: how long their running jobs may take to finish first.
  Millis revoke_timeout = std::chrono::seconds(20);
  // How often the worker writes its WorkerStatus, which renews the leases of the runs it holds.
  Millis status_interval = std::chrono::seconds(10);
  // How long the workers topic must flow without a status from a worker before the worker counts
  // as lost (its lease lapsed). At least three status intervals.
  Millis lease_timeout = std::chrono::seconds(30);
  // How often a running job gets a HEARTBEAT event.
  Millis heartbeat_interval = std::chrono::seconds(10);
  // How long a cancel for a run this worker has not seen is remembered, in case its command
  // arrives later; and how long finished runs are remembered to answer late cancels.
  Millis cancel_memory = std::chrono::minutes(10);
  // Times a run may be started before it ends FAILED "worker lost N times" instead of running
  // again, when no worker lived to finish it; JobCommand.max_attempts overrides it. At least 1.
  unsigned max_attempts = 3;
  // "exactly-once": a run's terminal event, its final lineage record and its command's offset are
  // committed in one Kafka transaction (readers use isolation.level=read_committed).
  // "at-least-once": no transactions (for brokers without them); the offset is committed after
  // the terminal event is acknowledged, so a crash in between publishes it twice.
  std::string delivery = "exactly-once";
  // Set when worker.id is configured: it is then also the consumer's group.instance.id (static
  // membership, so that a restart under the same id does not reshuffle the partitions).
  bool static_id = false;
  // trace, debug, info, warn, error.
  std::string log_level = "info";
};

struct OutputConfig {
  // Bytes of the end of a run's output carried by its terminal event.
  std::size_t tail_bytes = 64 * 1024;
  // Longer output lines are cut here, with a marker.
  std::size_t line_max_bytes = 16 * 1024;
  // A LOG event is sent when its lines reach this size, or after log_batch_interval.
  std::size_t log_batch_bytes = 64 * 1024;
  Millis log_batch_interval = std::chrono::seconds(1);
  // Most bytes of output lines per second per run sent as LOG events; the rest is counted.
  std::size_t log_rate_bytes = 256 * 1024;
  // The full output is kept in the run directory as output.log up to this size.
  std::size_t log_file_bytes = 100 * 1024 * 1024;
};

struct RunnerConfig {
  // Per-run cgroup (cgroup v2) to find and kill every descendant: "auto" (use one when the
  // machine allows it), "off", or the path of a writable cgroup v2 directory to create them in.
  std::string cgroup = "auto";
};

// Signed commands (security.*): whether a command must carry a valid `outpost-signature` token
// (security/command_token.h) before it runs.
enum class CommandSigning {
  kOff,      // not checked; the worker says so at start and in `outpost check`
  kWarn,     // checked; what `require` would refuse is counted and logged, and runs
  kRequire,  // checked; refused commands are dead-lettered and REJECTED
};
const char* nameOf(CommandSigning mode);

// The actions a key may sign: running a template, and the control commands.
inline constexpr std::array<std::string_view, 4> kSignedActions = {"run", "cancel", "drain",
                                                                   "resume"};

// What one trusted key may sign (security.keys.<kid>), so that a scheduler's key cannot drain the
// fleet. A kid without an entry may sign everything.
struct KeyPolicy {
  std::vector<std::string> templates = {"*"};  // globs of job_type
  std::vector<std::string> actions = {"run", "cancel", "drain", "resume"};
  std::vector<std::string> pools = {"*"};  // globs of pool names
};

struct SecurityConfig {
  CommandSigning commands = CommandSigning::kOff;
  std::string trusted_keys;  // a JWKS file, read again when it changes
  // Or: the variable of the worker's environment that holds the JWKS (ECS injects it from Secrets
  // Manager); read at start and on SIGHUP.
  std::string trusted_keys_env;
  Millis max_command_lifetime{15 * 60 * 1000};  // exp - iat at most
  Millis clock_leeway{60 * 1000};               // for exp, nbf and iat
  std::map<std::string, KeyPolicy> keys;        // by kid
};

// How the worker's log lines look (log.*).
struct LogConfig {
  // "text", "json" (one object per line, run fields as fields), or "auto": text when standard
  // error is a terminal, JSON otherwise.
  std::string format = "auto";
};

// The worker's HTTP endpoint for probes and scrapes: /livez, /readyz, /metrics (http).
struct HttpConfig {
  // "host:port" ("127.0.0.1:0": a free port, which the worker logs), or "off".
  std::string listen = "127.0.0.1:9464";
  // /livez fails when the poll loop has not gone round for this long.
  Millis live_timeout = std::chrono::seconds(30);
  // From `listen`: empty host when off.
  std::string host = "127.0.0.1";
  int port = 9464;
  bool enabled() const { return !host.empty(); }
};

// The OpenLineage HTTP transport (lineage.http): records POSTed to a Marquez-compatible server.
struct LineageHttpConfig {
  // Base URL (http:// or https://); records go to url + endpoint.
  std::string url;
  std::string endpoint = "/api/v1/lineage";
  // Where the bearer token is, if any: a file (re-read for each request, so it may rotate), a
  // variable of the worker's environment, or a secret reference (${vault:...}, resolved at
  // start). At most one. The token is never logged.
  std::string token_file;
  std::string token_env;
  std::string token;  // a secret reference, never the token itself
  // PEM certificate authorities instead of the system's; a proxy instead of the environment's.
  std::string ca_bundle;
  std::string proxy;
  // One request's limit, and requests per round (with backoff) before the record waits and
  // tries again.
  Millis timeout = std::chrono::seconds(10);
  unsigned max_attempts = 4;
  // How long a record may wait for the server before it is reported failed; 0: no limit.
  Millis delivery_timeout{0};
  // Records waiting to be sent; more are reported failed at once.
  std::size_t queue_size = 10000;
  // On shutdown, how long queued records may still take to be delivered.
  Millis flush_timeout = std::chrono::seconds(10);
  bool operator==(const LineageHttpConfig&) const = default;
};

// Where lineage records go.
enum class LineageTransport { kKafka, kHttp, kBoth };

struct LineageConfig {
  bool enabled = true;
  // OpenLineage job namespace when the command names none.
  std::string job_namespace = "outpost";
  // A RUNNING record with every heartbeat (worker.heartbeat_interval) of a run.
  bool running_events = false;
  LineageTransport transport = LineageTransport::kKafka;
  LineageHttpConfig http;
  bool toKafka() const { return transport != LineageTransport::kHttp; }
  bool toHttp() const { return transport != LineageTransport::kKafka; }
  bool operator==(const LineageConfig&) const = default;
};

// How a cloud secret store (AWS Secrets Manager, Vault, Google Secret Manager, Azure Key Vault) is
// reached over HTTP: the same settings, meanings and checks for each, in its section
// (secrets.aws, secrets.vault, ...) and in its provider's config.
struct StoreTransport {
  // PEM bundle of CAs to trust instead of the system's (the provider may read a default from its
  // own environment variable, e.g. AWS_CA_BUNDLE, VAULT_CACERT).
  std::string ca_bundle;
  // Proxy for the store's API and token endpoints. Empty: HTTPS_PROXY / HTTP_PROXY / ALL_PROXY /
  // NO_PROXY (either case). Instance metadata services never go through a proxy.
  std::string proxy;
  std::string no_proxy;
  Millis connect_timeout{3000};
  Millis timeout{10000};      // one try
  unsigned max_attempts = 4;  // tries in all, including the first
  Millis retry_base_delay{100};
  Millis retry_max_delay{5000};

  // Throws ConfigError when a setting is out of range; `name` turns a setting's key into how the
  // message names it (e.g. "'secrets.vault.max_attempts'").
  template <typename Name>
  void check(const Name& name) const {
    if (max_attempts < 1) throw ConfigError(name("max_attempts") + " must be at least 1");
    if (timeout.count() <= 0) throw ConfigError(name("timeout") + " must be positive");
    if (connect_timeout.count() <= 0) {
      throw ConfigError(name("connect_timeout") + " must be positive");
    }
  }
};

// AWS Secrets Manager settings; what is left empty comes from the AWS environment variables and
// shared files, as the AWS CLI reads them (see secrets/include/outpost/secrets/aws.h).
struct AwsSecretsSettings {
  std::string region;
  std::string profile;
  std::string endpoint;      // a VPC endpoint or a test server; only this may be plain http://
  std::string sts_endpoint;  // for web identity (IRSA)
  StoreTransport transport;  // ca_bundle, proxy, timeout, max_attempts
};

// HashiCorp Vault (KV v2) settings (see secrets/include/outpost/secrets/vault.h). Empty strings
// mean the Vault environment variable (VAULT_NAMESPACE, VAULT_CACERT, VAULT_TOKEN,
// VAULT_SECRET_ID), then the default.
struct VaultSecretsSettings {
  std::string address;         // required; plain http:// only for a loopback address
  std::string namespace_name;  // `namespace`: Vault Enterprise namespace
  std::string auth = "token";  // token, kubernetes or approle
  std::string token_file;      // token: the file holding it; empty: VAULT_TOKEN
  std::string auth_mount;      // kubernetes, approle: where the method is mounted
  std::string role;            // kubernetes
  std::string jwt_file;        // kubernetes; empty: the pod's service account token
  std::string role_id;         // approle
  std::string secret_id_file;  // approle; empty: VAULT_SECRET_ID
  StoreTransport transport;    // ca_bundle, proxy, timeout, max_attempts
  Millis renew_before{0};      // zero: renew the token when a third of its lease is left
};

// Google Cloud Secret Manager settings (see secrets/include/outpost/secrets/gcp.h). Empty strings
// mean what Google's client libraries read (GOOGLE_APPLICATION_CREDENTIALS, GCE_METADATA_HOST),
// then the default.
struct GcpSecretsSettings {
  std::string project;            // of short references: ${gcp-sm:NAME}, secret:/NAME
  std::string endpoint;           // https://secretmanager.googleapis.com; http:// only to loopback
  std::string credentials_file;   // service-account key; none: the metadata server
  std::string token_uri;          // the key file's token_uri; http:// only to loopback
  std::string metadata_endpoint;  // http://169.254.169.254
  StoreTransport transport;       // ca_bundle, proxy, timeout, max_attempts
};

// Azure Key Vault settings (see secrets/include/outpost/secrets/azure.h). Empty strings mean the
// Azure environment variables (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
// AZURE_AUTHORITY_HOST), then the default.
struct AzureSecretsSettings {
  std::string vault_url;           // required: https://NAME.vault.azure.net
  std::string auth;                // managed_identity or client_credentials; empty: see azure.h
  std::string tenant_id;           // client_credentials
  std::string client_id;           // the application, or a user-assigned managed identity
  std::string client_secret_file;  // client_credentials; empty: AZURE_CLIENT_SECRET
  std::string imds_endpoint;       // http://169.254.169.254
  std::string authority_host;      // https://login.microsoftonline.com; http:// only to loopback
  StoreTransport transport;        // ca_bundle, proxy, timeout, max_attempts
};

struct SecretsConfig {
  // Providers ${NAME} references are looked up in, in order (any of kSecretProviders).
  std::vector<std::string> chain = {"env", "file"};
  // The provider secret:/path references use (Collate's form); empty: such references are refused.
  std::string default_cloud;
  // How long a resolved value is reused; a rotated secret reaches runs started after this.
  Millis cache_ttl = std::chrono::minutes(5);
  // How long a value stays masked in output after it was last resolved (rotation included).
  Millis mask_for = std::chrono::hours(24);
  // The file provider's directory (e.g. a mounted Kubernetes secret volume) and size cap.
  std::string file_dir = "/mnt/secrets";
  std::size_t file_max_bytes = 1024 * 1024;
  AwsSecretsSettings aws;
  VaultSecretsSettings vault;
  GcpSecretsSettings gcp;
  AzureSecretsSettings azure;
  // The cloud providers this worker builds: those named in chain or default_cloud, or whose
  // section (secrets.aws, ...) is given.
  std::set<std::string> clouds;
  bool uses(const std::string& provider) const { return clouds.contains(provider); }
};

// Every provider name a reference or secrets.chain may use.
inline constexpr std::array<std::string_view, 6> kSecretProviders = {"env",   "file",   "aws-sm",
                                                                     "vault", "gcp-sm", "azure-kv"};

struct Config {
  bool exactlyOnce() const { return worker.delivery == "exactly-once"; }
  WorkerConfig worker;
  KafkaConfig kafka;
  TopicsConfig topics;
  OutputConfig output;
  RunnerConfig runner;
  HttpConfig http;
  LogConfig log;
  LineageConfig lineage;
  SecretsConfig secrets;
  SecurityConfig security;
  std::map<std::string, TemplateConfig> templates;
};

using Environment = std::map<std::string, std::string>;

// The process's environment as a map.
Environment processEnvironment();

// Parses YAML text, applies OUTPOST_<SECTION>__<KEY>[__<KEY>...] overrides from env, fills
// defaults and checks the result. `source` names the text in error messages. Throws ConfigError.
Config parseConfig(const std::string& yaml_text, const Environment& env,
                   const std::string& source = "config");

// Reads and parses a file. Throws ConfigError.
Config loadConfig(const std::string& path, const Environment& env);

// Every key a configuration file may hold, as its full dotted path ("worker.slots"), listed from
// the same tables the loader rejects unknown keys with, so that the reference can be checked
// against it. A segment in angle brackets stands for a name the file chooses
// ("templates.<name>.argv", "templates.<name>.params.<param>.pattern"); a path ending in ".*" is
// a pass-through mapping whose keys are not checked ("kafka.properties.*").
std::set<std::string> acceptedConfigKeys();

// "1048576", "512KiB", "64MiB", "2GiB" (KB, MB, GB: powers of 1000).
std::optional<std::uint64_t> parseBytes(const std::string& text);

// "250ms", "30s", "5m", "2h", "1d", or a plain number of seconds.
std::optional<Millis> parseDuration(const std::string& text);

}  // namespace outpost
