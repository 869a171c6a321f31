// Dataset identities by the OpenLineage naming conventions (website/docs/spec/naming.md): for
// each platform the conventions list, a builder that makes the (namespace, name) pair from its
// parts, and checks that say exactly what is wrong with a pair someone else made.
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace outpost::lineage {

// One dataset's OpenLineage identity. `ns` is the dataset namespace ("namespace" is a keyword).
struct DatasetId {
  std::string ns;
  std::string name;
  bool operator==(const DatasetId&) const = default;
};

// The data stores of the naming conventions' table, in its order.
enum class DatasetPlatform {
  kAthena,             // awsathena://athena.{region}.amazonaws.com   {catalog}.{database}.{table}
  kGlue,               // arn:aws:glue:{region}:{account id}          table/{database}/{table}
  kAzureCosmos,        // azurecosmos://{host}/dbs/{database}         colls/{table}
  kAzureDataExplorer,  // azurekusto://{host}.kusto.windows.net       {database}/{table}
  kSqlServer,          // sqlserver://{host}:{port} (Azure Synapse)   {schema}.{table}
  kBigQuery,           // bigquery                                    {project}.{dataset}.{table}
  kCassandra,          // cassandra://{host}:{port}                   {keyspace}.{table}
  kMilvus,             // milvus://{host}:{port}                      {database}.{collection}
  kFabricWarehouse,    // fabric-warehouse://{endpoint}[:{port}]      {database}.{schema}.{table}
  kMySql,              // mysql://{host}:{port}                       {database}.{table}
  kCrateDb,            // crate://{host}:{port}                       {database}.{schema}.{table}
  kDb2,                // db2://{host}:{port}                         {database}.{schema}.{table}
  kHive,               // hive://{host}:{port}                        {database}.{table}
  kMsSql,              // mssql://{host}:{port}                       {database}.{schema}.{table}
  kOceanBase,          // oceanbase://{host}:{port}                   {database}.{table}
  kOracle,        // oracle://{host}:{port}                      {service or sid}.{schema}.{table}
  kPostgres,      // postgres://{host}:{port}                    {database}.{schema}.{table}
  kTeradata,      // teradata://{host}:{port}                    {database}.{table}
  kRedshift,      // redshift://{cluster}.{region}:{port}        {database}.{schema}.{table}
  kSnowflake,     // snowflake://{org}-{account} or {locator}... {database}.{schema}.{table}
  kSpanner,       // spanner://{project}:{instance}              {database}.{schema}.{table}
  kTrino,         // trino://{host}:{port}                       {catalog}.{schema}.{table}
  kUnityCatalog,  // unitycatalog://{host}[:{port}]              {catalog}.{schema}.{table}
  kAbfss,         // abfss://{container}@{account}.dfs.core.windows.net   {path}
  kDbfs,          // dbfs://{workspace}                          {path}
  kGcs,           // gs://{bucket}                               {object key}
  kHdfs,          // hdfs://{namenode host}:{port}               {path}
  kKafka,         // kafka://{bootstrap host}:{port}             {topic}
  kLocalFile,     // file                                        {path}
  kRemoteFile,    // file://{host}                               {path}
  kBox,           // box://{host}:{port}/{enterprise id}         {object key}
  kFileNet,       // filenet://{host}:{port}/{repository id}     {object key}
  kS3,            // s3://{bucket}                               {object key}
  kSharePoint,    // mssharepoint://{host}:{port}/{site}         {object key}
  kWasbs,         // wasbs://{container}@{account}.dfs.core.windows.net   {object key}
  kPubSub,        // pubsub                   topic:{project}:{topic} | subscription:{p}:{s}
  kInMemory,      // inmemory://                                 {dataset name or id}
};

// Every platform above, for tests and tables.
inline constexpr DatasetPlatform kAllDatasetPlatforms[] = {
    DatasetPlatform::kAthena,
    DatasetPlatform::kGlue,
    DatasetPlatform::kAzureCosmos,
    DatasetPlatform::kAzureDataExplorer,
    DatasetPlatform::kSqlServer,
    DatasetPlatform::kBigQuery,
    DatasetPlatform::kCassandra,
    DatasetPlatform::kMilvus,
    DatasetPlatform::kFabricWarehouse,
    DatasetPlatform::kMySql,
    DatasetPlatform::kCrateDb,
    DatasetPlatform::kDb2,
    DatasetPlatform::kHive,
    DatasetPlatform::kMsSql,
    DatasetPlatform::kOceanBase,
    DatasetPlatform::kOracle,
    DatasetPlatform::kPostgres,
    DatasetPlatform::kTeradata,
    DatasetPlatform::kRedshift,
    DatasetPlatform::kSnowflake,
    DatasetPlatform::kSpanner,
    DatasetPlatform::kTrino,
    DatasetPlatform::kUnityCatalog,
    DatasetPlatform::kAbfss,
    DatasetPlatform::kDbfs,
    DatasetPlatform::kGcs,
    DatasetPlatform::kHdfs,
    DatasetPlatform::kKafka,
    DatasetPlatform::kLocalFile,
    DatasetPlatform::kRemoteFile,
    DatasetPlatform::kBox,
    DatasetPlatform::kFileNet,
    DatasetPlatform::kS3,
    DatasetPlatform::kSharePoint,
    DatasetPlatform::kWasbs,
    DatasetPlatform::kPubSub,
    DatasetPlatform::kInMemory,
};

// A short lower-case name for messages ("postgres", "gcs", "azure data explorer", ...).
std::string_view platformName(DatasetPlatform platform);
// The namespace form the conventions give, e.g. "postgres://{host}:{port}".
std::string_view namespaceForm(DatasetPlatform platform);
// The name form the conventions give, e.g. "{database}.{schema}.{table}".
std::string_view nameForm(DatasetPlatform platform);

// The platform whose scheme a namespace starts with (scheme compared case-insensitively, so that
// a wrongly-cased one is reported by checkDataset rather than passed as unknown); nullopt when
// the conventions list no such scheme.
std::optional<DatasetPlatform> platformOfNamespace(std::string_view ns);

// Empty when the pair follows the conventions, else one sentence naming the platform, the form
// it should have and what is wrong, e.g. "postgres dataset namespace 'postgres://db' must be
// postgres://{host}:{port}: the port is missing". Values quoted in messages are cut at 200 bytes.
using DatasetCheck = std::expected<void, std::string>;

// Checks against one platform's conventions.
DatasetCheck checkDataset(DatasetPlatform platform, std::string_view ns, std::string_view name);

// Checks against the platform the namespace names. A scheme the conventions do not list (a custom
// platform, which the spec allows) passes when the namespace is "scheme:..." or a bare word and
// the name is not empty; a well-known misspelling of a listed scheme (postgresql://, s3a://,
// s3n://, gcs://, athena://) is refused with the scheme to use. Namespaces and names never carry
// control characters, and host forms never carry user information ("user:password@").
DatasetCheck checkDataset(std::string_view ns, std::string_view name);

// The namespace with any user information in its authority ("postgres://alice:pw@db:5432")
// replaced by "***" ("postgres://***@db:5432"), for messages and reports. The container part of
// abfss:// and wasbs:// namespaces is kept.
std::string withoutUserInfo(std::string_view ns);

// ---------------------------------------------------------------------------------------------
// Builders. Each validates its parts (a part of a dotted name may not contain '.', a host is a
// host name or [IPv6], a port is 1-65535, ...), assembles the pair as the conventions say and
// returns it, or a message saying which part is wrong. Object keys lose leading '/', file system
// paths get one; nothing else is rewritten (case is kept: the conventions do not fold it).

using DatasetResult = std::expected<DatasetId, std::string>;

DatasetResult postgresDataset(std::string_view host, int port, std::string_view database,
                              std::string_view schema, std::string_view table);
DatasetResult mysqlDataset(std::string_view host, int port, std::string_view database,
                           std::string_view table);
DatasetResult mssqlDataset(std::string_view host, int port, std::string_view database,
                           std::string_view schema, std::string_view table);
// Azure Synapse (and the sqlserver:// form in general): {schema}.{table}.
DatasetResult sqlServerDataset(std::string_view host, int port, std::string_view schema,
                               std::string_view table);
// `service_name_or_sid` may contain dots (orclpdb1.example.com): the name's last two parts are
// the schema and table.
DatasetResult oracleDataset(std::string_view host, int port, std::string_view service_name_or_sid,
                            std::string_view schema, std::string_view table);
DatasetResult db2Dataset(std::string_view host, int port, std::string_view database,
                         std::string_view schema, std::string_view table);
DatasetResult trinoDataset(std::string_view host, int port, std::string_view catalog,
                           std::string_view schema, std::string_view table);
DatasetResult hiveDataset(std::string_view host, int port, std::string_view database,
                          std::string_view table);
DatasetResult teradataDataset(std::string_view host, int port, std::string_view database,
                              std::string_view table);
DatasetResult oceanBaseDataset(std::string_view host, int port, std::string_view database,
                               std::string_view table);
DatasetResult crateDbDataset(std::string_view host, int port, std::string_view database,
                             std::string_view schema, std::string_view table);
DatasetResult cassandraDataset(std::string_view host, int port, std::string_view keyspace,
                               std::string_view table);
DatasetResult milvusDataset(std::string_view host, int port, std::string_view database,
                            std::string_view collection);
// `cluster_identifier` and `region` as in the endpoint examplecluster.abc123.us-west-2.redshift
// .amazonaws.com: "examplecluster", "us-west-2".
DatasetResult redshiftDataset(std::string_view cluster_identifier, std::string_view region,
                              int port, std::string_view database, std::string_view schema,
                              std::string_view table);
// `account`: "{organization}-{account name}" (preferred) or the legacy locator form
// "{locator}[.{compliance}][.{region}][.{cloud}]"; never the snowflakecomputing.com host name.
DatasetResult snowflakeDataset(std::string_view account, std::string_view database,
                               std::string_view schema, std::string_view table);
// `project` may be a domain-scoped id with a dot ("example.com:analytics").
DatasetResult bigQueryDataset(std::string_view project, std::string_view dataset,
                              std::string_view table);
DatasetResult athenaDataset(std::string_view region, std::string_view catalog,
                            std::string_view database, std::string_view table);
DatasetResult glueDataset(std::string_view region, std::string_view account_id,
                          std::string_view database, std::string_view table);
DatasetResult spannerDataset(std::string_view project, std::string_view instance,
                             std::string_view database, std::string_view schema,
                             std::string_view table);
DatasetResult unityCatalogDataset(std::string_view host, std::optional<int> port,
                                  std::string_view catalog, std::string_view schema,
                                  std::string_view table);
DatasetResult fabricWarehouseDataset(std::string_view endpoint, std::optional<int> port,
                                     std::string_view database, std::string_view schema,
                                     std::string_view table);
DatasetResult azureCosmosDataset(std::string_view host, std::string_view database,
                                 std::string_view table);
// `cluster`: the part of the host before ".kusto.windows.net" ("mycluster.westeurope").
DatasetResult azureDataExplorerDataset(std::string_view cluster, std::string_view database,
                                       std::string_view table);
DatasetResult s3Dataset(std::string_view bucket, std::string_view key);
DatasetResult gcsDataset(std::string_view bucket, std::string_view key);
DatasetResult wasbsDataset(std::string_view container, std::string_view account,
                           std::string_view key);
DatasetResult abfssDataset(std::string_view container, std::string_view account,
                           std::string_view path);
DatasetResult dbfsDataset(std::string_view workspace, std::string_view path);
DatasetResult hdfsDataset(std::string_view namenode_host, int port, std::string_view path);
DatasetResult localFileDataset(std::string_view path);
DatasetResult remoteFileDataset(std::string_view host, std::string_view path);
DatasetResult kafkaDataset(std::string_view bootstrap_host, int port, std::string_view topic);
DatasetResult pubSubTopicDataset(std::string_view project, std::string_view topic);
DatasetResult pubSubSubscriptionDataset(std::string_view project, std::string_view subscription);
DatasetResult boxDataset(std::string_view host, int port, std::string_view enterprise_id,
                         std::string_view key);
DatasetResult fileNetDataset(std::string_view host, int port, std::string_view repository_id,
                             std::string_view key);
DatasetResult sharePointDataset(std::string_view host, int port, std::string_view site,
                                std::string_view key);
DatasetResult inMemoryDataset(std::string_view name);

// Splits a storage URI the way the conventions name it: s3://bucket/key, gs://bucket/key,
// wasbs://container@account.dfs.core.windows.net/key, abfss://..., dbfs://workspace/path,
// hdfs://host:port/path, file:///path (local) and file://host/path (remote). Other schemes are
// refused: a table in a database is not named by a URI.
DatasetResult datasetFromStorageUri(std::string_view uri);

}  // namespace outpost::lineage
