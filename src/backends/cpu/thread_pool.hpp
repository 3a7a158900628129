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

  unsigned size() const { return wanted_; }

  // Calls fn(begin, end) over [0, n) in chunks of `grain`, on all threads; returns when done.
  // Calls from several threads at once are serialised.
  void parallel_for(std::uint64_t n, std::uint64_t grain,
                    const std::function<void(std::uint64_t, std::uint64_t)>& fn);

 private:
  using Job = std::function<void(std::uint64_t, std::uint64_t)>;
  void worker_loop();
  void start_workers();
  // In the child of a fork (pthread_atfork): the workers were the parent's and do not exist
  // here; forget them (joining them would wait forever) and start new ones on the next job.
  void forget_workers_after_fork();
  // Takes chunks of the current job until none is left. The job's fields are passed in (read
  // under the lock) rather than read from members, which the next parallel_for may reset.
  void run_chunks(const Job& job, std::uint64_t n, std::uint64_t grain);

  unsigned wanted_;  // threads a job runs on, the caller's included
  std::vector<std::thread> workers_;
  std::mutex submit_;  // one job at a time
  std::mutex m_;
  std::condition_variable wake_, finished_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  // True from the moment parallel_for publishes a job until it starts waiting for the workers:
  // a worker that wakes after that must not join (parallel_for may already have returned and
  // the next call be resetting the fields below). All guarded by m_, except next_.
  bool open_ = false;
  const Job* job_ = nullptr;
  std::uint64_t n_ = 0, grain_ = 1;
  std::atomic<std::uint64_t> next_{0};
  unsigned busy_ = 0;  // workers that joined the current job and have not left it
};

}  // namespace metalgpu::cpu
