#include "backends/cuda/cuda_api.hpp"

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include <dlfcn.h>

#include "metalgpu/errors.hpp"

namespace metalgpu::cuda {
namespace {

template <class T> bool bind(void* lib, T& fn, const char* name, std::string* missing) {
  fn = reinterpret_cast<T>(dlsym(lib, name));
  if (!fn && missing->empty()) *missing = name;
  return fn != nullptr;
}

struct Loaded {
  Driver driver{};
  std::string driver_error;
  Nvrtc nvrtc{};
  std::string nvrtc_error;
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
  bind(lib, d.cuInit, "cuInit", &missing);
  bind(lib, d.cuDriverGetVersion, "cuDriverGetVersion", &missing);
  bind(lib, d.cuDeviceGetCount, "cuDeviceGetCount", &missing);
  bind(lib, d.cuDeviceGet, "cuDeviceGet", &missing);
  bind(lib, d.cuDeviceGetName, "cuDeviceGetName", &missing);
  bind(lib, d.cuDeviceTotalMem, "cuDeviceTotalMem_v2", &missing);
  bind(lib, d.cuDeviceGetAttribute, "cuDeviceGetAttribute", &missing);
  bind(lib, d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", &missing);
  bind(lib, d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", &missing);
  bind(lib, d.cuCtxSetCurrent, "cuCtxSetCurrent", &missing);
  bind(lib, d.cuStreamCreate, "cuStreamCreate", &missing);
  bind(lib, d.cuStreamDestroy, "cuStreamDestroy_v2", &missing);
  bind(lib, d.cuStreamSynchronize, "cuStreamSynchronize", &missing);
  bind(lib, d.cuStreamQuery, "cuStreamQuery", &missing);
  bind(lib, d.cuMemAlloc, "cuMemAlloc_v2", &missing);
  bind(lib, d.cuMemFree, "cuMemFree_v2", &missing);
  bind(lib, d.cuMemAllocHost, "cuMemAllocHost_v2", &missing);
  bind(lib, d.cuMemFreeHost, "cuMemFreeHost", &missing);
  bind(lib, d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", &missing);
  bind(lib, d.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", &missing);
  bind(lib, d.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", &missing);
  bind(lib, d.cuMemsetD8Async, "cuMemsetD8Async", &missing);
  bind(lib, d.cuModuleLoadData, "cuModuleLoadData", &missing);
  bind(lib, d.cuModuleUnload, "cuModuleUnload", &missing);
  bind(lib, d.cuModuleGetFunction, "cuModuleGetFunction", &missing);
  bind(lib, d.cuModuleGetGlobal, "cuModuleGetGlobal_v2", &missing);
  bind(lib, d.cuMemcpyDtoH, "cuMemcpyDtoH_v2", &missing);
  bind(lib, d.cuFuncSetAttribute, "cuFuncSetAttribute", &missing);
  bind(lib, d.cuLaunchKernel, "cuLaunchKernel", &missing);
  bind(lib, d.cuEventCreate, "cuEventCreate", &missing);
  bind(lib, d.cuEventDestroy, "cuEventDestroy_v2", &missing);
  bind(lib, d.cuEventRecord, "cuEventRecord", &missing);
  bind(lib, d.cuEventSynchronize, "cuEventSynchronize", &missing);
  bind(lib, d.cuEventQuery, "cuEventQuery", &missing);
  bind(lib, d.cuEventElapsedTime, "cuEventElapsedTime", &missing);
  bind(lib, d.cuGetErrorName, "cuGetErrorName", &missing);
  bind(lib, d.cuGetErrorString, "cuGetErrorString", &missing);
  if (!missing.empty()) {
    l.driver_error = "libcuda.so.1 lacks " + missing + " (driver too old)";
    return;
  }
  if (CUresult r = d.cuInit(0); r != 0) l.driver_error = "cuInit failed (error " + std::to_string(r) + ")";
}

// Where NVRTC may be: $METALGPU_NVRTC (a file), the folders the Python package found the
// NVRTC wheels in ($METALGPU_NVRTC_DIRS), then the loader's own search and CUDA's usual home.
std::vector<std::string> nvrtc_candidates() {
  std::vector<std::string> names = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"};
  std::vector<std::string> out;
  if (const char* f = std::getenv("METALGPU_NVRTC"); f && *f) out.push_back(f);
  std::vector<std::string> dirs;
  if (const char* d = std::getenv("METALGPU_NVRTC_DIRS"); d && *d) {
    std::string s = d;
    for (std::size_t p = 0; p <= s.size();) {
      std::size_t q = s.find(':', p);
      if (q == std::string::npos) q = s.size();
      if (q > p) dirs.push_back(s.substr(p, q - p));
      p = q + 1;
    }
  }
  for (const auto& dir : dirs)
    for (const auto& n : names) out.push_back(dir + "/" + n);
  for (const auto& n : names) out.push_back(n);
  for (const char* dir : {"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"})
    for (const auto& n : names) out.push_back(std::string(dir) + "/" + n);
  return out;
}

void load_nvrtc(Loaded& l) {
  void* lib = nullptr;
  std::string path;
  for (const auto& c : nvrtc_candidates()) {
    // RTLD_GLOBAL is not needed; NVRTC finds its builtins library next to itself.
    if ((lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL))) {
      path = c;
      break;
    }
  }
  if (!lib) {
    l.nvrtc_error = "NVRTC (libnvrtc.so) was not found: install it with `pip install metalgpu[cuda]` "
                    "(the nvidia-cuda-nvrtc wheel) or the CUDA toolkit";
    return;
  }
  Nvrtc& n = l.nvrtc;
  std::string missing;
  bind(lib, n.nvrtcVersion, "nvrtcVersion", &missing);
  bind(lib, n.nvrtcCreateProgram, "nvrtcCreateProgram", &missing);
  bind(lib, n.nvrtcDestroyProgram, "nvrtcDestroyProgram", &missing);
  bind(lib, n.nvrtcCompileProgram, "nvrtcCompileProgram", &missing);
  bind(lib, n.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize", &missing);
  bind(lib, n.nvrtcGetProgramLog, "nvrtcGetProgramLog", &missing);
  bind(lib, n.nvrtcGetCUBINSize, "nvrtcGetCUBINSize", &missing);
  bind(lib, n.nvrtcGetCUBIN, "nvrtcGetCUBIN", &missing);
  bind(lib, n.nvrtcGetErrorString, "nvrtcGetErrorString", &missing);
  if (!missing.empty()) {
    l.nvrtc_error = path + " lacks " + missing;
    return;
  }
  int major = 0, minor = 0;
  n.nvrtcVersion(&major, &minor);
  n.path = path;
  n.version = std::to_string(major) + "." + std::to_string(minor);
}

Loaded& loaded() {
  static Loaded l;
  static std::once_flag once;
  std::call_once(once, [] {
    load_driver(l);
    load_nvrtc(l);
  });
  return l;
}

}  // namespace

const Driver& driver() {
  Loaded& l = loaded();
  if (!l.driver_error.empty()) throw NotAvailable("[cuda] " + l.driver_error);
  return l.driver;
}

const Nvrtc& nvrtc() {
  Loaded& l = loaded();
  if (!l.nvrtc_error.empty()) throw NotAvailable("[cuda] " + l.nvrtc_error);
  return l.nvrtc;
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
  throw std::runtime_error("[cuda] " + c.substr(0, c.find('(')) + " failed: " + name + ": " + text);
}

}  // namespace metalgpu::cuda
