"""Language features real libraries use (ggml, MLX), each in a small kernel of our own:
constant pointers stay const, address-space overloads, function-constant indices written as
expressions, deduced instantiations, class-scope specializations, GNU range designators,
partial vector initialisation, Apple's __metal_* builtins, bfloat's conversions."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mg
from kernel_helpers import run_arrays

PRELUDE = "#include <metal_stdlib>\nusing namespace metal;\n"


def test_constant_pointer_reaches_a_helper_taking_constant(iface):
    iface.load_shader_from_string(PRELUDE + """
constant float table[4] = {1.0f, 2.0f, 3.0f, 4.0f};
float pick(constant float* t, uint i) { return t[i % 4]; }
float pick(device const float* t, uint i) { return t[i % 4]; }
kernel void k(device float* out [[buffer(0)]], device const float* d [[buffer(1)]],
              uint i [[thread_position_in_grid]]) { out[i] = pick(table, i) + pick(d, i); }
""")
    d = np.array([10, 20, 30, 40], np.float32)
    out = run_arrays(iface, "k", [np.zeros(8, np.float32), d], 8)[0]
    # (Overloads that differ only in address space become one function: the first. Real
    # libraries give them the same body.)
    np.testing.assert_array_equal(out, np.tile([1, 2, 3, 4], 2) + np.tile(d, 2))


def test_writing_through_a_constant_pointer_is_a_compile_error(iface):
    with pytest.raises(mg.CompileError):
        iface.load_shader_from_string(PRELUDE + """
void bad(constant float* p) { p[0] = 1.0f; }
kernel void k(device float* out [[buffer(0)]]) { out[0] = 0; }
""")
        iface.set_function("k")


def test_address_space_overloads_of_operators_and_specializations(iface):
    iface.load_shader_from_string(PRELUDE + """
struct acc { float v; };
void operator+=(thread acc& a, float x) { a.v += x; }
void operator+=(device acc& a, float x) { a.v += x; }
template <typename T> struct elem {};
template <typename T> struct elem<thread T*> { using type = T; };
template <typename T> struct elem<device T*> { using type = T; };
kernel void k(device acc* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  acc a{1.0f};
  a += 2.0f;
  out[i] += a.v + float(sizeof(typename elem<device float*>::type));
}
""")
    out = run_arrays(iface, "k", [np.ones(4, np.float32)], 4)[0]
    np.testing.assert_array_equal(out, [8, 8, 8, 8])


def test_function_constant_indices_written_as_expressions(iface):
    iface.load_shader_from_string(PRELUDE + """
#define FC_BASE 1300
constant short op   [[function_constant(FC_BASE + 0)]];
constant float gain [[function_constant(FC_BASE + 1)]];
kernel void k(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  out[i] = op == 1 ? gain * float(i) : -1.0f;
}
""")
    iface.set_function("k", constants={1300: 1, 1301: 2.5})
    out = iface.create_buffer(4, "float")
    iface.run_function(4, [out])
    np.testing.assert_array_equal(out.contents, [0, 2.5, 5, 7.5])
    with pytest.raises(ValueError, match="1302"):
        iface.set_function("k", constants={1302: 1})


def test_instantiation_with_deduced_template_arguments(iface):
    iface.load_shader_from_string(PRELUDE + """
