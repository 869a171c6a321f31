// OpenLineage dataset naming (naming.h). Over 1,000 lines because it is a table: the naming
// rules of every platform the spec lists (PlatformSpec), the checker that applies them, and one
// builder per platform. Splitting it by platform would scatter one table.
#include "outpost/lineage/naming.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <vector>

namespace outpost::lineage {
namespace {

// How a platform's namespace is built.
enum class NsShape {
  kHostPort,          // scheme://{host}:{port}
  kHostOptionalPort,  // scheme://{host}[:{port}]
  kHostPortPath,      // scheme://{host}:{port}/{id}
  kHostOnly,          // scheme://{host}
  kS3Bucket,          // s3://{bucket}
  kGcsBucket,         // gs://{bucket}
  kWorkspace,         // dbfs://{workspace}
  kAzureStorage,      // scheme://{container}@{account}.dfs.core.windows.net
  kBare,              // the scheme word alone: bigquery, pubsub, file
  kInMemory,          // inmemory://
  kAthena,            // awsathena://athena.{region}.amazonaws.com
  kGlue,              // arn:aws:glue:{region}:{account}
  kCosmos,            // azurecosmos://{host}/dbs/{database}
  kKusto,             // azurekusto://{host}.kusto.windows.net
  kRedshift,          // redshift://{cluster}.{region}:{port}
  kSnowflake,         // snowflake://{org}-{account} | snowflake://{locator}[.x][.y][.z]
  kSpanner,           // spanner://{project}:{instance}
};

// How a platform's dataset name is built.
enum class NameShape {
  kDotted,         // exactly `parts` non-empty parts joined by '.'
  kDottedAtLeast,  // at least `parts`; the leading ones may hold dots (Oracle, BigQuery)
  kObjectKey,      // an object key: not empty, no leading '/'
  kAbsolutePath,   // a file system path starting with '/'
  kRelativePath,   // a path inside a container: not empty, no leading '/'
  kSlashed,        // exactly `parts` non-empty parts joined by '/'
  kGlueTable,      // table/{database}/{table}
  kCosmosColl,     // colls/{table}
  kKafkaTopic,     // a legal Kafka topic name
  kPubSub,         // topic:{project}:{topic} | subscription:{project}:{subscription}
  kAny,            // anything not empty
};

struct PlatformSpec {
  DatasetPlatform platform;
  std::string_view name;    // for messages
  std::string_view scheme;  // what the namespace starts with, before "://" or ':'
  NsShape ns_shape;
  std::string_view ns_form;
  NameShape name_shape;
  int parts;
  std::string_view name_form;
};

using P = DatasetPlatform;
using N = NsShape;
using M = NameShape;

constexpr std::array kSpecs = {
    PlatformSpec{P::kAthena, "athena", "awsathena", N::kAthena,
                 "awsathena://athena.{region_name}.amazonaws.com", M::kDotted, 3,
                 "{catalog}.{database}.{table}"},
    PlatformSpec{P::kGlue, "glue", "arn", N::kGlue, "arn:aws:glue:{region}:{account id}",
                 M::kGlueTable, 3, "table/{database name}/{table name}"},
    PlatformSpec{P::kAzureCosmos, "azure cosmos db", "azurecosmos", N::kCosmos,
                 "azurecosmos://{host}/dbs/{database}", M::kCosmosColl, 2, "colls/{table}"},
    PlatformSpec{P::kAzureDataExplorer, "azure data explorer", "azurekusto", N::kKusto,
                 "azurekusto://{host}.kusto.windows.net", M::kSlashed, 2, "{database}/{table}"},
    PlatformSpec{P::kSqlServer, "sqlserver", "sqlserver", N::kHostPort, "sqlserver://{host}:{port}",
                 M::kDotted, 2, "{schema}.{table}"},
    PlatformSpec{P::kBigQuery, "bigquery", "bigquery", N::kBare, "bigquery", M::kDottedAtLeast, 3,
                 "{project id}.{dataset name}.{table name}"},
    PlatformSpec{P::kCassandra, "cassandra", "cassandra", N::kHostPort, "cassandra://{host}:{port}",
                 M::kDotted, 2, "{keyspace}.{table}"},
    PlatformSpec{P::kMilvus, "milvus", "milvus", N::kHostPort, "milvus://{host}:{port}", M::kDotted,
                 2, "{database}.{collection}"},
    PlatformSpec{P::kFabricWarehouse, "fabric warehouse", "fabric-warehouse", N::kHostOptionalPort,
                 "fabric-warehouse://{sql analytics endpoint}[:{port}]", M::kDotted, 3,
                 "{database}.{schema}.{table}"},
    PlatformSpec{P::kMySql, "mysql", "mysql", N::kHostPort, "mysql://{host}:{port}", M::kDotted, 2,
                 "{database}.{table}"},
    PlatformSpec{P::kCrateDb, "cratedb", "crate", N::kHostPort, "crate://{host}:{port}", M::kDotted,
                 3, "{database}.{schema}.{table}"},
    PlatformSpec{P::kDb2, "db2", "db2", N::kHostPort, "db2://{host}:{port}", M::kDotted, 3,
                 "{database}.{schema}.{table}"},
    PlatformSpec{P::kHive, "hive", "hive", N::kHostPort, "hive://{host}:{port}", M::kDotted, 2,
                 "{database}.{table}"},
    PlatformSpec{P::kMsSql, "mssql", "mssql", N::kHostPort, "mssql://{host}:{port}", M::kDotted, 3,
                 "{database}.{schema}.{table}"},
    PlatformSpec{P::kOceanBase, "oceanbase", "oceanbase", N::kHostPort, "oceanbase://{host}:{port}",
                 M::kDotted, 2, "{database}.{table}"},
    PlatformSpec{P::kOracle, "oracle", "oracle", N::kHostPort, "oracle://{host}:{port}",
                 M::kDottedAtLeast, 3, "{serviceName or sid}.{schema}.{table}"},
    PlatformSpec{P::kPostgres, "postgres", "postgres", N::kHostPort, "postgres://{host}:{port}",
                 M::kDotted, 3, "{database}.{schema}.{table}"},
    PlatformSpec{P::kTeradata, "teradata", "teradata", N::kHostPort, "teradata://{host}:{port}",
                 M::kDotted, 2, "{database}.{table}"},
    PlatformSpec{P::kRedshift, "redshift", "redshift", N::kRedshift,
                 "redshift://{cluster_identifier}.{region_name}:{port}", M::kDotted, 3,
                 "{database}.{schema}.{table}"},
    PlatformSpec{P::kSnowflake, "snowflake", "snowflake", N::kSnowflake,
                 "snowflake://{organization name}-{account name}", M::kDotted, 3,
                 "{database}.{schema}.{table}"},
    PlatformSpec{P::kSpanner, "spanner", "spanner", N::kSpanner,
                 "spanner://{projectId}:{instanceId}", M::kDotted, 3,
                 "{database}.{schema}.{table}"},
    PlatformSpec{P::kTrino, "trino", "trino", N::kHostPort, "trino://{host}:{port}", M::kDotted, 3,
                 "{catalog}.{schema}.{table}"},
    PlatformSpec{P::kUnityCatalog, "unity catalog", "unitycatalog", N::kHostOptionalPort,
                 "unitycatalog://{host}[:{port}]", M::kDotted, 3, "{catalog}.{schema}.{table}"},
    PlatformSpec{P::kAbfss, "abfss", "abfss", N::kAzureStorage,
                 "abfss://{container name}@{service name}.dfs.core.windows.net", M::kRelativePath,
                 0, "{path}"},
    PlatformSpec{P::kDbfs, "dbfs", "dbfs", N::kWorkspace, "dbfs://{workspace name}",
                 M::kAbsolutePath, 0, "{path}"},
    PlatformSpec{P::kGcs, "gcs", "gs", N::kGcsBucket, "gs://{bucket name}", M::kObjectKey, 0,
                 "{object key}"},
    PlatformSpec{P::kHdfs, "hdfs", "hdfs", N::kHostPort, "hdfs://{namenode host}:{namenode port}",
                 M::kAbsolutePath, 0, "{path}"},
    PlatformSpec{P::kKafka, "kafka", "kafka", N::kHostPort,
                 "kafka://{bootstrap server host}:{port}", M::kKafkaTopic, 0, "{topic}"},
    PlatformSpec{P::kLocalFile, "local file", "file", N::kBare, "file", M::kAbsolutePath, 0,
                 "{path}"},
    PlatformSpec{P::kRemoteFile, "remote file", "file", N::kHostOnly, "file://{host}",
                 M::kAbsolutePath, 0, "{path}"},
    PlatformSpec{P::kBox, "box", "box", N::kHostPortPath, "box://{host}:{port}/{enterprise ID}",
                 M::kObjectKey, 0, "{object key}"},
    PlatformSpec{P::kFileNet, "filenet", "filenet", N::kHostPortPath,
                 "filenet://{host}:{port}/{repository ID}", M::kObjectKey, 0, "{object key}"},
    PlatformSpec{P::kS3, "s3", "s3", N::kS3Bucket, "s3://{bucket name}", M::kObjectKey, 0,
                 "{object key}"},
    PlatformSpec{P::kSharePoint, "sharepoint", "mssharepoint", N::kHostPortPath,
                 "mssharepoint://{host}:{port}/{site}", M::kObjectKey, 0, "{object key}"},
    PlatformSpec{P::kWasbs, "wasbs", "wasbs", N::kAzureStorage,
                 "wasbs://{container name}@{service name}.dfs.core.windows.net", M::kObjectKey, 0,
                 "{object key}"},
    PlatformSpec{P::kPubSub, "pubsub", "pubsub", N::kBare, "pubsub", M::kPubSub, 0,
                 "topic:{projectId}:{topicId} or subscription:{projectId}:{subscriptionId}"},
    PlatformSpec{P::kInMemory, "in-memory", "inmemory", N::kInMemory, "inmemory://", M::kAny, 0,
                 "{temporary dataset name or ID}"},
};

const PlatformSpec& spec(DatasetPlatform p) {
  for (const auto& s : kSpecs) {
    if (s.platform == p) return s;
  }
  return kSpecs.back();  // unreachable: every enumerator has a row (checked by a unit test)
}

// Schemes people write for a listed platform that the conventions spell differently.
struct Misspelling {
  std::string_view wrong;
  std::string_view right;
};
constexpr std::array kMisspellings = {
    Misspelling{"postgresql", "postgres"},
    Misspelling{"s3a", "s3"},
    Misspelling{"s3n", "s3"},
    Misspelling{"gcs", "gs"},
    Misspelling{"athena", "awsathena"},
};

constexpr std::size_t kQuoteMax = 200;

// 'value' for a message, cut at kQuoteMax bytes (on a UTF-8 boundary) and without control bytes.
std::string quote(std::string_view v) {
  std::string out = "'";
  std::size_t n = v.size();
  bool cut = false;
  if (n > kQuoteMax) {
    n = kQuoteMax;
    while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
    cut = true;
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  return out + (cut ? "...'" : "'");
}

// A namespace for a message: user information ("user:password@") replaced by "***".
std::string quoteNs(std::string_view ns) {
  return quote(withoutUserInfo(ns));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isAlnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}
bool isDigit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}
bool allOf(std::string_view s, auto pred) {
  return std::all_of(s.begin(), s.end(), pred);
}

bool hasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

// A DNS name, an IPv4 address or an [IPv6] literal. Underscores are allowed: container and
// Kubernetes service names carry them, and a namespace is an identifier, not a lookup.
std::optional<std::string> hostProblem(std::string_view host) {
  if (host.empty()) return "the host is missing";
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']' ||
        !allOf(host.substr(1, host.size() - 2), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        })) {
      return "the host " + quote(host) + " is not an [IPv6] literal";
    }
    return std::nullopt;
  }
  if (host.size() > 253) return "the host is longer than 253 characters";
  for (auto label : split(host, '.')) {
    if (label.empty()) return "the host " + quote(host) + " has an empty label";
    if (!allOf(label, [](char c) { return isAlnum(c) || c == '-' || c == '_'; })) {
      return "the host " + quote(host) + " may only hold letters, digits, '-', '_' and '.'";
    }
    if (label.front() == '-' || label.back() == '-') {
      return "the host " + quote(host) + " has a label starting or ending with '-'";
    }
  }
  return std::nullopt;
}

