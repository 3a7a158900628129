"""Issue 3, templates and function constants: host_name instantiations (decltype and typedef'd
function types), helper templates, constexpr, static_assert, enable_if_t, is_same_v,
numeric_limits<T>, structs with methods; [[function_constant(n)]] declarations,
is_function_constant_defined, constants set by index and by name, one pipeline per set."""

from __future__ import annotations

import numpy as np
import pytest

import metalgpu as mg
from kernel_helpers import run_arrays

N = 64

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

// ---- helper templates, constexpr, static_assert, traits ----
template <typename T> constexpr T kTwo = T(2);
constexpr int kBlock = 4;
static_assert(kBlock * 2 == 8, "constexpr arithmetic");

template <typename T, int N>
METAL_FUNC T sum_first(const device T* p) {
  T acc = T(0);
  for (int k = 0; k < N; ++k) acc += p[k];
  return acc;
}

template <typename T, metal::enable_if_t<metal::is_floating_point_v<T>, bool> = true>
inline T safe_div(T a, T b) { return b == T(0) ? metal::numeric_limits<T>::max() : a / b; }
template <typename T, metal::enable_if_t<metal::is_integral_v<T>, bool> = true>
inline T safe_div(T a, T b) { return b == T(0) ? metal::numeric_limits<T>::max() : a / b; }

template <typename T> struct Limits {
  static constexpr T lo() { return metal::numeric_limits<T>::lowest(); }
  static constexpr T hi() { return metal::numeric_limits<T>::max(); }
};

template <typename T> struct Accum {
  T value;
  METAL_FUNC void add(T x) thread { value += x; }
  METAL_FUNC T get() const thread { return value; }
  static METAL_FUNC Accum make() { return Accum{T(0)}; }
};

struct Affine {
  float scale;
  float shift;
  float apply(float x) const { return x * scale + shift; }
  Affine inverse() const { return Affine{1.0f / scale, -shift / scale}; }
};

// ---- kernel templates and their instantiations ----
template <typename T, typename U>
[[kernel]] void convert(device const T* in [[buffer(0)]],
                        device U* out [[buffer(1)]],
                        uint gid [[thread_position_in_grid]]) {
  if (metal::is_same_v<T, U>) {
    out[gid] = in[gid];
  } else {
    out[gid] = static_cast<U>(in[gid]) + U(kTwo<U>) - U(2);
  }
}

template [[host_name("convert_float_int")]] [[kernel]] decltype(convert<float, int>) convert<float, int>;
template [[host_name("convert_int_float")]] [[kernel]] decltype(convert<int, float>) convert<int, float>;
template [[host_name("convert_float_float")]] [[kernel]] decltype(convert<float, float>) convert<float, float>;

template <typename T>
kernel void block_sum(device const T* in [[buffer(0)]],
                      device T* out [[buffer(1)]],
                      uint gid [[thread_position_in_grid]]) {
  out[gid] = sum_first<T, kBlock>(in + gid * kBlock);
}
typedef decltype(block_sum<float>) block_sum_f_t;
using block_sum_i_t = decltype(block_sum<int>);
template [[host_name("block_sum_f32")]] kernel block_sum_f_t block_sum<float>;
template [[host_name("block_sum_i32")]] kernel block_sum_i_t block_sum<int>;

template <typename T>
[[kernel]] void divide_safe(device const T* a [[buffer(0)]],
                            device const T* b [[buffer(1)]],
                            device T* c [[buffer(2)]],
                            uint gid [[thread_position_in_grid]]) {
  c[gid] = safe_div(a[gid], b[gid]);
}
template [[host_name("divide_f32")]] [[kernel]] void divide_safe<float>(
    device const float*, device const float*, device float*, uint);
template [[host_name("divide_i32")]] [[kernel]] void divide_safe<int>(
    device const int*, device const int*, device int*, uint);

