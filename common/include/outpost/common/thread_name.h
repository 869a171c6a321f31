// Thread names, so that top -H, perf and bench/run's per-thread figures tell the threads apart.
#pragma once

#include <pthread.h>

namespace outpost {

// Names the calling thread; Linux keeps the first 15 bytes.
inline void nameThisThread(const char* name) {
  pthread_setname_np(pthread_self(), name);
}

}  // namespace outpost
