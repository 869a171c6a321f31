// outpost-bench-chatter BYTES_PER_S SECONDS: the job of the benchmark's output-heavy phase. It
// writes lines of about 100 bytes, "<CLOCK_REALTIME µs> <line number> <filler>", to stdout in
// slices every 10 ms (BYTES_PER_S / 100 bytes each, stamped when the slice is written) for
// SECONDS, and exits 0. Every 1000th line also carries $BENCH_SECRET, so that masking finds
// something. Only libc, like the no-op.
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

long long nowUs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s BYTES_PER_S SECONDS\n", argv[0]);
    return 2;
  }
  const long rate = std::atol(argv[1]);
  const long seconds = std::atol(argv[2]);
  const char* secret = std::getenv("BENCH_SECRET");
  const long slice = rate / 100;  // every 10 ms
  std::vector<char> buf(static_cast<std::size_t>(slice) + 512);
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  long long line = 0;
  for (long i = 0; i < seconds * 100; ++i) {
    long n = 0;
    const long long stamp = nowUs();
    while (n < slice) {
      ++line;
      int w = std::snprintf(buf.data() + n, 512, "%lld %lld %s%s\n", stamp, line,
                            "the quick brown fox jumps over the lazy dog 0123456789 abcdefghij",
                            (line % 1000 == 0 && secret) ? secret : "");
      n += w;
    }
    for (long off = 0; off < n;) {
      ssize_t w = write(1, buf.data() + off, static_cast<std::size_t>(n - off));
      if (w <= 0) return 1;
      off += w;
    }
    next.tv_nsec += 10 * 1000 * 1000;
    if (next.tv_nsec >= 1000000000) {
      next.tv_nsec -= 1000000000;
      ++next.tv_sec;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
  }
  return 0;
}
