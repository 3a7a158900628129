// The embedding check: a one-line kernel through the installed C++ package, on the cpu backend.
#include <metalgpu/metalgpu.hpp>

#include <cstdio>
#include <vector>

int main() {
  try {
    metalgpu::Interface iface("cpu");
    iface.load_shader_from_string(
        "kernel void axpy(device float* y [[buffer(0)]], device const float* x [[buffer(1)]], "
        "constant float& a [[buffer(2)]], uint i [[thread_position_in_grid]]) { y[i] += a * x[i]; }");
    iface.set_function("axpy");
    const unsigned n = 1000;
    metalgpu::Buffer y = iface.create_buffer(n, *metalgpu::DType::parse("float"));
    metalgpu::Buffer x = iface.create_buffer(n, *metalgpu::DType::parse("float"));
    auto* py = static_cast<float*>(y.contents());
    auto* px = static_cast<float*>(x.contents());
    for (unsigned i = 0; i < n; ++i) py[i] = float(i), px[i] = 1.0f;
    std::vector<metalgpu::Binding> args = {metalgpu::Binding::of(y), metalgpu::Binding::of(x),
                                           metalgpu::Binding::of_float(2.0)};
    iface.run_function(metalgpu::Size3{n, 1, 1}, args);  // std::span from the vector (C++20)
    for (unsigned i = 0; i < n; ++i) {
      if (py[i] != float(i) + 2.0f) {
        std::fprintf(stderr, "embed: y[%u] = %g, expected %g\n", i, double(py[i]), double(i) + 2.0);
        return 1;
      }
    }
    // Errors are the documented exception types.
    bool threw = false;
    try {
      iface.load_shader_from_string("kernel void broken( {");
    } catch (const metalgpu::CompileError&) {
      threw = true;
    }
    if (!threw) {
      std::fprintf(stderr, "embed: a broken shader did not raise CompileError\n");
      return 1;
    }
    std::printf("embed: metalgpu %s, %s backend: axpy over %u floats correct\n", metalgpu::version(),
                iface.backend().c_str(), n);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embed: %s\n", e.what());
    return 1;
  }
}
