"""Issue 3, types: scalars, vectors of 2/3/4 (packed too), metal::vec<T,N>, matrices,
metal::array, local arrays, structs in buffers with Metal's layout, vector constructors from
mixed parts, component-wise operators, bool vectors, broadcast, swizzles read and written,
as_type, static_cast and vector conversions; plus address spaces in unusual places."""

from __future__ import annotations

import numpy as np
import pytest

import metalgpu as mg
from kernel_helpers import run_arrays

N = 32

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

// Scalars: every type, through a template.
template <typename T>
kernel void scalar_ops(device const T* a [[buffer(0)]], device const T* b [[buffer(1)]],
                       device T* out [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  T x = a[i], y = b[i];
  out[4 * i + 0] = x + y;
  out[4 * i + 1] = x * y;
  out[4 * i + 2] = max(x, y);
  out[4 * i + 3] = T(x > y);
}
#define INST_SCALAR(T) \
  template [[host_name("scalar_" #T)]] kernel decltype(scalar_ops<T>) scalar_ops<T>;
INST_SCALAR(char) INST_SCALAR(uchar) INST_SCALAR(short) INST_SCALAR(ushort)
INST_SCALAR(int) INST_SCALAR(uint) INST_SCALAR(long) INST_SCALAR(ulong)
INST_SCALAR(float) INST_SCALAR(half) INST_SCALAR(bfloat)

kernel void bools(device const bool* a [[buffer(0)]], device bool* out [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) {
  out[i] = !a[i] || (i % 3 == 0);
}

// Vectors of every width, through a template over N.
template <typename T, int N>
kernel void vec_ops(device const vec<T, N>* a [[buffer(0)]], device const vec<T, N>* b [[buffer(1)]],
                    device vec<T, N>* out [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  metal::vec<T, N> x = a[i];
  vec<T, N> y = b[i];
  vec<T, N> r = x * y + T(2);       // scalar broadcast
  r -= x;
  r = select(r, y, x > y);          // comparison -> bool vector
  out[i] = r;
}
template [[host_name("vec_float2")]] kernel decltype(vec_ops<float, 2>) vec_ops<float, 2>;
template [[host_name("vec_float3")]] kernel decltype(vec_ops<float, 3>) vec_ops<float, 3>;
template [[host_name("vec_float4")]] kernel decltype(vec_ops<float, 4>) vec_ops<float, 4>;
template [[host_name("vec_int4")]] kernel decltype(vec_ops<int, 4>) vec_ops<int, 4>;
template [[host_name("vec_uint2")]] kernel decltype(vec_ops<uint, 2>) vec_ops<uint, 2>;
template [[host_name("vec_short4")]] kernel decltype(vec_ops<short, 4>) vec_ops<short, 4>;
template [[host_name("vec_uchar4")]] kernel decltype(vec_ops<uchar, 4>) vec_ops<uchar, 4>;
template [[host_name("vec_half4")]] kernel decltype(vec_ops<half, 4>) vec_ops<half, 4>;

kernel void swizzles(device float4* v [[buffer(0)]], device float* s [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) {
  float4 a = v[i];
  float4 b = a.wzyx;                        // read, 4 lanes
  float2 c = a.xy + a.zw;                   // read, 2 lanes
  float3 d = a.rgb * 2.0f;                  // rgba set
  a.xy = a.yx;                              // write
  a.zw += 1.0f;                             // compound write
  b.w = c.x + d.z;                          // single-lane write
  float4 e = float4(c, d.xy);               // constructor from mixed parts
  float4 f = float4(a.xy, 0.0f, 1);         // mixed scalars and vector
  float4 g = float4(d, a.r);
  v[i] = a + b + e * 0.5f + f * 0.25f + g.bgra;
  s[i] = a.x + a.g + a.b + a.a + b.r;
}

kernel void bool_vectors(device const int4* a [[buffer(0)]], device const int4* b [[buffer(1)]],
                         device int* out [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  bool4 lt = a[i] < b[i];
  bool4 eq = a[i] == b[i];
  bool2 nz = bool2(a[i].xy);
  int4 sel = select(int4(0), int4(1, 2, 4, 8), lt || eq);
  out[i] = sel.x + sel.y + sel.z + sel.w + (all(lt) ? 100 : 0) + (any(eq) ? 1000 : 0) +
           (all(nz) ? 10000 : 0) + (any(!lt) ? 100000 : 0);
}

struct Particle {          // Metal layout: float3 is 16-aligned, 16 bytes
  float3 pos;              // 0
  float mass;              // 16
  packed_float3 vel;       // 20 (12 bytes, 4-aligned)
  int id;                  // 32
  half2 h;                 // 36
  float2 uv;               // 40
};                         // size 48
static_assert(sizeof(float3) == 16, "float3 is 16 bytes");
static_assert(alignof(float3) == 16, "float3 is 16-aligned");
static_assert(sizeof(packed_float3) == 12, "packed_float3 is 12 bytes");
static_assert(sizeof(Particle) == 48, "Particle layout");
static_assert(sizeof(half3) == 8 && sizeof(char3) == 4 && sizeof(int3) == 16, "3-vectors");
static_assert(sizeof(float2x2) == 16 && sizeof(float3x3) == 48 && sizeof(float4x4) == 64, "mats");
static_assert(sizeof(half4x4) == 32, "half4x4");

kernel void particles(device Particle* p [[buffer(0)]], constant float& dt [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
  Particle q = p[i];
  q.pos += float3(q.vel) * dt;
  q.vel = packed_float3(q.vel * 0.5f);
  q.id += 1;
  q.mass = length(q.uv) + float(q.h.x + q.h.y);
  p[i] = q;
}

kernel void packed3(device packed_float3* a [[buffer(0)]], device float* len [[buffer(1)]],
                    uint i [[thread_position_in_grid]]) {
  float3 v = a[i];
  len[i] = length(v);
  a[i] = packed_float3(v.zxy);
  a[i].x += 1.0f;
}

kernel void conversions(device const float4* in [[buffer(0)]], device int4* as_int [[buffer(1)]],
                        device uint* bits [[buffer(2)]], device float* back [[buffer(3)]],
                        device half4* h [[buffer(4)]], device uchar4* u8 [[buffer(5)]],
                        uint i [[thread_position_in_grid]]) {
  float4 v = in[i];
  as_int[i] = int4(v);                              // truncating conversion
  bits[i] = as_type<uint>(v.x);
  back[i] = as_type<float>(as_type<uint>(v.y)) + static_cast<float>(static_cast<int>(v.z));
  h[i] = half4(v);
  u8[i] = uchar4(clamp(v, 0.0f, 255.0f));
  ushort2 packed = as_type<ushort2>(v.w);
  bits[i] ^= uint(packed.x) ^ uint(packed.y);
}

kernel void matrices(device const float4x4* m [[buffer(0)]], device const float4* v [[buffer(1)]],
                     device float4* out [[buffer(2)]], device float* scal [[buffer(3)]],
                     uint i [[thread_position_in_grid]]) {
  float4x4 M = m[i];
  float4 x = v[i];
  float4 y = M * x;                           // matrix * column vector
  float4 z = x * M;                           // row vector * matrix
  float4x4 MM = M * transpose(M);
  float2x2 A = float2x2(float2(1, 2), float2(3, 4));
  float2x2 B = float2x2(2.0f);                // diagonal
  float2x2 C = A * B;
  float3x3 D = float3x3(M[0].xyz, M[1].xyz, M[2].xyz);
  half4x4 H = half4x4(M);
  half4 hx = H * half4(x);
  M[3][3] = 7.0f;                             // column then row
  out[i] = y + z * 0.5f + MM[1] + float4(hx) * 0.0f;
  scal[i] = C[1][0] + C[0][1] + determinant(A) + D[2][1] + M[3].w + float(H[0][0]);
}

kernel void arrays(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) {
  metal::array<float, 4> a;
  for (uint k = 0; k < a.size(); ++k) a[k] = in[4 * i + k];
  array<int, 3> idx = {2, 0, 1};
  float local[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float acc2[2][2] = {{1, 2}, {3, 4}};
  for (int k = 0; k < 3; ++k) local[k] = a[idx[k]];
  local[3] = acc2[1][0];
  float sum = 0;
  for (auto x : a) sum += x;
  out[4 * i + 0] = local[0];
  out[4 * i + 1] = local[1] + local[2];
  out[4 * i + 2] = local[3];
  out[4 * i + 3] = sum;
}

// Address spaces in the places real kernels put them.
constant float coeffs[4] = {1.0f, 2.0f, 3.0f, 4.0f};
constant constexpr int kShift = 1;
constant float4 kBias = float4(0.5f);
static constant int lut[] = {3, 1, 4, 1, 5};

inline void bump(thread float& x, thread float* y, float by) { x += by; *y -= by; }
inline float load(const device float* p, uint k) { return p[k]; }
inline float first(const constant float* p) { return p[0]; }

struct Color { float r, g, b, a; };

kernel void address_spaces(device float* data [[buffer(0)]],
                           device Color* colors [[buffer(1)]],
                           uint i [[thread_position_in_grid]]) {
  thread float local = data[i];
  float other = 0.0f;
  bump(local, &other, coeffs[i % 4]);
  device float4* as4 = (device float4*)data;
  const device float* ro = static_cast<const device float*>(data);
  float4 c4 = float4(colors[i].r, colors[i].g, colors[i].b, colors[i].a);
  colors[i].r = c4.g;                  // a struct field named like a swizzle letter
  float4 v = kBias;
  data[i] = local + other + float(lut[i % 5] << kShift) + first(coeffs) + v.r + load(ro, i) * 0.0f +
            (i == 0 ? as4[0].x * 0.0f : 0.0f);
}
"""


@pytest.fixture(scope="module")
def lib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(SOURCE)
    return iface


def _run(iface, name, arrays, grid=N):
    return run_arrays(iface, name, arrays, grid)


SCALARS = {
    "char": np.int8, "uchar": np.uint8, "short": np.int16, "ushort": np.uint16,
    "int": np.int32, "uint": np.uint32, "long": np.int64, "ulong": np.uint64,
    "float": np.float32, "half": np.float16,
}


@pytest.mark.parametrize("tname", list(SCALARS))
def test_scalar_types(lib, tname):
    dt = SCALARS[tname]
    rng = np.random.default_rng(1)
    a = rng.integers(0, 10, N).astype(dt)
    b = rng.integers(0, 10, N).astype(dt)
    *_, out = _run(lib, f"scalar_{tname}", [a, b, np.zeros(4 * N, dt)])
    ref = np.stack([a + b, a * b, np.maximum(a, b), (a > b).astype(dt)], 1).reshape(-1)
    np.testing.assert_array_equal(out, ref.astype(dt))


def test_bfloat_scalar(lib):
    # bfloat buffers hold uint16 bits; small integers are exact in bfloat16
    def to_bf(x):
        return (np.asarray(x, np.float32).view(np.uint32) >> 16).astype(np.uint16)

    def from_bf(u):
        return (u.astype(np.uint32) << 16).view(np.float32)

    a = np.arange(N, dtype=np.float32) % 7
    b = (np.arange(N, dtype=np.float32) * 3) % 5
    iface = lib
    ba, bb = iface.create_buffer(N, "bfloat"), iface.create_buffer(N, "bfloat")
    out = iface.create_buffer(4 * N, "bfloat")
    ba.contents[:] = to_bf(a)
    bb.contents[:] = to_bf(b)
    iface.set_function("scalar_bfloat")
    iface.run_function(N, [ba, bb, out])
    ref = np.stack([a + b, a * b, np.maximum(a, b), (a > b)], 1).reshape(-1)
    np.testing.assert_array_equal(from_bf(out.contents.view(np.uint16)), ref.astype(np.float32))


def test_bool_buffers(lib):
    a = (np.arange(N) % 2 == 0)
    _, out = _run(lib, "bools", [a, np.zeros(N, bool)])
    np.testing.assert_array_equal(out, ~a | (np.arange(N) % 3 == 0))


@pytest.mark.parametrize("name,dt,n,width", [
    ("vec_float2", np.float32, 2, 2), ("vec_float3", np.float32, 3, 4),
    ("vec_float4", np.float32, 4, 4), ("vec_int4", np.int32, 4, 4),
    ("vec_uint2", np.uint32, 2, 2), ("vec_short4", np.int16, 4, 4),
    ("vec_uchar4", np.uint8, 4, 4), ("vec_half4", np.float16, 4, 4)])
def test_vector_types(lib, name, dt, n, width):
    # 3-vectors occupy 4 elements in device memory
    rng = np.random.default_rng(2)
    a = rng.integers(1, 9, (N, width)).astype(dt)
    b = rng.integers(1, 9, (N, width)).astype(dt)
    _, _, out = _run(lib, name, [a, b, np.zeros((N, width), dt)])
    r = a * b + dt(2) - a
    ref = np.where(a > b, b, r).astype(dt)
    np.testing.assert_array_equal(out[:, :n], ref[:, :n])


def test_swizzles(lib):
    v = np.random.default_rng(3).standard_normal((N, 4)).astype(np.float32)
    out, s = _run(lib, "swizzles", [v, np.zeros(N, np.float32)])
    a = v.copy()
    b = v[:, ::-1].copy()
    c = v[:, 0:2] + v[:, 2:4]
    d = v[:, 0:3] * 2
    a[:, [0, 1]] = a[:, [1, 0]]
    a[:, 2:] += 1
    b[:, 3] = c[:, 0] + d[:, 2]
    e = np.concatenate([c, d[:, :2]], 1)
    f = np.concatenate([a[:, :2], np.zeros((N, 1)), np.ones((N, 1))], 1)
    g = np.concatenate([d, a[:, :1]], 1)
    ref = a + b + e * 0.5 + f * 0.25 + g[:, [2, 1, 0, 3]]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s, a.sum(1) + b[:, 0], rtol=1e-5, atol=1e-5)


def test_bool_vectors(lib):
    rng = np.random.default_rng(4)
    a = rng.integers(-2, 3, (N, 4)).astype(np.int32)
    b = rng.integers(-2, 3, (N, 4)).astype(np.int32)
    *_, out = _run(lib, "bool_vectors", [a, b, np.zeros(N, np.int32)])
    lt, eq = a < b, a == b
    ref = ((lt | eq) * np.array([1, 2, 4, 8])).sum(1) + lt.all(1) * 100 + eq.any(1) * 1000 + \
        (a[:, :2] != 0).all(1) * 10000 + (~lt).any(1) * 100000
    np.testing.assert_array_equal(out, ref)


PARTICLE = np.dtype({"names": ["pos", "mass", "vel", "id", "h", "uv"],
                     "formats": [(np.float32, 4), np.float32, (np.float32, 3), np.int32,
                                 (np.float16, 2), (np.float32, 2)],
                     "offsets": [0, 16, 20, 32, 36, 40], "itemsize": 48})


def test_struct_layout_in_buffers(lib):
    p = np.zeros(N, PARTICLE)
    rng = np.random.default_rng(5)
    p["pos"] = rng.standard_normal((N, 4))
    p["vel"] = rng.standard_normal((N, 3))
    p["id"] = np.arange(N)
    p["h"] = rng.integers(0, 4, (N, 2))
    p["uv"] = rng.standard_normal((N, 2))
    orig = p.copy()
    buf = lib.array_to_buffer(p.view(np.uint8))  # the struct's bytes
    lib.set_function("particles")
    lib.run_function(N, [buf, 0.5])
    q = buf.contents.view(PARTICLE)
    np.testing.assert_allclose(q["pos"][:, :3], orig["pos"][:, :3] + orig["vel"] * 0.5, rtol=1e-6)
    np.testing.assert_allclose(q["vel"], orig["vel"] * 0.5, rtol=1e-6)
    np.testing.assert_array_equal(q["id"], orig["id"] + 1)
    np.testing.assert_allclose(q["mass"], np.linalg.norm(orig["uv"], axis=1) +
                               orig["h"].astype(np.float32).sum(1), rtol=1e-5)


def test_packed_float3(lib):
    a = np.random.default_rng(6).standard_normal((N, 3)).astype(np.float32)
    out, ln = _run(lib, "packed3", [a, np.zeros(N, np.float32)])
    ref = a[:, [2, 0, 1]].copy()
    ref[:, 0] += 1
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    np.testing.assert_allclose(ln, np.linalg.norm(a, axis=1), rtol=1e-5)


def test_conversions_and_as_type(lib):
    v = (np.random.default_rng(7).standard_normal((N, 4)) * 100).astype(np.float32)
    outs = _run(lib, "conversions", [v, np.zeros((N, 4), np.int32), np.zeros(N, np.uint32),
                                     np.zeros(N, np.float32), np.zeros((N, 4), np.float16),
                                     np.zeros((N, 4), np.uint8)])
    _, as_int, bits, back, h, u8 = outs
    np.testing.assert_array_equal(as_int, v.astype(np.int32))
    w = np.ascontiguousarray(v[:, 3]).view(np.uint16).reshape(N, 2).astype(np.uint32)
    np.testing.assert_array_equal(bits, v[:, 0].view(np.uint32) ^ w[:, 0] ^ w[:, 1])
    np.testing.assert_array_equal(back, v[:, 1] + np.trunc(v[:, 2]))
    np.testing.assert_array_equal(h, v.astype(np.float16))
    np.testing.assert_array_equal(u8, np.clip(v, 0, 255).astype(np.uint8))


def test_matrices(lib):
    rng = np.random.default_rng(8)
    m = rng.standard_normal((N, 4, 4)).astype(np.float32)   # m[i][col][row], column-major
    v = rng.standard_normal((N, 4)).astype(np.float32)
    _, _, out, scal = _run(lib, "matrices", [m, v, np.zeros((N, 4), np.float32),
                                            np.zeros(N, np.float32)])
    M = np.transpose(m, (0, 2, 1))                          # M[i][row][col]
    y = np.einsum("nrc,nc->nr", M, v)
    z = np.einsum("nr,nrc->nc", v, M)
    MM = M @ np.transpose(M, (0, 2, 1))
    ref = y + z * 0.5 + MM[:, :, 1]
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    A = np.array([[1, 3], [2, 4]], np.float32)              # columns (1,2) and (3,4)
    C = A @ (2 * np.eye(2))
    ref_s = C[0, 1] + C[1, 0] + np.linalg.det(A) + M[:, 1, 2] + 7 + m[:, 0, 0].astype(np.float16)
    np.testing.assert_allclose(scal, ref_s, rtol=1e-3, atol=1e-3)


def test_arrays(lib):
    x = np.arange(4 * N, dtype=np.float32)
    _, out = _run(lib, "arrays", [x, np.zeros(4 * N, np.float32)])
    a = x.reshape(N, 4)
    ref = np.stack([a[:, 2], a[:, 0] + a[:, 1], np.full(N, 3.0), a.sum(1)], 1).reshape(-1)
    np.testing.assert_array_equal(out, ref)


def test_address_spaces_and_swizzle_named_fields(lib):
    data = np.arange(N, dtype=np.float32)
    colors = np.arange(4 * N, dtype=np.float32).reshape(N, 4)
    out, col = _run(lib, "address_spaces", [data, colors])
    coeffs = np.array([1, 2, 3, 4], np.float32)[np.arange(N) % 4]
    lut = np.array([3, 1, 4, 1, 5])[np.arange(N) % 5]
    ref = (data + coeffs) - coeffs + (lut << 1) + 1 + 0.5
    np.testing.assert_allclose(out, ref)
    np.testing.assert_array_equal(col[:, 0], colors[:, 1])


# ---------------------------------------------------------------- real-project idioms
IDIOMS = r"""
#include <metal_stdlib>
using namespace metal;

#define QK4_0 32
typedef struct {
    half    d;
    uint8_t qs[QK4_0 / 2];
} block_q4_0;
static_assert(sizeof(block_q4_0) == sizeof(half) + QK4_0 / 2, "wrong q4_0 block size/padding");

constexpr constant static float kvalues[4] = {-1.0f, -0.5f, 0.5f, 1.0f};

template <typename U> struct Limits {
  static const constant U max = metal::numeric_limits<U>::max();
  static const constant U min = metal::numeric_limits<U>::min();
};

// ggml style: byte pointers and strides, casts through device pointers, int64_t arguments
kernel void kernel_add(
        device const char * src0,
        device const char * src1,
        device       char * dst,
        constant  int64_t & ne00,
        constant uint64_t & nb01,
        uint3 tgpig[[threadgroup_position_in_grid]],
        ushort3 tpitg[[thread_position_in_threadgroup]],
        ushort3   ntg[[threads_per_threadgroup]]) {
    const int64_t i01 = tgpig.x;
    device const float4 * x = (device const float4 *) (src0 + i01*nb01);
    device const float4 * y = (device const float4 *) (src1 + i01*nb01);
    device float4 * z = (device float4 *) (dst + i01*nb01);
    for (int i = tpitg.x; i < ne00/4; i += ntg.x) {
        z[i] = x[i] + y[i];
    }
}

template <typename type4x4>
void dequantize_q4_0(device const block_q4_0 * xb, short il, thread type4x4 & reg) {
    device const uint8_t * qs = xb->qs;
    const float d = xb->d;
    float4x4 reg_f;
    for (int i = 0; i < 16; i++) {
        const uint8_t q = il ? (qs[i] >> 4) : (qs[i] & 0x0F);
        reg_f[i/4][i%4] = d * (float(q) - 8.0f);
    }
    reg = (type4x4) reg_f;
}

kernel void kernel_deq(device const block_q4_0 * src [[buffer(0)]],
                       device float4x4 * dst [[buffer(1)]],
                       device half4x4 * hdst [[buffer(2)]],
                       uint gid [[thread_position_in_grid]]) {
  float4x4 r;
  dequantize_q4_0(src + gid / 2, short(gid % 2), r);
  half4x4 h;
  dequantize_q4_0(src + gid / 2, short(gid % 2), h);
  dst[gid] = r;
  hdst[gid] = h;
}

[[kernel, max_total_threads_per_threadgroup(256)]]
void limits_k(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  out[i] = (i == 0 ? Limits<float>::max : Limits<float>::min * 0.0f) + kvalues[i % 4];
}

struct complex64_t {
  float real; float imag;
  constexpr complex64_t(float r, float i) : real(r), imag(i) {}
  constexpr complex64_t operator*(complex64_t b) const {
    return {real * b.real - imag * b.imag, real * b.imag + imag * b.real};
  }
};
kernel void cmul(device complex64_t* a [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  a[i] = a[i] * complex64_t(0.0f, 1.0f);
}

template <typename T> struct WorkPerThread { static constant constexpr int n = 8 / sizeof(T); };
template <typename T, typename U, int N = WorkPerThread<T>::n>
[[kernel]] void copy_v(device const T* src [[buffer(0)]], device U* dst [[buffer(1)]],
                       constant uint& size, uint index [[thread_position_in_grid]]) {
  index *= N;
  for (int i = 0; i < N && (index + i) < size; ++i) dst[index + i] = static_cast<U>(src[index + i]);
}
template [[host_name("copy_v_f32_f16")]] [[kernel]] decltype(copy_v<float, half>) copy_v<float, half>;

kernel void misc(device uint* out [[buffer(0)]], uint2 gid [[thread_position_in_grid]],
                 uint2 grid [[threads_per_grid]]) {
  half2 h = as_type<half2>(0x3c003c00u);            // two halves of 1.0
  uint idx = gid.y * grid.x + gid.x;
  out[idx] = uint(float(h.x + h.y)) + uint(metal::fast::exp(0.0f)) + uint(metal::precise::exp(0.0f))
           + select(0u, 10u, idx > 3) + uint(metal::conditional_t<true, float, int>(1.5f) * 2.0f);
}
"""


@pytest.fixture(scope="module")
def idioms(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(IDIOMS)
    return iface


def test_ggml_style_byte_pointers(idioms):
    rows, ne00 = 4, 32
    a = np.random.default_rng(20).standard_normal((rows, ne00)).astype(np.float32)
    b = np.random.default_rng(21).standard_normal((rows, ne00)).astype(np.float32)
    bufs = [idioms.array_to_buffer(a.view(np.uint8).reshape(-1)),
            idioms.array_to_buffer(b.view(np.uint8).reshape(-1)),
            idioms.create_buffer(a.nbytes, "uchar"), np.int64(ne00), np.uint64(ne00 * 4)]
    idioms.set_function("kernel_add")
    idioms.run_function((rows * 4, 1, 1), bufs, threadgroup=(4, 1, 1))
    np.testing.assert_array_equal(bufs[2].contents.view(np.float32).reshape(rows, ne00), a + b)


def test_ggml_style_quantized_blocks(idioms):
    nb = 4
    block = np.dtype({"names": ["d", "qs"], "formats": [np.float16, (np.uint8, 16)],
                      "offsets": [0, 2], "itemsize": 18})
    blk = np.zeros(nb, block)
    rng = np.random.default_rng(22)
    blk["d"] = rng.uniform(0.5, 2, nb)
    blk["qs"] = rng.integers(0, 256, (nb, 16))
    out = idioms.create_buffer(2 * nb * 16, "float")
    hout = idioms.create_buffer(2 * nb * 16, "half")
    idioms.set_function("kernel_deq")
    idioms.run_function(2 * nb, [idioms.array_to_buffer(blk.view(np.uint8)), out, hout])
    q = blk["qs"].astype(np.float32)
    lo, hi = (q.astype(np.uint8) & 0xF) - 8.0, (q.astype(np.uint8) >> 4) - 8.0
    d = blk["d"].astype(np.float32)[:, None]
    ref = np.stack([d * lo, d * hi], 1).reshape(-1)
    np.testing.assert_array_equal(out.contents, ref)
    np.testing.assert_array_equal(hout.contents, ref.astype(np.float16))


def test_struct_static_constants_and_constexpr_tables(idioms):
    out = idioms.create_buffer(8, "float")
    idioms.set_function("limits_k")
    idioms.run_function(8, [out])
    kv = np.array([-1, -0.5, 0.5, 1], np.float32)[np.arange(8) % 4]
    ref = kv.copy()
    ref[0] = np.finfo(np.float32).max
    np.testing.assert_array_equal(out.contents, ref)


def test_struct_with_constructor_and_operators(idioms):
    a = np.arange(2 * N, dtype=np.float32)
    buf = idioms.array_to_buffer(a)
    idioms.set_function("cmul")
    idioms.run_function(N, [buf])
    c = a.view(np.complex64) * 1j
    np.testing.assert_array_equal(buf.contents.view(np.complex64), c)


def test_default_template_argument_from_trait(idioms):
    x = np.arange(N, dtype=np.float32) / 8
    out = idioms.create_buffer(N, "half")
    idioms.set_function("copy_v_f32_f16")
    idioms.run_function(N // 2, [idioms.array_to_buffer(x), out, N])
    np.testing.assert_array_equal(out.contents, x.astype(np.float16))


def test_misc_builtins(idioms):
    out = idioms.create_buffer(16, "uint")
    idioms.set_function("misc")
    idioms.run_function((4, 4), [out])
    np.testing.assert_array_equal(out.contents, 2 + 1 + 1 + 3 + np.where(np.arange(16) > 3, 10, 0))


# Vectors at addresses aligned only to their element: Apple GPUs load and store them (ggml's
# mul_mm writes rows through `(device float4 *)` at 8-byte aligned addresses), and struct members
# still follow Metal's layout, templates and arrays included.
UNALIGNED = r"""
#include <metal_stdlib>
using namespace metal;

template <typename T> struct Tagged { char tag; T value; };   // value at Metal's alignment of T
struct Mixed {
  float a;
  float4 b;                // 16
  float3 c[2];             // 32, 48
  half h;                  // 64
  float2 d;                // 72
  float4x4 m;              // 80
  metal::array<float4, 2> arr;   // 144
  Tagged<float4> t4;       // 176 (value at 192)
  char e;                  // 208
};                         // 224
static_assert(sizeof(Mixed) == 224 && alignof(Mixed) == 16, "Mixed");
struct Qualified { float a; const float2 k[3]; volatile half3 h; };   // k at 8, h at 32
static_assert(sizeof(Qualified) == 40, "Qualified");
static_assert(alignof(float4) == 16 && alignof(float2) == 8 && alignof(half3) == 8, "alignof");
static_assert(alignof(packed_float4) == 4 && alignof(float4x4) == 16, "alignof packed/matrix");

kernel void unaligned_vectors(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                              device half* hout [[buffer(2)]], device Mixed* mixed [[buffer(3)]],
                              uint i [[thread_position_in_grid]], uint l [[thread_position_in_threadgroup]]) {
  threadgroup float stage[4 * 8 + 1];
  device const float4* in4 = (device const float4*)(in + 1);        // 4-byte aligned
  threadgroup float4* stage4 = (threadgroup float4*)(stage + 1);
  stage4[l] = in4[i] * 2.0f;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  device float4* out4 = (device float4*)(out + 3);
  out4[i] = stage4[l] + 1.0f;
  device half3* h3 = (device half3*)(hout + 1);                      // 2-byte aligned, 8-byte vector
  h3[i] = half3(in4[i].xyz);
  if (i == 0) {            // each member where the host expects it
    mixed->a = 1; mixed->b = float4(2); mixed->c[0] = float3(3); mixed->c[1] = float3(4); mixed->h = 5;
    mixed->d = float2(6); mixed->m = float4x4(7); mixed->arr[1] = float4(8); mixed->t4.tag = 9;
    mixed->t4.value = float4(10); mixed->e = 11;
  }
}
static_assert(sizeof(Tagged<half2>) == 8 && sizeof(Tagged<float3>) == 32, "Tagged");
"""


def test_vectors_at_addresses_aligned_to_their_element(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(UNALIGNED)
    n = 16
    x = np.arange(4 * n + 1, dtype=np.float32)
    out = iface.create_buffer(4 * n + 3, np.float32)
    hout = iface.create_buffer(4 * n + 1, np.float16)
    mixed = iface.create_buffer(224, np.uint8)
    iface.set_function("unaligned_vectors")
    if backend == "cuda":
        pytest.skip("CUDA's vector loads and stores need the vector's alignment")
    iface.run_function(n, [iface.array_to_buffer(x), out, hout, mixed], threadgroup=8)
    v = x[1:].reshape(n, 4)
    np.testing.assert_array_equal(out.contents[3:].reshape(n, 4), v * 2 + 1)
    np.testing.assert_array_equal(hout.contents[1:].reshape(n, 4)[:, :3], v[:, :3].astype(np.float16))
    b = mixed.contents

    def f32(offset, count=1):
        return list(b[offset:offset + 4 * count].view(np.float32))
    assert f32(0) == [1] and f32(16, 4) == [2] * 4 and f32(32, 3) == [3] * 3 and f32(48, 3) == [4] * 3
    assert b[64:66].view(np.float16)[0] == 5 and f32(72, 2) == [6, 6]
    assert f32(80) == [7] and f32(100) == [7] and f32(140) == [7] and f32(84, 4) == [0] * 4
    assert f32(160, 4) == [8] * 4 and b[176] == 9 and f32(192, 4) == [10] * 4 and b[208] == 11


# ggml's quantized blocks: half members of an anonymous struct in an anonymous union. Where half
# is a class (g++ 10/11 on x86-64, which have no C++ _Float16), GCC forbids a member with a
# constructor there; the translation gives such members a stand-in (mg_anonymous_member).
ANONYMOUS_HALVES = """
#include <metal_stdlib>
using namespace metal;
typedef struct {
  union {
    struct {
      half d;
      half m;
    };
    half2 dm;
  };
  uchar qs[4];
} block;
kernel void read_blocks(device const block* b [[buffer(0)]], device float* out [[buffer(1)]],
                        device block* w [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  const float d = b[i].d;                 // as float
  const half m = b[i].m;                  // as half
  device const half* dh = &b[i].d;        // d and m through a pointer, as ggml's q4_K does
  out[i * 4 + 0] = d * 2.0f + float(m);
  out[i * 4 + 1] = float(dh[0] * dh[1]);
  out[i * 4 + 2] = float(b[i].dm.x + b[i].dm.y) + float(b[i].qs[3]);
  out[i * 4 + 3] = (float) b[i].d - b[i].m;
  w[i].d = m;                             // written from a half and from a float
  w[i].m = half(d * 0.5f);
  w[i].qs[0] = b[i].qs[0];
}
"""


def test_half_members_of_anonymous_structs(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(ANONYMOUS_HALVES)
    blocks = np.zeros(8, dtype=[("d", "f2"), ("m", "f2"), ("qs", "u1", 4)])
    blocks["d"] = np.arange(8) * 0.5 + 1
    blocks["m"] = np.arange(8) * 0.25 - 1
    blocks["qs"][:, 3] = np.arange(8)
    blocks["qs"][:, 0] = 7
    out = iface.create_buffer(32, np.float32)
    written = iface.create_buffer(64, np.uint8)
    iface.set_function("read_blocks")
    iface.run_function(8, [iface.array_to_buffer(blocks.view(np.uint8)), out, written])
    d, m = blocks["d"].astype(np.float32), blocks["m"].astype(np.float32)
    got = out.contents.reshape(8, 4)
    np.testing.assert_allclose(got[:, 0], d * 2 + m)
    np.testing.assert_allclose(got[:, 1], (blocks["d"] * blocks["m"]).astype(np.float32), rtol=1e-3)
    np.testing.assert_allclose(got[:, 2], d + m + np.arange(8))
    np.testing.assert_allclose(got[:, 3], d - m)
    w = written.contents.view(blocks.dtype)
    np.testing.assert_array_equal(w["d"], blocks["m"])
    np.testing.assert_array_equal(w["m"], (d * 0.5).astype(np.float16))
    np.testing.assert_array_equal(w["qs"][:, 0], 7)
