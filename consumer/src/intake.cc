#include "outpost/consumer/intake.h"

#include <cctype>
#include <cstdint>
#include <optional>

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "outpost/common/base64.h"
#include "outpost/common/clock.h"
#include "outpost/common/utf8.h"

namespace outpost::consumer {

namespace {

// What the envelope (CloudEvents, Schema Registry framing) held: the command's bytes, and how
// they are written.
struct Payload {
  // The message's own bytes where they are the command (no copy), else what was taken out.
  std::optional<std::string_view> borrowed;
  std::string storage;
  bool json = false;
  std::string ce_id;
  std::string_view bytes() const { return borrowed ? *borrowed : std::string_view(storage); }
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A header's value (names compared without case; the last one wins, as Kafka clients read them).
std::optional<std::string> header(const std::vector<events::Header>& headers,
                                  std::string_view name) {
  std::optional<std::string> found;
  for (const auto& h : headers) {
    if (lower(h.name) == name) found = h.value;
  }
  return found;
}

bool isJsonType(std::string_view content_type) {
  auto t = lower(content_type);
  return t.starts_with("application/json") || t.find("+json") != std::string::npos;
}

std::string_view trimmedStart(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  return s;
}

// One zigzag varint (Confluent's message indexes); nullopt past the end or past 10 bytes.
std::optional<std::int64_t> readVarint(std::string_view& in) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  return std::nullopt;
}

// Confluent's wire format: magic byte 0, schema id (4 bytes, big-endian), message indexes (a
// zigzag varint count, then that many indexes; a count of 0 means [0]), then the message.
std::expected<std::string_view, std::string> unframe(std::string_view bytes) {
  if (bytes.size() < 5) {
    return std::unexpected("Schema Registry framing (first byte 0) too short for a schema id");
  }
  std::string_view rest = bytes.substr(5);
  auto count = readVarint(rest);
  if (!count || *count < 0 || *count > 100) {
    return std::unexpected("Schema Registry framing: bad message index count");
  }
  for (std::int64_t i = 0; i < *count; ++i) {
    if (!readVarint(rest)) return std::unexpected("Schema Registry framing: bad message index");
  }
  return rest;
}

// Protobuf bytes, framed or not, or JSON.
std::expected<Payload, std::string> bare(std::string_view bytes, Encoding& encoding,
                                         bool json_declared) {
  if (json_declared || trimmedStart(bytes).starts_with('{')) {
    if (encoding == Encoding::kProtobuf) encoding = Encoding::kJson;
    return Payload{bytes, {}, true, {}};
  }
  if (!bytes.empty() && bytes.front() == '\0') {
    if (encoding == Encoding::kProtobuf) encoding = Encoding::kSchemaRegistry;
    auto inner = unframe(bytes);
    if (!inner) return std::unexpected(inner.error());
    return Payload{bytes.substr(bytes.size() - inner->size()), {}, false, {}};
  }
  return Payload{bytes, {}, false, {}};
}

std::expected<Payload, std::string> structuredCloudEvent(std::string_view bytes) {
  auto doc = nlohmann::json::parse(bytes, nullptr, false);
  if (!doc.is_object()) return std::unexpected("CloudEvent (structured mode): not a JSON object");
  for (const char* required : {"specversion", "id", "source", "type"}) {
    if (!doc.contains(required) || !doc[required].is_string()) {
      return std::unexpected(std::string("CloudEvent (structured mode): no string attribute '") +
                             required + "'");
    }
  }
  if (doc["specversion"] != "1.0") {
    return std::unexpected("CloudEvent: specversion '" +
                           escapedExcerpt(doc["specversion"].get<std::string>(), 16) +
                           "' is not 1.0");
  }
  Payload p;
  p.ce_id = doc["id"].get<std::string>();
  if (doc.contains("data_base64")) {
    if (!doc["data_base64"].is_string()) {
      return std::unexpected("CloudEvent: data_base64 is not a string");
    }
    std::string_view b64 = doc["data_base64"].get_ref<const std::string&>();
    while (b64.ends_with('=')) b64.remove_suffix(1);
    auto raw = decodeUnpaddedBase64(b64);
    if (!raw) return std::unexpected("CloudEvent: data_base64 is not base64");
    Encoding ignored = Encoding::kCloudEventStructured;
    auto inner = bare(*raw, ignored, false);
    if (!inner) return std::unexpected(inner.error());
    p.storage = std::string(inner->bytes());  // out of `raw`, which ends here
    p.json = inner->json;
    return p;
  }
  if (!doc.contains("data") || !doc["data"].is_object()) {
    return std::unexpected("CloudEvent: no data object or data_base64 holding the JobCommand");
  }
  p.storage = doc["data"].dump();
  p.json = true;
  return p;
}

bool declaresJson(const std::optional<std::string>& content_type) {
  return content_type && isJsonType(*content_type);
}

// How a message is written, from its headers and first bytes; decodes nothing but, for a JSON
// object without headers, whether it has "specversion".
Encoding classify(std::string_view bytes, const std::vector<events::Header>& headers) {
  const auto content_type = header(headers, "content-type");
  const bool structured_type =
      content_type && lower(*content_type).starts_with("application/cloudevents+json");
  if (header(headers, "ce_specversion") && !structured_type) return Encoding::kCloudEventBinary;
  if (structured_type) return Encoding::kCloudEventStructured;
  // A CloudEvent in structured mode from a producer that cannot set headers.
  if (trimmedStart(bytes).starts_with('{')) {
    auto doc = nlohmann::json::parse(bytes, nullptr, false);
    if (doc.is_object() && doc.contains("specversion")) return Encoding::kCloudEventStructured;
  }
  if (declaresJson(content_type) || trimmedStart(bytes).starts_with('{')) return Encoding::kJson;
  if (!bytes.empty() && bytes.front() == '\0') return Encoding::kSchemaRegistry;
  return Encoding::kProtobuf;
}

std::expected<Payload, std::string> unwrap(std::string_view bytes,
                                           const std::vector<events::Header>& headers,
                                           Encoding& encoding) {
  encoding = classify(bytes, headers);
  const auto content_type = header(headers, "content-type");
  if (encoding == Encoding::kCloudEventBinary) {
    auto spec = header(headers, "ce_specversion");
    if (*spec != "1.0") {
      return std::unexpected("CloudEvent: ce_specversion '" + escapedExcerpt(*spec, 16) +
                             "' is not 1.0");
    }
    auto id = header(headers, "ce_id");
    if (!id || id->empty()) return std::unexpected("CloudEvent (binary mode): no ce_id header");
    auto p = bare(bytes, encoding, declaresJson(content_type));
    if (p) p->ce_id = *id;
    return p;
  }
  if (encoding == Encoding::kCloudEventStructured) return structuredCloudEvent(bytes);
  encoding = Encoding::kProtobuf;  // bare() says which of protobuf, framed or JSON
  return bare(bytes, encoding, declaresJson(content_type));
}

}  // namespace

Encoding encodingOf(std::string_view bytes, const std::vector<events::Header>& headers) {
  return classify(bytes, headers);
}

const char* nameOf(Encoding e) {
  switch (e) {
    case Encoding::kProtobuf:
      return "protobuf";
    case Encoding::kSchemaRegistry:
      return "schema-registry";
    case Encoding::kJson:
      return "json";
    case Encoding::kCloudEventBinary:
      return "cloudevents-binary";
    case Encoding::kCloudEventStructured:
      return "cloudevents-structured";
  }
  return "unknown";
}

std::string_view contentTypeOf(Encoding e) {
  const bool cloud_event = e == Encoding::kCloudEventBinary || e == Encoding::kCloudEventStructured;
  return cloud_event ? "cloudevents" : nameOf(e);
}

std::expected<v1::JobCommand, Rejection> decodeCommand(std::string_view bytes,
                                                       const std::vector<events::Header>& headers,
                                                       Encoding* encoding_out) {
  Encoding encoding = Encoding::kProtobuf;
  struct Report {
    Encoding& e;
    Encoding* out;
    ~Report() {
      if (out) *out = e;
    }
  } report{encoding, encoding_out};
  if (bytes.empty()) return std::unexpected(Rejection{"empty message: not a JobCommand", {}});
  auto payload = unwrap(bytes, headers, encoding);
  if (!payload) {
    return std::unexpected(Rejection{"undecodable JobCommand: " + payload.error(), {}});
  }
  v1::JobCommand c;
  if (payload->json) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;  // a misspelled field is refused, not dropped
    auto status = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(payload->bytes().data(), payload->bytes().size()), &c,
        options);
    if (!status.ok()) {
      // The run it names, if it names one, for its REJECTED event.
      c.Clear();
      if (auto doc = nlohmann::json::parse(payload->bytes(), nullptr, false); doc.is_object()) {
        for (const char* key : {"runId", "run_id"}) {
          if (doc.contains(key) && doc[key].is_string() && isUuid(doc[key].get<std::string>())) {
            c.set_run_id(doc[key].get<std::string>());
          }
        }
        for (const char* key : {"jobId", "job_id"}) {
          if (doc.contains(key) && doc[key].is_string()) c.set_job_id(doc[key].get<std::string>());
        }
      }
      return std::unexpected(
          Rejection{"undecodable: not a JobCommand in the Protobuf JSON mapping (" +
                        escapedExcerpt(std::string(status.message()), 120) + ")",
                    c});
    }
  } else if (!c.ParseFromArray(payload->bytes().data(),
                               static_cast<int>(payload->bytes().size()))) {
    return std::unexpected(Rejection{"undecodable: not a protobuf outpost.v1.JobCommand", {}});
  }
  if (!payload->ce_id.empty()) (*c.mutable_labels())["ce_id"] = payload->ce_id;
  // Protobuf is lenient: random bytes can parse as unknown fields. A command without the fields
  // every command carries is treated as undecodable.
  if (c.run_id().empty()) {
    return std::unexpected(Rejection{"undecodable or incomplete JobCommand: run_id is missing", c});
  }
  if (!isUuid(c.run_id())) {
    Rejection r{"run_id '" + escapedExcerpt(c.run_id(), 40) + "' is not a UUID", c};
    r.partial.clear_run_id();  // not an id the platform can key an event by
    return std::unexpected(std::move(r));
  }
  if (c.job_type().empty()) {
    return std::unexpected(Rejection{"job_type is missing", c});
  }
  if (c.attempt() == 0) c.set_attempt(1);
  return c;
}

bool isForAnotherPool(const v1::JobCommand& c, const std::string& pool) {
  return !c.pool().empty() && c.pool() != pool;
}

std::expected<const TemplateConfig*, Rejection> admitCommand(
    const v1::JobCommand& c, const std::map<std::string, TemplateConfig>& templates) {
  auto it = templates.find(c.job_type());
  if (it == templates.end()) {
    return std::unexpected(Rejection{"unknown job_type '" + escapedExcerpt(c.job_type(), 64) +
                                         "': no such template on this worker",
                                     c});
  }
  return &it->second;
}

}  // namespace outpost::consumer
