"""Kernels in the common MSL subset: math, vectors, structs, helpers, many kernels per file,
implicit buffer indices, large and multi-dimensional grids, macro and template kernels."""

from __future__ import annotations

import numpy as np
import pytest

import metalgpu as mg

RTOL, ATOL = 1e-4, 1e-5  # Metal compiles with fast math by default

# name -> (MSL expression over a[i], b[i], c[i]; numpy oracle; ranges for a, b, c)
MATH = {
    "sin": ("sin(x)", lambda x, y, z: np.sin(x), (-3, 3)),
    "cos": ("cos(x)", lambda x, y, z: np.cos(x), (-3, 3)),
    "tan": ("tan(x)", lambda x, y, z: np.tan(x), (-1.2, 1.2)),
    "exp": ("exp(x)", lambda x, y, z: np.exp(x), (-5, 5)),
    "exp2": ("exp2(x)", lambda x, y, z: np.exp2(x), (-5, 5)),
    "log": ("log(x)", lambda x, y, z: np.log(x), (0.05, 20)),
    "log2": ("log2(x)", lambda x, y, z: np.log2(x), (0.05, 20)),
    "sqrt": ("sqrt(x)", lambda x, y, z: np.sqrt(x), (0, 20)),
    "rsqrt": ("rsqrt(x)", lambda x, y, z: 1 / np.sqrt(x), (0.05, 20)),
    "pow": ("pow(x, y)", lambda x, y, z: np.power(x, y), (0.1, 4), (-2, 2)),
    "fabs": ("fabs(x)", lambda x, y, z: np.abs(x), (-5, 5)),
    "abs": ("abs(x)", lambda x, y, z: np.abs(x), (-5, 5)),
    "min": ("min(x, y)", lambda x, y, z: np.minimum(x, y), (-5, 5), (-5, 5)),
    "max": ("max(x, y)", lambda x, y, z: np.maximum(x, y), (-5, 5), (-5, 5)),
    "clamp": (
        "clamp(x, y, z)",
        lambda x, y, z: np.minimum(np.maximum(x, y), z),
        (-3, 3),
        (-2, -0.5),
        (0.5, 2),
    ),
    "mix": ("mix(x, y, z)", lambda x, y, z: x + (y - x) * z, (-5, 5), (-5, 5), (0, 1)),
    "fma": ("fma(x, y, z)", lambda x, y, z: x * y + z, (-5, 5), (-5, 5), (-5, 5)),
    "floor": ("floor(x)", lambda x, y, z: np.floor(x), (-5, 5)),
    "ceil": ("ceil(x)", lambda x, y, z: np.ceil(x), (-5, 5)),
    # Metal's round() rounds halfway cases away from zero (numpy's rounds to even)
    "round": ("round(x)", lambda x, y, z: np.sign(x) * np.floor(np.abs(x) + 0.5), (-5, 5)),
    "trunc": ("trunc(x)", lambda x, y, z: np.trunc(x), (-5, 5)),
    "fract": ("fract(x)", lambda x, y, z: x - np.floor(x), (-5, 5)),
    "sign": ("sign(x)", lambda x, y, z: np.sign(x), (-5, 5)),
    "step": ("step(y, x)", lambda x, y, z: np.where(x < y, 0.0, 1.0), (-5, 5), (-5, 5)),
}
# exact values worth checking where the function has corners
SPECIAL = {
    "round": [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.0, 3.0],
    "floor": [-2.0, -1.5, 0.0, 1.0, 1.5],
    "ceil": [-2.0, -1.5, 0.0, 1.0, 1.5],
    "trunc": [-2.7, -0.5, 0.5, 2.7],
    "fract": [-1.25, -1.0, 0.0, 0.75, 3.0],
    "sign": [0.0, -3.0, 3.0],
    "abs": [0.0, -0.0],
}


