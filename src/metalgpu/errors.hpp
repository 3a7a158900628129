// Error types of the metalgpu C++ API.
//
// Python sees them as: CompileError -> metalgpu.CompileError, std::invalid_argument ->
// ValueError, TypeMismatch -> TypeError, std::bad_alloc -> MemoryError, std::runtime_error ->
// RuntimeError. Messages start with "[where]" so a user can tell which layer failed.
#pragma once

#include <new>
#include <stdexcept>
#include <string>

#include "metalgpu/export.hpp"

namespace metalgpu {

// A shader that does not preprocess, translate or compile. `file`/`line` point into the
// user's .metal source (line 0 when unknown); `log` keeps the compiler's own text.
class METALGPU_API CompileError : public std::runtime_error {
 public:
  CompileError(const std::string& message, std::string file = {}, int line = 0,
               std::string log = {}, std::string function = {}, std::string source = {})
      : std::runtime_error(message),
        file_(std::move(file)),
        line_(line),
        log_(std::move(log)),
        function_(std::move(function)),
        source_(std::move(source)) {}

  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }
  const std::string& log() const noexcept { return log_; }
  const std::string& function() const noexcept { return function_; }
  const std::string& source() const noexcept { return source_; }

  void set_function(std::string f) { function_ = std::move(f); }
  void set_source(std::string s) { source_ = std::move(s); }

 private:
  std::string file_;
  int line_;
  std::string log_;
  std::string function_;
  std::string source_;
};

// Memory that cannot be had: a buffer or texture larger than the device's memory, or an
// allocation the backend refused. A std::bad_alloc (Python: MemoryError) whose message names
// the size.
class METALGPU_API OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// An argument of the wrong kind (a Buffer where a value is expected, ...): TypeError.
class METALGPU_API TypeMismatch : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A backend or feature that is not available on this machine or build.
class METALGPU_API NotAvailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A kernel's own bug found by debug mode (an out-of-bounds access, a threadgroup-memory race,
// a barrier not every thread reaches): metalgpu.KernelFault, a RuntimeError. The message names
// the kernel, the .metal file:line, what was accessed and the thread.
class METALGPU_API KernelFault : public std::runtime_error {
 public:
  KernelFault(const std::string& message, std::string kernel, int line, const unsigned (&position)[3])
      : std::runtime_error(message), kernel_(std::move(kernel)), line_(line) {
    for (int k = 0; k < 3; ++k) position_[k] = position[k];
  }
  const std::string& kernel() const noexcept { return kernel_; }
  int line() const noexcept { return line_; }
  const unsigned* thread_position() const noexcept { return position_; }

 private:
  std::string kernel_;
  int line_;
  unsigned position_[3] = {};
};

// Use of a Buffer after release() or after its Interface was destroyed: ValueError.
class METALGPU_API ReleasedError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace metalgpu
