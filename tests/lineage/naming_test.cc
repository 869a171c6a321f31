// Dataset naming by the OpenLineage conventions (naming.h): every platform of the conventions'
// table built from its parts, recognised by its namespace and checked, and malformed pairs
// refused with a message that names the platform, the form and what is wrong.
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/lineage/naming.h"

namespace outpost::lineage {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

using P = DatasetPlatform;

std::string errorOf(const DatasetCheck& c) {
  return c ? std::string("(passed)") : c.error();
}
std::string errorOf(const DatasetResult& r) {
  return r ? std::string("(passed)") : r.error();
}

// A built pair equals what the conventions say, passes its checks and names its platform.
void expectBuilt(const DatasetResult& r, P platform, const std::string& ns,
                 const std::string& name) {
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->ns, ns);
  EXPECT_EQ(r->name, name);
  EXPECT_TRUE(checkDataset(platform, ns, name)) << errorOf(checkDataset(platform, ns, name));
  EXPECT_TRUE(checkDataset(ns, name)) << errorOf(checkDataset(ns, name));
  EXPECT_EQ(platformOfNamespace(ns), platform) << ns;
}

// ---------------------------------------------------------------------------------------------
// The table

TEST(DatasetPlatforms, EveryPlatformHasANameAndTheConventionsForms) {
  std::set<std::string_view> names;
  for (auto p : kAllDatasetPlatforms) {
    EXPECT_FALSE(platformName(p).empty());
    EXPECT_FALSE(namespaceForm(p).empty());
    EXPECT_FALSE(nameForm(p).empty());
    names.insert(platformName(p));
  }
  EXPECT_EQ(names.size(), std::size(kAllDatasetPlatforms));
  EXPECT_EQ(std::size(kAllDatasetPlatforms), 37u);  // the rows of naming.md's table
}

TEST(DatasetPlatforms, FormsAreTheConventionsWords) {
  EXPECT_EQ(namespaceForm(P::kPostgres), "postgres://{host}:{port}");
  EXPECT_EQ(nameForm(P::kPostgres), "{database}.{schema}.{table}");
  EXPECT_EQ(namespaceForm(P::kGcs), "gs://{bucket name}");
  EXPECT_EQ(nameForm(P::kKafka), "{topic}");
}

// ---------------------------------------------------------------------------------------------
// Warehouses: {host}:{port} and dotted names

TEST(DatasetNaming, Postgres) {
  expectBuilt(postgresDataset("db.example.com", 5432, "analytics", "public", "orders"),
              P::kPostgres, "postgres://db.example.com:5432", "analytics.public.orders");
}

TEST(DatasetNaming, MySql) {
  expectBuilt(mysqlDataset("10.0.0.7", 3306, "shop", "orders"), P::kMySql, "mysql://10.0.0.7:3306",
              "shop.orders");
}

TEST(DatasetNaming, MsSqlAndSqlServer) {
  expectBuilt(mssqlDataset("sql01", 1433, "sales", "dbo", "orders"), P::kMsSql,
              "mssql://sql01:1433", "sales.dbo.orders");
  expectBuilt(sqlServerDataset("ws.sql.azuresynapse.net", 1433, "dbo", "orders"), P::kSqlServer,
              "sqlserver://ws.sql.azuresynapse.net:1433", "dbo.orders");
}

TEST(DatasetNaming, OracleServiceNamesMayHoldDots) {
  expectBuilt(oracleDataset("ora", 1521, "ORCLPDB1", "HR", "EMPLOYEES"), P::kOracle,
              "oracle://ora:1521", "ORCLPDB1.HR.EMPLOYEES");
  expectBuilt(oracleDataset("ora", 1521, "orclpdb1.example.com", "HR", "EMPLOYEES"), P::kOracle,
              "oracle://ora:1521", "orclpdb1.example.com.HR.EMPLOYEES");
  EXPECT_THAT(errorOf(oracleDataset("ora", 1521, "svc", "H.R", "E")),
              HasSubstr("the schema 'H.R' contains '.'"));
}

