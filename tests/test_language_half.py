"""Issue 3, half and bfloat: storage, arithmetic, conversions, "half"/"bfloat" buffers through
numpy (float16; bfloat16 as uint16 bits), half literals; and errors for unsupported
constructs (CompileError naming the construct and the line)."""

from __future__ import annotations

import numpy as np
import pytest

import metalgpu as mg

N = 64

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

kernel void half_arith(device const half* a [[buffer(0)]], device const half* b [[buffer(1)]],
                       device half* out [[buffer(2)]], device float* f [[buffer(3)]],
                       uint i [[thread_position_in_grid]]) {
  half x = a[i], y = b[i];
  half r = x * y + 1.0h;
  r -= 0.5h;
  r = max(r, -2.0h);
  out[i] = r;
  f[i] = float(x) + static_cast<float>(y) * 2.0f + (x > y ? 100.0f : 0.0f);
}

kernel void half_vectors(device const half4* a [[buffer(0)]], device half4* out [[buffer(1)]],
                         device float4* f [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  half4 v = a[i];
  half2 lo = v.xy;
  half4 w = half4(lo, v.zw * 2.0h) + half(1);
  w.xy = w.yx;
  out[i] = w;
  f[i] = float4(v) * 0.5f;
}

kernel void float_to_half(device const float* in [[buffer(0)]], device half* out [[buffer(1)]],
                          uint i [[thread_position_in_grid]]) {
  out[i] = half(in[i]);
}

kernel void half_accumulate(device const half* in [[buffer(0)]], device float* out [[buffer(1)]],
                            uint i [[thread_position_in_grid]]) {
  float acc = 0.0f;
  for (uint k = 0; k < 8; ++k) acc += float(in[8 * i + k]);
  out[i] = acc;
}

kernel void bf16_ops(device const bfloat* a [[buffer(0)]], device const bfloat* b [[buffer(1)]],
                     device bfloat* out [[buffer(2)]], device float* f [[buffer(3)]],
                     uint i [[thread_position_in_grid]]) {
  bfloat x = a[i], y = b[i];
  out[i] = bfloat(float(x) * float(y));
  f[i] = float(x + y);
}

kernel void bf16_vec(device const bfloat4* a [[buffer(0)]], device float4* out [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) {
  bfloat4 v = a[i];
  out[i] = float4(v) + float4(1.0f);
}

kernel void float_to_bf16(device const float* in [[buffer(0)]], device bfloat* out [[buffer(1)]],
                          uint i [[thread_position_in_grid]]) {
  out[i] = static_cast<bfloat>(in[i]);
}

template <typename T>
kernel void generic_axpy(device const T* x [[buffer(0)]], device T* y [[buffer(1)]],
                         constant float& alpha [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  y[i] = static_cast<T>(alpha * static_cast<float>(x[i]) + static_cast<float>(y[i]));
}
template [[host_name("axpy_float16")]] kernel decltype(generic_axpy<half>) generic_axpy<half>;
template [[host_name("axpy_bfloat16")]] kernel decltype(generic_axpy<bfloat>) generic_axpy<bfloat>;
template [[host_name("axpy_float32")]] kernel decltype(generic_axpy<float>) generic_axpy<float>;

kernel void half_limits(device half* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  out[0] = HALF_MAX;
  out[1] = numeric_limits<half>::lowest();
  out[2] = numeric_limits<half>::epsilon();
  out[3] = half(INFINITY);
  out[4] = 65504.0h;
  out[5] = 1e-3h;
  out[6] = half(3);
  out[7] = M_PI_H;
}
"""


@pytest.fixture(scope="module")
def lib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(SOURCE)
    return iface


def _run(iface, name, bufs, grid=N):
    iface.set_function(name)
    iface.run_function(grid, bufs)
    return [b.contents.copy() if isinstance(b, mg.Buffer) else None for b in bufs]


def to_bf16(x):
    """float32 -> bfloat16 bits, round to nearest even."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def from_bf16(u):
    return (np.asarray(u, np.uint16).astype(np.uint32) << 16).view(np.float32)


def test_half_buffer_round_trip(iface):
    buf = iface.create_buffer(N, "half")
    assert buf.contents.dtype == np.float16
    assert buf.nbytes == 2 * N
    x = np.linspace(-100, 100, N).astype(np.float16)
    buf.contents[:] = x
    np.testing.assert_array_equal(buf.contents, x)
    buf2 = iface.array_to_buffer(x)
    assert buf2.dtype == np.float16 or str(buf2.dtype) in ("half", "float16")


def test_bfloat_buffer_is_uint16_bits(iface):
    buf = iface.create_buffer(N, "bfloat")
    assert buf.nbytes == 2 * N
    assert buf.contents.dtype.itemsize == 2


def test_half_arithmetic(lib):
    rng = np.random.default_rng(0)
    a = rng.uniform(-2, 2, N).astype(np.float16)
    b = rng.uniform(-2, 2, N).astype(np.float16)
    bufs = [lib.array_to_buffer(a), lib.array_to_buffer(b), lib.create_buffer(N, "half"),
            lib.create_buffer(N, "float")]
    _, _, out, f = _run(lib, "half_arith", bufs)
    ref = np.maximum((a * b + np.float16(1)) - np.float16(0.5), np.float16(-2))
    np.testing.assert_allclose(out.astype(np.float32), ref.astype(np.float32), atol=2e-3, rtol=2e-3)
    np.testing.assert_allclose(f, a.astype(np.float32) + 2 * b.astype(np.float32) + 100 * (a > b))


def test_half_vectors(lib):
    a = np.linspace(-4, 4, 4 * N).astype(np.float16).reshape(N, 4)
    bufs = [lib.array_to_buffer(a), lib.create_buffer(4 * N, "half"), lib.create_buffer(4 * N, "float")]
    _, out, f = _run(lib, "half_vectors", bufs)
    w = np.concatenate([a[:, :2], a[:, 2:] * np.float16(2)], 1) + np.float16(1)
    w[:, [0, 1]] = w[:, [1, 0]]
    np.testing.assert_array_equal(out.reshape(N, 4), w)
    np.testing.assert_array_equal(f.reshape(N, 4), a.astype(np.float32) * 0.5)


def test_float_to_half_rounding(lib):
    x = np.concatenate([np.linspace(-70000, 70000, N // 2),
                        np.array([1 + 2**-11, 1 + 3 * 2**-11, 2**-25, 2**-24, 6e-8, -0.0, np.inf,
                                  -np.inf, 65519, 65520]),
                        np.random.default_rng(1).standard_normal(N // 2 - 10)]).astype(np.float32)
    bufs = [lib.array_to_buffer(x), lib.create_buffer(N, "half")]
    _, out = _run(lib, "float_to_half", bufs)
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16)
    np.testing.assert_array_equal(out, ref)
    nan = lib.array_to_buffer(np.full(N, np.nan, np.float32))
    _, o2 = _run(lib, "float_to_half", [nan, lib.create_buffer(N, "half")])
    assert np.isnan(o2.astype(np.float32)).all()


def test_half_accumulate(lib):
    x = np.random.default_rng(2).uniform(-1, 1, 8 * N).astype(np.float16)
    _, out = _run(lib, "half_accumulate", [lib.array_to_buffer(x), lib.create_buffer(N, "float")])
    np.testing.assert_allclose(out, x.astype(np.float32).reshape(N, 8).sum(1), rtol=1e-6, atol=1e-6)


def test_bfloat_ops(lib):
    rng = np.random.default_rng(3)
    a = from_bf16(to_bf16(rng.uniform(-4, 4, N)))
    b = from_bf16(to_bf16(rng.uniform(-4, 4, N)))
    ba, bb = lib.create_buffer(N, "bfloat"), lib.create_buffer(N, "bfloat")
    ba.contents.view(np.uint16)[:] = to_bf16(a)
    bb.contents.view(np.uint16)[:] = to_bf16(b)
    out, f = lib.create_buffer(N, "bfloat"), lib.create_buffer(N, "float")
    _run(lib, "bf16_ops", [ba, bb, out, f])
    np.testing.assert_array_equal(out.contents.view(np.uint16), to_bf16(a * b))
    np.testing.assert_array_equal(f.contents, from_bf16(to_bf16(a + b)))


def test_bfloat_vectors_and_conversion(lib):
    x = np.random.default_rng(4).standard_normal(4 * N).astype(np.float32)
    src = lib.create_buffer(4 * N, "bfloat")
    src.contents.view(np.uint16)[:] = to_bf16(x)
    _, out = _run(lib, "bf16_vec", [src, lib.create_buffer(4 * N, "float")])
    np.testing.assert_array_equal(out, from_bf16(to_bf16(x)) + 1)
    conv = lib.create_buffer(N, "bfloat")
    _run(lib, "float_to_bf16", [lib.array_to_buffer(x[:N]), conv])
    np.testing.assert_array_equal(conv.contents.view(np.uint16), to_bf16(x[:N]))


@pytest.mark.parametrize("name,dtype", [("axpy_float16", "half"), ("axpy_bfloat16", "bfloat"),
                                        ("axpy_float32", "float")])
def test_generic_kernel_over_float_types(lib, name, dtype):
    xs = np.arange(N, dtype=np.float32) / 4
    ys = np.ones(N, np.float32)
    x, y = lib.create_buffer(N, dtype), lib.create_buffer(N, dtype)
    if dtype == "bfloat":
        x.contents.view(np.uint16)[:] = to_bf16(xs)
        y.contents.view(np.uint16)[:] = to_bf16(ys)
    else:
        x.contents[:] = xs
        y.contents[:] = ys
    _run(lib, name, [x, y, 2.0])
    got = from_bf16(y.contents.view(np.uint16)) if dtype == "bfloat" else y.contents.astype(np.float32)
    np.testing.assert_array_equal(got, 2 * xs + 1)  # exact in every one of these types


def test_half_literals_and_limits(lib):
    (out,) = _run(lib, "half_limits", [lib.create_buffer(8, "half")], grid=1)
    ref = np.array([65504, -65504, 2**-10, np.inf, 65504, 1e-3, 3, np.pi], np.float16)
    np.testing.assert_array_equal(out, ref)


# ---------------------------------------------------------------- errors
def _expect_error(iface, src, match, line):
    with pytest.raises(mg.CompileError, match=match) as ei:
        iface.load_shader_from_string(src)
        for name in iface.function_names():
            iface.set_function(name)
    assert ei.value.lineno == line, (ei.value.lineno, str(ei.value))
    assert f":{line}" in str(ei.value)
    return ei.value


def test_air_intrinsic_asm_is_rejected(iface):
    src = ("#include <metal_stdlib>\nusing namespace metal;\n\n"
           'float fast_exp2(float x) __asm("air.fast_exp2.f32");\n'
           "kernel void k(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n"
           "  x[i] = fast_exp2(x[i]);\n}\n")
    err = _expect_error(iface, src, "__asm", 4)
    assert "air" in str(err).lower() or "intrinsic" in str(err).lower()


def test_asm_in_macro_reports_use_line(iface):
    src = ("#include <metal_stdlib>\n"
           '#define AIR(name) __asm("air." #name)\n'
           "\n\n"
           "void simd_thing(float x) AIR(simd_thing);\n"
           "kernel void k(device float* x [[buffer(0)]]) { x[0] = 1; }\n")
    _expect_error(iface, src, "asm", 5)


def test_texture_parameter_is_rejected_with_line(iface):
    src = ("#include <metal_stdlib>\nusing namespace metal;\n"
           "kernel void k(texture2d<float, access::read> t [[texture(0)]],\n"
           "              device float* x [[buffer(0)]], uint2 g [[thread_position_in_grid]]) {\n"
           "  x[0] = t.read(g).x;\n}\n")
    try:
        iface.load_shader_from_string(src)
    except mg.CompileError as e:
        assert "texture" in str(e)
        assert e.lineno in (3, 4, 5)
    # textures may be supported by now: then loading works


def test_cpp_error_points_at_metal_line(iface):
    src = ("#include <metal_stdlib>\nusing namespace metal;\n"
           "kernel void k(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n"
           "  float y = x[i];\n"
           "  x[i] = undefined_function(y);\n}\n")
    _expect_error(iface, src, "undefined_function", 5)


def test_render_functions_are_left_out(iface):
    src = ("#include <metal_stdlib>\nusing namespace metal;\n"
           "struct VOut { float4 pos [[position]]; float2 uv; };\n"
           "vertex VOut vs(uint vid [[vertex_id]], const device float4* verts [[buffer(0)]]) {\n"
           "  VOut o; o.pos = verts[vid]; o.uv = verts[vid].xy; return o;\n}\n"
           "fragment float4 fs(VOut in [[stage_in]]) { return float4(in.uv, 0, 1); }\n"
           "kernel void k(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n"
           "  x[i] += 1;\n}\n")
    iface.load_shader_from_string(src)
    assert "k" in iface.function_names()
    iface.set_function("k")
    buf = iface.array_to_buffer(np.zeros(N, np.float32))
    iface.run_function(N, [buf])
    np.testing.assert_array_equal(buf.contents, np.ones(N))
