// The one way Outpost turns a Protobuf message into a record's value (run events, worker status,
// run records): every string field in it — nested, repeated and map entries included — made
// valid UTF-8 first. proto3 requires it of `string` fields, and Python's and Java's runtimes
// refuse a whole message that breaks it, so a platform written in those languages would lose the
// event or stop on it. Messages that are already valid (nearly all) are serialized as they are.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include <google/protobuf/message.h>

namespace outpost::events {

std::string toWire(const google::protobuf::Message& message);

// Fixes `message` in place; returns how many string fields had to be changed.
std::size_t makeStringsValidUtf8(google::protobuf::Message& message);

// Appends `values` to `wire` (a message's toWire) as the repeated string field `field_number`: the
// bytes toWire gives for the message with those values added, without copying each one into the
// message and out again (a LOG event of 64 KiB holds some 600 lines). Values that are not valid
// UTF-8 are made valid, as toWire does.
void appendRepeatedString(std::string& wire, int field_number,
                          std::span<const std::string_view> values);

}  // namespace outpost::events
