#include "backends/cuda/cuda_api.hpp"

#include <cstdlib>
#include <mutex>
#include <new>

#include <dlfcn.h>

#include "metalgpu/errors.hpp"

namespace metalgpu::cuda {
namespace {

struct Loaded {
  Driver driver{};
  std::string driver_error;
};

void load_driver(Loaded& l) {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) lib = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    l.driver_error = "the NVIDIA driver library libcuda.so.1 was not found (no NVIDIA driver on this machine)";
    return;
  }
  Driver& d = l.driver;
  std::string missing;
  dl_bind(lib, d.cuInit, "cuInit", &missing);
  dl_bind(lib, d.cuDriverGetVersion, "cuDriverGetVersion", &missing);
  dl_bind(lib, d.cuDeviceGetCount, "cuDeviceGetCount", &missing);
  dl_bind(lib, d.cuDeviceGet, "cuDeviceGet", &missing);
  dl_bind(lib, d.cuDeviceGetName, "cuDeviceGetName", &missing);
  dl_bind(lib, d.cuDeviceTotalMem, "cuDeviceTotalMem_v2", &missing);
  dl_bind(lib, d.cuDeviceGetAttribute, "cuDeviceGetAttribute", &missing);
  dl_bind(lib, d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", &missing);
  dl_bind(lib, d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", &missing);
  dl_bind(lib, d.cuCtxSetCurrent, "cuCtxSetCurrent", &missing);
  dl_bind(lib, d.cuStreamCreate, "cuStreamCreate", &missing);
  dl_bind(lib, d.cuStreamDestroy, "cuStreamDestroy_v2", &missing);
  dl_bind(lib, d.cuStreamSynchronize, "cuStreamSynchronize", &missing);
  dl_bind(lib, d.cuStreamQuery, "cuStreamQuery", &missing);
  dl_bind(lib, d.cuMemAlloc, "cuMemAlloc_v2", &missing);
  dl_bind(lib, d.cuMemFree, "cuMemFree_v2", &missing);
  dl_bind(lib, d.cuMemAllocHost, "cuMemAllocHost_v2", &missing);
  dl_bind(lib, d.cuMemFreeHost, "cuMemFreeHost", &missing);
  dl_bind(lib, d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", &missing);
  dl_bind(lib, d.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", &missing);
  dl_bind(lib, d.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", &missing);
  dl_bind(lib, d.cuMemsetD8Async, "cuMemsetD8Async", &missing);
  dl_bind(lib, d.cuModuleLoadData, "cuModuleLoadData", &missing);
  dl_bind(lib, d.cuModuleUnload, "cuModuleUnload", &missing);
  dl_bind(lib, d.cuModuleGetFunction, "cuModuleGetFunction", &missing);
  dl_bind(lib, d.cuModuleGetGlobal, "cuModuleGetGlobal_v2", &missing);
  dl_bind(lib, d.cuMemcpyDtoH, "cuMemcpyDtoH_v2", &missing);
  dl_bind(lib, d.cuFuncSetAttribute, "cuFuncSetAttribute", &missing);
  dl_bind(lib, d.cuFuncGetAttribute, "cuFuncGetAttribute", &missing);
  dl_bind(lib, d.cuLaunchKernel, "cuLaunchKernel", &missing);
  dl_bind(lib, d.cuEventCreate, "cuEventCreate", &missing);
  dl_bind(lib, d.cuEventDestroy, "cuEventDestroy_v2", &missing);
  dl_bind(lib, d.cuEventRecord, "cuEventRecord", &missing);
  dl_bind(lib, d.cuEventSynchronize, "cuEventSynchronize", &missing);
  dl_bind(lib, d.cuEventQuery, "cuEventQuery", &missing);
  dl_bind(lib, d.cuEventElapsedTime, "cuEventElapsedTime", &missing);
  dl_bind(lib, d.cuGetErrorName, "cuGetErrorName", &missing);
  dl_bind(lib, d.cuGetErrorString, "cuGetErrorString", &missing);
  if (!missing.empty()) {
    l.driver_error = "libcuda.so.1 lacks " + missing + " (driver too old)";
    return;
  }
  if (CUresult r = d.cuInit(0); r != 0) l.driver_error = "cuInit failed (error " + std::to_string(r) + ")";
}

Loaded& loaded() {
  static Loaded l;
  static std::once_flag once;
  std::call_once(once, [] {
    load_driver(l);
  });
  return l;
}

}  // namespace

const Driver& driver() {
  Loaded& l = loaded();
  if (!l.driver_error.empty()) throw NotAvailable("[cuda] " + l.driver_error);
  return l.driver;
}

void check(CUresult r, const char* call) {
  if (r == 0) return;
  const Driver& d = loaded().driver;
  const char* name = "?";
  const char* text = "";
  if (d.cuGetErrorName) d.cuGetErrorName(r, &name);
  if (d.cuGetErrorString) d.cuGetErrorString(r, &text);
  if (r == 2) throw std::bad_alloc();  // CUDA_ERROR_OUT_OF_MEMORY
  std::string c = call;
  // A kernel's bad access ends the CUDA context; say what Metal code does that and how to find it.
  std::string hint;
  if (r == 716)  // CUDA_ERROR_MISALIGNED_ADDRESS
    hint = " (a kernel loaded or stored a value at an address not aligned to its type: on the cuda backend "
           "vectors are aligned to their size, as Metal's are in memory, but Apple GPUs also accept a vector "
           "aligned only to its element - METALGPU_CUDA_ELEMENT_ALIGNED_VECTORS=1 does too, at some cost in "
           "speed. METALGPU_DEBUG=1 names the access; this process's CUDA context is no longer usable)";
  else if (r == 700)  // CUDA_ERROR_ILLEGAL_ADDRESS
    hint = " (a kernel accessed memory outside its buffers: METALGPU_DEBUG=1 names the access; this process's "
           "CUDA context is no longer usable)";
  throw std::runtime_error("[cuda] " + c.substr(0, c.find('(')) + " failed: " + name + ": " + text + hint);
}

}  // namespace metalgpu::cuda
