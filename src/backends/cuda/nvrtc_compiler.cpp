#include "backends/cuda/nvrtc_compiler.hpp"

#include <sstream>
#include <vector>

#include "backends/cuda/cuda_api.hpp"
#include "core/diagnostics.hpp"
#include "metalgpu/errors.hpp"

namespace metalgpu::cuda {
namespace {

std::vector<std::string> option_list(int sm) {
  // -default-device: user helper functions carry no __device__; Metal's fast math by default.
  return {"--gpu-architecture=sm_" + std::to_string(sm), "-std=c++17", "--use_fast_math",
          "-default-device", "-w"};
}

CompileError make_error(const std::string& log) {
  Diagnostic d = first_error(log);
  if (!d.found) return CompileError("NVRTC failed:\n" + log.substr(0, 2000), "", 0, log);
  return CompileError(d.file + ":" + std::to_string(d.line) + ": error: " + d.text + " (NVRTC)", d.file, d.line, log);
}

}  // namespace

std::string nvrtc_options(int sm) {
  std::string s;
  for (const auto& o : option_list(sm)) s += o + " ";
  return s;
}

namespace {

// Compiles with `extra` options; returns the CUBIN unless `want_cubin` is false.
std::string run_nvrtc(const std::string& source, int sm, const std::string& name,
                      const std::vector<std::string>& extra, bool want_cubin) {
  const Nvrtc& n = nvrtc();
  nvrtcProgram prog = nullptr;
  if (nvrtcResult r = n.nvrtcCreateProgram(&prog, source.c_str(), name.c_str(), 0, nullptr, nullptr); r != 0)
    throw std::runtime_error(std::string("[cuda] nvrtcCreateProgram failed: ") + n.nvrtcGetErrorString(r));
  std::vector<std::string> opts = option_list(sm);
  opts.insert(opts.end(), extra.begin(), extra.end());
  std::vector<const char*> argv;
  for (const auto& o : opts) argv.push_back(o.c_str());
  nvrtcResult r = n.nvrtcCompileProgram(prog, int(argv.size()), argv.data());
  std::size_t log_size = 0;
  n.nvrtcGetProgramLogSize(prog, &log_size);
  std::string log(log_size, '\0');
  if (log_size) n.nvrtcGetProgramLog(prog, log.data());
  if (r != 0) {
    n.nvrtcDestroyProgram(&prog);
    throw make_error(log);
  }
  if (!want_cubin) {
    n.nvrtcDestroyProgram(&prog);
    return {};
  }
  std::size_t size = 0;
  n.nvrtcGetCUBINSize(prog, &size);
  std::string cubin(size, '\0');
  n.nvrtcGetCUBIN(prog, cubin.data());
  n.nvrtcDestroyProgram(&prog);
  return cubin;
}

}  // namespace

std::string compile_cubin(const std::string& source, int sm, const std::string& name) {
  return run_nvrtc(source, sm, name, {}, true);
}

void check_source(const std::string& source, int sm, const std::string& name) {
  try {
    run_nvrtc(source, sm, name, {"--fdevice-syntax-only"}, false);
  } catch (const CompileError& e) {
    // An NVRTC older than the option says so in its log: check by compiling instead.
    if (e.log().find("fdevice-syntax-only") == std::string::npos) throw;
    run_nvrtc(source, sm, name, {}, false);
  }
}

}  // namespace metalgpu::cuda