def _math_source() -> str:
    parts = ["#include <metal_stdlib>", "using namespace metal;", ""]
    for name, (expr, *_rest) in MATH.items():
        parts.append(
            f"kernel void m_{name}(device const float* a [[buffer(0)]],\n"
            f"                     device const float* b [[buffer(1)]],\n"
            f"                     device const float* c [[buffer(2)]],\n"
            f"                     device float* out [[buffer(3)]],\n"
            f"                     uint i [[thread_position_in_grid]]) {{\n"
            f"    float x = a[i];\n    float y = b[i];\n    float z = c[i];\n"
            f"    out[i] = {expr};\n}}\n"
        )
    parts.append(
        "kernel void int_ops(device const int* a [[buffer(0)]],\n"
        "                    device const int* b [[buffer(1)]],\n"
        "                    device int* out [[buffer(2)]], uint i [[thread_position_in_grid]]) {\n"
        "    out[4 * i + 0] = abs(a[i]);\n"
        "    out[4 * i + 1] = min(a[i], b[i]);\n"
        "    out[4 * i + 2] = max(a[i], b[i]);\n"
        "    out[4 * i + 3] = clamp(a[i], -10, 10);\n"
        "}\n"
    )
    return "\n".join(parts)


MATH_SOURCE = _math_source()

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

struct Particle {
    float3 pos;   // 16 bytes in Metal (float3 has the size and alignment of float4)
    float w;      // at offset 16; the struct is 32 bytes
};

struct Pair {
    int a;
    float b;
};

inline float sq(float v) { return v * v; }

static float poly(float x, float k) { return sq(x) * k + x; }

void store_pair(device Pair* p, uint i, int a, float b) {
    p[i].a = a;
    p[i].b = b;
}

kernel void vec_float(device const float4* a [[buffer(0)]],
                      device const float2* b [[buffer(1)]],
                      device float4* o4 [[buffer(2)]],
                      device float2* o2 [[buffer(3)]],
                      device float4* o3 [[buffer(4)]],
                      uint i [[thread_position_in_grid]]) {
    float4 v = a[i];
    float2 w = b[i];
    o4[i] = v * 2.0f + float4(w, w.yx) + v.wzyx;
    o2[i] = float2(dot(v, v), length(w)) + w.yx * v.x;
    float3 p = float3(v.x, v.y, v.z);
    float3 q = cross(p, float3(0.0f, 0.0f, 1.0f)) + p.zxy;
    o3[i] = float4(q, v.w);
}

kernel void vec_int(device const int2* a [[buffer(0)]],
                    device const uint4* b [[buffer(1)]],
                    device int2* o1 [[buffer(2)]],
                    device uint4* o2 [[buffer(3)]],
                    uint i [[thread_position_in_grid]]) {
    o1[i] = a[i] * int2(2, 3) + int2(1, -1);
    o2[i] = b[i].wzyx + uint4(i);
}

