// What compiling in the NVRTC helper process (metalgpu-nvrtc) costs against compiling inside
// the calling process (METALGPU_NVRTC_HELPER=inprocess): per compilation, a trivial kernel and
// a real translated one (a .cu file given as argv[1], e.g. one METALGPU_DUMP saved), as CPU time
// of this process and its children (robust on a shared machine) and as best-of-N wall time.
//
//   g++ -std=c++20 -O2 -Isrc bench/nvrtc_overhead.cpp build/<dir>/libmetalgpu.a -ldl -lpthread -o /tmp/nvrtc_overhead
//   METALGPU_NVRTC_DIRS=<folder of libnvrtc.so> /tmp/nvrtc_overhead kernel.cu
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include "backends/cuda/nvrtc_compiler.hpp"
#include "backends/cuda/nvrtc_api.hpp"
using namespace metalgpu::cuda;
#include <sys/resource.h>
static double cpu() {
  rusage a{}, b{};
  getrusage(RUSAGE_SELF, &a); getrusage(RUSAGE_CHILDREN, &b);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return s(a.ru_utime) + s(a.ru_stime) + s(b.ru_utime) + s(b.ru_stime);
}
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
int main(int argc, char** argv) {
  if (argc < 2) { std::fprintf(stderr, "usage: %s kernel.cu\n", argv[0]); return 2; }
  std::ifstream f(argv[1]); std::stringstream ss; ss << f.rdbuf(); std::string real = ss.str();
  std::string trivial = "extern \"C\" __global__ void k(float* x) { x[threadIdx.x] *= 2.0f; }\n";
  double t0 = now(); nvrtc(); std::printf("nvrtc dlopen in parent: %.1f ms\n", (now() - t0) * 1e3);
  for (const char* mode : {"inprocess", "", "inprocess", ""}) {
    if (*mode) setenv("METALGPU_NVRTC_HELPER", mode, 1); else unsetenv("METALGPU_NVRTC_HELPER");
    compile_cubin(trivial, 80, "t.cu");  // warm
    auto best = [](int n, auto fn) { double b = 1e9; for (int i = 0; i < n; ++i) { double a = now(); fn(); b = std::min(b, now() - a); } return b * 1e3; };
    auto cpu_per = [](int n, auto fn) { double a = cpu(); for (int i = 0; i < n; ++i) fn(); return (cpu() - a) / n * 1e3; };
    double ct = cpu_per(30, [&] { compile_cubin(trivial, 80, "t.cu"); });
    double cr = cpu_per(3, [&] { compile_cubin(real, 80, "r.cu"); });
    std::printf("%-10s CPU time per compile: trivial %.1f ms, real %.1f ms\n", *mode ? mode : "helper", ct, cr);
    double tt = best(30, [&] { compile_cubin(trivial, 80, "t.cu"); });
    double tr = best(5, [&] { compile_cubin(real, 80, "r.cu"); });
    double tc = best(5, [&] { check_source(real, 80, "r.cu"); });
    std::printf("%-10s trivial kernel %.1f ms | real kernel cubin %.1f ms | syntax-only check %.1f ms\n", *mode ? mode : "helper", tt, tr, tc);
  }
}
