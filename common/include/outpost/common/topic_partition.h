// A partition of a Kafka topic: how consumer offsets, run sources and transactional offset
// commits name where a message came from.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace outpost {

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

}  // namespace outpost
