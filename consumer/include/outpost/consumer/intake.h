// Intake: turning the bytes of a jobs-topic message into a command this worker may run, or into
// a rejection with a reason. Never throws: bad input is an outcome, not an error.
#pragma once

#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/events/producer.h"
#include "outpost/v1/job.pb.h"

namespace outpost::consumer {

struct Rejection {
  std::string reason;  // for the DLQ header and the REJECTED event
  // Whatever could be read of the command (a REJECTED event needs run_id).
  v1::JobCommand partial;
};

// How a command was written on the jobs topic, told apart per message (docs/messages-and-topics.md,
// "Encodings on the jobs topic"):
//  - CloudEvents, structured mode: content-type application/cloudevents+json, or a JSON object
//    with "specversion" (a producer that cannot set headers); the command is its "data" (JSON) or
//    "data_base64" (Protobuf, framed or not);
//  - CloudEvents, binary mode: a ce_specversion header; the value is the command, encoded as its
//    content-type header says (JSON) or as below;
//  - JSON (the Protobuf JSON mapping): content-type application/json, or a first byte '{' (which
//    no JobCommand in Protobuf starts with);
//  - Confluent Schema Registry framing: a first byte 0 (which no JobCommand in Protobuf starts
//    with), a 4-byte schema id and the message indexes, then Protobuf; id and indexes are read and
//    ignored;
//  - plain Protobuf: anything else.
enum class Encoding { kProtobuf, kSchemaRegistry, kJson, kCloudEventBinary, kCloudEventStructured };
const char* nameOf(Encoding e);

// Which of the encodings above a message is written in, from its headers and first bytes, without
// decoding it: what decodeCommand() finds, told before it runs (a signature names the encoding it
// covers).
Encoding encodingOf(std::string_view bytes, const std::vector<events::Header>& headers);

// The content type a signed command's `cty` claim names for an encoding: "protobuf",
// "schema-registry", "json" or "cloudevents" (either mode).
std::string_view contentTypeOf(Encoding e);

// Decodes a JobCommand in any of the encodings above and checks what every command must have.
// A CloudEvent's id is kept as the command's label ce_id. `encoding`, when given, is set to what
// the message was found to be (also when it is then refused).
std::expected<v1::JobCommand, Rejection> decodeCommand(
    std::string_view bytes, const std::vector<events::Header>& headers = {},
    Encoding* encoding = nullptr);

// A command that names another pool. Pools may share a jobs topic, each reading every command:
// such a command is not bad input but another pool's work, skipped without an event. A command
// that names no pool runs in any.
bool isForAnotherPool(const v1::JobCommand& command, const std::string& pool);

// Checks that this worker may run the command (one for its pool, see isForAnotherPool): its
// template exists.
std::expected<const TemplateConfig*, Rejection> admitCommand(
    const v1::JobCommand& command, const std::map<std::string, TemplateConfig>& templates);

}  // namespace outpost::consumer
