#include "backends/cuda/nvrtc_api.hpp"

#include <cstdint>
#include <cstdlib>
#include <mutex>

#include "metalgpu/errors.hpp"

namespace metalgpu::cuda {
namespace {

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

void load_nvrtc(Nvrtc& n, std::string& error) {
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
    error = "NVRTC (libnvrtc.so) was not found: install it with `pip install metalgpu[cuda]` "
            "(the nvidia-cuda-nvrtc wheel) or the CUDA toolkit";
    return;
  }
  std::string missing;
  dl_bind(lib, n.nvrtcVersion, "nvrtcVersion", &missing);
  dl_bind(lib, n.nvrtcCreateProgram, "nvrtcCreateProgram", &missing);
  dl_bind(lib, n.nvrtcDestroyProgram, "nvrtcDestroyProgram", &missing);
  dl_bind(lib, n.nvrtcCompileProgram, "nvrtcCompileProgram", &missing);
  dl_bind(lib, n.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize", &missing);
  dl_bind(lib, n.nvrtcGetProgramLog, "nvrtcGetProgramLog", &missing);
  dl_bind(lib, n.nvrtcGetCUBINSize, "nvrtcGetCUBINSize", &missing);
  dl_bind(lib, n.nvrtcGetCUBIN, "nvrtcGetCUBIN", &missing);
  dl_bind(lib, n.nvrtcGetErrorString, "nvrtcGetErrorString", &missing);
  if (!missing.empty()) {
    error = path + " lacks " + missing;
    return;
  }
  int major = 0, minor = 0;
  n.nvrtcVersion(&major, &minor);
  n.path = path;
  // The file itself, so that the helper process loads this very library: a soname that
  // resolved here (LD_LIBRARY_PATH, or a copy already loaded by another package) may not
  // resolve the same way there.
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(n.nvrtcVersion), &info) && info.dli_fname && info.dli_fname[0] == '/')
    n.file = info.dli_fname;
  else
    n.file = path;
  n.version = std::to_string(major) + "." + std::to_string(minor);
}

}  // namespace

const Nvrtc& nvrtc() {
  static Nvrtc n{};
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] { load_nvrtc(n, error); });
  if (!error.empty()) throw NotAvailable("[cuda] " + error);
  return n;
}

NvrtcOutput nvrtc_run(const Nvrtc& n, const std::string& source, const std::string& name,
                      const std::vector<std::string>& options, bool want_cubin) {
  NvrtcOutput out;
  nvrtcProgram prog = nullptr;
  if (nvrtcResult r = n.nvrtcCreateProgram(&prog, source.c_str(), name.c_str(), 0, nullptr, nullptr); r != 0) {
    out.failed = std::string("nvrtcCreateProgram: ") + n.nvrtcGetErrorString(r);
    return out;
  }
  std::vector<const char*> argv;
  for (const auto& o : options) argv.push_back(o.c_str());
  nvrtcResult r = n.nvrtcCompileProgram(prog, int(argv.size()), argv.data());
  std::size_t log_size = 0;
  n.nvrtcGetProgramLogSize(prog, &log_size);
  out.log.assign(log_size, '\0');
  if (log_size) n.nvrtcGetProgramLog(prog, out.log.data());
  // The log's size counts its terminating NUL.
  while (!out.log.empty() && out.log.back() == '\0') out.log.pop_back();
  if (r != 0) {
    out.failed = std::string("nvrtcCompileProgram: ") + n.nvrtcGetErrorString(r);
  } else if (want_cubin) {
    std::size_t size = 0;
    n.nvrtcGetCUBINSize(prog, &size);
    out.cubin.assign(size, '\0');
    n.nvrtcGetCUBIN(prog, out.cubin.data());
  }
  n.nvrtcDestroyProgram(&prog);
  return out;
}

std::string nvrtc_pack(const std::vector<std::string>& fields) {
  std::string out;
  for (const auto& f : fields) {
    std::uint64_t size = f.size();
    for (int i = 0; i < 8; ++i) out.push_back(char((size >> (8 * i)) & 0xff));
    out += f;
  }
  return out;
}

bool nvrtc_unpack(const std::string& bytes, std::vector<std::string>* fields) {
  fields->clear();
  std::size_t p = 0;
  while (p < bytes.size()) {
    if (bytes.size() - p < 8) return false;
    std::uint64_t size = 0;
    for (int i = 0; i < 8; ++i) size |= std::uint64_t(static_cast<unsigned char>(bytes[p + std::size_t(i)])) << (8 * i);
    p += 8;
    if (size > bytes.size() - p) return false;
    fields->push_back(bytes.substr(p, std::size_t(size)));
    p += std::size_t(size);
  }
  return !fields->empty() && (*fields)[0] == kNvrtcHelperMagic;
}

}  // namespace metalgpu::cuda