std::optional<std::string> portProblem(std::string_view port) {
  if (port.empty()) return "the port is missing";
  int value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
    return "the port " + quote(port) + " is not a number from 1 to 65535";
  }
  return std::nullopt;
}

// Splits "host:port" / "[v6]:port" / "host"; the port is empty when absent.
std::pair<std::string_view, std::string_view> splitHostPort(std::string_view authority) {
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return {authority, {}};
    auto rest = authority.substr(close + 1);
    return {authority.substr(0, close + 1), rest.starts_with(':') ? rest.substr(1) : rest};
  }
  auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) return {authority, {}};
  return {authority.substr(0, colon), authority.substr(colon + 1)};
}

bool isAwsRegion(std::string_view r) {
  // us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-4, il-central-1
  auto parts = split(r, '-');
  if (parts.size() < 3 || parts[0].size() != 2 ||
      !allOf(parts[0], [](char c) { return c >= 'a' && c <= 'z'; })) {
    return false;
  }
  for (std::size_t i = 1; i + 1 < parts.size(); ++i) {
    if (parts[i].empty() || !allOf(parts[i], [](char c) { return c >= 'a' && c <= 'z'; })) {
      return false;
    }
  }
  return !parts.back().empty() && allOf(parts.back(), isDigit);
}

bool isSimpleId(std::string_view s) {
  return !s.empty() && allOf(s, [](char c) { return isAlnum(c) || c == '-' || c == '_'; });
}

