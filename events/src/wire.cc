#include "outpost/events/wire.h"

#include <cstdint>
#include <memory>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "outpost/common/utf8.h"

namespace outpost::events {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Visits every string field (not bytes) that is set in `m` and its sub-messages.
// With `mutable_m` (the same message, writable): rewrites the invalid ones and counts them.
// Without: counts up to the first invalid one (a check).
std::size_t walk(const Message& m, Message* mutable_m) {
  const auto* reflection = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(m, &fields);
  std::size_t bad = 0;
  for (const auto* f : fields) {
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(m, f); ++i) {
          const auto& s = reflection->GetRepeatedStringReference(m, f, i, nullptr);
          if (isValidUtf8(s)) continue;
          ++bad;
          if (!mutable_m) return bad;
          reflection->SetRepeatedString(mutable_m, f, i, sanitizeUtf8(s));
        }
      } else {
        std::string scratch;
        const auto& s = reflection->GetStringReference(m, f, &scratch);
        if (isValidUtf8(s)) continue;
        ++bad;
        if (!mutable_m) return bad;
        reflection->SetString(mutable_m, f, sanitizeUtf8(s));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(m, f); ++i) {
          if (!mutable_m) {
            if (walk(reflection->GetRepeatedMessage(m, f, i), nullptr)) return 1;
            continue;
          }
          auto* sub = reflection->MutableRepeatedMessage(mutable_m, f, i);
          bad += walk(*sub, sub);
        }
      } else if (!mutable_m) {
        if (walk(reflection->GetMessage(m, f), nullptr)) return 1;
      } else {
        auto* sub = reflection->MutableMessage(mutable_m, f);
        bad += walk(*sub, sub);
      }
    }
  }
  return bad;
}

}  // namespace

std::size_t makeStringsValidUtf8(Message& message) {
  return walk(message, &message);
}

void appendRepeatedString(std::string& wire, int field_number,
                          std::span<const std::string_view> values) {
  namespace io = google::protobuf::io;
  const auto tag = static_cast<std::uint32_t>(field_number) << 3 | 2;  // length-delimited
  std::size_t size = 0;
  for (const auto& v : values) {
    size += io::CodedOutputStream::VarintSize32(tag) +
            io::CodedOutputStream::VarintSize64(v.size()) + v.size();
  }
  wire.reserve(wire.size() + size);
  io::StringOutputStream stream(&wire);
  io::CodedOutputStream out(&stream);
  for (const auto& v : values) {
    const std::string fixed = isValidUtf8(v) ? std::string() : sanitizeUtf8(v);
    const std::string_view s = fixed.empty() ? v : std::string_view(fixed);
    out.WriteTag(tag);
    out.WriteVarint64(s.size());
    out.WriteRaw(s.data(), static_cast<int>(s.size()));
  }
}

std::string toWire(const Message& message) {
  if (walk(message, nullptr) == 0) return message.SerializeAsString();
  std::unique_ptr<Message> fixed(message.New());
  fixed->CopyFrom(message);
  makeStringsValidUtf8(*fixed);
  return fixed->SerializeAsString();
}

}  // namespace outpost::events
