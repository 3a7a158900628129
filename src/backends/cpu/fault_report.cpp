#include "backends/cpu/fault_report.hpp"

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

#include <unistd.h>

namespace metalgpu::cpu {
namespace {

std::atomic<const char*> running{nullptr};
struct sigaction previous_segv, previous_bus;

void write_text(const char* s) {
  for (std::size_t n = std::strlen(s); n > 0;) {
    ssize_t w = write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= std::size_t(w);
  }
}

// Async-signal-safe: write(2) only. Returning re-runs the faulting access under the previous
// disposition, which then does what it would have done without us.
void on_fault(int sig, siginfo_t*, void*) {
  if (const char* kernel = running.load(std::memory_order_relaxed)) {
    write_text("\nmetalgpu: kernel '");
    write_text(kernel);
    write_text(sig == SIGBUS ? "' crashed the process (SIGBUS)" : "' crashed the process (SIGSEGV)");
    write_text(": an access outside its buffers? Run it again with METALGPU_DEBUG=1 (debug mode), "
               "which names the access, its .metal line and the thread.\n");
  }
  sigaction(sig, sig == SIGBUS ? &previous_bus : &previous_segv, nullptr);
}

void install() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = &on_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &previous_segv);
  sigaction(SIGBUS, &action, &previous_bus);
}

}  // namespace

void set_running_kernel(const char* kernel) {
  static std::once_flag once;
  if (kernel) std::call_once(once, install);
  running.store(kernel, std::memory_order_relaxed);
}

}  // namespace metalgpu::cpu
