// GoogleTest printers for Outpost's enums, so that failures show names rather than raw bytes.
#pragma once

#include <ostream>

#include "outpost/common/config.h"
#include "outpost/runner/supervisor.h"

namespace outpost {

inline void PrintTo(RecipeDelivery d, std::ostream* os) {
  switch (d) {
    case RecipeDelivery::kNone:
      *os << "kNone";
      return;
    case RecipeDelivery::kFile:
      *os << "kFile";
      return;
    case RecipeDelivery::kStdin:
      *os << "kStdin";
      return;
    case RecipeDelivery::kEnv:
      *os << "kEnv";
      return;
  }
  *os << "RecipeDelivery(" << static_cast<int>(d) << ")";
}

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

}  // namespace outpost
