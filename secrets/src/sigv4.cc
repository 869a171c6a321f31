#include "outpost/secrets/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <vector>

namespace outpost::secrets {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string toHex(const unsigned char* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 0x0f];
  }
  return out;
}

// Raw HMAC-SHA256. The caller wipes the result when it is key material.
std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  std::string result(reinterpret_cast<char*>(out), len);
  OPENSSL_cleanse(out, sizeof out);
  return result;
}

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

bool isUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string canonicalHeaderValue(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string sigV4Time(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string uriEncode(std::string_view bytes, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size());
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (isUnreserved(c) || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 0x0f];
    }
  }
  return out;
}

std::string percentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hexValue(text[i + 1]) >= 0 &&
        hexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(text[i + 1]) * 16 + hexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];  // a stray '%' stays itself (and is encoded as %25 again)
    }
  }
  return out;
}

std::string canonicalUri(std::string_view wire_path, bool normalize_path) {
  if (wire_path.empty()) return "/";
  if (!normalize_path) return std::string(wire_path);
  std::vector<std::string_view> segments;
  std::size_t begin = 0;
  while (begin <= wire_path.size()) {
    auto slash = wire_path.find('/', begin);
    auto seg = wire_path.substr(
        begin, slash == std::string_view::npos ? std::string_view::npos : slash - begin);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    if (slash == std::string_view::npos) break;
    begin = slash + 1;
  }
  std::string path = "/";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) path += '/';
    path += segments[i];
  }
  if (!segments.empty() && wire_path.back() == '/') path += '/';
  return uriEncode(path, /*keep_slash=*/true);
}

std::string canonicalQuery(std::string_view wire_query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t begin = 0;
  while (begin <= wire_query.size()) {
    auto amp = wire_query.find('&', begin);
    auto item = wire_query.substr(
        begin, amp == std::string_view::npos ? std::string_view::npos : amp - begin);
    if (!item.empty()) {
      auto eq = item.find('=');
      auto name = item.substr(0, eq);
      auto value = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
      pairs.emplace_back(uriEncode(percentDecode(name), false),
                         uriEncode(percentDecode(value), false));
    }
    if (amp == std::string_view::npos) break;
    begin = amp + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

CanonicalHeaders canonicalHeaders(const HttpHeaders& headers) {
  std::map<std::string, std::vector<std::string>> by_name;
  for (const auto& h : headers) {
    std::string name;
    for (char c : h.name) name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    by_name[name].push_back(canonicalHeaderValue(h.value));
  }
  CanonicalHeaders out;
  for (const auto& [name, values] : by_name) {
    out.block += name;
    out.block += ':';
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out.block += ',';
      out.block += values[i];
    }
    out.block += '\n';
    if (!out.signed_headers.empty()) out.signed_headers += ';';
    out.signed_headers += name;
  }
  return out;
}

std::string canonicalRequest(std::string_view method, std::string_view wire_path,
                             std::string_view wire_query, const HttpHeaders& headers,
                             std::string_view payload_sha256_hex, bool normalize_path) {
  auto ch = canonicalHeaders(headers);
  std::string out;
  out += method;
  out += '\n';
  out += canonicalUri(wire_path, normalize_path);
  out += '\n';
  out += canonicalQuery(wire_query);
  out += '\n';
  out += ch.block;
  out += '\n';
  out += ch.signed_headers;
  out += '\n';
  out += payload_sha256_hex;
  return out;
}

std::string sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return toHex(md, len);
}

SecretValue sigV4SigningKey(const SecretValue& secret_access_key, std::string_view date,
                            std::string_view region, std::string_view service) {
  std::string seed = "AWS4";
  seed += secret_access_key.reveal();
  std::string k_date = hmac(seed, date);
  wipe(seed);
  std::string k_region = hmac(k_date, region);
  wipe(k_date);
  std::string k_service = hmac(k_region, service);
  wipe(k_region);
  SecretValue k_signing(hmac(k_service, "aws4_request"));
  wipe(k_service);
  return k_signing;
}

std::expected<SigV4Signature, std::string> signSigV4(HttpRequest& request,
                                                     const AwsCredentials& credentials,
                                                     const SigV4Params& params) {
  auto url = parseUrl(request.url);
  if (!url) return std::unexpected("cannot sign: the URL is not http(s) with a host");
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return std::unexpected("cannot sign: the credentials have no access key id or secret key");
  }
  if (params.region.empty() || params.service.empty()) {
    return std::unexpected("cannot sign: no region or service");
  }

  const std::string amz_date = sigV4Time(params.time);
  const std::string_view date = std::string_view(amz_date).substr(0, 8);
  removeHeader(request.headers, "Authorization");
  setHeader(request.headers, "X-Amz-Date", amz_date);
  if (!findHeader(request.headers, "Host")) request.headers.push_back({"Host", url->authority()});
  const bool has_token = !credentials.session_token.empty();
  if (has_token && params.sign_session_token) {
    setHeader(request.headers, "X-Amz-Security-Token",
              std::string(credentials.session_token.reveal()));
  } else if (has_token) {
    removeHeader(request.headers, "X-Amz-Security-Token");
  }

  SigV4Signature s;
  s.scope = std::string(date) + "/" + params.region + "/" + params.service + "/aws4_request";
  s.canonical_request = canonicalRequest(request.method, url->path, url->query, request.headers,
                                         sha256Hex(request.body), params.normalize_path);
  s.signed_headers = canonicalHeaders(request.headers).signed_headers;
  s.string_to_sign = std::string(kAlgorithm) + "\n" + amz_date + "\n" + s.scope + "\n" +
                     sha256Hex(s.canonical_request);
  SecretValue key =
      sigV4SigningKey(credentials.secret_access_key, date, params.region, params.service);
  std::string raw = hmac(key.reveal(), s.string_to_sign);
  s.signature = toHex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  s.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                    s.scope + ", SignedHeaders=" + s.signed_headers + ", Signature=" + s.signature;
  request.headers.push_back({"Authorization", s.authorization});
  if (has_token && !params.sign_session_token) {
    request.headers.push_back(
        {"X-Amz-Security-Token", std::string(credentials.session_token.reveal())});
  }
  return s;
}

}  // namespace outpost::secrets