template <int N> struct params { int scale[N]; };
template <int N>
[[kernel]] void scaled(device float* out [[buffer(0)]], constant params<N>* p [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) { out[i] = float(p->scale[N - 1] * int(i)); }
template [[host_name("scaled_2")]] [[kernel]] void scaled(device float* out [[buffer(0)]],
    constant params<2>* p [[buffer(1)]], uint i [[thread_position_in_grid]]);
""")
    out = run_arrays(iface, "scaled_2", [np.zeros(4, np.float32), np.array([5, 3], np.int32)], 4)[0]
    np.testing.assert_array_equal(out, [0, 3, 6, 9])


def test_class_scope_specialization_range_designator_and_partial_vectors(iface):
    iface.load_shader_from_string(PRELUDE + """
struct op {
  template <typename T> T operator()(T x) { return x + T(1); }
  template <> float operator()(float x) { return x * 10.0f; }
};
kernel void k(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  float acc[4] = { [0 ... 3] = 0.5f };
  uint4 v = {1u, 2u, 3u};
  out[i] = op()(float(i)) + float(op()(int(i))) + acc[i % 4] + float(v.z + v.w);
}
""")
    out = run_arrays(iface, "k", [np.zeros(4, np.float32)], 4)[0]
    i = np.arange(4)
    np.testing.assert_array_equal(out, i * 10 + (i + 1) + 0.5 + 3)


def test_metal_builtins_and_bfloat_conversions(iface):
    iface.load_shader_from_string(PRELUDE + """
kernel void k(device float* out [[buffer(0)]], device const bfloat* b [[buffer(1)]],
              uint i [[thread_position_in_grid]]) {
  bfloat x = b[i];
  float f = i % 2 ? x : 0.25f;            // bfloat and float: float
  uint u = x;                             // bfloat converts to integers implicitly
  f += x;                                 // float += bfloat
  out[i] = __metal_fmax(f, 0.0f, __METAL_FAST_MATH__) + float(u) + metal::precise::sqrt(4.0f);
}
""")
    vals = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    b = iface.create_buffer(4, "bfloat")
    b.contents.view(np.uint16)[:] = (vals.view(np.uint32) >> 16).astype(np.uint16)
    out = iface.create_buffer(4, "float")
    iface.set_function("k")
    iface.run_function(4, [out, b])
    out = out.contents
    f = np.where(np.arange(4) % 2 == 1, vals, 0.25) + vals
    np.testing.assert_array_equal(out, np.maximum(f, 0) + vals + 2)


def test_conditional_with_an_integer_literal_takes_the_other_operands_type(iface):
    iface.load_shader_from_string(PRELUDE + """
kernel void k(device float* out [[buffer(0)]], device const bfloat* b [[buffer(1)]],
              device const int* p [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  bfloat x = i % 2 ? b[i] : 0;                  // bfloat, not int: 2.5 stays 2.5
  device const int* q = i < 2 ? p : 0;          // a null pointer
  int n = i > 0 ? 7 : 0;                        // two literals: int
  out[i] = float(x) + (q ? float(q[i]) : -1.0f) + float(n) + (i == 3 ? 0.5f : 0);
}
""")
    b = iface.create_buffer(4, "bfloat")
    b.contents.view(np.uint16)[:] = (np.full(4, 2.5, np.float32).view(np.uint32) >> 16).astype(np.uint16)
    p = iface.array_to_buffer(np.array([10, 20, 30, 40], np.int32))
    out = iface.create_buffer(4, "float")
    iface.set_function("k")
    iface.run_function(4, [out, b, p])
    np.testing.assert_array_equal(out.contents, [0 + 10 + 0, 2.5 + 20 + 7, 0 - 1 + 7, 2.5 - 1 + 7 + 0.5])


@pytest.mark.parametrize("source,message", [
    ("kernel void k(device float* o [[buffer(0)]], uint id [[thread_postion_in_grid]]) { o[id] = 1; }",
     r"unknown attribute \[\[thread_postion_in_grid\]\].*did you mean \[\[thread_position_in_grid\]\]"),
    ("kernel float k(device float* o [[buffer(0)]]) { return 1; }", "must return void"),
    ("kernel void k(float* o [[buffer(0)]]) { o[0] = 1; }", "pointer without an address space"),
    ("kernel void k(device float* o [[buffer(0)]]) { double d = 1; o[0] = d; }", "'double' is not a Metal type"),
])
def test_code_apples_compiler_rejects_is_rejected_at_its_line(iface, source, message):
    # Issue 11: a kernel that passes here and fails on a Mac is a bug for our users.
    with pytest.raises(mg.CompileError, match=message) as info:
        iface.load_shader_from_string("\n" + source)
    assert info.value.lineno == 2


def test_double_is_ours_to_allow_with_a_pragma(iface):
    iface.load_shader_from_string("#pragma metalgpu double\n" + PRELUDE + """
kernel void k(device double* o [[buffer(0)]], uint i [[thread_position_in_grid]]) { o[i] = 1.5 * i; }
""")
    out = iface.create_buffer(4, "double")
    iface.run_function(4, [out], function_name="k")
    np.testing.assert_array_equal(out.contents, [0, 1.5, 3, 4.5])


def test_unroll_pragma_counts_are_macro_expanded():
    # ggml: `#pragma unroll (MIN(DK8/2, 4*NSG))`; NVRTC needs the macro expanded, as clang does.
    src = PRELUDE + """
#define MIN(x, y) ((x) < (y) ? (x) : (y))
kernel void u(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  #pragma unroll (MIN(8, 4))
  for (int j = 0; j < 8; ++j) o[i] += 1.0f;
}"""
    out = mg.translate(src, "u", target="cuda")
    assert "MIN" not in out.split("#pragma unroll", 1)[1].splitlines()[0]

def test_threadgroup_memory_sized_zero_for_a_parameter_the_kernel_leaves_alone(iface):
    # ggml binds 0 bytes (setThreadgroupMemoryLength(0)) to the [[threadgroup(0)]] parameter
    # of kernels whose code path does not use it; leaving the slot out is still an error.
    iface.load_shader_from_string(PRELUDE + """
constant bool use_shared [[function_constant(0)]];
kernel void k(device float* out [[buffer(0)]], threadgroup float* shmem [[threadgroup(0)]],
              uint i [[thread_position_in_grid]], uint t [[thread_position_in_threadgroup]]) {
  if (use_shared) { shmem[t] = float(i); threadgroup_barrier(mem_flags::mem_threadgroup); out[i] = shmem[t]; }
  else { out[i] = float(i) * 2.0f; }
}
""")
    iface.set_function("k", constants={0: False})
    out = iface.create_buffer(64, "float")
    iface.run_function(64, [out], threadgroup=32, threadgroup_memory={0: 0})
    np.testing.assert_array_equal(out.contents, np.arange(64) * 2)
    with pytest.raises(ValueError, match="needs threadgroup memory"):
        iface.run_function(64, [out], threadgroup=32)


def test_array_declared_kernel_parameter_is_a_pointer(iface):
    # MLX: `constant const int64_t a_strides[2]` - an array declarator declares a pointer, as in
    # C++; the host binds as many bytes as it likes (set_vector_bytes).
    iface.load_shader_from_string(PRELUDE + """
kernel void k(device float* out [[buffer(0)]], constant const int64_t strides[2] [[buffer(1)]],
              uint2 i [[thread_position_in_grid]]) {
  out[i.y * 4 + i.x] = float(i.x * strides[1] + i.y * strides[0]);
}
""")
    iface.set_function("k")
    out = iface.create_buffer(12, "float")
    iface.run_function((4, 3), [out, np.array([10, 1], np.int64).tobytes()])
    np.testing.assert_array_equal(out.contents.reshape(3, 4), np.arange(4)[None, :] + 10 * np.arange(3)[:, None])


def test_a_half_argument_takes_a_float_overload_as_metal_converts_it(iface, monkeypatch):
    # MLX: log1p(float) beside log1p(complex64_t), whose constructor template takes anything
    # convertible to float. Metal's half -> float is a standard conversion, so float wins; where
    # half is a class (CUDA), the translation adds a forwarding half overload to say the same.
    iface.load_shader_from_string(PRELUDE + """
struct cplx {
  template <typename T> cplx(T x) : re(float(x)), im(0) {}
  float re, im;
};
float bump(float x) { return x + 1.0f; }
cplx bump(cplx c) { return cplx(c.re - 1.0f); }
kernel void k(device float* out [[buffer(0)]], device const half* h [[buffer(1)]],
              uint i [[thread_position_in_grid]]) { out[i] = bump(h[i]); }
""")
    h = iface.array_to_buffer(np.array([1, 2, 3, 4], np.float16))
    out = iface.create_buffer(4, "float")
    iface.run_function(4, [out, h], function_name="k")
    np.testing.assert_array_equal(out.contents, [2, 3, 4, 5])
    assert "MG_HALF_FORWARD(bump)" in mg.translate(PRELUDE + """
float bump(float x) { return x + 1.0f; }
kernel void k(device float* o [[buffer(0)]]) { o[0] = bump(o[0]); }""", "k", target="cuda")
