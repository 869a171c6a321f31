// Records as JSON lines, one object per line: the form `outpost tail` prints and
// `outpost replay local --out` writes, so that what reads one reads the other.
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "outpost/v1/event.pb.h"

namespace outpost::app {

// A run event as JSON text in Protobuf's JSON mapping, field names as in event.proto and every
// field printed (an exit_code of 0 is information too).
std::string runEventJson(const v1::RunEvent& event);

// Writes `line` compactly and a newline. Text that is not UTF-8 (a key, a run's output in an
// event, a lineage record as the job wrote it) is written with U+FFFD for each bad byte rather
// than failing the line.
void writeJsonLine(std::ostream& out, const nlohmann::json& line);

}  // namespace outpost::app
