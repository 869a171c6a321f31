// GoogleTest printers for the configuration's enums, so that failures show names rather than raw
// bytes.
#pragma once

#include <ostream>

#include "outpost/common/config.h"

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

}  // namespace outpost
