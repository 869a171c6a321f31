// What the wire contract's RunState values mean beyond their names: which of them end a run
// (event.proto marks them "Terminal"). Beside the generated code so that every module that reads
// or writes RunEvents asks the same question the same way.
#pragma once

#include "outpost/v1/event.pb.h"

namespace outpost::v1 {

// SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, REJECTED and EXPIRED: the attempt is over and no
// other event of it follows. (A FAILED with `retrying` set ends an attempt, not the run.)
constexpr bool isTerminal(RunState state) {
  return state == SUCCEEDED || state == FAILED || state == TIMED_OUT || state == CANCELLED ||
         state == REJECTED || state == EXPIRED;
}

}  // namespace outpost::v1