class Checker {
 public:
  Checker(const PlatformSpec& s, std::string_view ns, std::string_view name)
      : spec_(s), ns_(ns), name_(name) {}

  DatasetCheck run() const {
    if (ns_.empty()) return nsError("it is empty");
    if (hasControl(ns_)) return nsError("it holds a control character");
    if (auto p = checkNamespace()) return nsError(*p);
    if (name_.empty()) return nameError("it is empty");
    if (hasControl(name_)) return nameError("it holds a control character");
    if (auto p = checkName()) return nameError(*p);
    return {};
  }

 private:
  std::unexpected<std::string> nsError(const std::string& why) const {
    return std::unexpected(std::string(spec_.name) + " dataset namespace " + quoteNs(ns_) +
                           " must be " + std::string(spec_.ns_form) + ": " + why);
  }
  std::unexpected<std::string> nameError(const std::string& why) const {
    return std::unexpected(std::string(spec_.name) + " dataset name " + quote(name_) + " must be " +
                           std::string(spec_.name_form) + ": " + why);
  }

  // What follows "scheme://", or nullopt (with *why set) when the prefix is wrong.
  std::optional<std::string_view> afterScheme(std::string* why) const {
    std::string prefix = std::string(spec_.scheme) + "://";
    if (ns_.starts_with(prefix)) return ns_.substr(prefix.size());
    if (lower(ns_.substr(0, prefix.size())) == prefix) {
      *why = "the scheme must be written in lower case ('" + prefix + "')";
    } else {
      *why = "it does not start with '" + prefix + "'";
    }
    return std::nullopt;
  }

  static std::optional<std::string> noUserInfo(std::string_view authority) {
    if (authority.find('@') != std::string_view::npos) {
      return "it must not carry user information ('user:password@'): a namespace names a "
             "data source, never a credential";
    }
    if (authority.find_first_of("?#") != std::string_view::npos) {
      return "it must not carry a query or fragment ('?', '#')";
    }
    return std::nullopt;
  }

  static std::optional<std::string> hostPort(std::string_view authority, bool port_required) {
    if (auto p = noUserInfo(authority)) return p;
    if (authority.find('/') != std::string_view::npos) {
      return "it must not have a path after the host";
    }
    if (authority.find(',') != std::string_view::npos) {
      return "it takes one host:port, not a list (use the first bootstrap server)";
    }
    auto [host, port] = splitHostPort(authority);
    if (auto p = hostProblem(host)) return p;
    if (port.empty()) {
      if (port_required) return std::string("the port is missing");
      if (authority.ends_with(':')) return std::string("the port is empty");
      return std::nullopt;
    }
    return portProblem(port);
  }