TEST(DatasetNaming, Db2TrinoHiveTeradataOceanBaseCrateCassandraMilvus) {
  expectBuilt(db2Dataset("db2", 50000, "SAMPLE", "DB2INST1", "EMP"), P::kDb2, "db2://db2:50000",
              "SAMPLE.DB2INST1.EMP");
  expectBuilt(trinoDataset("trino", 8080, "hive", "web", "clicks"), P::kTrino, "trino://trino:8080",
              "hive.web.clicks");
  expectBuilt(hiveDataset("hive-metastore", 9083, "web", "clicks"), P::kHive,
              "hive://hive-metastore:9083", "web.clicks");
  expectBuilt(teradataDataset("td", 1025, "sales", "orders"), P::kTeradata, "teradata://td:1025",
              "sales.orders");
  expectBuilt(oceanBaseDataset("ob", 2881, "shop", "orders"), P::kOceanBase, "oceanbase://ob:2881",
              "shop.orders");
  expectBuilt(crateDbDataset("crate", 5432, "crate", "doc", "metrics"), P::kCrateDb,
              "crate://crate:5432", "crate.doc.metrics");
  expectBuilt(cassandraDataset("cass-1", 9042, "shop", "orders"), P::kCassandra,
              "cassandra://cass-1:9042", "shop.orders");
  expectBuilt(milvusDataset("milvus", 19530, "default", "docs"), P::kMilvus,
              "milvus://milvus:19530", "default.docs");
}

TEST(DatasetNaming, Redshift) {
  expectBuilt(redshiftDataset("examplecluster", "us-west-2", 5439, "dev", "public", "sales"),
              P::kRedshift, "redshift://examplecluster.us-west-2:5439", "dev.public.sales");
  EXPECT_THAT(errorOf(redshiftDataset("c", "uswest2", 5439, "d", "s", "t")),
              HasSubstr("'uswest2' is not an AWS region"));
  EXPECT_THAT(
      errorOf(checkDataset("redshift://examplecluster.abc123.us-west-2.redshift.amazonaws.com:5439",
                           "dev.public.sales")),
      HasSubstr("not the endpoint host"));
  EXPECT_THAT(errorOf(checkDataset("redshift://examplecluster:5439", "dev.public.sales")),
              HasSubstr("{cluster_identifier}.{region_name}"));
}

TEST(DatasetNaming, Snowflake) {
  expectBuilt(snowflakeDataset("myorg-account1", "ANALYTICS", "PUBLIC", "ORDERS"), P::kSnowflake,
              "snowflake://myorg-account1", "ANALYTICS.PUBLIC.ORDERS");
  expectBuilt(snowflakeDataset("xy12345.us-east-2.aws", "DB", "S", "T"), P::kSnowflake,
              "snowflake://xy12345.us-east-2.aws", "DB.S.T");
  EXPECT_THAT(errorOf(snowflakeDataset("myorg-account1.snowflakecomputing.com", "D", "S", "T")),
              HasSubstr("not the host"));
  EXPECT_THAT(errorOf(checkDataset("snowflake://myorg-account1:443", "D.S.T")),
              HasSubstr("no port"));
}

TEST(DatasetNaming, BigQueryProjectsMayBeDomainScoped) {
  expectBuilt(bigQueryDataset("my-project", "sales", "orders"), P::kBigQuery, "bigquery",
              "my-project.sales.orders");
  expectBuilt(bigQueryDataset("example.com:analytics", "sales", "orders"), P::kBigQuery, "bigquery",
              "example.com:analytics.sales.orders");
  EXPECT_THAT(errorOf(checkDataset("bigquery", "sales.orders")),
              HasSubstr("it has 2 parts, not 3"));
  EXPECT_THAT(errorOf(checkDataset("bigquery://my-project", "a.b.c")),
              HasSubstr("must be exactly 'bigquery'"));
}

TEST(DatasetNaming, AthenaAndGlue) {
  expectBuilt(athenaDataset("eu-west-1", "AwsDataCatalog", "web", "clicks"), P::kAthena,
              "awsathena://athena.eu-west-1.amazonaws.com", "AwsDataCatalog.web.clicks");
  expectBuilt(glueDataset("us-east-1", "123456789012", "web", "clicks"), P::kGlue,
              "arn:aws:glue:us-east-1:123456789012", "table/web/clicks");
  EXPECT_THAT(errorOf(glueDataset("us-east-1", "1234", "web", "clicks")),
              HasSubstr("'1234' is not 12 digits"));
  EXPECT_THAT(errorOf(checkDataset("arn:aws:glue:us-east-1:123456789012", "web/clicks")),
              HasSubstr("'table/'"));
  EXPECT_THAT(errorOf(checkDataset("awsathena://athena.amazonaws.com", "a.b.c")),
              HasSubstr("athena.{region}.amazonaws.com"));
}

