// Drives the host C++ compiler ($CXX, else c++ / g++ / clang++) for the CPU backend.
#pragma once

#include <string>

namespace metalgpu::cpu {

struct HostCompiler {
  std::string path;     // the compiler executable
  std::string version;  // its --version line, part of the cache key
  std::string flags;    // the flags used, part of the cache key
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
