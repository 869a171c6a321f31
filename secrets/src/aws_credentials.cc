#include "outpost/secrets/aws_credentials.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "aws_internal.h"
#include "provider_internal.h"

namespace outpost::secrets {

using provider_internal::forMessage;
using provider_internal::readSmallFile;
using provider_internal::trimWhitespace;
using provider_internal::wipe;

namespace aws_internal {

std::optional<std::string> xmlElement(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  auto begin = xml.find(open);
  if (begin == std::string_view::npos) return std::nullopt;
  begin += open.size();
  auto end = xml.find(close, begin);
  if (end == std::string_view::npos) return std::nullopt;
  auto raw = xml.substr(begin, end - begin);
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '&') {
      out += raw[i];
      continue;
    }
    static constexpr std::pair<std::string_view, char> kEntities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool done = false;
    for (const auto& [name, ch] : kEntities) {
      if (raw.substr(i).starts_with(name)) {
        out += ch;
        i += name.size() - 1;
        done = true;
        break;
      }
    }
    if (!done) out += '&';
  }
  return out;
}

std::string awsErrorCode(const HttpResponse& response) {
  auto strip = [](std::string code) {
    if (auto colon = code.find(':'); colon != std::string::npos) code.resize(colon);
    if (auto hash = code.rfind('#'); hash != std::string::npos) code = code.substr(hash + 1);
    return std::string(trimWhitespace(code));
  };
  if (auto h = findHeader(response.headers, "x-amzn-ErrorType")) return strip(std::string(*h));
  auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (!doc.is_discarded() && doc.is_object()) {
    for (const char* key : {"__type", "code", "Code"}) {
      if (doc.contains(key) && doc[key].is_string()) return strip(doc[key].get<std::string>());
    }
    return {};
  }
  if (auto code = xmlElement(response.body, "Code")) return strip(*code);
  return {};
}

std::string awsErrorMessage(const HttpResponse& response) {
  auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (!doc.is_discarded() && doc.is_object()) {
    for (const char* key : {"message", "Message"}) {
      if (doc.contains(key) && doc[key].is_string()) return forMessage(doc[key].get<std::string>());
    }
    return {};
  }
  if (auto m = xmlElement(response.body, "Message")) return forMessage(*m);
  return {};
}

std::expected<AwsCredentials, std::string> credentialsFromJson(std::string_view json) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::unexpected("the answer is not JSON");
  auto text = [&](const char* key) -> std::string {
    return doc.contains(key) && doc[key].is_string() ? doc[key].get<std::string>() : "";
  };
  AwsCredentials c;
  c.access_key_id = text("AccessKeyId");
  std::string secret = text("SecretAccessKey");
  std::string token = text("Token");
  std::string expiration = text("Expiration");
  for (const char* key : {"SecretAccessKey", "Token"}) {
    if (doc.contains(key) && doc[key].is_string()) wipe(doc[key].get_ref<std::string&>());
  }
  if (c.access_key_id.empty() || secret.empty()) {
    wipe(secret);
    wipe(token);
    return std::unexpected("the answer has no AccessKeyId or SecretAccessKey");
  }
  c.secret_access_key = SecretValue(std::move(secret));
  c.session_token = SecretValue(std::move(token));
  if (!expiration.empty()) {
    c.expiration = parseIso8601(expiration);
    if (!c.expiration) return std::unexpected("the answer's Expiration is not a time");
  }
  return c;
}

}  // namespace aws_internal

namespace {

std::unexpected<CredentialSourceError> notConfigured(std::string why) {
  return std::unexpected(
      CredentialSourceError{true, SecretError{SecretError::Kind::kDenied, std::move(why)}});
}

std::unexpected<CredentialSourceError> failed(SecretError::Kind kind, std::string why) {
  return std::unexpected(CredentialSourceError{false, SecretError{kind, std::move(why)}});
}

std::string valueOf(const std::map<std::string, std::string>* section, const char* key) {
  if (section == nullptr) return {};
  auto it = section->find(key);
  return it == section->end() ? std::string() : it->second;
}

}  // namespace

// --- environment ---

EnvironmentCredentialSource::EnvironmentCredentialSource(const Environment& env) {
  using provider_internal::envValue;
  access_key_id_ = envValue(env, "AWS_ACCESS_KEY_ID");
  secret_access_key_ = SecretValue(envValue(env, "AWS_SECRET_ACCESS_KEY"));
  session_token_ = SecretValue(envValue(env, "AWS_SESSION_TOKEN"));
}

