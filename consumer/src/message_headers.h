// A consumed message's headers, in order, for the consumers of this module. Private to consumer/.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <librdkafka/rdkafka.h>

namespace outpost::consumer {

// Calls add(name, value) for each header of `m` in order; a header without a value has an empty
// one.
template <typename Add>
void forEachHeader(rd_kafka_message_t* m, Add&& add) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  for (std::size_t i = 0;
       rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    add(std::string(name),
        value ? std::string(static_cast<const char*>(value), size) : std::string());
  }
}

}  // namespace outpost::consumer
