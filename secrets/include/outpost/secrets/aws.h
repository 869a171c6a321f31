// AWS Secrets Manager as a SecretProvider ("aws-sm"): GetSecretValue over HTTPS, signed with
// SigV4, with credentials from the standard AWS chain.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/common/http_client.h"
#include "outpost/secrets/aws_credentials.h"
#include "outpost/secrets/provider.h"

namespace outpost::secrets {

// Settings of the AWS provider. Empty strings mean "from the environment, as the AWS CLI reads
// it", then the default; resolveAwsConfig() fills them in.
struct AwsConfig {
  // AWS_REGION, AWS_DEFAULT_REGION, then `region` of the profile in the config file.
  std::string region;
  // AWS_PROFILE, then "default".
  std::string profile;
  // AWS_SHARED_CREDENTIALS_FILE, then ~/.aws/credentials; AWS_CONFIG_FILE, then ~/.aws/config.
  std::string shared_credentials_file;
  std::string config_file;
  // Secrets Manager URL (a VPC endpoint, a test server). Empty: https://secretsmanager.REGION.
  // amazonaws.com/ (amazonaws.com.cn in China), or the region of an ARN's secret.
  // Only an endpoint given here may be plain http://.
  std::string endpoint;
  // STS URL for web identity. Empty: AWS_ENDPOINT_URL_STS, then https://sts.REGION.amazonaws.com/.
  std::string sts_endpoint;
  // Base of AWS_CONTAINER_CREDENTIALS_RELATIVE_URI.
  std::string container_endpoint = "http://169.254.170.2";
  // AWS_EC2_METADATA_SERVICE_ENDPOINT, then http://169.254.169.254.
  std::string instance_metadata_endpoint;
  // AWS_EC2_METADATA_DISABLED=true also turns instance metadata off.
  bool instance_metadata_disabled = false;
  // How Secrets Manager and STS are reached. An empty ca_bundle: AWS_CA_BUNDLE, then the
  // system's. The instance-metadata and container endpoints never go through the proxy.
  StoreTransport transport;
  // Instance metadata and container endpoints are local and quick, or absent: short limits.
  // AWS_METADATA_SERVICE_TIMEOUT (seconds) and AWS_METADATA_SERVICE_NUM_ATTEMPTS override.
  std::chrono::milliseconds metadata_timeout{1000};
  int metadata_attempts = 2;
  // Temporary credentials are renewed this long before they expire.
  std::chrono::seconds refresh_before_expiry{std::chrono::minutes(5)};
};

// Fills the empty settings from env as described above. Throws ConfigError naming the setting
// when the region cannot be found or an endpoint is not an http(s) URL.
AwsConfig resolveAwsConfig(AwsConfig config, const Environment& env);

// The standard chain, in order: environment; profile in the shared files; web identity
// (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_SESSION_NAME); container
// (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, or _FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN
// [_FILE]); instance metadata. config must be resolved. The clock names the web identity
// session when AWS_ROLE_SESSION_NAME does not.
std::vector<std::unique_ptr<AwsCredentialSource>> defaultAwsCredentialSources(
    const AwsConfig& config, const Environment& env, const Clock& clock);

// Whether an AWS error answer (a JSON __type, an x-amzn-ErrorType header or an XML <Code>) is
// throttling: a 400 that is worth another try.
bool isAwsThrottling(const HttpResponse& response);

// ${aws-sm:NAME-OR-ARN#field}. The version, when the reference has one, is sent as VersionId if
// it looks like a UUID and as VersionStage (AWSCURRENT, AWSPREVIOUS, a custom label) otherwise.
// Thread-safe.
class AwsSecretsManagerProvider final : public SecretProvider {
 public:
  // Resolves config against env and builds the standard chain. Throws ConfigError (see
  // resolveAwsConfig).
  AwsSecretsManagerProvider(AwsConfig config, const Environment& env, const Clock& clock);
  // With a credentials provider of the caller's.
  AwsSecretsManagerProvider(AwsConfig config, const Environment& env, const Clock& clock,
                            std::shared_ptr<AwsCredentialsProvider> credentials);

  std::string name() const override { return "aws-sm"; }
  std::expected<FetchedSecret, SecretError> fetch(const SecretRef& ref) override;

  const AwsConfig& config() const { return config_; }

 private:
  AwsConfig config_;
  const Clock& clock_;
  std::shared_ptr<AwsCredentialsProvider> credentials_;
  std::shared_ptr<HttpClient> http_;
};

}  // namespace outpost::secrets