  // About 190 lines, on purpose: one case per namespace shape of the spec's table (PlatformSpec),
  // each a few lines; split up, the shapes would no longer read side by side.
  std::optional<std::string> checkNamespace() const {
    std::string why;
    switch (spec_.ns_shape) {
      case N::kBare:
        if (ns_ == spec_.scheme) return std::nullopt;
        if (lower(ns_) == spec_.scheme) return "it must be written in lower case";
        return "it must be exactly '" + std::string(spec_.scheme) + "'";
      case N::kInMemory:
        if (ns_ == "inmemory://") return std::nullopt;
        return std::string("it must be exactly 'inmemory://'");
      case N::kGlue: {
        // arn:aws:glue:{region}:{account}; the aws-cn and aws-us-gov partitions are accepted too.
        auto parts = split(ns_, ':');
        if (parts.size() != 5 || parts[0] != "arn" ||
            (parts[1] != "aws" && parts[1] != "aws-cn" && parts[1] != "aws-us-gov") ||
            parts[2] != "glue") {
          return std::string("it is not a Glue catalog ARN with exactly region and account");
        }
        if (!isAwsRegion(parts[3]))
          return "the region " + quote(parts[3]) + " is not an AWS region";
        if (parts[4].size() != 12 || !allOf(parts[4], isDigit)) {
          return "the account id " + quote(parts[4]) + " is not 12 digits";
        }
        return std::nullopt;
      }
      default:
        break;
    }
    auto rest = afterScheme(&why);
    if (!rest) return why;
    std::string_view a = *rest;
    switch (spec_.ns_shape) {
      case N::kHostPort:
        return hostPort(a, true);
      case N::kHostOptionalPort:
        return hostPort(a, false);
      case N::kHostOnly: {
        if (auto p = noUserInfo(a)) return p;
        if (a.find('/') != std::string_view::npos) {
          return std::string("the path belongs in the name, not the namespace");
        }
        if (a.find(':') != std::string_view::npos && !a.starts_with('[')) {
          return std::string("it takes a host without a port");
        }
        return hostProblem(a);
      }
      case N::kHostPortPath: {
        auto slash = a.find('/');
        if (slash == std::string_view::npos) return std::string("the path segment is missing");
        auto id = a.substr(slash + 1);
        if (auto p = hostPort(a.substr(0, slash), true)) return p;
        if (id.empty() || id.find('/') != std::string_view::npos || noUserInfo(id)) {
          return "the path " + quote(id) + " must be exactly one non-empty segment";
        }
        return std::nullopt;
      }
      case N::kS3Bucket:
      case N::kGcsBucket: {
        if (a.find('/') != std::string_view::npos) {
          return std::string("the object key belongs in the name, not the namespace");
        }
        bool gcs = spec_.ns_shape == N::kGcsBucket;
        std::size_t max = gcs && a.find('.') != std::string_view::npos ? 222 : 63;
        if (a.size() < 3 || a.size() > max ||
            !allOf(a,
                   [gcs](char c) {
                     return (c >= 'a' && c <= 'z') || isDigit(c) || c == '.' || c == '-' ||
                            (gcs && c == '_');
                   }) ||
            !isAlnum(a.front()) || !isAlnum(a.back())) {
          return "the bucket " + quote(a) + " is not a bucket name (3-" + std::to_string(max) +
                 " lower-case letters, digits, '.', '-'" + (gcs ? ", '_'" : "") +
                 "; starting and ending with a letter or digit)";
        }
        return std::nullopt;
      }
      case N::kWorkspace:
        if (a.empty()) return std::string("the workspace name is missing");
        if (a.find('/') != std::string_view::npos) {
          return std::string("the path belongs in the name, not the namespace");
        }
        if (auto p = noUserInfo(a)) return p;
        return std::nullopt;
      case N::kAzureStorage: {
        auto at = a.find('@');
        if (at == std::string_view::npos) return std::string("the '{container}@' part is missing");
        auto container = a.substr(0, at);
        auto host = a.substr(at + 1);
        if (host.find('/') != std::string_view::npos) {
          return std::string("the path belongs in the name, not the namespace");
        }
        if (!isSimpleId(container)) {
          return "the container " + quote(container) + " is not a container name";
        }
        constexpr std::string_view kDfs = ".dfs.core.windows.net";
        constexpr std::string_view kBlob = ".blob.core.windows.net";
        // The conventions write .dfs. for both; wasbs:// is the blob endpoint's own scheme, so
        // its .blob. host is accepted as well.
        std::string_view account;
        if (host.ends_with(kDfs)) {
          account = host.substr(0, host.size() - kDfs.size());
        } else if (spec_.platform == P::kWasbs && host.ends_with(kBlob)) {
          account = host.substr(0, host.size() - kBlob.size());
        } else {
          return "the host " + quote(host) + " does not end with '" + std::string(kDfs) + "'";
        }
        if (account.empty() || !allOf(account, isAlnum)) {
          return "the storage account " + quote(account) + " is not letters and digits";
        }
        return std::nullopt;
      }
      case N::kAthena: {
        constexpr std::string_view kPrefix = "athena.", kSuffix = ".amazonaws.com";
        if (!a.starts_with(kPrefix) || !a.ends_with(kSuffix) ||
            a.size() <= kPrefix.size() + kSuffix.size()) {
          return "the host " + quote(a) + " is not athena.{region}.amazonaws.com";
        }
        auto region = a.substr(kPrefix.size(), a.size() - kPrefix.size() - kSuffix.size());
        if (!isAwsRegion(region)) return "the region " + quote(region) + " is not an AWS region";
        return std::nullopt;
      }
      case N::kCosmos: {
        auto slash = a.find('/');
        if (slash == std::string_view::npos) return std::string("the '/dbs/{database}' is missing");
        auto host = a.substr(0, slash);
        auto path = a.substr(slash);
        if (auto p = noUserInfo(host)) return p;
        if (auto p = hostProblem(host)) return p;
        if (!path.starts_with("/dbs/") || path.size() == 5 ||
            path.substr(5).find('/') != std::string_view::npos) {
          return "the path " + quote(path) + " is not /dbs/{database}";
        }
        return std::nullopt;
      }
      case N::kKusto: {
        constexpr std::string_view kSuffix = ".kusto.windows.net";
        if (auto p = noUserInfo(a)) return p;
        if (!a.ends_with(kSuffix) || a.size() == kSuffix.size()) {
          return "the host " + quote(a) + " does not end with '" + std::string(kSuffix) + "'";
        }
        return hostProblem(a);
      }
      case N::kRedshift: {
        if (auto p = hostPort(a, true)) return p;
        auto host = splitHostPort(a).first;
        if (host.ends_with(".amazonaws.com")) {
          return "give {cluster_identifier}.{region_name}, not the endpoint host " + quote(host);
        }
        auto labels = split(host, '.');
        if (labels.size() != 2 || !isAwsRegion(labels[1])) {
          return "the host " + quote(host) +
                 " is not {cluster_identifier}.{region_name} (e.g. examplecluster.us-west-2)";
        }
        return std::nullopt;
      }
      case N::kSnowflake: {
        if (auto p = noUserInfo(a)) return p;
        if (a.find_first_of("/:") != std::string_view::npos) {
          return std::string("it takes the account identifier alone: no port, no path");
        }
        if (lower(a).ends_with("snowflakecomputing.com")) {
          return "give the account identifier ({organization}-{account name}), not the host " +
                 quote(a);
        }
        for (auto label : split(a, '.')) {
          if (!isSimpleId(label)) {
            return "the account identifier " + quote(a) +
                   " may only hold letters, digits, '-', '_' and '.' between non-empty parts";
          }
        }
        return std::nullopt;
      }
      case N::kSpanner: {
        if (auto p = noUserInfo(a)) return p;
        auto colon = a.find(':');
        if (colon == std::string_view::npos) return std::string("the ':{instanceId}' is missing");
        auto project = a.substr(0, colon), instance = a.substr(colon + 1);
        auto ok = [](std::string_view s) {
          return !s.empty() &&
                 allOf(s, [](char c) { return isAlnum(c) || c == '-' || c == '_' || c == '.'; });
        };
        if (!ok(project)) return "the project id " + quote(project) + " is not a project id";
        if (!ok(instance)) return "the instance id " + quote(instance) + " is not an instance id";
        return std::nullopt;
      }
      default:
        return std::nullopt;
    }
  }

