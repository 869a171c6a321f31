// Secret masking and resolving speed: prints `name: value unit` lines for bench/run.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "outpost/common/clock.h"
#include "outpost/secrets/masker.h"
#include "outpost/secrets/providers.h"
#include "outpost/secrets/resolver.h"

using namespace outpost;
using Steady = std::chrono::steady_clock;

int main() {
  std::mt19937_64 rng(42);
  auto randomText = [&](std::size_t n, const char* alphabet, std::size_t k) {
    std::string s(n, ' ');
    for (auto& c : s) c = alphabet[rng() % k];
    return s;
  };
  // 100 secrets of 16-40 bytes, and 64 MiB of log-like output with a few of them inside.
  std::vector<secrets::SecretValue> values;
  for (int i = 0; i < 100; ++i) {
    values.emplace_back(randomText(
        16 + rng() % 25, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 62));
  }
  std::vector<const secrets::SecretValue*> ptrs;
  for (const auto& v : values) ptrs.push_back(&v);
  auto t0 = Steady::now();
  secrets::SecretMasker masker(ptrs);
  auto build_ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count();

  std::string text = randomText(64 << 20, "abcdefghijklmnopqrstuvwxyz      .,:=-\n", 38);
  for (int i = 0; i < 1000; ++i) {
    auto v = values[rng() % values.size()].reveal();
    text.replace(rng() % (text.size() - v.size()), v.size(), v);
  }
  auto stream = masker.stream();
  std::size_t out = 0;
  t0 = Steady::now();
  for (std::size_t off = 0; off < text.size(); off += 64 * 1024) {
    out += stream->feed(std::string_view(text).substr(off, 64 * 1024)).size();
  }
  out += stream->flush().size();
  double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  std::printf("redaction_patterns: %zu patterns\n", masker.patternCount());
  std::printf("redaction_automaton_build_ms: %.1f ms\n", build_ms);
  std::printf("redaction_mb_per_s_100_secrets: %.0f MB/s\n",
              static_cast<double>(text.size()) / 1e6 / secs);
  std::printf("# (%zu bytes in, %zu out)\n", text.size(), out);

  SystemClock clock;
  Environment env{{"BENCH_SECRET", "a-secret-value-for-the-bench"}};
  secrets::SecretResolver resolver({{"env", std::make_shared<secrets::EnvSecretProvider>(env)}},
                                   {"env"}, "", std::chrono::minutes(5), std::chrono::hours(1),
                                   clock);
  secrets::SecretRef ref{"", "BENCH_SECRET", "", "", "${BENCH_SECRET}"};
  (void)resolver.resolve(ref);
  constexpr int kN = 1'000'000;
  std::size_t sink = 0;
  t0 = Steady::now();
  for (int i = 0; i < kN; ++i) sink += resolver.resolve(ref)->value.size();
  double ns = std::chrono::duration<double, std::nano>(Steady::now() - t0).count() / kN;
  std::printf("cached_resolve_ns: %.0f ns\n", ns);
  std::printf("# (%zu)\n", sink);
  return 0;
}
