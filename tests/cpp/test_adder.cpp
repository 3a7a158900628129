// The adder kernel through the C++ API alone, on the CPU backend.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "metalgpu/metalgpu.hpp"

namespace {

const char* kShader = R"(
#include <metal_stdlib>
using namespace metal;
kernel void adder(device int* arr1 [[buffer(0)]], device int* arr2 [[buffer(1)]],
                  device int* arr3 [[buffer(2)]], uint id [[thread_position_in_grid]]) {
    arr3[id] = arr2[id] + arr1[id];
}
kernel void scale(device float* x [[buffer(0)]], constant float& k [[buffer(1)]],
                  uint id [[thread_position_in_grid]]) {
    x[id] *= k;
}
)";

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  using namespace metalgpu;
  Interface iface("cpu");
  iface.load_shader_from_string(kShader);
  iface.set_function("adder");

  const std::size_t n = 100000;
  Buffer a = iface.create_buffer(n, *DType::parse("int"));
  Buffer b = iface.create_buffer(n, *DType::parse("int"));
  Buffer c = iface.create_buffer(n, *DType::parse("int"));
  auto* pa = static_cast<int*>(a.contents());
  auto* pb = static_cast<int*>(b.contents());
  for (std::size_t i = 0; i < n; ++i) {
    pa[i] = int(i);
    pb[i] = int(3 * i);
  }
  std::vector<Binding> args = {Binding::of(a), Binding::of(b), Binding::of(c)};
  iface.run_function(Size3{unsigned(n), 1, 1}, args);
  const auto* pc = static_cast<const int*>(c.contents());
  bool ok = true;
  for (std::size_t i = 0; i < n; ++i) ok &= pc[i] == int(4 * i);
  check(ok, "adder result");

  // A value bound by its declared type (float), and a kernel chosen per dispatch.
  Buffer x = iface.create_buffer(8, *DType::parse("float"));
  for (int i = 0; i < 8; ++i) static_cast<float*>(x.contents())[i] = float(i);
  std::vector<Binding> sargs = {Binding::of(x), Binding::of_float(2.5)};
  DispatchOptions opts;
  opts.function = "scale";
  iface.run_function(Size3{8, 1, 1}, sargs, opts);
  check(static_cast<float*>(x.contents())[3] == 7.5f, "scale by value");

  // Errors are standard exceptions.
  bool threw = false;
  try {
    iface.set_function("missing");
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "unknown function raises invalid_argument");
  threw = false;
  try {
    iface.load_shader_from_string("kernel void broken( {");
  } catch (const CompileError& e) {
    threw = e.line() == 1;
  }
  check(threw, "syntax error raises CompileError with the line");

  // Byte ranges, and raw copies between a buffer and a texture (the Python transfers' core).
  Buffer bytes = iface.create_buffer(8, *DType::parse("uchar"));
  const unsigned char part[3] = {7, 8, 9};
  bytes.upload(part, 3, 5);
  unsigned char back[2] = {};
  bytes.readback(back, 2, 6);
  check(back[0] == 8 && back[1] == 9, "upload and readback of a byte range");
  threw = false;
  try {
    bytes.upload(part, 3, 6);  // one byte past the end
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "a range past the end raises invalid_argument");
  TextureDesc desc;
  desc.width = 2;
  desc.format = "rgba8uint";
  Texture tex = iface.create_texture(desc);
  bytes.copy_to(tex);
  unsigned char texels[8] = {};
  tex.readback(texels, sizeof texels);
  check(texels[5] == 7 && texels[7] == 9, "buffer to texture copy");
  Buffer wide = iface.create_buffer(2, *DType::parse("uint"));
  tex.copy_to(wide);
  unsigned words[2] = {};
  wide.readback(words, sizeof words);
  check(words[1] == (7u << 8 | 8u << 16 | 9u << 24), "texture to buffer copy");

  a.release();
  threw = false;
  try {
    a.contents();
  } catch (const ReleasedError&) {
    threw = true;
  }
  check(threw, "released buffer raises");
  std::printf("%s\n", failures ? "C++ API test FAILED" : "C++ API test passed");
  return failures ? 1 : 0;
}
