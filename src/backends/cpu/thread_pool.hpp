// A process-wide pool of worker threads for the CPU backend. The calling thread takes part,
// so a dispatch on a one-core machine runs inline.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace metalgpu::cpu {

class ThreadPool {
 public:
  static ThreadPool& instance();
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();

  unsigned size() const { return unsigned(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) in chunks of `grain`, on all threads; returns when done.
  // Calls from several threads at once are serialised.
  void parallel_for(std::uint64_t n, std::uint64_t grain,
                    const std::function<void(std::uint64_t, std::uint64_t)>& fn);

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex submit_;  // one job at a time
  std::mutex m_;
  std::condition_variable wake_, finished_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  const std::function<void(std::uint64_t, std::uint64_t)>* job_ = nullptr;
  std::uint64_t n_ = 0, grain_ = 1;
  std::atomic<std::uint64_t> next_{0};
  unsigned busy_ = 0;
};

}  // namespace metalgpu::cpu
