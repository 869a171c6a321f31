// Where AWS credentials come from: each source of the standard chain on its own (environment,
// shared files, web identity, container, instance metadata), and the chain that asks them in
// order and keeps temporary credentials until shortly before they expire.
#pragma once

#include <chrono>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/common/http_client.h"
#include "outpost/secrets/provider.h"
#include "outpost/secrets/sigv4.h"

namespace outpost::secrets {

// Why a source gave no credentials. not_configured: it does not apply here; the chain asks the
// next one and keeps error.message for its final "none found" message. Otherwise the source
// applies and failed, and the chain stops with this error (as the AWS SDKs do: a half-configured
// source is a mistake to report, not to skip).
struct CredentialSourceError {
  bool not_configured = false;
  SecretError error;
};

class AwsCredentialSource {
 public:
  virtual ~AwsCredentialSource() = default;
  virtual std::string name() const = 0;
  // Called by one thread at a time (the chain holds its lock). May block on the network.
  virtual std::expected<AwsCredentials, CredentialSourceError> load() = 0;
};

// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally AWS_SESSION_TOKEN.
class EnvironmentCredentialSource final : public AwsCredentialSource {
 public:
  explicit EnvironmentCredentialSource(const Environment& env);
  std::string name() const override { return "environment"; }
  std::expected<AwsCredentials, CredentialSourceError> load() override;

 private:
  std::string access_key_id_;
  SecretValue secret_access_key_, session_token_;
};

// aws_access_key_id / aws_secret_access_key / aws_session_token of a profile: section [name] of
// the shared credentials file first, then [profile name] ([default] for the default profile) of
// the config file. A profile that was asked for by name (AWS_PROFILE) must exist.
class ProfileCredentialSource final : public AwsCredentialSource {
 public:
  ProfileCredentialSource(std::string credentials_file, std::string config_file,
                          std::string profile, bool profile_required);
  std::string name() const override { return "profile " + profile_; }
  std::expected<AwsCredentials, CredentialSourceError> load() override;

 private:
  std::string credentials_file_, config_file_, profile_;
  bool profile_required_;
};

// AssumeRoleWithWebIdentity (EKS IRSA and the like): the token file is read at every load, since
// the platform rotates it; the STS call is unsigned (Query API, POST form, XML answer).
class WebIdentityCredentialSource final : public AwsCredentialSource {
 public:
  WebIdentityCredentialSource(std::string role_arn, std::string token_file,
                              std::string session_name, std::string sts_url,
                              std::shared_ptr<HttpClient> http);
  std::string name() const override { return "web identity"; }
  std::expected<AwsCredentials, CredentialSourceError> load() override;

 private:
  std::string role_arn_, token_file_, session_name_, sts_url_;
  std::shared_ptr<HttpClient> http_;
};

// ECS tasks, EKS Pod Identity, and anything else that serves the container credentials API: GET
// url, optionally with an Authorization token (from a file, read at every load, or given).
class ContainerCredentialSource final : public AwsCredentialSource {
 public:
  // url empty: not configured. A url that is neither https nor one of the addresses the
  // container agents use (loopback, 169.254.170.2, 169.254.170.23, fd00:ec2::23) is refused.
  ContainerCredentialSource(std::string url, SecretValue auth_token, std::string auth_token_file,
                            std::shared_ptr<HttpClient> http);
  std::string name() const override { return "container"; }
  std::expected<AwsCredentials, CredentialSourceError> load() override;

 private:
  std::string url_;
  SecretValue auth_token_;
  std::string auth_token_file_;
  std::shared_ptr<HttpClient> http_;
};

// EC2 instance metadata, IMDSv2 only: PUT /latest/api/token, then the role name and its
// credentials under /latest/meta-data/iam/security-credentials/. No answer from the endpoint
// means "not on EC2" (not configured); IMDSv1 is never used.
class InstanceMetadataCredentialSource final : public AwsCredentialSource {
 public:
  InstanceMetadataCredentialSource(std::string endpoint, bool disabled,
                                   std::shared_ptr<HttpClient> http);
  std::string name() const override { return "instance metadata"; }
  std::expected<AwsCredentials, CredentialSourceError> load() override;

 private:
  std::string endpoint_;
  bool disabled_;
  std::shared_ptr<HttpClient> http_;
};

// What the Secrets Manager provider asks for credentials.
class AwsCredentialsProvider {
 public:
  virtual ~AwsCredentialsProvider() = default;
  // Thread-safe.
  virtual std::expected<AwsCredentials, SecretError> credentials() = 0;
  // AWS refused the current credentials as expired: the next call loads new ones.
  virtual void invalidate() = 0;
};

// Asks its sources in order; the first that applies answers. Its credentials are kept until
// refresh_before their expiration (long-term keys: for the chain's life), then reloaded from the
// same source. If a refresh fails while the current credentials are still valid, those are used
// (with a warning) until they expire. Thread-safe: one lock, held during a reload, so concurrent
// callers share one reload instead of stampeding the credential endpoint.
class AwsCredentialChain final : public AwsCredentialsProvider {
 public:
  AwsCredentialChain(std::vector<std::unique_ptr<AwsCredentialSource>> sources, const Clock& clock,
                     std::chrono::seconds refresh_before = std::chrono::minutes(5));
  std::expected<AwsCredentials, SecretError> credentials() override;
  void invalidate() override;
  // The source that gave the current credentials; empty before the first success.
  std::string currentSource() const;

 private:
  std::expected<AwsCredentials, SecretError> reloadLocked();

  std::vector<std::unique_ptr<AwsCredentialSource>> sources_;
  const Clock& clock_;
  const std::chrono::seconds refresh_before_;

  mutable std::mutex mutex_;  // guards everything below
  AwsCredentialSource* current_ = nullptr;
  std::optional<AwsCredentials> cached_;
  bool invalidated_ = false;
};

// --- helpers, public for tests ---

// An INI file as the AWS tools write it: [section] headers, key = value lines, # and ; comments.
// Indented lines (nested settings such as "s3 =\n  max_concurrent_requests = 2") are skipped.
using IniFile = std::map<std::string, std::map<std::string, std::string>>;
IniFile parseIni(std::string_view text);
// nullopt when the file cannot be read.
std::optional<IniFile> readIniFile(const std::string& path);
// The profile's section: [name] in a credentials file; [profile name] in a config file, where the
// default profile may also be [default].
const std::map<std::string, std::string>* findProfile(const IniFile& file, const std::string& name,
                                                      bool config_file);
// 2015-08-30T12:36:00Z, with optional fractional seconds and a Z or +00:00 offset.
std::optional<std::chrono::system_clock::time_point> parseIso8601(std::string_view text);

}  // namespace outpost::secrets