TEST(DatasetNaming, SpannerUnityCatalogFabric) {
  expectBuilt(spannerDataset("my-project", "prod-instance", "shop", "public", "orders"),
              P::kSpanner, "spanner://my-project:prod-instance", "shop.public.orders");
  expectBuilt(unityCatalogDataset("dbc-1234.cloud.databricks.com", std::nullopt, "main", "default",
                                  "orders"),
              P::kUnityCatalog, "unitycatalog://dbc-1234.cloud.databricks.com",
              "main.default.orders");
  expectBuilt(unityCatalogDataset("uc", 8080, "main", "default", "orders"), P::kUnityCatalog,
              "unitycatalog://uc:8080", "main.default.orders");
  expectBuilt(
      fabricWarehouseDataset("abc.datawarehouse.fabric.microsoft.com", 1433, "wh", "dbo", "sales"),
      P::kFabricWarehouse, "fabric-warehouse://abc.datawarehouse.fabric.microsoft.com:1433",
      "wh.dbo.sales");
  EXPECT_THAT(errorOf(checkDataset("spanner://my-project", "a.b.c")),
              HasSubstr("':{instanceId}' is missing"));
}

TEST(DatasetNaming, AzureCosmosAndDataExplorer) {
  expectBuilt(azureCosmosDataset("acct.documents.azure.com", "shop", "orders"), P::kAzureCosmos,
              "azurecosmos://acct.documents.azure.com/dbs/shop", "colls/orders");
  expectBuilt(azureDataExplorerDataset("mycluster.westeurope", "telemetry", "events"),
              P::kAzureDataExplorer, "azurekusto://mycluster.westeurope.kusto.windows.net",
              "telemetry/events");
  EXPECT_THAT(errorOf(checkDataset("azurecosmos://acct.documents.azure.com", "colls/x")),
              HasSubstr("/dbs/{database}"));
  EXPECT_THAT(errorOf(checkDataset("azurekusto://mycluster.kusto.windows.net", "telemetry")),
              HasSubstr("1 '/'-separated parts, not 2"));
}

// ---------------------------------------------------------------------------------------------
// Storage: buckets, containers, paths

TEST(DatasetNaming, S3AndGcsKeysLoseLeadingSlashes) {
  expectBuilt(s3Dataset("lake", "/raw/orders/2026.parquet"), P::kS3, "s3://lake",
              "raw/orders/2026.parquet");
  expectBuilt(gcsDataset("my_bucket", "exports/orders.csv"), P::kGcs, "gs://my_bucket",
              "exports/orders.csv");
  EXPECT_THAT(errorOf(s3Dataset("My_Bucket", "k")), HasSubstr("is not a bucket name"));
  EXPECT_THAT(errorOf(s3Dataset("lake", "/")), HasSubstr("object key is empty"));
  EXPECT_THAT(errorOf(checkDataset("s3://lake", "/raw/x")), HasSubstr("must not start with '/'"));
  EXPECT_THAT(errorOf(checkDataset("s3://lake/raw", "x")),
              HasSubstr("the object key belongs in the name"));
}

TEST(DatasetNaming, AzureBlobAndDataLake) {
  expectBuilt(wasbsDataset("raw", "acmestore", "orders/2026.json"), P::kWasbs,
              "wasbs://raw@acmestore.dfs.core.windows.net", "orders/2026.json");
  expectBuilt(abfssDataset("lake", "acmestore", "/bronze/orders"), P::kAbfss,
              "abfss://lake@acmestore.dfs.core.windows.net", "bronze/orders");
  // wasbs:// is the blob endpoint's scheme: its .blob. host passes too.
  EXPECT_TRUE(checkDataset("wasbs://raw@acmestore.blob.core.windows.net", "k"));
  EXPECT_THAT(errorOf(checkDataset("abfss://lake@acmestore.blob.core.windows.net", "p")),
              HasSubstr(".dfs.core.windows.net"));
  EXPECT_THAT(errorOf(checkDataset("abfss://acmestore.dfs.core.windows.net", "p")),
              HasSubstr("'{container}@' part is missing"));
}