  std::optional<std::string> dotted(bool at_least) const {
    auto parts = split(name_, '.');
    int n = static_cast<int>(parts.size());
    if (n < spec_.parts || (!at_least && n > spec_.parts)) {
      return "it has " + std::to_string(n) + (n == 1 ? " part" : " parts") + ", not " +
             std::to_string(spec_.parts);
    }
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].empty()) return "part " + std::to_string(i + 1) + " is empty";
    }
    return std::nullopt;
  }

  std::optional<std::string> checkName() const {
    switch (spec_.name_shape) {
      case M::kDotted:
        return dotted(false);
      case M::kDottedAtLeast:
        return dotted(true);
      case M::kObjectKey:
      case M::kRelativePath:
        if (name_.starts_with('/')) return std::string("it must not start with '/'");
        if (name_.size() > 1024) return std::string("it is longer than 1024 bytes");
        return std::nullopt;
      case M::kAbsolutePath:
        if (!name_.starts_with('/')) return std::string("it must be an absolute path ('/...')");
        return std::nullopt;
      case M::kSlashed: {
        auto parts = split(name_, '/');
        if (static_cast<int>(parts.size()) != spec_.parts) {
          return "it has " + std::to_string(parts.size()) + " '/'-separated parts, not " +
                 std::to_string(spec_.parts);
        }
        for (auto p : parts) {
          if (p.empty()) return std::string("a part is empty");
        }
        return std::nullopt;
      }
      case M::kGlueTable: {
        auto parts = split(name_, '/');
        if (parts.size() != 3 || parts[0] != "table" || parts[1].empty() || parts[2].empty()) {
          return std::string("it is not 'table/' followed by a database and a table");
        }
        return std::nullopt;
      }
      case M::kCosmosColl:
        if (!name_.starts_with("colls/") || name_.size() == 6 ||
            name_.substr(6).find('/') != std::string_view::npos) {
          return std::string("it is not 'colls/' followed by a table");
        }
        return std::nullopt;
      case M::kKafkaTopic:
        if (name_.size() > 249) return std::string("a topic name has at most 249 characters");
        if (name_ == "." || name_ == "..") return std::string("'.' and '..' are not topics");
        if (!allOf(name_, [](char c) { return isAlnum(c) || c == '.' || c == '_' || c == '-'; })) {
          return std::string("a topic name may only hold letters, digits, '.', '_' and '-'");
        }
        return std::nullopt;
      case M::kPubSub: {
        auto parts = split(name_, ':');
        if (parts.size() != 3 || (parts[0] != "topic" && parts[0] != "subscription") ||
            parts[1].empty() || parts[2].empty()) {
          return std::string(
              "it is not topic:{project}:{topic} or "
              "subscription:{project}:{subscription}");
        }
        return std::nullopt;
      }
      case M::kAny:
        return std::nullopt;
    }
    return std::nullopt;
  }

  const PlatformSpec& spec_;
  std::string_view ns_;
  std::string_view name_;
};

// The scheme a namespace starts with: up to "://", or up to ':' for arn:..., or the whole word.
std::string_view schemeOf(std::string_view ns) {
  auto sep = ns.find("://");
  if (sep != std::string_view::npos) return ns.substr(0, sep);
  auto colon = ns.find(':');
  return colon == std::string_view::npos ? ns : ns.substr(0, colon);
}

bool isSchemeWord(std::string_view s) {
  return !s.empty() && std::isalpha(static_cast<unsigned char>(s.front())) && allOf(s, [](char c) {
    return isAlnum(c) || c == '+' || c == '-' || c == '.' || c == '_';
  });
}

// ---------------------------------------------------------------------------------------------
// Builder helpers

struct Part {
  std::string_view what;
  std::string_view value;
};

std::unexpected<std::string> partError(DatasetPlatform p, std::string_view what,
                                       const std::string& why) {
  return std::unexpected(std::string(platformName(p)) + " dataset: the " + std::string(what) + " " +
                         why);
}

// Joins name parts with '.', refusing empty parts and parts holding the separator (except the
// first `dotted_first` ones, which may: an Oracle service name, a BigQuery project).
std::expected<std::string, std::string> joinParts(DatasetPlatform p, std::vector<Part> parts,
                                                  char sep, bool dots_in_first = false) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& part = parts[i];
    if (part.value.empty()) return partError(p, part.what, "is empty");
    if (hasControl(part.value)) return partError(p, part.what, "holds a control character");
    if (part.value.find(sep) != std::string_view::npos && !(i == 0 && dots_in_first)) {
      return partError(p, part.what,
                       quote(part.value) + " contains '" + std::string(1, sep) +
                           "', which separates the parts of the name");
    }
    if (i > 0) out += sep;
    out += part.value;
  }
  return out;
}

std::expected<std::string, std::string> authority(DatasetPlatform p, std::string_view host,
                                                  std::optional<int> port) {
  if (host.find(':') != std::string_view::npos && !host.starts_with('[')) {
    return partError(p, "host", quote(host) + " must not carry a port; pass it separately");
  }
  if (auto why = hostProblem(host))
    return std::unexpected(std::string(platformName(p)) + " dataset: " + *why);
  std::string out(host);
  if (port) {
    if (*port < 1 || *port > 65535) {
      return partError(p, "port", std::to_string(*port) + " is not from 1 to 65535");
    }
    out += ":" + std::to_string(*port);
  }
  return out;
}