std::expected<AwsCredentials, CredentialSourceError> EnvironmentCredentialSource::load() {
  if (access_key_id_.empty() && secret_access_key_.empty()) {
    return notConfigured("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
  }
  if (access_key_id_.empty() || secret_access_key_.empty()) {
    return failed(SecretError::Kind::kInvalid,
                  access_key_id_.empty()
                      ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"
                      : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
  }
  return AwsCredentials{access_key_id_, secret_access_key_, session_token_, std::nullopt};
}

// --- shared files ---

IniFile parseIni(std::string_view text) {
  IniFile file;
  std::string section;
  bool in_section = false;
  std::size_t begin = 0;
  while (begin < text.size()) {
    auto nl = text.find('\n', begin);
    auto line =
        text.substr(begin, nl == std::string_view::npos ? std::string_view::npos : nl - begin);
    begin = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty() || line.front() == ' ' || line.front() == '\t') continue;
    auto t = trimWhitespace(line);
    if (t.empty() || t.front() == '#' || t.front() == ';') continue;
    if (t.front() == '[') {
      auto close = t.find(']');
      if (close == std::string_view::npos) {
        in_section = false;
        continue;
      }
      section = std::string(trimWhitespace(t.substr(1, close - 1)));
      file[section];
      in_section = true;
      continue;
    }
    auto eq = t.find('=');
    if (!in_section || eq == std::string_view::npos) continue;
    file[section][std::string(trimWhitespace(t.substr(0, eq)))] =
        std::string(trimWhitespace(t.substr(eq + 1)));
  }
  return file;
}

std::optional<IniFile> readIniFile(const std::string& path) {
  if (path.empty()) return std::nullopt;
  auto bytes = readSmallFile(path);
  if (!bytes) return std::nullopt;
  IniFile file = parseIni(*bytes);
  wipe(*bytes);
  return file;
}

const std::map<std::string, std::string>* findProfile(const IniFile& file, const std::string& name,
                                                      bool config_file) {
  std::vector<std::string> candidates;
  if (config_file) {
    candidates.push_back("profile " + name);
    if (name == "default") candidates.push_back("default");
  } else {
    candidates.push_back(name);
  }
  for (const auto& c : candidates) {
    if (auto it = file.find(c); it != file.end()) return &it->second;
  }
  return nullptr;
}

ProfileCredentialSource::ProfileCredentialSource(std::string credentials_file,
                                                 std::string config_file, std::string profile,
                                                 bool profile_required)
    : credentials_file_(std::move(credentials_file)),
      config_file_(std::move(config_file)),
      profile_(std::move(profile)),
      profile_required_(profile_required) {}

std::expected<AwsCredentials, CredentialSourceError> ProfileCredentialSource::load() {
  auto creds = readIniFile(credentials_file_);
  auto conf = readIniFile(config_file_);
  const auto* in_creds = creds ? findProfile(*creds, profile_, false) : nullptr;
  const auto* in_conf = conf ? findProfile(*conf, profile_, true) : nullptr;
  if (in_creds == nullptr && in_conf == nullptr) {
    std::string why = "profile '" + profile_ + "' is in neither " + credentials_file_ +
                      (creds ? "" : " (not readable)") + " nor " + config_file_ +
                      (conf ? "" : " (not readable)");
    if (profile_required_) {
      return failed(SecretError::Kind::kInvalid,
                    why + "; AWS_PROFILE or the profile setting names it");
    }
    return notConfigured(why);
  }
  const std::pair<const std::map<std::string, std::string>*, const std::string*> places[] = {
      {in_creds, &credentials_file_}, {in_conf, &config_file_}};
  for (const auto& [section, file] : places) {
    std::string id = valueOf(section, "aws_access_key_id");
    std::string secret = valueOf(section, "aws_secret_access_key");
    if (id.empty() && secret.empty()) continue;
    if (id.empty() || secret.empty()) {
      wipe(secret);
      return failed(SecretError::Kind::kInvalid,
                    "profile '" + profile_ + "' in " + *file + " has " +
                        (id.empty() ? "aws_secret_access_key but no aws_access_key_id"
                                    : "aws_access_key_id but no aws_secret_access_key"));
    }
    std::string token = valueOf(section, "aws_session_token");
    if (token.empty()) token = valueOf(section, "aws_security_token");
    return AwsCredentials{std::move(id), SecretValue(std::move(secret)),
                          SecretValue(std::move(token)), std::nullopt};
  }
  for (const char* key : {"role_arn", "credential_process", "sso_session", "sso_start_url",
                          "web_identity_token_file", "credential_source"}) {
    if (!valueOf(in_creds, key).empty() || !valueOf(in_conf, key).empty()) {
      return failed(SecretError::Kind::kInvalid,
                    "profile '" + profile_ + "' uses " + key +
                        ", which the aws-sm provider does not support; give it keys, or use "
                        "AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE, a container or an "
                        "instance role");
    }
  }
  return notConfigured("profile '" + profile_ + "' has no aws_access_key_id");
}

// --- web identity ---

WebIdentityCredentialSource::WebIdentityCredentialSource(std::string role_arn,
                                                         std::string token_file,
                                                         std::string session_name,
                                                         std::string sts_url,
                                                         std::shared_ptr<HttpClient> http)
    : role_arn_(std::move(role_arn)),
      token_file_(std::move(token_file)),
      session_name_(std::move(session_name)),
      sts_url_(std::move(sts_url)),
      http_(std::move(http)) {}

std::expected<AwsCredentials, CredentialSourceError> WebIdentityCredentialSource::load() {
  if (role_arn_.empty() && token_file_.empty()) {
    return notConfigured("AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not set");
  }
  if (role_arn_.empty() || token_file_.empty()) {
    return failed(SecretError::Kind::kInvalid,
                  role_arn_.empty() ? "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"
                                    : "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not");
  }
  auto token = readSmallFile(token_file_);
  if (!token) {
    return failed(SecretError::Kind::kDenied, "web identity token: " + token.error());
  }
  HttpRequest req;
  req.method = "POST";
  req.url = sts_url_;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  req.body =
      "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + uriEncode(role_arn_, false) +
      "&RoleSessionName=" + uriEncode(session_name_, false) +
      "&WebIdentityToken=" + uriEncode(trimWhitespace(*token), false);
  wipe(*token);
  auto resp = http_->send(req);
  wipe(req.body);
  const std::string what = "STS AssumeRoleWithWebIdentity for " + role_arn_;
  if (!resp) return failed(SecretError::Kind::kUnavailable, what + ": " + resp.error().message);
  if (resp->status != 200) {
    auto code = aws_internal::awsErrorCode(*resp);
    auto kind = resp->status >= 500 || resp->status == 429 || code == "Throttling" ||
                        code == "IDPCommunicationError"
                    ? SecretError::Kind::kUnavailable
                    : SecretError::Kind::kDenied;
    return failed(kind, what + ": HTTP " + std::to_string(resp->status) + " " + code + ": " +
                            aws_internal::awsErrorMessage(*resp));
  }
  AwsCredentials c;
  c.access_key_id = aws_internal::xmlElement(resp->body, "AccessKeyId").value_or("");
  c.secret_access_key =
      SecretValue(aws_internal::xmlElement(resp->body, "SecretAccessKey").value_or(""));
  c.session_token = SecretValue(aws_internal::xmlElement(resp->body, "SessionToken").value_or(""));
  auto expiration = aws_internal::xmlElement(resp->body, "Expiration");
  wipe(resp->body);
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return failed(SecretError::Kind::kUnavailable, what + ": the answer has no credentials");
  }
  if (expiration) c.expiration = parseIso8601(*expiration);
  if (!c.expiration) {
    return failed(SecretError::Kind::kUnavailable, what + ": the answer has no Expiration");
  }
  return c;
}

