#include "json_lines.h"

#include <google/protobuf/util/json_util.h>

namespace outpost::app {

std::string runEventJson(const v1::RunEvent& event) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(event, &out, options);
  return out;
}

void writeJsonLine(std::ostream& out, const nlohmann::json& line) {
  out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

}  // namespace outpost::app
