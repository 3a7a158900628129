// Drives the host C++ compiler ($CXX, else c++ / g++ / clang++) for the CPU backend.
#pragma once

#include <string>

namespace metalgpu::cpu {

struct HostCompiler {
  std::string path;     // the compiler executable
  std::string version;  // its --version line, part of the cache key
  // Kernels compile to an object with compile_flags (fast math, as Metal), then link into a
  // shared library with link_flags, which never hold fast-math flags: linking with them makes
  // g++ and clang add crtfastmath.o, whose constructor turns on flush-to-zero in the process
  // that loads the module.
  std::string compile_flags;
  std::string link_flags;
  std::string flags;  // all of the above, part of the cache key
};

// Finds the compiler once per process; throws NotAvailable if there is none.
const HostCompiler& host_compiler();

// Compiles `source` (a whole translation unit) into the shared library `output`. On failure
// throws CompileError carrying the compiler's output, its first error mapped to the user's
// .metal file and line (the source carries #line directives).
void compile_shared_library(const std::string& source, const std::string& output);

// Parses and checks `source` without generating code (-fsyntax-only); throws CompileError.
void check_syntax(const std::string& source, const std::string& scratch_path);

}  // namespace metalgpu::cpu
