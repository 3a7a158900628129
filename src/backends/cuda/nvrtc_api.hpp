// NVRTC, loaded at run time with dlopen, and one compilation with it.
//
// This part is shared by the core and by the helper executable metalgpu-nvrtc (built from
// nvrtc_helper_main.cpp), which runs every compilation in a separate process: NVRTC has
// crashed inside nvrtcCompileProgram on real kernels, and a compiler crash must not take the
// user's process down with it. It therefore depends on nothing but libc/libdl and the
// header-only metalgpu/errors.hpp.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <dlfcn.h>

namespace metalgpu::cuda {

// Binds `name` from the dlopen'ed `lib` into `fn`; the first symbol missing goes to *missing.
template <class T> bool dl_bind(void* lib, T& fn, const char* name, std::string* missing) {
  fn = reinterpret_cast<T>(dlsym(lib, name));
  if (!fn && missing->empty()) *missing = name;
  return fn != nullptr;
}

using nvrtcResult = int;
using nvrtcProgram = struct _nvrtcProgram*;

struct Nvrtc {
  nvrtcResult (*nvrtcVersion)(int*, int*);
  nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram*, const char*, const char*, int, const char* const*,
                                    const char* const*);
  nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram*);
  nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram, int, const char* const*);
  nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram, std::size_t*);
  nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram, char*);
  nvrtcResult (*nvrtcGetCUBINSize)(nvrtcProgram, std::size_t*);
  nvrtcResult (*nvrtcGetCUBIN)(nvrtcProgram, char*);
  const char* (*nvrtcGetErrorString)(nvrtcResult);
  std::string path;     // the name it was loaded by ("libnvrtc.so.12", or a path)
  std::string file;     // the file the loader found for it (dladdr), a path whenever known
  std::string version;  // "12.9"
};

// Loaded once per process; throws NotAvailable naming what is missing. Looks at
// $METALGPU_NVRTC (a file), the folders in $METALGPU_NVRTC_DIRS (the Python package sets it to
// the nvidia-cuda-nvrtc wheels' folders), the loader's search, then /usr/local/cuda.
const Nvrtc& nvrtc();

// One NVRTC compilation, in this process. `failed` is empty on success, else the call that
// failed and NVRTC's error string ("nvrtcCompileProgram: NVRTC_ERROR_COMPILATION").
struct NvrtcOutput {
  std::string failed;
  std::string log;
  std::string cubin;  // only when asked for and compiled
};
NvrtcOutput nvrtc_run(const Nvrtc& n, const std::string& source, const std::string& name,
                      const std::vector<std::string>& options, bool want_cubin);

// The helper's wire format, both ways: a list of byte strings, each an 8-byte little-endian
// length and the bytes. The first string is kNvrtcHelperMagic, so a stale or foreign helper
// is recognised instead of misread.
//   request: magic, name, source, "1" for a CUBIN (else "0"), options...
//   reply:   magic, status, text, log, cubin  (status: kNvrtcReply*)
inline constexpr const char* kNvrtcHelperMagic = "metalgpu-nvrtc/1";
enum NvrtcReplyStatus : int { kNvrtcReplyOk = 0, kNvrtcReplyFailed = 1, kNvrtcReplyNotAvailable = 2 };
std::string nvrtc_pack(const std::vector<std::string>& fields);
bool nvrtc_unpack(const std::string& bytes, std::vector<std::string>* fields);

}  // namespace metalgpu::cuda