template <typename T>
kernel void limits(device T* out [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  out[0] = Limits<T>::lo();
  out[1] = Limits<T>::hi();
  out[2] = metal::numeric_limits<T>::min();
  out[3] = T(metal::numeric_limits<T>::is_signed);
}
template [[host_name("limits_int")]] kernel decltype(limits<int>) limits<int>;
template [[host_name("limits_uint")]] kernel decltype(limits<uint>) limits<uint>;
template [[host_name("limits_short")]] kernel decltype(limits<short>) limits<short>;
template [[host_name("limits_float")]] kernel decltype(limits<float>) limits<float>;

template <typename T, int K>
kernel void scaled(device T* x [[buffer(0)]], constant T& bias [[buffer(1)]],
                   uint gid [[thread_position_in_grid]]) {
  static_assert(K > 0, "K must be positive");
  x[gid] = x[gid] * T(K) + bias;
}
template [[host_name("scaled3")]] kernel decltype(scaled<float, 3>) scaled<float, 3>;
template [[host_name("scaled5")]] kernel decltype(scaled<float, 5>) scaled<float, 5>;

kernel void methods(device const float* in [[buffer(0)]],
                    device float* out [[buffer(1)]],
                    constant Affine& tf [[buffer(2)]],
                    uint gid [[thread_position_in_grid]]) {
  Accum<float> acc = Accum<float>::make();
  acc.add(tf.apply(in[gid]));
  acc.add(tf.inverse().apply(in[gid]));
  out[gid] = acc.get();
}
"""


@pytest.fixture(scope="module")
def lib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(SOURCE)
    return iface


def _run(iface, name, arrays, grid=N):
    return run_arrays(iface, name, arrays, grid)


def test_instantiations_are_listed(lib):
    names = set(lib.function_names())
    assert {"convert_float_int", "convert_int_float", "convert_float_float", "block_sum_f32",
            "block_sum_i32", "divide_f32", "divide_i32", "limits_int", "limits_float",
            "scaled3", "scaled5", "methods"} <= names
    assert "convert" not in names and "block_sum" not in names


def test_decltype_instantiation(lib):
    x = np.linspace(-5.5, 5.5, N).astype(np.float32)
    _, y = _run(lib, "convert_float_int", [x, np.zeros(N, np.int32)])
    np.testing.assert_array_equal(y, x.astype(np.int32))
    i = np.arange(-N // 2, N // 2, dtype=np.int32)
    _, f = _run(lib, "convert_int_float", [i, np.zeros(N, np.float32)])
    np.testing.assert_array_equal(f, i.astype(np.float32))
    _, g = _run(lib, "convert_float_float", [x, np.zeros(N, np.float32)])
    np.testing.assert_array_equal(g, x)


def test_typedef_function_type_instantiation(lib):
    x = np.arange(N * 4, dtype=np.float32)
    _, y = _run(lib, "block_sum_f32", [x, np.zeros(N, np.float32)])
    np.testing.assert_array_equal(y, x.reshape(N, 4).sum(1))
    xi = np.arange(N * 4, dtype=np.int32) - 100
    _, yi = _run(lib, "block_sum_i32", [xi, np.zeros(N, np.int32)])
    np.testing.assert_array_equal(yi, xi.reshape(N, 4).sum(1))


def test_explicit_signature_instantiation_and_enable_if(lib):
    a = np.arange(N, dtype=np.float32)
    b = np.where(np.arange(N) % 3 == 0, 0, 2).astype(np.float32)
    _, _, c = _run(lib, "divide_f32", [a, b, np.zeros(N, np.float32)])
    ref = np.where(b == 0, np.finfo(np.float32).max, a / np.where(b == 0, 1, b))
    np.testing.assert_allclose(c, ref.astype(np.float32), rtol=1e-6)  # fast-math division
    ai, bi = a.astype(np.int32), b.astype(np.int32)
    _, _, ci = _run(lib, "divide_i32", [ai, bi, np.zeros(N, np.int32)])
    np.testing.assert_array_equal(ci, np.where(bi == 0, 2**31 - 1, ai // np.where(bi == 0, 1, bi)))


@pytest.mark.parametrize("name,dtype", [("limits_int", np.int32), ("limits_uint", np.uint32),
                                        ("limits_short", np.int16), ("limits_float", np.float32)])
def test_numeric_limits(lib, name, dtype):
    (out,) = _run(lib, name, [np.zeros(4, dtype)], grid=1)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        ref = [info.min, info.max, info.min, 1 if info.min < 0 else 0]
    else:
        info = np.finfo(dtype)
        ref = [-info.max, info.max, info.tiny, 1]
    np.testing.assert_array_equal(out, np.array(ref, dtype))


@pytest.mark.parametrize("name,k", [("scaled3", 3), ("scaled5", 5)])
def test_non_type_template_parameter_and_scalar_argument(lib, name, k):
    x = np.arange(N, dtype=np.float32)
    (out, _) = _run(lib, name, [x, 0.25])
    np.testing.assert_allclose(out, x * k + 0.25)


def test_struct_methods_and_struct_argument(lib):
    x = np.linspace(-1, 1, N).astype(np.float32)
    tf = np.array([(2.0, 0.5)], dtype=[("scale", np.float32), ("shift", np.float32)])
    _, y, _ = _run(lib, "methods", [x, np.zeros(N, np.float32), tf[0]])
    np.testing.assert_allclose(y, (2 * x + 0.5) + (x / 2 - 0.25), rtol=1e-6, atol=1e-6)


def test_static_assert_failure_is_a_compile_error(iface):
    src = ("#include <metal_stdlib>\nusing namespace metal;\n"
           "template <int K> kernel void k(device float* x [[buffer(0)]]) {\n"
           "  static_assert(K > 0, \"K must be positive\");\n  x[0] = K;\n}\n"
           "template [[host_name(\"k0\")]] kernel decltype(k<0>) k<0>;\n")
    with pytest.raises(mg.CompileError, match="K must be positive"):
        iface.load_shader_from_string(src)  # compiled when loaded or when first selected
        iface.set_function("k0")


# ---------------------------------------------------------------- function constants
FC_SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

constant float alpha [[function_constant(0)]];
constant int mode [[function_constant(1)]];
constant bool use_bias [[function_constant(2)]];
constant uint block [[function_constant(3)]];
constant bool has_alpha = is_function_constant_defined(alpha);
constant bool no_bias = !use_bias;
constant half hscale [[function_constant(4)]];

kernel void fc_apply(device float* x [[buffer(0)]],
                     device const float* bias [[buffer(1)]],
                     uint gid [[thread_position_in_grid]]) {
  float v = x[gid];
  if (has_alpha) v *= alpha;
  switch (mode) {
    case 1: v = v + 1.0f; break;
    case 2: v = v * v; break;
    default: break;
  }
  if (use_bias) v += bias[gid];
  if (is_function_constant_defined(block)) v += float(gid / block);
  if (is_function_constant_defined(hscale)) v *= float(hscale);
  x[gid] = v;
}

kernel void fc_loop(device int* out [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  int acc = 0;
  for (uint k = 0; k < (is_function_constant_defined(block) ? block : 1u); ++k) acc += int(k);
  out[gid] = acc + (no_bias ? 1000 : 0);
}
"""


@pytest.fixture(scope="module")
def fclib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(FC_SOURCE)
    return iface


def _fc(iface, name, constants, x, bias=None):
    iface.set_function(name, constants=constants)
    bufs = [iface.array_to_buffer(x)]
    if bias is not None:
        bufs.append(iface.array_to_buffer(bias))
    iface.run_function(len(x), bufs)
    return bufs[0].contents.copy()


def test_function_constants_by_index_and_name(fclib):
    x = np.arange(N, dtype=np.float32)
    bias = np.full(N, 0.5, np.float32)
    a = _fc(fclib, "fc_apply", {0: 2.0, 1: 1, 2: True}, x, bias)
    np.testing.assert_allclose(a, x * 2 + 1 + 0.5)
    b = _fc(fclib, "fc_apply", {"alpha": 3.0, "mode": 2, "use_bias": False, "block": 8}, x, bias)
    np.testing.assert_allclose(b, (x * 3) ** 2 + np.arange(N) // 8)
    c = _fc(fclib, "fc_apply", {"mode": 0, "use_bias": False, "hscale": 0.5}, x, bias)
    np.testing.assert_allclose(c, x * 0.5)
    # back to the first set: its own pipeline, same result as before
    a2 = _fc(fclib, "fc_apply", {0: 2.0, 1: 1, 2: True}, x, bias)
    np.testing.assert_array_equal(a2, a)


def test_function_constants_in_loops_and_derived(fclib):
    zeros = np.zeros(N, np.int32)
    out = _fc(fclib, "fc_loop", {"block": 5, "use_bias": True}, zeros)
    np.testing.assert_array_equal(out, np.full(N, 10))
    out = _fc(fclib, "fc_loop", {"use_bias": False}, zeros)
    np.testing.assert_array_equal(out, np.full(N, 1000))


def test_two_constant_sets_two_pipelines_same_interface(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(FC_SOURCE)
    x = np.ones(N, np.float32)
    bias = np.zeros(N, np.float32)
    r1 = _fc(iface, "fc_apply", {"alpha": 2.0, "mode": 0, "use_bias": False}, x, bias)
    r2 = _fc(iface, "fc_apply", {"alpha": 5.0, "mode": 0, "use_bias": False}, x, bias)
    np.testing.assert_array_equal(r1, np.full(N, 2.0))
    np.testing.assert_array_equal(r2, np.full(N, 5.0))


def test_unknown_function_constant_is_rejected(fclib):
    with pytest.raises((ValueError, KeyError)):
        fclib.set_function("fc_apply", constants={"nonexistent": 1})


def test_translate_with_constants_shows_values(backend):
    code = mg.translate(FC_SOURCE, "fc_apply", target="cpu", constants={"alpha": 2.0, "mode": 1})
    assert "alpha" in code and "mode" in code


# ---------------------------------------------------------------- instantiation forms
INST_SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

template <typename V>
kernel void scale_v(device V* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] *= 2; }
// nested template arguments closing with '>>'
template [[host_name("scale_f4")]] kernel decltype(scale_v<vec<float, 4>>) scale_v<vec<float, 4>>;
template [[host_name("scale_f2")]] [[kernel]] void scale_v<vec<float,2>>(device vec<float,2>*, uint);

template <typename T, typename Arr>
kernel void arr_k(device T* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  Arr a;
  a[0] = x[i];
  x[i] = a[0] + T(a.size());
}
template [[host_name("arr_k")]] kernel decltype(arr_k<float, array<float, 3>>) arr_k<float, array<float, 3>>;

// PyTorch MPS style: explicit signatures with attributes, registered by a macro
template <typename T>
kernel void neg_op(constant T* a [[buffer(0)]], device T* out [[buffer(1)]],
                   uint id [[thread_position_in_grid]]) {
  out[id] = -a[id];
}
#define REGISTER_NEG(DTYPE)                                              \
  template [[host_name("neg_" #DTYPE)]] kernel void neg_op<DTYPE>(       \
      constant DTYPE * a [[buffer(0)]], device DTYPE * out [[buffer(1)]], \
      uint id [[thread_position_in_grid]]);
REGISTER_NEG(float);
REGISTER_NEG(half);
REGISTER_NEG(int);

// helper templates in namespaces, struct templates with default arguments
namespace detail {
template <typename T> METAL_FUNC T softplus(T x) { return log(1 + exp(x)); }
}
template <typename T, int BM = 4>
struct Tile {
  T data[BM];
  METAL_FUNC void load(const device T* src) { for (int i = 0; i < BM; i++) data[i] = src[i]; }
  METAL_FUNC T sum() const { T s = 0; for (int i = 0; i < BM; i++) s += data[i]; return s; }
};
template <typename T>
[[kernel]] void tile_sum(const device T* in [[buffer(0)]], device T* out [[buffer(1)]],
                         const constant int& n [[buffer(2)]], uint gid [[thread_position_in_grid]]) {
  Tile<T> t;
  t.load(in + gid * 4);
  out[gid] = detail::softplus(t.sum()) * T(n > 0);
}
template [[host_name("tile_sum_float")]] [[kernel]] decltype(tile_sum<float>) tile_sum<float>;
"""


@pytest.fixture(scope="module")
def instlib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(INST_SOURCE)
    return iface


@pytest.mark.parametrize("name,per", [("scale_f4", 4), ("scale_f2", 2)])
def test_nested_template_argument_instantiation(instlib, name, per):
    x = instlib.array_to_buffer(np.arange(N, dtype=np.float32))
    instlib.set_function(name)
    instlib.run_function(N // per, [x])
    np.testing.assert_array_equal(x.contents, np.arange(N) * 2)


def test_metal_array_as_template_argument(instlib):
    x = instlib.array_to_buffer(np.arange(N, dtype=np.float32))
    instlib.set_function("arr_k")
    instlib.run_function(N, [x])
    np.testing.assert_array_equal(x.contents, np.arange(N) + 3)


@pytest.mark.parametrize("dtype", ["float", "half", "int"])
def test_pytorch_style_registration(instlib, dtype):
    a = instlib.array_to_buffer(np.arange(N).astype({"float": np.float32, "half": np.float16,
                                                      "int": np.int32}[dtype]))
    out = instlib.create_buffer(N, dtype)
    instlib.set_function(f"neg_{dtype}")
    instlib.run_function(N, [a, out])
    np.testing.assert_array_equal(out.contents, -a.contents)


def test_namespaced_helpers_and_struct_templates(instlib):
    x = np.random.default_rng(5).uniform(-1, 1, 4 * N).astype(np.float32)
    out = instlib.create_buffer(N, "float")
    instlib.set_function("tile_sum_float")
    instlib.run_function(N, [instlib.array_to_buffer(x), out, 1])
    s = x.reshape(N, 4).sum(1).astype(np.float64)
    np.testing.assert_allclose(out.contents, np.log1p(np.exp(s)), rtol=1e-5)


COND_SOURCE = r"""
#include <metal_stdlib>
using namespace metal;
constant bool use_bias [[function_constant(10)]];
constant bool do_axpby = use_bias;   // derived, MLX steel-gemm style

kernel void gemv_like(device const float* x [[buffer(0)]],
                      device float* y [[buffer(1)]],
                      device const float* bias [[buffer(2), function_constant(use_bias)]],
                      constant float& alpha [[buffer(3), function_constant(do_axpby)]],
                      uint i [[thread_position_in_grid]]) {
  float v = 2.0f * x[i];
  if (use_bias) v = alpha * v + bias[i];
  y[i] = v;
}
"""


def test_parameters_conditional_on_function_constants(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(COND_SOURCE)
    x = iface.array_to_buffer(np.arange(N, dtype=np.float32))
    y = iface.create_buffer(N, "float")
    iface.set_function("gemv_like", constants={"use_bias": True})
    iface.run_function(N, [x, y, iface.array_to_buffer(np.ones(N, np.float32)), 0.5])
    np.testing.assert_array_equal(y.contents, np.arange(N) + 1)
    iface.set_function("gemv_like", constants={"use_bias": False})
    iface.run_function(N, [x, y])  # the conditional slots stay empty
    np.testing.assert_array_equal(y.contents, np.arange(N) * 2)


COND_VALUE_SOURCE = r"""
#include <metal_stdlib>
using namespace metal;
struct Scale { float a, b; };
constant bool scaled [[function_constant(0)]];

kernel void maybe_scaled(device float* y [[buffer(0)]],
                         constant Scale& s [[buffer(1), function_constant(scaled)]],
                         constant float& shift [[buffer(2), function_constant(scaled)]],
                         uint i [[thread_position_in_grid]]) {
  if (scaled) y[i] = s.a * y[i] + s.b + shift;
  else y[i] += 1.0f;
}
"""


def test_unbound_conditional_references_bind_to_an_object(backend):
    # A reference parameter a function constant turns off is left unbound; the entry point
    # still binds it, which must not be to *nullptr (UBSan in the sanitizer stage of .ci/run).
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(COND_VALUE_SOURCE)
    y = iface.array_to_buffer(np.arange(N, dtype=np.float32))
    iface.set_function("maybe_scaled", constants={"scaled": False})
    iface.run_function(N, [y])
    np.testing.assert_array_equal(y.contents, np.arange(N) + 1)
    iface.set_function("maybe_scaled", constants={"scaled": True})
    iface.run_function(N, [y, np.array([2.0, 3.0], np.float32).tobytes(), np.float32(0.5)])
    np.testing.assert_array_equal(y.contents, (np.arange(N) + 1) * 2 + 3.5)



# ---------------------------------------------------------------- address-space overloads
ASPACE_SOURCE = r"""
#include <metal_stdlib>
using namespace metal;
template <typename T>
static constexpr constant bool can_convert_to_complex64 =
    !is_same_v<T, struct complex64_t> && is_convertible_v<T, float>;
struct complex64_t {
  float real;
  float imag;
  constexpr complex64_t(float real, float imag) : real(real), imag(imag) {};
  constexpr complex64_t() : real(0), imag(0) {};
  constexpr complex64_t() threadgroup : real(0), imag(0) {};
  template <typename T, typename = typename enable_if<can_convert_to_complex64<T>>::type>
  constexpr complex64_t(T x) thread : real(x), imag(0) {}
  template <typename T, typename = typename enable_if<can_convert_to_complex64<T>>::type>
  constexpr complex64_t(T x) threadgroup : real(x), imag(0) {}
  template <typename T, typename = typename enable_if<can_convert_to_complex64<T>>::type>
  constexpr complex64_t(T x) device : real(x), imag(0) {}
  template <typename T, typename = typename enable_if<can_convert_to_complex64<T>>::type>
  constexpr complex64_t(T x) constant : real(x), imag(0) {}
  float norm() const thread { return real * real + imag * imag; }
  float norm() const device { return real * real + imag * imag; }
};
constexpr complex64_t operator*(complex64_t a, complex64_t b) {
  return {a.real * b.real - a.imag * b.imag, a.real * b.imag + a.imag * b.real};
}
kernel void cm(device complex64_t* a [[buffer(0)]], device float* n [[buffer(1)]], uint i [[thread_position_in_grid]]) {
  complex64_t s = 2.0f;
  a[i] = a[i] * s;
  n[i] = a[i].norm();
}
"""


def test_member_overloads_on_address_space(backend):
    # MLX's complex64_t: the same constructor/method for thread, threadgroup, device, constant
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(ASPACE_SOURCE)
    a = np.arange(2 * N, dtype=np.float32)
    buf, norm = iface.array_to_buffer(a), iface.create_buffer(N, "float")
    iface.set_function("cm")
    iface.run_function(N, [buf, norm])
    c = a.view(np.complex64) * 2
    np.testing.assert_array_equal(buf.contents.view(np.complex64), c)
    np.testing.assert_allclose(norm.contents, np.abs(c) ** 2, rtol=1e-6)


# `T(x)` with T a template's type parameter reads as Metal does whatever half is on the host:
# under GCC 13+ half is _Float16 with C++23's rules, where a class's conversion to float does
# not go on to _Float16 (MLX's `T(fp8_e8m0)` in fp_quantized.h). The cpu translation writes
# such casts through metal::mg_functional_cast, and only those: a declaration `T (c);`, a value
# `T()` and a construction `T(a, b)` stay as written.
CASTS = """#include <metal_stdlib>
using namespace metal;
struct code8 {
  uchar bits;
  operator float() const { return float(bits) * 0.5f; }
  operator bfloat() const { return bfloat(float(bits) * 0.5f); }
};
template <typename T> T decode(uchar s) { return T(*(thread code8*)(&s)); }
template <typename T> T twice(T a) { T (c); c = T(a + a); return c + T(); }
kernel void casts(device half* h [[buffer(0)]], device float* f [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) {
  h[i] = twice<half>(decode<half>(uchar(i)));
  f[i] = decode<float>(uchar(i));
}
"""


def test_casts_to_a_template_type_parameter_read_as_metal_does():
    code = mg.translate(CASTS, "casts", target="cpu")
    assert "return ::metal::mg_functional_cast<T>(*(" in code.replace(" *", "*").replace("( ", "(")
    assert "T (c);" in code and "c = ::metal::mg_functional_cast<T>(a + a)" in code and "T()" in code
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string(CASTS)
    iface.set_function("casts")
    h, f = iface.create_buffer(8, "half"), iface.create_buffer(8, "float")
    iface.run_function(8, [h, f])
    np.testing.assert_array_equal(f.contents, np.arange(8) * 0.5)
    np.testing.assert_array_equal(h.contents, np.arange(8, dtype=np.float16))
