#include "backends/cpu/fault_report.hpp"

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

#include <unistd.h>

namespace metalgpu::cpu {
namespace {

std::atomic<const char*> running{nullptr};
struct sigaction previous_segv, previous_bus, previous_fpe;

constexpr int kMaxDebugModules = 256;
std::atomic<DebugSignalHandler> debug_modules[kMaxDebugModules];

struct sigaction* previous_for(int sig) {
  return sig == SIGBUS ? &previous_bus : sig == SIGFPE ? &previous_fpe : &previous_segv;
}

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
void on_fault(int sig, siginfo_t* info, void*) {
  // A debug module whose kernel runs on this thread leaves the kernel (longjmp) and reports.
  for (auto& slot : debug_modules)
    if (DebugSignalHandler h = slot.load(std::memory_order_acquire)) h(sig == SIGFPE ? 1 : 2, info ? info->si_addr : nullptr);
  if (const char* kernel = running.load(std::memory_order_relaxed)) {
    write_text("\nmetalgpu: kernel '");
    write_text(kernel);
    write_text(sig == SIGBUS ? "' crashed the process (SIGBUS)"
               : sig == SIGFPE ? "' crashed the process (SIGFPE, an integer division overflow: INT_MIN / -1?)"
                               : "' crashed the process (SIGSEGV)");
    write_text(": an access outside its buffers? Run it again with METALGPU_DEBUG=1 (debug mode), "
               "which names the access, its .metal line and the thread.\n");
  }
  sigaction(sig, previous_for(sig), nullptr);
}

void install() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = &on_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &previous_segv);
  sigaction(SIGBUS, &action, &previous_bus);
  sigaction(SIGFPE, &action, &previous_fpe);
}

}  // namespace

void register_debug_module(DebugSignalHandler handler) {
  for (auto& slot : debug_modules) {
    DebugSignalHandler none = nullptr;
    if (slot.compare_exchange_strong(none, handler)) return;
  }
}

void unregister_debug_module(DebugSignalHandler handler) {
  for (auto& slot : debug_modules) {
    DebugSignalHandler h = handler;
    slot.compare_exchange_strong(h, nullptr);
  }
}

void set_running_kernel(const char* kernel) {
  static std::once_flag once;
  if (kernel) std::call_once(once, install);
  running.store(kernel, std::memory_order_relaxed);
}

}  // namespace metalgpu::cpu
