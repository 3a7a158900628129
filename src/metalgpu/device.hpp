// Devices that metalgpu can run kernels on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "metalgpu/export.hpp"

namespace metalgpu {

struct DeviceInfo {
  std::string name;
  std::string backend;  // "metal", "cuda" or "cpu"
  int index = 0;
  std::uint64_t memory = 0;  // bytes
  std::uint32_t max_threads_per_threadgroup = 1024;
  std::uint32_t simd_width = 32;
  std::uint64_t max_threadgroup_memory = 32768;  // bytes
};

// Every usable device of every backend compiled in, in the default order (metal > cuda > cpu).
METALGPU_API std::vector<DeviceInfo> devices();

// Backends compiled in but unusable here, each with the reason ("cuda: libcuda.so.1 not found").
METALGPU_API std::vector<std::string> unavailable_backends();

// The backend Interface() picks: $METALGPU_BACKEND, else the first of metal > cuda > cpu.
METALGPU_API std::string default_backend();

}  // namespace metalgpu
