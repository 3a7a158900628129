// The runtime headers (our metal_stdlib), embedded at build time by cmake/embed_runtime.cmake.
#pragma once

namespace metalgpu::runtime {
extern const char* const common_text;  // every target
extern const char* const cpu_text;     // cpu target: execution loops, fibers, entry macros
extern const char* const cuda_text;    // cuda target: thread context from CUDA built-ins
}  // namespace metalgpu::runtime
