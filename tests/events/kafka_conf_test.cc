// kafka::makeConf: Outpost's base settings under the configured property layers. No broker.
#include "outpost/events/kafka.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include "outpost/common/config.h"

namespace outpost::events {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string get(const kafka::ConfPtr& conf, const char* name) {
  char value[256];
  std::size_t size = sizeof value;
  if (rd_kafka_conf_get(conf.get(), name, value, &size) != RD_KAFKA_CONF_OK) return "<unset>";
  return value;
}

TEST(KafkaConf, EveryClientSendsWithoutNagle) {
  auto conf = kafka::makeConf({}, "test");
  EXPECT_EQ(get(conf, "socket.nagle.disable"), "true");
}

TEST(KafkaConf, ALaterLayerWinsOverTheBaseAndEarlierLayers) {
  const kafka::Properties defaults = {{"socket.nagle.disable", "true"}, {"linger.ms", "7"}};
  const kafka::Properties configured = {{"socket.nagle.disable", "false"}};
  auto conf = kafka::makeConf({&defaults, &configured}, "test");
  EXPECT_EQ(get(conf, "socket.nagle.disable"), "false");
  EXPECT_EQ(get(conf, "linger.ms"), "7");
}

TEST(KafkaConf, ARefusedPropertyIsNamedWithItsSection) {
  const kafka::Properties bad = {{"no.such.property", "1"}};
  try {
    kafka::makeConf({&bad}, "kafka.properties");
    FAIL() << "accepted an unknown property";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("no.such.property"), HasSubstr("kafka.properties")));
  }
}

}  // namespace
}  // namespace outpost::events
