// GoogleTest printers for the runner's enums, so that failures show names rather than raw bytes.
#pragma once

#include <ostream>

#include "outpost/runner/supervisor.h"

namespace outpost::runner {

inline void PrintTo(RunOutcome::Ending e, std::ostream* os) {
  switch (e) {
    case RunOutcome::Ending::kExited:
      *os << "kExited";
      return;
    case RunOutcome::Ending::kSignaled:
      *os << "kSignaled";
      return;
    case RunOutcome::Ending::kTimedOut:
      *os << "kTimedOut";
      return;
    case RunOutcome::Ending::kCancelled:
      *os << "kCancelled";
      return;
    case RunOutcome::Ending::kSpawnFailed:
      *os << "kSpawnFailed";
      return;
  }
  *os << "Ending(" << static_cast<int>(e) << ")";
}

}  // namespace outpost::runner