DatasetResult finish(DatasetPlatform p, std::string ns, std::string name) {
  if (auto c = checkDataset(p, ns, name); !c) return std::unexpected(c.error());
  return DatasetId{std::move(ns), std::move(name)};
}

DatasetResult hostPortTable(DatasetPlatform p, std::string_view host, std::optional<int> port,
                            std::vector<Part> parts, bool dots_in_first = false) {
  auto a = authority(p, host, port);
  if (!a) return std::unexpected(a.error());
  auto name = joinParts(p, std::move(parts), '.', dots_in_first);
  if (!name) return std::unexpected(name.error());
  return finish(p, std::string(spec(p).scheme) + "://" + *a, *name);
}

std::string stripLeadingSlashes(std::string_view s) {
  while (s.starts_with('/')) s.remove_prefix(1);
  return std::string(s);
}

std::string absolute(std::string_view s) {
  return s.starts_with('/') ? std::string(s) : "/" + std::string(s);
}

DatasetResult keyed(DatasetPlatform p, std::string ns, std::string_view what, std::string_view key,
                    bool absolute_path) {
  if (key.empty() || (!absolute_path && stripLeadingSlashes(key).empty())) {
    return partError(p, what, "is empty");
  }
  return finish(p, std::move(ns), absolute_path ? absolute(key) : stripLeadingSlashes(key));
}

}  // namespace

std::string withoutUserInfo(std::string_view ns) {
  auto sep = ns.find("://");
  if (sep == std::string_view::npos) return std::string(ns);
  std::string scheme = lower(ns.substr(0, sep));
  // In these the part before '@' is a container, not a user.
  if (scheme == "abfss" || scheme == "abfs" || scheme == "wasbs" || scheme == "wasb") {
    return std::string(ns);
  }
  auto start = sep + 3;
  auto end = ns.find_first_of("/?#", start);
  auto authority = ns.substr(start, end == std::string_view::npos ? end : end - start);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(ns);
  return std::string(ns.substr(0, start)) + "***" + std::string(ns.substr(start + at));
}

std::string_view platformName(DatasetPlatform platform) {
  return spec(platform).name;
}
std::string_view namespaceForm(DatasetPlatform platform) {
  return spec(platform).ns_form;
}
std::string_view nameForm(DatasetPlatform platform) {
  return spec(platform).name_form;
}

std::optional<DatasetPlatform> platformOfNamespace(std::string_view ns) {
  std::string scheme = lower(schemeOf(ns));
  bool slashes = ns.find("://") != std::string_view::npos;
  if (scheme == "file") return slashes ? P::kRemoteFile : P::kLocalFile;
  if (scheme == "arn") {
    return lower(ns).find(":glue:") != std::string::npos ? std::optional(P::kGlue) : std::nullopt;
  }
  for (const auto& s : kSpecs) {
    if (s.scheme == scheme) return s.platform;
  }
  return std::nullopt;
}

DatasetCheck checkDataset(DatasetPlatform platform, std::string_view ns, std::string_view name) {
  return Checker(spec(platform), ns, name).run();
}

DatasetCheck checkDataset(std::string_view ns, std::string_view name) {
  if (auto p = platformOfNamespace(ns)) return checkDataset(*p, ns, name);
  if (ns.empty()) return std::unexpected(std::string("dataset namespace is empty"));
  if (hasControl(ns)) {
    return std::unexpected("dataset namespace " + quoteNs(ns) + " holds a control character");
  }
  std::string scheme = lower(schemeOf(ns));
  for (const auto& m : kMisspellings) {
    if (scheme == m.wrong) {
      return std::unexpected(
          "dataset namespace " + quoteNs(ns) + " uses the scheme '" + std::string(m.wrong) +
          "'; the OpenLineage naming conventions write '" + std::string(m.right) + "'");
    }
  }
  if (!isSchemeWord(schemeOf(ns))) {
    return std::unexpected("dataset namespace " + quoteNs(ns) +
                           " must start with a scheme (letters, digits, '+', '-', '.'), as in "
                           "'postgres://host:5432' or 'bigquery'");
  }
  if (auto sep = ns.find("://"); sep != std::string_view::npos) {
    auto a = ns.substr(sep + 3);
    auto host_end = a.find('/');
    if (a.substr(0, host_end).find('@') != std::string_view::npos) {
      return std::unexpected(
          "dataset namespace " + quoteNs(ns) +
          " must not carry user information ('user:password@'): a namespace names a "
          "data source, never a credential");
    }
  }
  if (name.empty()) return std::unexpected("dataset name in " + quoteNs(ns) + " is empty");
  if (hasControl(name)) {
    return std::unexpected("dataset name " + quote(name) + " holds a control character");
  }
  return {};
}

// ---------------------------------------------------------------------------------------------

