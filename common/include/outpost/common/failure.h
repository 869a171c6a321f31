// Failures at run time that are not the user's options or configuration (those are ConfigError,
// exit 2): the broker could not be used (exit 8), or a file could not be read or written (exit 1).
// The subcommands throw them; main() turns each into its documented exit status.
#pragma once

#include <stdexcept>
#include <string>

namespace outpost {

class RuntimeFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // The process's exit status for this failure.
  virtual int exitStatus() const = 0;
};

// Kafka stayed unusable within the command's time budget (after retrying what is retriable).
class KafkaUnavailable final : public RuntimeFailure {
 public:
  using RuntimeFailure::RuntimeFailure;
  static constexpr int kExitStatus = 8;
  int exitStatus() const override { return kExitStatus; }
};

// A local file or directory could not be read or written.
class IoFailure final : public RuntimeFailure {
 public:
  using RuntimeFailure::RuntimeFailure;
  static constexpr int kExitStatus = 1;
  int exitStatus() const override { return kExitStatus; }
};

}  // namespace outpost