TEST(DatasetNaming, FileSystemsGetAbsolutePaths) {
  expectBuilt(localFileDataset("data/in.csv"), P::kLocalFile, "file", "/data/in.csv");
  expectBuilt(remoteFileDataset("nfs01", "/exports/in.csv"), P::kRemoteFile, "file://nfs01",
              "/exports/in.csv");
  expectBuilt(hdfsDataset("namenode", 8020, "/warehouse/orders"), P::kHdfs, "hdfs://namenode:8020",
              "/warehouse/orders");
  expectBuilt(dbfsDataset("prod-ws", "/mnt/raw/orders"), P::kDbfs, "dbfs://prod-ws",
              "/mnt/raw/orders");
  EXPECT_THAT(errorOf(checkDataset("file", "relative/x")), HasSubstr("absolute path"));
  EXPECT_THAT(errorOf(checkDataset("hdfs://namenode", "/x")), HasSubstr("the port is missing"));
  EXPECT_THAT(errorOf(checkDataset("file://nfs01:2049", "/x")), HasSubstr("without a port"));
}

TEST(DatasetNaming, DocumentStores) {
  expectBuilt(boxDataset("box.example.com", 443, "12345", "/folder/report.pdf"), P::kBox,
              "box://box.example.com:443/12345", "folder/report.pdf");
  expectBuilt(fileNetDataset("filenet", 9443, "OS1", "docs/contract.pdf"), P::kFileNet,
              "filenet://filenet:9443/OS1", "docs/contract.pdf");
  expectBuilt(sharePointDataset("acme.sharepoint.com", 443, "finance", "Shared/q3.xlsx"),
              P::kSharePoint, "mssharepoint://acme.sharepoint.com:443/finance", "Shared/q3.xlsx");
  EXPECT_THAT(errorOf(checkDataset("box://box.example.com:443", "k")),
              HasSubstr("the path segment is missing"));
  EXPECT_THAT(errorOf(checkDataset("box://box.example.com:443/a/b", "k")),
              HasSubstr("exactly one non-empty segment"));
}

// ---------------------------------------------------------------------------------------------
// Streams and the rest

TEST(DatasetNaming, Kafka) {
  expectBuilt(kafkaDataset("broker-1.internal", 9092, "orders.v1"), P::kKafka,
              "kafka://broker-1.internal:9092", "orders.v1");
  EXPECT_THAT(errorOf(kafkaDataset("broker", 9092, "orders v1")),
              HasSubstr("letters, digits, '.', '_' and '-'"));
  EXPECT_THAT(errorOf(kafkaDataset("broker", 9092, std::string(250, 'a'))),
              HasSubstr("at most 249"));
  EXPECT_THAT(errorOf(checkDataset("kafka://b1:9092,b2:9092", "t")),
              HasSubstr("one host:port, not a list"));
}

TEST(DatasetNaming, PubSub) {
  expectBuilt(pubSubTopicDataset("my-project", "orders"), P::kPubSub, "pubsub",
              "topic:my-project:orders");
  expectBuilt(pubSubSubscriptionDataset("my-project", "orders-sub"), P::kPubSub, "pubsub",
              "subscription:my-project:orders-sub");
  EXPECT_THAT(errorOf(checkDataset("pubsub", "queue:p:t")), HasSubstr("topic:{project}:{topic}"));
  EXPECT_THAT(errorOf(pubSubTopicDataset("p:q", "t")), HasSubstr("contains ':'"));
}

TEST(DatasetNaming, InMemory) {
  expectBuilt(inMemoryDataset("df_1234"), P::kInMemory, "inmemory://", "df_1234");
  EXPECT_THAT(errorOf(checkDataset("inmemory://x", "df")), HasSubstr("exactly 'inmemory://'"));
}

// ---------------------------------------------------------------------------------------------
// Malformed host forms, for every platform that takes {host}:{port}

TEST(DatasetNamingErrors, HostPortFormsRefuseWhatIsNotAHostAndPort) {
  struct Case {
    const char* ns;
    const char* says;
  };
  for (auto c : std::vector<Case>{
           {"postgres://db", "the port is missing"},
           {"postgres://db:", "the port is missing"},
           {"postgres://db:0", "'0' is not a number from 1 to 65535"},
           {"postgres://db:65536", "is not a number from 1 to 65535"},
           {"postgres://db:54x", "'54x' is not a number"},
           {"postgres://:5432", "the host is missing"},
           {"postgres://db..example:5432", "has an empty label"},
           {"postgres://-db:5432", "starting or ending with '-'"},
           {"postgres://d b:5432", "may only hold letters"},
           {"postgres://db:5432/analytics", "must not have a path"},
           {"postgres://alice:s3cret@db:5432", "must not carry user information"},
           {"postgres://db:5432?sslmode=require", "query or fragment"},
           {"Postgres://db:5432", "lower case"},
           {"postgres:/db:5432", "does not start with 'postgres://'"},
           {"postgres://[::1:5432", "is not an [IPv6] literal"},
       }) {
    std::string e = errorOf(checkDataset(c.ns, "a.b.c"));
    EXPECT_THAT(e, AllOf(HasSubstr("postgres dataset namespace"),
                         HasSubstr("must be postgres://{host}:{port}"), HasSubstr(c.says)))
        << c.ns;
  }
  EXPECT_TRUE(checkDataset("postgres://[2001:db8::1]:5432", "a.b.c"));
  EXPECT_TRUE(checkDataset("postgres://pg_primary.svc:5432", "a.b.c"));
}

