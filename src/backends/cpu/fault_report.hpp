// A kernel's own bug - an access outside its buffers - raises SIGSEGV or SIGBUS in the thread
// running it. There is no safe way to go on from there, but the process must not end without
// a word: while a kernel runs, a handler names it on stderr, then lets the signal take its
// usual course (Python's faulthandler, a core dump).
#pragma once

namespace metalgpu::cpu {

// Marks `kernel` as running (nullptr: none) for the fault message; installs the handler the
// first time. The name must outlive the dispatch (descriptor names live in their module).
void set_running_kernel(const char* kernel);

// Debug modules (mg_debug_signal in the runtime) turn a signal in their kernel into a
// KernelFault: the handler offers each registered module the signal first.
using DebugSignalHandler = void (*)(int what, void* address);
void register_debug_module(DebugSignalHandler handler);
void unregister_debug_module(DebugSignalHandler handler);

class RunningKernel {
 public:
  explicit RunningKernel(const char* kernel) { set_running_kernel(kernel); }
  ~RunningKernel() { set_running_kernel(nullptr); }
  RunningKernel(const RunningKernel&) = delete;
  RunningKernel& operator=(const RunningKernel&) = delete;
};

}  // namespace metalgpu::cpu