DatasetResult postgresDataset(std::string_view host, int port, std::string_view database,
                              std::string_view schema, std::string_view table) {
  return hostPortTable(P::kPostgres, host, port,
                       {{"database", database}, {"schema", schema}, {"table", table}});
}
DatasetResult mysqlDataset(std::string_view host, int port, std::string_view database,
                           std::string_view table) {
  return hostPortTable(P::kMySql, host, port, {{"database", database}, {"table", table}});
}
DatasetResult mssqlDataset(std::string_view host, int port, std::string_view database,
                           std::string_view schema, std::string_view table) {
  return hostPortTable(P::kMsSql, host, port,
                       {{"database", database}, {"schema", schema}, {"table", table}});
}
DatasetResult sqlServerDataset(std::string_view host, int port, std::string_view schema,
                               std::string_view table) {
  return hostPortTable(P::kSqlServer, host, port, {{"schema", schema}, {"table", table}});
}
DatasetResult oracleDataset(std::string_view host, int port, std::string_view service_name_or_sid,
                            std::string_view schema, std::string_view table) {
  return hostPortTable(
      P::kOracle, host, port,
      {{"service name or sid", service_name_or_sid}, {"schema", schema}, {"table", table}}, true);
}
DatasetResult db2Dataset(std::string_view host, int port, std::string_view database,
                         std::string_view schema, std::string_view table) {
  return hostPortTable(P::kDb2, host, port,
                       {{"database", database}, {"schema", schema}, {"table", table}});
}
DatasetResult trinoDataset(std::string_view host, int port, std::string_view catalog,
                           std::string_view schema, std::string_view table) {
  return hostPortTable(P::kTrino, host, port,
                       {{"catalog", catalog}, {"schema", schema}, {"table", table}});
}
DatasetResult hiveDataset(std::string_view host, int port, std::string_view database,
                          std::string_view table) {
  return hostPortTable(P::kHive, host, port, {{"database", database}, {"table", table}});
}
DatasetResult teradataDataset(std::string_view host, int port, std::string_view database,
                              std::string_view table) {
  return hostPortTable(P::kTeradata, host, port, {{"database", database}, {"table", table}});
}
DatasetResult oceanBaseDataset(std::string_view host, int port, std::string_view database,
                               std::string_view table) {
  return hostPortTable(P::kOceanBase, host, port, {{"database", database}, {"table", table}});
}
DatasetResult crateDbDataset(std::string_view host, int port, std::string_view database,
                             std::string_view schema, std::string_view table) {
  return hostPortTable(P::kCrateDb, host, port,
                       {{"database", database}, {"schema", schema}, {"table", table}});
}
DatasetResult cassandraDataset(std::string_view host, int port, std::string_view keyspace,
                               std::string_view table) {
  return hostPortTable(P::kCassandra, host, port, {{"keyspace", keyspace}, {"table", table}});
}
DatasetResult milvusDataset(std::string_view host, int port, std::string_view database,
                            std::string_view collection) {
  return hostPortTable(P::kMilvus, host, port,
                       {{"database", database}, {"collection", collection}});
}
DatasetResult redshiftDataset(std::string_view cluster_identifier, std::string_view region,
                              int port, std::string_view database, std::string_view schema,
                              std::string_view table) {
  if (!isSimpleId(cluster_identifier)) {
    return partError(P::kRedshift, "cluster identifier",
                     quote(cluster_identifier) + " is not a cluster identifier");
  }
  if (!isAwsRegion(region)) {
    return partError(P::kRedshift, "region", quote(region) + " is not an AWS region");
  }
  std::string host = std::string(cluster_identifier) + "." + std::string(region);
  return hostPortTable(P::kRedshift, host, port,
                       {{"database", database}, {"schema", schema}, {"table", table}});
}
DatasetResult snowflakeDataset(std::string_view account, std::string_view database,
                               std::string_view schema, std::string_view table) {
  auto name =
      joinParts(P::kSnowflake, {{"database", database}, {"schema", schema}, {"table", table}}, '.');
  if (!name) return std::unexpected(name.error());
  return finish(P::kSnowflake, "snowflake://" + std::string(account), *name);
}
DatasetResult bigQueryDataset(std::string_view project, std::string_view dataset,
                              std::string_view table) {
  auto name = joinParts(P::kBigQuery,
                        {{"project", project}, {"dataset", dataset}, {"table", table}}, '.', true);
  if (!name) return std::unexpected(name.error());
  return finish(P::kBigQuery, "bigquery", *name);
}
DatasetResult athenaDataset(std::string_view region, std::string_view catalog,
                            std::string_view database, std::string_view table) {
  if (!isAwsRegion(region)) {
    return partError(P::kAthena, "region", quote(region) + " is not an AWS region");
  }
  auto name =
      joinParts(P::kAthena, {{"catalog", catalog}, {"database", database}, {"table", table}}, '.');
  if (!name) return std::unexpected(name.error());
  return finish(P::kAthena, "awsathena://athena." + std::string(region) + ".amazonaws.com", *name);
}
DatasetResult glueDataset(std::string_view region, std::string_view account_id,
                          std::string_view database, std::string_view table) {
  auto name = joinParts(P::kGlue, {{"database", database}, {"table", table}}, '/');
  if (!name) return std::unexpected(name.error());
  return finish(P::kGlue, "arn:aws:glue:" + std::string(region) + ":" + std::string(account_id),
                "table/" + *name);
}
DatasetResult spannerDataset(std::string_view project, std::string_view instance,
                             std::string_view database, std::string_view schema,
                             std::string_view table) {
  auto name =
      joinParts(P::kSpanner, {{"database", database}, {"schema", schema}, {"table", table}}, '.');
  if (!name) return std::unexpected(name.error());
  return finish(P::kSpanner, "spanner://" + std::string(project) + ":" + std::string(instance),
                *name);
}
DatasetResult unityCatalogDataset(std::string_view host, std::optional<int> port,
                                  std::string_view catalog, std::string_view schema,
                                  std::string_view table) {
  return hostPortTable(P::kUnityCatalog, host, port,
                       {{"catalog", catalog}, {"schema", schema}, {"table", table}});
}
DatasetResult fabricWarehouseDataset(std::string_view endpoint, std::optional<int> port,
                                     std::string_view database, std::string_view schema,
                                     std::string_view table) {
  return hostPortTable(P::kFabricWarehouse, endpoint, port,
                       {{"database", database}, {"schema", schema}, {"table", table}});
}
DatasetResult azureCosmosDataset(std::string_view host, std::string_view database,
                                 std::string_view table) {
  auto a = authority(P::kAzureCosmos, host, std::nullopt);
  if (!a) return std::unexpected(a.error());
  auto db = joinParts(P::kAzureCosmos, {{"database", database}}, '/');
  if (!db) return std::unexpected(db.error());
  auto t = joinParts(P::kAzureCosmos, {{"table", table}}, '/');
  if (!t) return std::unexpected(t.error());
  return finish(P::kAzureCosmos, "azurecosmos://" + *a + "/dbs/" + *db, "colls/" + *t);
}
DatasetResult azureDataExplorerDataset(std::string_view cluster, std::string_view database,
                                       std::string_view table) {
  auto name = joinParts(P::kAzureDataExplorer, {{"database", database}, {"table", table}}, '/');
  if (!name) return std::unexpected(name.error());
  return finish(P::kAzureDataExplorer,
                "azurekusto://" + std::string(cluster) + ".kusto.windows.net", *name);
}
DatasetResult s3Dataset(std::string_view bucket, std::string_view key) {
  return keyed(P::kS3, "s3://" + std::string(bucket), "object key", key, false);
}
DatasetResult gcsDataset(std::string_view bucket, std::string_view key) {
  return keyed(P::kGcs, "gs://" + std::string(bucket), "object key", key, false);
}
DatasetResult wasbsDataset(std::string_view container, std::string_view account,
                           std::string_view key) {
  return keyed(
      P::kWasbs,
      "wasbs://" + std::string(container) + "@" + std::string(account) + ".dfs.core.windows.net",
      "object key", key, false);
}
DatasetResult abfssDataset(std::string_view container, std::string_view account,
                           std::string_view path) {
  return keyed(
      P::kAbfss,
      "abfss://" + std::string(container) + "@" + std::string(account) + ".dfs.core.windows.net",
      "path", path, false);
}
DatasetResult dbfsDataset(std::string_view workspace, std::string_view path) {
  return keyed(P::kDbfs, "dbfs://" + std::string(workspace), "path", path, true);
}
DatasetResult hdfsDataset(std::string_view namenode_host, int port, std::string_view path) {
  auto a = authority(P::kHdfs, namenode_host, port);
  if (!a) return std::unexpected(a.error());
  return keyed(P::kHdfs, "hdfs://" + *a, "path", path, true);
}
DatasetResult localFileDataset(std::string_view path) {
  return keyed(P::kLocalFile, "file", "path", path, true);
}
DatasetResult remoteFileDataset(std::string_view host, std::string_view path) {
  auto a = authority(P::kRemoteFile, host, std::nullopt);
  if (!a) return std::unexpected(a.error());
  return keyed(P::kRemoteFile, "file://" + *a, "path", path, true);
}
DatasetResult kafkaDataset(std::string_view bootstrap_host, int port, std::string_view topic) {
  auto a = authority(P::kKafka, bootstrap_host, port);
  if (!a) return std::unexpected(a.error());
  return finish(P::kKafka, "kafka://" + *a, std::string(topic));
}
DatasetResult pubSubTopicDataset(std::string_view project, std::string_view topic) {
  auto name = joinParts(P::kPubSub, {{"project", project}, {"topic", topic}}, ':');
  if (!name) return std::unexpected(name.error());
  return finish(P::kPubSub, "pubsub", "topic:" + *name);
}
DatasetResult pubSubSubscriptionDataset(std::string_view project, std::string_view subscription) {
  auto name = joinParts(P::kPubSub, {{"project", project}, {"subscription", subscription}}, ':');
  if (!name) return std::unexpected(name.error());
  return finish(P::kPubSub, "pubsub", "subscription:" + *name);
}