// --- container ---

ContainerCredentialSource::ContainerCredentialSource(std::string url, SecretValue auth_token,
                                                     std::string auth_token_file,
                                                     std::shared_ptr<HttpClient> http)
    : url_(std::move(url)),
      auth_token_(std::move(auth_token)),
      auth_token_file_(std::move(auth_token_file)),
      http_(std::move(http)) {}

std::expected<AwsCredentials, CredentialSourceError> ContainerCredentialSource::load() {
  if (url_.empty()) {
    return notConfigured(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not "
        "set");
  }
  auto url = parseUrl(url_);
  const std::string shown = urlForMessages(url_);
  if (!url) {
    return failed(SecretError::Kind::kInvalid,
                  "container credentials URL " + shown + " is not an http(s) URL");
  }
  if (url->scheme != "https" && !isLoopbackHost(url->host) && url->host != "169.254.170.2" &&
      url->host != "169.254.170.23" && url->host != "fd00:ec2::23") {
    return failed(SecretError::Kind::kInvalid,
                  "container credentials URL " + shown +
                      " must be https, or http to a loopback address, 169.254.170.2, "
                      "169.254.170.23 or fd00:ec2::23 (AWS_CONTAINER_CREDENTIALS_FULL_URI)");
  }
  HttpRequest req;
  req.url = url_;
  req.headers = {{"Accept", "application/json"}};
  std::string token;
  if (!auth_token_file_.empty()) {
    auto bytes = readSmallFile(auth_token_file_);
    if (!bytes) {
      return failed(SecretError::Kind::kDenied,
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: " + bytes.error());
    }
    token = std::string(trimWhitespace(*bytes));
    wipe(*bytes);
  } else {
    token = std::string(auth_token_.reveal());
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    wipe(token);
    return failed(SecretError::Kind::kInvalid,
                  "the container authorization token has a line break");
  }
  if (!token.empty()) req.headers.push_back({"Authorization", std::move(token)});
  auto resp = http_->send(req);
  for (auto& h : req.headers) wipe(h.value);
  const std::string what = "container credentials at " + shown;
  if (!resp) return failed(SecretError::Kind::kUnavailable, what + ": " + resp.error().message);
  if (resp->status != 200) {
    auto kind = resp->status == 401 || resp->status == 403 ? SecretError::Kind::kDenied
                                                           : SecretError::Kind::kUnavailable;
    return failed(kind, what + ": HTTP " + std::to_string(resp->status));
  }
  auto c = aws_internal::credentialsFromJson(resp->body);
  wipe(resp->body);
  if (!c) return failed(SecretError::Kind::kUnavailable, what + ": " + c.error());
  return std::move(*c);
}

// --- instance metadata ---

InstanceMetadataCredentialSource::InstanceMetadataCredentialSource(std::string endpoint,
                                                                   bool disabled,
                                                                   std::shared_ptr<HttpClient> http)
    : endpoint_(std::move(endpoint)), disabled_(disabled), http_(std::move(http)) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

std::expected<AwsCredentials, CredentialSourceError> InstanceMetadataCredentialSource::load() {
  if (disabled_) return notConfigured("instance metadata is disabled (AWS_EC2_METADATA_DISABLED)");
  const std::string base = endpoint_ + "/latest/";
  HttpRequest put;
  put.method = "PUT";
  put.url = base + "api/token";
  put.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
  auto token = http_->send(put);
  if (!token) {
    return notConfigured("no instance metadata service at " + urlForMessages(endpoint_) + " (" +
                         token.error().message + ")");
  }
  if (token->status != 200) {
    return notConfigured("instance metadata at " + urlForMessages(endpoint_) +
                         " gave no IMDSv2 token (HTTP " + std::to_string(token->status) + ")");
  }
  std::string session(trimWhitespace(token->body));
  wipe(token->body);

  HttpRequest get;
  get.url = base + "meta-data/iam/security-credentials/";
  get.headers = {{"X-aws-ec2-metadata-token", session}};
  auto roles = http_->send(get);
  if (!roles) {
    wipe(session);
    return failed(SecretError::Kind::kUnavailable, "instance metadata: " + roles.error().message);
  }
  if (roles->status == 404) {
    wipe(session);
    return notConfigured("the EC2 instance has no IAM role");
  }
  if (roles->status != 200) {
    wipe(session);
    return failed(SecretError::Kind::kUnavailable,
                  "instance metadata: role list: HTTP " + std::to_string(roles->status));
  }
  const std::string_view list = roles->body;
  auto first = trimWhitespace(list.substr(0, list.find('\n')));
  const std::string role(first);
  if (role.empty() || role.find_first_of("/?#") != std::string::npos) {
    wipe(session);
    return notConfigured("the EC2 instance has no IAM role");
  }
  get.url += uriEncode(role, false);
  auto creds = http_->send(get);
  wipe(session);
  for (auto& h : get.headers) wipe(h.value);
  const std::string what = "instance metadata credentials of role " + role;
  if (!creds) return failed(SecretError::Kind::kUnavailable, what + ": " + creds.error().message);
  if (creds->status != 200) {
    return failed(SecretError::Kind::kUnavailable,
                  what + ": HTTP " + std::to_string(creds->status));
  }
  auto doc = nlohmann::json::parse(creds->body, nullptr, false);
  if (!doc.is_discarded() && doc.is_object() && doc.contains("Code") && doc["Code"].is_string() &&
      doc["Code"].get<std::string>() != "Success") {
    wipe(creds->body);
    return failed(SecretError::Kind::kUnavailable,
                  what + ": Code " + forMessage(doc["Code"].get<std::string>(), 60));
  }
  if (!doc.is_discarded() && doc.is_object()) {
    for (const char* key : {"SecretAccessKey", "Token"}) {
      if (doc.contains(key) && doc[key].is_string()) wipe(doc[key].get_ref<std::string&>());
    }
  }
  auto c = aws_internal::credentialsFromJson(creds->body);
  wipe(creds->body);
  if (!c) return failed(SecretError::Kind::kUnavailable, what + ": " + c.error());
  return std::move(*c);
}

// --- the chain ---

AwsCredentialChain::AwsCredentialChain(std::vector<std::unique_ptr<AwsCredentialSource>> sources,
                                       const Clock& clock, std::chrono::seconds refresh_before)
    : sources_(std::move(sources)), clock_(clock), refresh_before_(refresh_before) {}

std::expected<AwsCredentials, SecretError> AwsCredentialChain::credentials() {
  std::lock_guard lock(mutex_);
  const auto now = clock_.now();
  if (cached_ && !invalidated_ &&
      (!cached_->expiration || now < *cached_->expiration - refresh_before_)) {
    return *cached_;
  }
  auto fresh = reloadLocked();
  if (fresh) {
    cached_ = *fresh;
    invalidated_ = false;
    return fresh;
  }
  if (cached_ && !invalidated_ && cached_->expiration && now < *cached_->expiration) {
    spdlog::warn(
        "aws credentials from {}: refresh failed, using the current ones until they "
        "expire: {}",
        current_ != nullptr ? current_->name() : "?", fresh.error().message);
    return *cached_;
  }
  return fresh;
}

void AwsCredentialChain::invalidate() {
  std::lock_guard lock(mutex_);
  invalidated_ = true;
}

std::string AwsCredentialChain::currentSource() const {
  std::lock_guard lock(mutex_);
  return current_ != nullptr ? current_->name() : std::string();
}

std::expected<AwsCredentials, SecretError> AwsCredentialChain::reloadLocked() {
  if (current_ != nullptr) {
    auto again = current_->load();
    if (again) return std::move(*again);
    if (!again.error().not_configured) {
      auto e = again.error().error;
      e.message = "aws credentials (" + current_->name() + "): " + e.message;
      return std::unexpected(std::move(e));
    }
    current_ = nullptr;  // it no longer applies: ask the whole chain again
  }
  std::string skipped;
  for (const auto& source : sources_) {
    auto c = source->load();
    if (c) {
      current_ = source.get();
      spdlog::info("aws credentials: from {}{}", source->name(),
                   c->expiration ? " (temporary)" : "");
      return std::move(*c);
    }
    if (!c.error().not_configured) {
      auto e = c.error().error;
      e.message = "aws credentials (" + source->name() + "): " + e.message;
      return std::unexpected(std::move(e));
    }
    if (!skipped.empty()) skipped += "; ";
    skipped += source->name() + ": " + c.error().error.message;
  }
  return std::unexpected(
      SecretError{SecretError::Kind::kDenied, "no AWS credentials found (" + skipped + ")"});
}

// --- time ---

std::optional<std::chrono::system_clock::time_point> parseIso8601(std::string_view text) {
  text = trimWhitespace(text);
  std::tm tm{};
  int consumed = 0;
  std::string head(text.substr(0, 19));
  if (head.size() != 19 ||
      std::sscanf(head.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto rest = text.substr(19);
  if (rest.starts_with(".")) {
    rest.remove_prefix(1);
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) {
      rest.remove_prefix(1);
    }
  }
  long offset_seconds = 0;
  if (rest == "Z" || rest == "z") {
    // UTC
  } else if (rest.size() >= 5 && (rest[0] == '+' || rest[0] == '-')) {
    int hh = 0, mm = 0;
    std::string off(rest.substr(1));
    if (std::sscanf(off.c_str(), "%2d:%2d", &hh, &mm) != 2 &&
        std::sscanf(off.c_str(), "%2d%2d", &hh, &mm) != 2) {
      return std::nullopt;
    }
    offset_seconds = (hh * 3600L + mm * 60L) * (rest[0] == '+' ? 1 : -1);
  } else {
    return std::nullopt;
  }
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t - offset_seconds);
}

}  // namespace outpost::secrets
