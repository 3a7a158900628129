#include "backends/cpu/thread_pool.hpp"

#include <cstdlib>
#include <new>
#include <string>

#include <pthread.h>

namespace metalgpu::cpu {

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("METALGPU_CPU_THREADS"); env && std::atoi(env) > 0)
      return unsigned(std::atoi(env));
    unsigned n = std::thread::hardware_concurrency();
    return n ? n : 1u;
  }());
  static const bool fork_handler = [] {
    pthread_atfork(nullptr, nullptr, [] { instance().forget_workers_after_fork(); });
    return true;
  }();
  (void)fork_handler;
  return pool;
}

ThreadPool::ThreadPool(unsigned threads) : wanted_(threads ? threads : 1) { start_workers(); }

void ThreadPool::start_workers() {
  for (unsigned i = unsigned(workers_.size()) + 1; i < wanted_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void ThreadPool::forget_workers_after_fork() {
  // Only the forking thread exists in the child. The thread handles are moved somewhere never
  // destroyed (a joinable std::thread's destructor would terminate); the locks and condition
  // variables may have been held or waited on by threads that are gone: made afresh.
  new std::vector<std::thread>(std::move(workers_));
  workers_.clear();
  new (&submit_) std::mutex();
  new (&m_) std::mutex();
  new (&wake_) std::condition_variable();
  new (&finished_) std::condition_variable();
  open_ = false;
  job_ = nullptr;
  busy_ = 0;
  stop_ = false;
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(const Job& job, std::uint64_t n, std::uint64_t grain) {
  for (;;) {
    std::uint64_t begin = next_.fetch_add(grain, std::memory_order_relaxed);
    if (begin >= n) return;
    std::uint64_t end = n - begin > grain ? begin + grain : n;
    job(begin, end);
  }
}

void ThreadPool::worker_loop() {
  std::uint64_t seen = 0;
  for (;;) {
    const Job* job;
    std::uint64_t n, grain;
    {
      std::unique_lock<std::mutex> lock(m_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      // Woke too late: the job is closed (its caller may have returned). Wait for the next one.
      if (!open_) continue;
      job = job_;
      n = n_;
      grain = grain_;
      ++busy_;
    }
    run_chunks(*job, n, grain);
    {
      std::lock_guard<std::mutex> lock(m_);
      if (--busy_ == 0) finished_.notify_all();
    }
  }
}

void ThreadPool::parallel_for(std::uint64_t n, std::uint64_t grain,
                              const std::function<void(std::uint64_t, std::uint64_t)>& fn) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  if (wanted_ == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> one_job(submit_);
  if (workers_.size() + 1 < wanted_) start_workers();  // after a fork
  {
    std::lock_guard<std::mutex> lock(m_);
    job_ = &fn;
    n_ = n;
    grain_ = grain;
    next_.store(0, std::memory_order_relaxed);  // published to workers by the mutex
    open_ = true;
    ++generation_;
  }
  wake_.notify_all();
  run_chunks(fn, n, grain);
  std::unique_lock<std::mutex> lock(m_);
  // All chunks are taken. Close the job so that no worker joins from here on, then wait for
  // those that joined (busy_ counts them, under the same lock) to finish their chunks.
  open_ = false;
  job_ = nullptr;
  finished_.wait(lock, [&] { return busy_ == 0; });
}

}  // namespace metalgpu::cpu