TEST(DatasetNamingErrors, UserInformationIsNeverQuotedBack) {
  for (const char* ns : {"mysql://root:hunter22@db:3306", "mongodb://root:hunter22@m:27017/x"}) {
    std::string e = errorOf(checkDataset(ns, "a.b"));
    EXPECT_THAT(e, HasSubstr("never a credential")) << ns;
    EXPECT_THAT(e, HasSubstr("://***@")) << ns;
    EXPECT_THAT(e, Not(HasSubstr("hunter22"))) << ns;
  }
  EXPECT_EQ(withoutUserInfo("postgres://alice:pw@db:5432"), "postgres://***@db:5432");
  EXPECT_EQ(withoutUserInfo("postgres://db:5432"), "postgres://db:5432");
  EXPECT_EQ(withoutUserInfo("s3://lake"), "s3://lake");
  EXPECT_EQ(withoutUserInfo("abfss://c@acct.dfs.core.windows.net"),
            "abfss://c@acct.dfs.core.windows.net");
}

TEST(DatasetNamingErrors, NamePartsAreCountedAndMustNotBeEmpty) {
  EXPECT_THAT(
      errorOf(checkDataset("postgres://db:5432", "public.orders")),
      AllOf(HasSubstr("postgres dataset name 'public.orders'"),
            HasSubstr("must be {database}.{schema}.{table}"), HasSubstr("it has 2 parts, not 3")));
  EXPECT_THAT(errorOf(checkDataset("mysql://db:3306", "a.b.c")), HasSubstr("3 parts, not 2"));
  EXPECT_THAT(errorOf(checkDataset("postgres://db:5432", "a..c")), HasSubstr("part 2 is empty"));
  EXPECT_THAT(errorOf(checkDataset("postgres://db:5432", "")), HasSubstr("it is empty"));
  EXPECT_THAT(errorOf(checkDataset("postgres://db:5432", "a.b\nc.d")),
              HasSubstr("control character"));
}

TEST(DatasetNamingErrors, BuildersNameTheBadPart) {
  EXPECT_THAT(errorOf(postgresDataset("db", 5432, "", "public", "t")),
              HasSubstr("postgres dataset: the database is empty"));
  EXPECT_THAT(errorOf(postgresDataset("db", 5432, "d", "pub.lic", "t")),
              HasSubstr("the schema 'pub.lic' contains '.', which separates"));
  EXPECT_THAT(errorOf(postgresDataset("db", 70000, "d", "s", "t")),
              HasSubstr("the port 70000 is not from 1 to 65535"));
  EXPECT_THAT(errorOf(postgresDataset("db:5432", 5432, "d", "s", "t")),
              HasSubstr("must not carry a port"));
  EXPECT_THAT(errorOf(mysqlDataset("bad host", 3306, "d", "t")), HasSubstr("may only hold"));
}

TEST(DatasetNamingErrors, LongValuesAreCutInMessages) {
  std::string ns = "postgres://" + std::string(400, 'h');
  std::string e = errorOf(checkDataset(ns, "a.b.c"));
  EXPECT_LT(e.size(), 700u);
  EXPECT_THAT(e, HasSubstr("...'"));
}

// ---------------------------------------------------------------------------------------------
// Platform detection and unlisted platforms

TEST(DatasetPlatformDetection, SchemesMapToPlatforms) {
  EXPECT_EQ(platformOfNamespace("postgres://db:5432"), P::kPostgres);
  EXPECT_EQ(platformOfNamespace("POSTGRES://db:5432"), P::kPostgres);
  EXPECT_EQ(platformOfNamespace("gs://b"), P::kGcs);
  EXPECT_EQ(platformOfNamespace("file"), P::kLocalFile);
  EXPECT_EQ(platformOfNamespace("file://host"), P::kRemoteFile);
  EXPECT_EQ(platformOfNamespace("arn:aws:glue:us-east-1:123456789012"), P::kGlue);
  EXPECT_EQ(platformOfNamespace("arn:aws:s3:::bucket"), std::nullopt);
  EXPECT_EQ(platformOfNamespace("mongodb://m:27017"), std::nullopt);
  EXPECT_EQ(platformOfNamespace("fabric-warehouse://x"), P::kFabricWarehouse);
}

