// outpost-bench-noop: the job the benchmarks run. Prints the wall-clock time (CLOCK_REALTIME,
// microseconds since the Unix epoch) at the start of main, then exits 0. The benchmark compares
// that time with the moment it produced the command, so the dispatch latency is measured up to
// the point where the job's own code starts running.
#include <time.h>
#include <unistd.h>

#include <cstdio>

int main() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  char line[32];
  int n = std::snprintf(line, sizeof line, "%lld\n",
                        static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000);
  // One write(2), no stdio buffering: the line is out before the process exits.
  return ::write(1, line, static_cast<std::size_t>(n)) == n ? 0 : 1;
}
