// The cpu backend's thread pool under consecutive jobs of different shapes - the pattern that
// let a late-waking worker read the next job's fields without the lock (issue 17). Built twice
// by ctest: plainly, and with -fsanitize=thread, which reports any such race.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "backends/cpu/thread_pool.hpp"

int main() {
  metalgpu::cpu::ThreadPool pool(16);
  constexpr std::uint64_t kLarge = 3 * 16384 + 1024;
  std::vector<unsigned> counts(kLarge, 0), expected(kLarge, 0);
  const int dispatches = 3000;
  for (int d = 0; d < dispatches; ++d) {
    // Alternate sizes and grains, as dispatches with alternating threadgroup sizes do.
    const std::uint64_t n = d % 3 == 0 ? kLarge : d % 3 == 1 ? 1000 + std::uint64_t(d % 97) : 16384;
    const std::uint64_t grain = d % 2 ? 16 : 256;
    pool.parallel_for(n, grain, [&](std::uint64_t a, std::uint64_t b) {
      for (std::uint64_t i = a; i < b; ++i) ++counts[i];  // each index belongs to one chunk
    });
    for (std::uint64_t i = 0; i < n; ++i) ++expected[i];
  }
  for (std::uint64_t i = 0; i < kLarge; ++i)
    if (counts[i] != expected[i]) {
      std::printf("FAIL: element %llu was visited %u times, expected %u\n", (unsigned long long)i, counts[i],
                  expected[i]);
      return 1;
    }
  std::printf("ok: %d dispatches on %u threads\n", dispatches, pool.size());
  return 0;
}