TEST(DatasetPlatformDetection, UnlistedPlatformsPassTheGenericCheck) {
  EXPECT_TRUE(checkDataset("mongodb://mongo:27017", "shop.orders"));
  EXPECT_TRUE(checkDataset("my-datasource-namespace", "instance.schema.table"));
  EXPECT_TRUE(checkDataset("custom+tcp://x", "y"));
}

TEST(DatasetPlatformDetection, UnlistedPlatformsStillRefuseTheObviousMistakes) {
  EXPECT_THAT(errorOf(checkDataset("", "x")), HasSubstr("namespace is empty"));
  EXPECT_THAT(errorOf(checkDataset("mongodb://m:27017", "")), HasSubstr("is empty"));
  EXPECT_THAT(errorOf(checkDataset("mongodb://u:p@m:27017", "x")),
              HasSubstr("must not carry user information"));
  EXPECT_THAT(errorOf(checkDataset("//no-scheme", "x")), HasSubstr("must start with a scheme"));
  EXPECT_THAT(errorOf(checkDataset("x\ty", "x")), HasSubstr("control character"));
}

TEST(DatasetPlatformDetection, CommonMisspellingsNameTheRightScheme) {
  EXPECT_THAT(errorOf(checkDataset("postgresql://db:5432", "a.b.c")),
              HasSubstr("write 'postgres'"));
  EXPECT_THAT(errorOf(checkDataset("s3a://lake", "k")), HasSubstr("write 's3'"));
  EXPECT_THAT(errorOf(checkDataset("s3n://lake", "k")), HasSubstr("write 's3'"));
  EXPECT_THAT(errorOf(checkDataset("gcs://b", "k")), HasSubstr("write 'gs'"));
  EXPECT_THAT(errorOf(checkDataset("athena://x", "a.b.c")), HasSubstr("write 'awsathena'"));
}

// ---------------------------------------------------------------------------------------------
// Storage URIs

TEST(DatasetFromStorageUri, SplitsNamespaceAndNameTheWayTheConventionsDo) {
  expectBuilt(datasetFromStorageUri("s3://lake/raw/orders.parquet"), P::kS3, "s3://lake",
              "raw/orders.parquet");
  expectBuilt(datasetFromStorageUri("gs://exports/a/b.csv"), P::kGcs, "gs://exports", "a/b.csv");
  expectBuilt(datasetFromStorageUri("hdfs://nn:8020/warehouse/t"), P::kHdfs, "hdfs://nn:8020",
              "/warehouse/t");
  expectBuilt(datasetFromStorageUri("file:///tmp/in.csv"), P::kLocalFile, "file", "/tmp/in.csv");
  expectBuilt(datasetFromStorageUri("file://nfs01/exports/in.csv"), P::kRemoteFile, "file://nfs01",
              "/exports/in.csv");
  expectBuilt(datasetFromStorageUri("abfss://lake@acme.dfs.core.windows.net/bronze/x"), P::kAbfss,
              "abfss://lake@acme.dfs.core.windows.net", "bronze/x");
  expectBuilt(datasetFromStorageUri("dbfs://ws/mnt/x"), P::kDbfs, "dbfs://ws", "/mnt/x");
}

TEST(DatasetFromStorageUri, RefusesWhatIsNotAStoragePath) {
  EXPECT_THAT(errorOf(datasetFromStorageUri("postgres://db:5432/x")),
              HasSubstr("only s3, gs, wasbs, abfss, dbfs, hdfs and file"));
  EXPECT_THAT(errorOf(datasetFromStorageUri("s3a://lake/x")), HasSubstr("write 's3'"));
  EXPECT_THAT(errorOf(datasetFromStorageUri("s3://lake")), HasSubstr("object key is empty"));
  EXPECT_THAT(errorOf(datasetFromStorageUri("s3://Lake/x")), HasSubstr("not a bucket name"));
  EXPECT_THAT(errorOf(datasetFromStorageUri("/tmp/x")), HasSubstr("no scheme://"));
}

}  // namespace
}  // namespace outpost::lineage