namespace {
DatasetResult documentStore(DatasetPlatform p, std::string_view host, int port,
                            std::string_view what, std::string_view id, std::string_view key) {
  auto a = authority(p, host, port);
  if (!a) return std::unexpected(a.error());
  auto segment = joinParts(p, {{what, id}}, '/');
  if (!segment) return std::unexpected(segment.error());
  return keyed(p, std::string(spec(p).scheme) + "://" + *a + "/" + *segment, "object key", key,
               false);
}
}  // namespace

DatasetResult boxDataset(std::string_view host, int port, std::string_view enterprise_id,
                         std::string_view key) {
  return documentStore(P::kBox, host, port, "enterprise id", enterprise_id, key);
}
DatasetResult fileNetDataset(std::string_view host, int port, std::string_view repository_id,
                             std::string_view key) {
  return documentStore(P::kFileNet, host, port, "repository id", repository_id, key);
}
DatasetResult sharePointDataset(std::string_view host, int port, std::string_view site,
                                std::string_view key) {
  return documentStore(P::kSharePoint, host, port, "site", site, key);
}
DatasetResult inMemoryDataset(std::string_view name) {
  if (name.empty()) return partError(P::kInMemory, "name", "is empty");
  return finish(P::kInMemory, "inmemory://", std::string(name));
}

DatasetResult datasetFromStorageUri(std::string_view uri) {
  auto sep = uri.find("://");
  if (sep == std::string_view::npos) {
    return std::unexpected("storage URI " + quote(uri) + " has no scheme:// part");
  }
  std::string scheme = lower(uri.substr(0, sep));
  auto rest = uri.substr(sep + 3);
  auto slash = rest.find('/');
  auto authority_part = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (scheme == "file") {
    if (authority_part.empty() || authority_part == "localhost") return localFileDataset(path);
    return remoteFileDataset(authority_part, path);
  }
  for (const auto& m : kMisspellings) {
    if (scheme == m.wrong) {
      return std::unexpected(
          "storage URI " + quote(uri) + " uses the scheme '" + std::string(m.wrong) +
          "'; the OpenLineage naming conventions write '" + std::string(m.right) + "'");
    }
  }
  P platform;
  if (scheme == "s3") {
    platform = P::kS3;
  } else if (scheme == "gs") {
    platform = P::kGcs;
  } else if (scheme == "wasbs") {
    platform = P::kWasbs;
  } else if (scheme == "abfss") {
    platform = P::kAbfss;
  } else if (scheme == "dbfs") {
    platform = P::kDbfs;
  } else if (scheme == "hdfs") {
    platform = P::kHdfs;
  } else {
    return std::unexpected("storage URI " + quote(uri) +
                           ": only s3, gs, wasbs, abfss, dbfs, hdfs and file URIs name a dataset "
                           "by their path");
  }
  bool absolute_path = platform == P::kDbfs || platform == P::kHdfs;
  std::string ns = std::string(spec(platform).scheme) + "://" + std::string(authority_part);
  // Surface namespace problems before a missing path: they say more.
  if (auto c = checkDataset(platform, ns, absolute_path ? "/x" : "x"); !c) {
    return std::unexpected(c.error());
  }
  return keyed(platform, std::move(ns), absolute_path ? "path" : "object key", path, absolute_path);
}

}  // namespace outpost::lineage