kernel void particles(device Particle* p [[buffer(0)]],
                      device float* out [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
    out[i] = length(p[i].pos) * p[i].w;
    p[i].pos = p[i].pos * 2.0f;
    p[i].w = p[i].w + 1.0f;
}

kernel void helpers(device const float* x [[buffer(0)]],
                    device Pair* pairs [[buffer(1)]],
                    constant float& k [[buffer(2)]],
                    uint i [[thread_position_in_grid]]) {
    store_pair(pairs, i, int(i) * 2, poly(x[i], k));
}

kernel void implicit_all(device const float* a,
                         device float* out,
                         constant float& s,
                         uint i [[thread_position_in_grid]]) {
    out[i] = a[i] * s;
}

kernel void implicit_after_explicit(device float* out [[buffer(0)]],
                                    device const float* a,
                                    constant float& s,
                                    uint i [[thread_position_in_grid]]) {
    out[i] = a[i] + s;
}

kernel void affine_big(device const float* a [[buffer(0)]], device float* out [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) {
    out[i] = a[i] * 2.0f + 1.0f;
}

kernel void transpose2d(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                        uint2 gid [[thread_position_in_grid]],
                        uint2 size [[threads_per_grid]]) {
    // in is size.y rows x size.x columns; out is its transpose
    out[gid.x * size.y + gid.y] = in[gid.y * size.x + gid.x];
}

kernel void index3d(device uint* out [[buffer(0)]],
                    uint3 gid [[thread_position_in_grid]],
                    uint3 size [[threads_per_grid]]) {
    out[(gid.z * size.y + gid.y) * size.x + gid.x] = gid.x + 100u * gid.y + 10000u * gid.z;
}
"""

MACRO_TEMPLATE_SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

#define DEFINE_FILL(NAME, VALUE)                                                   \
    kernel void NAME(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) { \
        out[i] = VALUE;                                                            \
    }

DEFINE_FILL(fill_one, 1.0f)
DEFINE_FILL(fill_two, 2.0f)

template <typename T>
[[kernel]] void scale_t(device T* x [[buffer(0)]], constant float& s [[buffer(1)]],
                        uint i [[thread_position_in_grid]]) {
    x[i] = T(float(x[i]) * s);
}

template [[host_name("scale_float")]] [[kernel]] decltype(scale_t<float>) scale_t<float>;
template [[host_name("scale_int")]] [[kernel]] decltype(scale_t<int>) scale_t<int>;
"""

SOURCE_KERNELS = {
    "vec_float",
    "vec_int",
    "particles",
    "helpers",
    "implicit_all",
    "implicit_after_explicit",
    "affine_big",
    "transpose2d",
    "index3d",
}


@pytest.fixture(scope="module")
def math_lib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(MATH_SOURCE)
    return iface


@pytest.fixture(scope="module")
def lib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(SOURCE)
    return iface


# -------------------------------------------------------------------------------- math


@pytest.mark.parametrize("name", list(MATH))
def test_math_function(math_lib, name):
    _expr, oracle, *ranges = MATH[name]
    rng = np.random.default_rng(list(MATH).index(name))
    n = 1000
    cols = []
    for k in range(3):
        lo, hi = ranges[k] if k < len(ranges) else (0.0, 1.0)
        cols.append(rng.uniform(lo, hi, n).astype(np.float32))
    special = SPECIAL.get(name, [])
    if special:
        cols[0][: len(special)] = special
    bufs = [math_lib.array_to_buffer(c) for c in cols]
    out = math_lib.create_buffer(n, "float")
    math_lib.run_function(n, [*bufs, out], function_name=f"m_{name}")
    x, y, z = (c.astype(np.float64) for c in cols)
    np.testing.assert_allclose(out.contents, oracle(x, y, z), rtol=RTOL, atol=ATOL, err_msg=name)


def test_integer_math(math_lib):
    rng = np.random.default_rng(11)
    a = rng.integers(-1000, 1000, 500).astype(np.int32)
    b = rng.integers(-1000, 1000, 500).astype(np.int32)
    out = math_lib.create_buffer(4 * 500, "int")
    math_lib.run_function(
        500,
        [math_lib.array_to_buffer(a), math_lib.array_to_buffer(b), out],
        function_name="int_ops",
    )
    got = out.contents.reshape(500, 4)
    np.testing.assert_array_equal(got[:, 0], np.abs(a))
    np.testing.assert_array_equal(got[:, 1], np.minimum(a, b))
    np.testing.assert_array_equal(got[:, 2], np.maximum(a, b))
    np.testing.assert_array_equal(got[:, 3], np.clip(a, -10, 10))


# ------------------------------------------------------------------------------- vectors


def test_float_vectors(lib):
    n = 200
    rng = np.random.default_rng(12)
    a = rng.uniform(-2, 2, (n, 4)).astype(np.float32)
    b = rng.uniform(-2, 2, (n, 2)).astype(np.float32)
    ab, bb = lib.create_buffer(n, "float4"), lib.create_buffer(n, "float2")
    ab.contents[:] = a
    bb.contents[:] = b
    o4, o2, o3 = (
        lib.create_buffer(n, "float4"),
        lib.create_buffer(n, "float2"),
        lib.create_buffer(n, "float4"),
    )
    lib.run_function(n, [ab, bb, o4, o2, o3], function_name="vec_float")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exp4 = a64 * 2 + np.concatenate([b64, b64[:, ::-1]], axis=1) + a64[:, ::-1]
    np.testing.assert_allclose(o4.contents, exp4, rtol=RTOL, atol=ATOL)
    exp2 = np.stack([(a64 * a64).sum(1), np.hypot(b64[:, 0], b64[:, 1])], axis=1)
    exp2 += b64[:, ::-1] * a64[:, :1]
    np.testing.assert_allclose(o2.contents, exp2, rtol=RTOL, atol=ATOL)
    p = a64[:, :3]
    q = np.cross(p, [0.0, 0.0, 1.0]) + p[:, [2, 0, 1]]
    np.testing.assert_allclose(o3.contents[:, :3], q, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(o3.contents[:, 3], a[:, 3], rtol=RTOL, atol=ATOL)


def test_int_and_uint_vectors(lib):
    n = 100
    rng = np.random.default_rng(13)
    a = rng.integers(-1000, 1000, (n, 2)).astype(np.int32)
    b = rng.integers(0, 1 << 30, (n, 4)).astype(np.uint32)
    ab, bb = lib.create_buffer(n, "int2"), lib.create_buffer(n, "uint4")
    ab.contents[:] = a
    bb.contents[:] = b
    o1, o2 = lib.create_buffer(n, "int2"), lib.create_buffer(n, "uint4")
    lib.run_function(n, [ab, bb, o1, o2], function_name="vec_int")
    np.testing.assert_array_equal(o1.contents, a * np.array([2, 3]) + np.array([1, -1]))
    np.testing.assert_array_equal(o2.contents, b[:, ::-1] + np.arange(n, dtype=np.uint32)[:, None])


# -------------------------------------------------------------------- structs and helpers

# Metal layout of `struct Particle { float3 pos; float w; }`: float3 is 16-byte aligned and
# 16 bytes long, so w sits at offset 16 and the struct is 32 bytes.
PARTICLE = np.dtype(
    {"names": ["pos", "w"], "formats": [("<f4", (3,)), "<f4"], "offsets": [0, 16], "itemsize": 32}
)
PAIR = np.dtype({"names": ["a", "b"], "formats": ["<i4", "<f4"], "offsets": [0, 4], "itemsize": 8})


def test_struct_with_float3_in_a_buffer(lib):
    n = 64
    rng = np.random.default_rng(14)
    raw = lib.create_buffer(n * PARTICLE.itemsize, "uchar")
    parts = raw.contents.view(PARTICLE)
    assert parts.shape == (n,)
    pos = rng.uniform(-3, 3, (n, 3)).astype(np.float32)
    w = rng.uniform(0.5, 2, n).astype(np.float32)
    parts["pos"] = pos
    parts["w"] = w
    out = lib.create_buffer(n, "float")
    lib.run_function(n, [raw, out], function_name="particles")
    np.testing.assert_allclose(
        out.contents, np.linalg.norm(pos.astype(np.float64), axis=1) * w, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(parts["pos"], pos * 2, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(parts["w"], w + 1, rtol=RTOL, atol=ATOL)


def test_helper_functions_and_struct_output(lib):
    n = 128
    x = np.linspace(-2, 2, n, dtype=np.float32)
    raw = lib.create_buffer(n * PAIR.itemsize, "uchar")
    lib.run_function(n, [lib.array_to_buffer(x), raw, 0.5], function_name="helpers")
    pairs = raw.contents.view(PAIR)
    np.testing.assert_array_equal(pairs["a"], np.arange(n) * 2)
    np.testing.assert_allclose(
        pairs["b"], x.astype(np.float64) ** 2 * 0.5 + x, rtol=RTOL, atol=ATOL
    )


# --------------------------------------------------------------- several kernels, indices


def test_all_kernels_of_a_file_are_listed(lib):
    names = lib.function_names()
    assert all(isinstance(n, str) for n in names)
    assert set(names) == SOURCE_KERNELS
    assert len(names) == len(SOURCE_KERNELS)


def test_parameters_without_an_index_take_the_next_free_one(lib):
    x = np.arange(50, dtype=np.float32)
    a = lib.array_to_buffer(x)
    out = lib.create_buffer(50, "float")
    lib.run_function(50, [a, out, 3.0], function_name="implicit_all")  # a=0, out=1, s=2
    np.testing.assert_array_equal(out.contents, x * 3)
    out2 = lib.create_buffer(50, "float")
    lib.run_function(50, [out2, a, 0.5], function_name="implicit_after_explicit")  # a=1, s=2
    np.testing.assert_array_equal(out2.contents, x + 0.5)


def test_macro_generated_and_template_kernels(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(MACRO_TEMPLATE_SOURCE)
    assert set(iface.function_names()) == {"fill_one", "fill_two", "scale_float", "scale_int"}
    buf = iface.create_buffer(10, "float")
    iface.run_function(10, [buf], function_name="fill_two")
    np.testing.assert_array_equal(buf.contents, 2.0)
    iface.run_function(10, [buf, 1.5], function_name="scale_float")
    np.testing.assert_array_equal(buf.contents, 3.0)
    ints = iface.array_to_buffer(np.arange(10, dtype=np.int32))
    iface.run_function(10, [ints, 3.0], function_name="scale_int")
    np.testing.assert_array_equal(ints.contents, np.arange(10) * 3)


# ------------------------------------------------------------------------------- grids


def test_large_1d_grid(lib):
    n = 1 << 20
    x = np.random.default_rng(15).standard_normal(n).astype(np.float32)
    out = lib.create_buffer(n, "float")
    out.contents[:] = np.nan
    lib.run_function(n, [lib.array_to_buffer(x), out], function_name="affine_big")
    np.testing.assert_allclose(out.contents, x * 2 + 1, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("w", "h", "tg"), [(64, 32, (8, 8)), (37, 21, (16, 4)), (5, 300, None)])
def test_2d_grid_transpose(lib, w, h, tg):
    m = np.random.default_rng(16).standard_normal((h, w)).astype(np.float32)
    out = lib.create_buffer(w * h, "float")
    lib.run_function(
        (w, h), [lib.array_to_buffer(m), out], function_name="transpose2d", threadgroup=tg
    )
    np.testing.assert_array_equal(out.contents.reshape(w, h), m.T)


@pytest.mark.parametrize(
    ("size", "tg"), [((16, 8, 4), (4, 4, 4)), ((7, 5, 3), (4, 2, 2)), ((3, 4, 50), None)]
)
def test_3d_grid(lib, size, tg):
    w, h, d = size
    out = lib.create_buffer(w * h * d, "uint")
    out.contents[:] = 0xFFFFFFFF
    lib.run_function(mg.MetalSize(w, h, d), [out], function_name="index3d", threadgroup=tg)
    z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    np.testing.assert_array_equal(out.contents.reshape(d, h, w), x + 100 * y + 10000 * z)


DIVISIONS = """
#include <metal_stdlib>
using namespace metal;
template <typename T> static constant constexpr int two = 2;   // a variable template (MLX's packing_size)
kernel void divisions(device int* out [[buffer(0)]], constant int& d [[buffer(1)]],
                      device const int4* v [[buffer(2)]], device int4* vout [[buffer(3)]],
                      device float* f [[buffer(4)]], uint id [[thread_position_in_grid]]) {
    const int unused = int(id) % d;          // computed, never used (ggml: `iq2 % ne32` without a mask)
    int q = 100;
    q /= (d + 1);                              // a compound division by a non-zero value
    q += int(id) % two<int> * 0 + int(id) / two<int> * 0;
    out[id] = d != 0 ? int(id) / d + unused : q + int(id) / 4;
    vout[id] = v[id] / int4(1, 2, d, 4) * 0 + v[id] / 2;   // an integer vector divisor with a 0 lane
    f[id] = float(id) / float(d);              // floats divide as IEEE: inf, nan
}
"""


def test_integer_division_by_zero_does_not_stop_the_kernel(backend):
    # On a GPU x / 0 gives some value and the kernel goes on; the cpu backend must not trap
    # (SIGFPE) where the kernel never uses the quotient. CUDA does not trap either.
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(DIVISIONS)
    iface.set_function("divisions")
    v = np.arange(32, dtype=np.int32).reshape(8, 4)
    out, vout, f = iface.create_buffer(8, "int"), iface.create_buffer(32, "int"), iface.create_buffer(8, "float")
    iface.run_function(8, [out, np.int32(0), iface.array_to_buffer(v), vout, f])
    np.testing.assert_array_equal(out.contents, 100 + np.arange(8) // 4)
    np.testing.assert_array_equal(vout.contents.reshape(8, 4), v // 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(f.contents, np.arange(8, dtype=np.float32) / np.float32(0))
    iface.run_function(8, [out, np.int32(3), iface.array_to_buffer(v), vout, f])
    np.testing.assert_array_equal(out.contents, np.arange(8) // 3 + np.arange(8) % 3)
