// Compiling translated kernels to CUBIN with NVRTC. Needs no GPU: CI uses it to check that
// every test kernel translates to valid CUDA.
#pragma once

#include <string>

namespace metalgpu::cuda {

// The options every kernel is compiled with (part of the cache key).
std::string nvrtc_options(int sm);

// CUBIN for compute capability `sm` (80 for sm_80). Throws CompileError mapped to the .metal
// file and line, with NVRTC's log kept.
std::string compile_cubin(const std::string& source, int sm, const std::string& name);

// Front-end checks only (--fdevice-syntax-only; a full compile where NVRTC lacks it).
void check_source(const std::string& source, int sm, const std::string& name);

}  // namespace metalgpu::cuda
