// The CUDA backend (see cuda_backend.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/backend.hpp"

namespace metalgpu::cuda {

std::vector<DeviceInfo> probe(std::string* why);
std::shared_ptr<Backend> create(int index);

// The whole CUDA translation unit for a shader: runtime, then the translated code
// (`debug`: with debug mode's bounds checks, mg_cuda_debug.h).
std::string cuda_source(const msl::Translation& tr, const Constants& constants, const std::string* only = nullptr,
                        bool debug = false);

// Translates for CUDA and compiles with NVRTC for compute capability `sm`, without a GPU;
// throws CompileError. Lets CI check every kernel's CUDA translation on machines with no GPU.
// `syntax_only`: NVRTC's front-end checks only (--fdevice-syntax-only), what check_library
// runs over a whole large library: one call checks every entry point. `debug`: the
// translation debug mode compiles.
void check_translation(const msl::Translation& tr, const Constants& constants, int sm,
                       const std::string* only = nullptr, bool syntax_only = false, bool debug = false);

}  // namespace metalgpu::cuda
