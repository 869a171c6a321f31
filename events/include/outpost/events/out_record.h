// One record to write to Kafka, owned: what the transactional publisher takes, and what the
// run-state store makes for the outpost.runs topic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "outpost/events/producer.h"

namespace outpost::events {

struct OutRecord {
  std::string topic;
  std::int32_t partition = -1;  // -1: chosen by the partitioner from the key
  std::string key;
  std::string value;
  std::vector<Header> headers;
};

}  // namespace outpost::events
