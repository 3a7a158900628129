"""Cooperative execution (issue 4): threadgroup memory, barriers, SIMD-group functions,
simdgroup matrices and atomics, checked against numpy models - including partial SIMD groups
at a threadgroup's edge and edge threadgroups of grids that are not a multiple of the group."""

from __future__ import annotations

import os

import numpy as np
import pytest

import metalgpu as mg

# ---------------------------------------------------------------------------------- kernels

ALGORITHMS = r"""
#include <metal_stdlib>
using namespace metal;

// Tree reduction in dynamic threadgroup memory (threadgroup size: a power of two).
kernel void tree_reduce(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                        constant uint& n [[buffer(2)]],
                        threadgroup float* sh [[threadgroup(0)]],
                        uint gid [[thread_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                        uint tg [[threads_per_threadgroup]], uint group [[threadgroup_position_in_grid]]) {
    sh[tid] = gid < n ? x[gid] : 0.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = tg / 2; s > 0; s >>= 1) {
        if (tid < s) sh[tid] += sh[tid + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (tid == 0) out[group] = sh[0];
}

// Each thread sums a strided range, then a static-memory tree (threadgroup of 256).
kernel void tree_reduce_strided(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                                constant uint& n [[buffer(2)]],
                                uint tid [[thread_index_in_threadgroup]],
                                uint group [[threadgroup_position_in_grid]],
                                uint groups [[threadgroups_per_grid]]) {
    threadgroup float sh[256];
    float acc = 0.0f;
    for (uint i = group * 256 + tid; i < n; i += groups * 256) acc += x[i];
    sh[tid] = acc;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = 128; s > 0; s >>= 1) {
        if (tid < s) sh[tid] += sh[tid + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (tid == 0) out[group] = sh[0];
}

// simd_sum, then the SIMD groups' partial sums through threadgroup memory.
kernel void simd_reduce(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                        constant uint& n [[buffer(2)]],
                        uint gid [[thread_position_in_grid]],
                        uint lane [[thread_index_in_simdgroup]], uint sg [[simdgroup_index_in_threadgroup]],
                        uint nsg [[simdgroups_per_threadgroup]], uint group [[threadgroup_position_in_grid]]) {
    threadgroup float partial[32];
    float v = simd_sum(gid < n ? x[gid] : 0.0f);
    if (lane == 0) partial[sg] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (sg == 0) {
        float p = lane < nsg ? partial[lane] : 0.0f;
        p = simd_sum(p);
        if (lane == 0) out[group] = p;
    }
}

// Exclusive scan of each threadgroup's part; sums[group] = the part's total.
kernel void scan_groups(device const int* x [[buffer(0)]], device int* y [[buffer(1)]],
                        device int* sums [[buffer(2)]], constant uint& n [[buffer(3)]],
                        uint gid [[thread_position_in_grid]], uint lane [[thread_index_in_simdgroup]],
                        uint sg [[simdgroup_index_in_threadgroup]], uint nsg [[simdgroups_per_threadgroup]],
                        uint group [[threadgroup_position_in_grid]]) {
    threadgroup int totals[32];
    int v = gid < n ? x[gid] : 0;
    int pre = simd_prefix_exclusive_sum(v);
    if (lane == 31) totals[sg] = pre + v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (sg == 0) {
        int t = lane < nsg ? totals[lane] : 0;
        int e = simd_prefix_exclusive_sum(t);
        if (lane < nsg) totals[lane] = e;
        if (lane == 31) sums[group] = e + t;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (gid < n) y[gid] = pre + totals[sg];
}

kernel void add_offsets(device int* y [[buffer(0)]], device const int* offsets [[buffer(1)]],
                        constant uint& n [[buffer(2)]], uint gid [[thread_position_in_grid]],
                        uint group [[threadgroup_position_in_grid]]) {
    if (gid < n) y[gid] += offsets[group];
}

// C (M x N) = A (M x K) * B (K x N), 16x16 tiles in static threadgroup memory.
kernel void matmul_tiled(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                         device float* C [[buffer(2)]], constant uint3& dims [[buffer(3)]],
                         uint2 pos [[thread_position_in_grid]], uint2 lid [[thread_position_in_threadgroup]],
                         uint2 group [[threadgroup_position_in_grid]]) {
    const uint M = dims.x, N = dims.y, K = dims.z;
    threadgroup float ta[16][16];
    threadgroup float tb[16][16] __attribute__((aligned(16)));
    const uint row = group.y * 16 + lid.y, col = group.x * 16 + lid.x;
    float acc = 0.0f;
    for (uint k0 = 0; k0 < K; k0 += 16) {
        ta[lid.y][lid.x] = (row < M && k0 + lid.x < K) ? A[row * K + k0 + lid.x] : 0.0f;
        tb[lid.y][lid.x] = (col < N && k0 + lid.y < K) ? B[(k0 + lid.y) * N + col] : 0.0f;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint k = 0; k < 16; ++k) acc += ta[lid.y][k] * tb[k][lid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (row < M && col < N) C[row * N + col] = acc;
}

// One SIMD group per row: softmax with simd_max / simd_sum.
kernel void softmax_rows(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                         constant uint& cols [[buffer(2)]],
                         uint row [[threadgroup_position_in_grid]], uint lane [[thread_index_in_simdgroup]]) {
    device const float* r = x + row * cols;
    float m = -INFINITY;
    for (uint c = lane; c < cols; c += 32) m = max(m, r[c]);
    m = simd_max(m);
    float s = 0.0f;
    for (uint c = lane; c < cols; c += 32) s += exp(r[c] - m);
    s = simd_sum(s);
    for (uint c = lane; c < cols; c += 32) y[row * cols + c] = exp(r[c] - m) / s;
}

// Bitonic sort of each threadgroup's 256 values in threadgroup memory (ascending).
kernel void bitonic_sort(device float* x [[buffer(0)]], uint tid [[thread_index_in_threadgroup]],
                         uint group [[threadgroup_position_in_grid]]) {
    threadgroup float v[256];
    v[tid] = x[group * 256 + tid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k = 2; k <= 256; k <<= 1) {
        for (uint j = k >> 1; j > 0; j >>= 1) {
            uint p = tid ^ j;
            if (p > tid) {
                bool up = (tid & k) == 0;
                float a = v[tid], b = v[p];
                if ((a > b) == up) { v[tid] = b; v[p] = a; }
            }
            threadgroup_barrier(mem_flags::mem_threadgroup);
        }
    }
    x[group * 256 + tid] = v[tid];
}

// Histogram: straight into device atomics, and through threadgroup atomics.
kernel void histogram_device(device const uint* x [[buffer(0)]], volatile device atomic_uint* hist [[buffer(1)]],
                             uint gid [[thread_position_in_grid]]) {
    atomic_fetch_add_explicit(&hist[x[gid] % 64], 1u, memory_order_relaxed);
}

kernel void histogram_local(device const uint* x [[buffer(0)]], device atomic_uint* hist [[buffer(1)]],
                            constant uint& n [[buffer(2)]],
                            uint gid [[thread_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                            uint tg [[threads_per_threadgroup]]) {
    threadgroup atomic_uint local[64];
    for (uint b = tid; b < 64; b += tg) atomic_store_explicit(&local[b], 0u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (gid < n) atomic_fetch_add_explicit(&local[x[gid] % 64], 1u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint b = tid; b < 64; b += tg) {
        uint c = atomic_load_explicit(&local[b], memory_order_relaxed);
        if (c) atomic_fetch_add_explicit(&hist[b], c, memory_order_relaxed);
    }
}

// C = A * B for 64x64 matrices: each SIMD group computes one 8x8 tile (4 per threadgroup).
kernel void gemm_simdgroup(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                           device float* C [[buffer(2)]], constant uint& transpose_b [[buffer(3)]],
                           uint sg [[simdgroup_index_in_threadgroup]], uint group [[threadgroup_position_in_grid]]) {
    const uint tile = group * 4 + sg, tr = tile / 8, tc = tile % 8;
    simdgroup_float8x8 acc = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    for (uint k = 0; k < 64; k += 8) {
        simdgroup_float8x8 a, b;
        simdgroup_load(a, A, 64, ulong2(k, tr * 8));
        if (transpose_b) simdgroup_load(b, B, 64, ulong2(k, tc * 8), true);   // B holds B^T
        else simdgroup_load(b, B, 64, ulong2(tc * 8, k));
        simdgroup_multiply_accumulate(acc, a, b, acc);
    }
    simdgroup_store(acc, C, 64, ulong2(tc * 8, tr * 8));
}

// Half inputs through threadgroup memory, float accumulation; D = A * B (8x8), E = A * B + D.
kernel void mma_half(device const half* A [[buffer(0)]], device const half* B [[buffer(1)]],
                     device float* D [[buffer(2)]], device float* E [[buffer(3)]],
                     uint lane [[thread_index_in_simdgroup]]) {
    threadgroup half ta[64];
    threadgroup half tb[64];
    ta[lane] = A[lane]; ta[lane + 32] = A[lane + 32];
    tb[lane] = B[lane]; tb[lane + 32] = B[lane + 32];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    simdgroup_half8x8 a, b;
    simdgroup_load(a, ta);
    simdgroup_load(b, tb);
    simdgroup_float8x8 d;
    simdgroup_multiply(d, a, b);
    simdgroup_store(d, D);
    simdgroup_multiply_accumulate(d, a, b, d);
    simdgroup_store(d, E, 8, ulong2(0, 0), true);
}

// bfloat matrices loaded from and stored to float memory.
kernel void mma_bfloat(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                       device float* D [[buffer(2)]]) {
    simdgroup_bfloat8x8 a, b;
    simdgroup_load(a, A);
    simdgroup_load(b, B, 8, ulong2(0, 0), true);
    simdgroup_float8x8 d = make_filled_simdgroup_matrix<float, 8, 8>(1.0f);
    simdgroup_multiply_accumulate(d, a, b, d);
    simdgroup_store(d, D);
}

// thread_elements(): what each lane holds of a loaded matrix; then written back changed.
kernel void elements_layout(device const float* M [[buffer(0)]], device float* lanes [[buffer(1)]],
                            device float* back [[buffer(2)]], device float* diag [[buffer(3)]],
                            uint lane [[thread_index_in_simdgroup]]) {
    simdgroup_float8x8 m;
    simdgroup_load(m, M);
    float2 e = m.thread_elements();
    lanes[2 * lane] = e.x;
    lanes[2 * lane + 1] = e.y;
    m.thread_elements() = e * 2.0f;
    simdgroup_store(m, back);
    simdgroup_float8x8 d = simdgroup_float8x8(3.0f);
    simdgroup_store(d, diag);
}

// Barriers in a loop whose trip count is uniform; a ring shift through threadgroup memory.
kernel void barrier_loop(device const int* x [[buffer(0)]], device int* y [[buffer(1)]],
                         constant uint& rounds [[buffer(2)]],
                         uint tid [[thread_index_in_threadgroup]], uint tg [[threads_per_threadgroup]],
                         uint gid [[thread_position_in_grid]]) {
    threadgroup int ring[256];
    ring[tid] = x[gid];
    for (uint r = 0; r < rounds; ++r) {
        threadgroup_barrier(mem_flags::mem_threadgroup);
        int v = ring[(tid + 1) % tg];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        ring[tid] = v + 1;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    y[gid] = ring[tid];
}

// SIMD group 1 leaves early; the others still meet at barriers.
kernel void early_exit(device const int* x [[buffer(0)]], device int* y [[buffer(1)]],
                       uint tid [[thread_index_in_threadgroup]], uint sg [[simdgroup_index_in_threadgroup]],
                       uint gid [[thread_position_in_grid]], uint group [[threadgroup_position_in_grid]]) {
    threadgroup int buf[128];
    buf[tid] = x[gid];
    if (sg == 1) { y[gid] = -1; return; }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    int other = buf[(tid + 64) % 128];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    buf[tid] += other;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    int s = simd_sum(buf[tid]);
    y[gid] = s;
}

// Real edge sizes: threads_per_threadgroup, simdgroups_per_threadgroup, grid coverage.
kernel void edge_info(device uint* out [[buffer(0)]], device atomic_uint* count [[buffer(1)]],
                      uint2 gid [[thread_position_in_grid]], uint2 grid [[threads_per_grid]],
                      uint2 tpt [[threads_per_threadgroup]], uint nsg [[simdgroups_per_threadgroup]],
                      uint tid [[thread_index_in_threadgroup]]) {
    threadgroup uint members;
    if (tid == 0) members = 0;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    atomic_fetch_add_explicit((threadgroup atomic_uint*)&members, 1u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    uint i = gid.y * grid.x + gid.x;
    out[4 * i] = tpt.x;
    out[4 * i + 1] = tpt.y;
    out[4 * i + 2] = nsg;
    out[4 * i + 3] = members;
    atomic_fetch_add_explicit(&count[0], 1u, memory_order_relaxed);
}

kernel void needs_tg_memory(device float* out [[buffer(0)]], threadgroup float* sh [[threadgroup(0)]],
                            uint tid [[thread_index_in_threadgroup]], uint gid [[thread_position_in_grid]]) {
    sh[tid] = float(tid);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[gid] = sh[0];
}

// Atomic functions on int / uint / float / bool, each kernel thread adding its part.
kernel void atomic_ops(device atomic_int* ai [[buffer(0)]], device atomic_uint* au [[buffer(1)]],
                       device atomic_float* af [[buffer(2)]], device atomic_bool* ab [[buffer(3)]],
                       device const int* v [[buffer(4)]], device int* old [[buffer(5)]],
                       uint gid [[thread_position_in_grid]]) {
    int x = v[gid];
    atomic_fetch_add_explicit(&ai[0], x, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ai[1], x, memory_order_relaxed);
    atomic_fetch_min_explicit(&ai[2], x, memory_order_relaxed);
    atomic_fetch_max_explicit(&ai[3], x, memory_order_relaxed);
    atomic_fetch_and_explicit(&au[0], ~(1u << (gid % 32)), memory_order_relaxed);
    atomic_fetch_or_explicit(&au[1], 1u << (gid % 32), memory_order_relaxed);
    atomic_fetch_xor_explicit(&au[2], uint(x), memory_order_relaxed);
    atomic_fetch_min_explicit(&au[3], uint(x + 1000), memory_order_relaxed);
    atomic_fetch_max_explicit(&au[4], uint(x + 1000), memory_order_relaxed);
    atomic_fetch_add_explicit(&af[0], float(x) * 0.5f, memory_order_relaxed);
    atomic_fetch_min_explicit(&af[1], float(x), memory_order_relaxed);
    atomic_fetch_max_explicit(&af[2], float(x), memory_order_relaxed);
    if (x > 90) atomic_store_explicit(&ab[0], true, memory_order_relaxed);
    // A lock-free counter built on compare-exchange.
    int expected = atomic_load_explicit(&ai[4], memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&ai[4], &expected, expected + 2,
                                                  memory_order_relaxed, memory_order_relaxed)) {}
    old[gid] = atomic_exchange_explicit(&ai[5], int(gid), memory_order_relaxed);
}
"""

# ------------------------------------------------------------- SIMD functions, per type

SIMD_OPS = [
    "simd_sum(v)",
    "simd_product(q)",
    "simd_min(v)",
    "simd_max(v)",
    "simd_prefix_inclusive_sum(v)",
    "simd_prefix_exclusive_sum(v)",
    "simd_prefix_inclusive_product(q)",
    "simd_prefix_exclusive_product(q)",
    "simd_shuffle(v, (lane * 7 + 3) % 32)",
    "simd_shuffle_up(v, 3)",
    "simd_shuffle_down(v, 5)",
    "simd_shuffle_xor(v, 6)",
    "simd_shuffle_and_fill_up(v, f, 2)",
    "simd_shuffle_and_fill_down(v, f, 3)",
    "simd_shuffle_and_fill_up(v, f, 3, 8)",
    "simd_shuffle_and_fill_down(v, f, 1, 4)",
    "simd_shuffle_rotate_up(v, 3)",
    "simd_shuffle_rotate_down(v, 30)",
    "simd_broadcast(v, 2)",
    "simd_broadcast_first(v)",
    "quad_sum(v)",
    "quad_shuffle(v, (lane + 1) % 4)",
    "quad_prefix_exclusive_sum(v)",
    "quad_shuffle_down(v, 1)",
    "quad_broadcast(v, 3)",
]
INT_OPS = ["simd_and(v)", "simd_or(v)", "simd_xor(v)"]
VOTES = [
    "uint(ulong(simd_ballot(v > T(20))))",
    "uint(simd_all(v < T(50)))",
    "uint(simd_any(v > T(45)))",
    "uint(simd_is_first())",
    "uint(ulong(simd_active_threads_mask()))",
    "uint(simd_ballot(v < T(50)).all())",
    "uint(ushort(quad_ballot(v > T(20))))",
    "uint(quad_is_first())",
]
TYPES = {"float": np.float32, "int": np.int32, "uint": np.uint32}


def _ops_for(t: str) -> list[str]:
    return SIMD_OPS + (INT_OPS if t != "float" else [])


def _simd_source() -> str:
    parts = ["#include <metal_stdlib>", "using namespace metal;", ""]
    for t in TYPES:
        ops = _ops_for(t)
        body = "\n".join(f"        o[{k}] = {e};" for k, e in enumerate(ops))
        votes = "\n".join(f"        w[{k}] = {e};" for k, e in enumerate(VOTES))
        parts.append(
            f"kernel void simd_ops_{t}(device const {t}* x [[buffer(0)]], device const {t}* y [[buffer(1)]],\n"
            f"        device const {t}* p [[buffer(2)]], device {t}* out [[buffer(3)]],\n"
            f"        device uint* votes [[buffer(4)]], constant uint& mode [[buffer(5)]],\n"
            f"        uint gid [[thread_position_in_grid]], uint lane [[thread_index_in_simdgroup]]) {{\n"
            f"    typedef {t} T;\n"
            f"    T v = x[gid], f = y[gid], q = p[gid];\n"
            f"    device T* o = out + gid * {len(ops)};\n"
            f"    device uint* w = votes + gid * {len(VOTES)};\n"
            f"    if (mode == 0 || lane % 3 != 0) {{\n{body}\n{votes}\n    }}\n"
            f"}}\n"
        )
    parts.append(
        r"""
kernel void simd_vectors(device const float4* x [[buffer(0)]], device float4* o4 [[buffer(1)]],
                         device int2* o2 [[buffer(2)]], device float* oh [[buffer(3)]],
                         uint gid [[thread_position_in_grid]], uint lane [[thread_index_in_simdgroup]]) {
    float4 v = x[gid];
    o4[3 * gid] = simd_sum(v);
    o4[3 * gid + 1] = simd_prefix_exclusive_sum(v);
    o4[3 * gid + 2] = simd_shuffle_xor(v, 1);
    int2 iv = int2(v.xy);
    o2[2 * gid] = simd_max(iv);
    o2[2 * gid + 1] = simd_shuffle(iv, 31 - lane);
    half h = half(v.z);
    half4 h4 = half4(v);
    oh[2 * gid] = float(simd_sum(h));
    oh[2 * gid + 1] = float(simd_broadcast(h4, 0).w);
}
"""
    )
    return "\n".join(parts)


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def alg(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(ALGORITHMS)
    return iface


@pytest.fixture(scope="module")
def simd_lib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(_simd_source())
    return iface


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _buf(iface, arr):
    return iface.array_to_buffer(np.ascontiguousarray(arr))


def _zeros(iface, n, dtype="float"):
    b = iface.create_buffer(n, dtype)
    b.contents[:] = 0
    return b


# ----------------------------------------------------------------------- numpy SIMD model


def _simd_groups(grid: int, tg: int):
    """(lanes, global indices) of each SIMD group of a 1-D dispatch."""
    groups = []
    for g0 in range(0, grid, tg):
        size = min(tg, grid - g0)
        for s0 in range(0, size, 32):
            width = min(32, size - s0)
            groups.append([g0 + s0 + lane for lane in range(width)])
    return groups


def _model(op: str, x, y, p, members, active, dtype):
    """Expected results of `op` for the active lanes of one SIMD group (lane -> value)."""
    width = len(members)
    xv = {lane: x[members[lane]] for lane in range(width)}
    yv = {lane: y[members[lane]] for lane in range(width)}
    pv = {lane: p[members[lane]] for lane in range(width)}
    act = sorted(active)
    res = {}

    def get(src, own):
        return xv[src] if src in active else xv[own]

    def reduce(vals, fn):
        acc = vals[0]
        for v in vals[1:]:
            acc = fn(acc, v)
        return dtype(acc)

    with np.errstate(over="ignore"):
        for lane in act:
            j4, b4 = lane % 4, lane - lane % 4
            quad = [k for k in act if k // 4 == lane // 4]
            if op == "simd_sum(v)":
                r = reduce([xv[k] for k in act], lambda a, b: dtype(a + b))
            elif op == "simd_product(q)":
                r = reduce([pv[k] for k in act], lambda a, b: dtype(a * b))
            elif op == "simd_min(v)":
                r = min(xv[k] for k in act)
            elif op == "simd_max(v)":
                r = max(xv[k] for k in act)
            elif op.startswith("simd_prefix"):
                inclusive = "inclusive" in op
                src = pv if "product" in op else xv
                ident = dtype(1) if "product" in op else dtype(0)
                below = [src[k] for k in act if k < lane or (inclusive and k == lane)]
                fn = (lambda a, b: dtype(a * b)) if "product" in op else (lambda a, b: dtype(a + b))
                r = reduce([ident] + below, fn)
            elif op.startswith("simd_shuffle(v"):
                r = get((lane * 7 + 3) % 32, lane)
            elif op == "simd_shuffle_up(v, 3)":
                r = get(lane - 3, lane) if lane >= 3 else xv[lane]
            elif op == "simd_shuffle_down(v, 5)":
                r = get(lane + 5, lane)
            elif op == "simd_shuffle_xor(v, 6)":
                r = get(lane ^ 6, lane)
            elif op.startswith("simd_shuffle_and_fill"):
                args = op[op.index("(") + 1 : -1].split(",")
                delta = int(args[2])
                m = int(args[3]) if len(args) > 3 else 32
                j, base = lane % m, lane - lane % m
                if "up" in op:
                    fill = j < delta
                    src = base + j + m - delta if fill else lane - delta
                else:
                    fill = j + delta >= m
                    src = base + j + delta - m if fill else lane + delta
                if src not in active:
                    r = xv[lane]
                else:
                    r = yv[src] if fill else xv[src]
            elif op == "simd_shuffle_rotate_up(v, 3)":
                r = get((lane - 3) % width, lane)
            elif op == "simd_shuffle_rotate_down(v, 30)":
                r = get((lane + 30) % width, lane)
            elif op == "simd_broadcast(v, 2)":
                r = get(2, lane)
            elif op == "simd_broadcast_first(v)":
                r = xv[act[0]]
            elif op == "quad_sum(v)":
                r = reduce([xv[k] for k in quad], lambda a, b: dtype(a + b))
            elif op.startswith("quad_shuffle(v"):
                r = get(b4 + (lane + 1) % 4, lane)
            elif op == "quad_prefix_exclusive_sum(v)":
                r = reduce([dtype(0)] + [xv[k] for k in quad if k < lane], lambda a, b: dtype(a + b))
            elif op == "quad_shuffle_down(v, 1)":
                r = get(lane + 1, lane) if j4 + 1 < 4 else xv[lane]
            elif op == "quad_broadcast(v, 3)":
                r = get(b4 + 3, lane)
            elif op == "simd_and(v)":
                r = reduce([xv[k] for k in act], lambda a, b: a & b)
            elif op == "simd_or(v)":
                r = reduce([xv[k] for k in act], lambda a, b: a | b)
            elif op == "simd_xor(v)":
                r = reduce([xv[k] for k in act], lambda a, b: a ^ b)
            # votes
            elif op.startswith("uint(ulong(simd_ballot"):
                r = sum(1 << k for k in act if xv[k] > 20)
            elif op.startswith("uint(simd_all"):
                r = 1
            elif op.startswith("uint(simd_any"):
                r = int(any(xv[k] > 45 for k in act))
            elif op == "uint(simd_is_first())":
                r = int(lane == act[0])
            elif op.startswith("uint(ulong(simd_active"):
                r = sum(1 << k for k in act)
            elif op.startswith("uint(simd_ballot"):
                r = 1
            elif op.startswith("uint(ushort(quad_ballot"):
                r = sum(1 << (k - b4) for k in quad if xv[k] > 20)
            elif op == "uint(quad_is_first())":
                r = int(lane == quad[0])
            else:
                raise AssertionError(op)
            res[lane] = r
    return res


GEOMETRIES = [(128, 64), (100, 48), (70, 40), (45, 45)]


@pytest.mark.parametrize("t", list(TYPES))
@pytest.mark.parametrize("divergent", [False, True], ids=["uniform", "divergent"])
@pytest.mark.parametrize("grid,tg", GEOMETRIES, ids=[f"{g}-{t}" for g, t in GEOMETRIES])
def test_simd_functions(simd_lib, t, divergent, grid, tg):
    dtype = TYPES[t]
    rng = _rng(hash((t, grid, tg)) % 1000)
    lo = 0 if t == "uint" else -50
    x = rng.integers(lo, 50, grid).astype(dtype)
    y = rng.integers(lo, 50, grid).astype(dtype)
    if t == "float":
        p = rng.uniform(0.9, 1.1, grid).astype(dtype)
    else:
        p = rng.choice(np.array([1, 1, 1, 2, 3, 1] + ([] if t == "uint" else [-1]), dtype=dtype), grid)
    ops = _ops_for(t)
    out = _zeros(simd_lib, grid * len(ops), t)
    votes = _zeros(simd_lib, grid * len(VOTES), "uint")
    simd_lib.run_function(
        grid, [_buf(simd_lib, x), _buf(simd_lib, y), _buf(simd_lib, p), out, votes, int(divergent)],
        function_name=f"simd_ops_{t}", threadgroup=tg,
    )
    got = out.contents.reshape(grid, len(ops))
    got_votes = votes.contents.reshape(grid, len(VOTES))
    failures = []
    for members in _simd_groups(grid, tg):
        active = {lane for lane in range(len(members)) if not divergent or lane % 3 != 0}
        for k, op in enumerate(ops + VOTES):
            want = _model(op, x, y, p, members, active, dtype)
            table, col = (got, k) if k < len(ops) else (got_votes, k - len(ops))
            for lane, w in want.items():
                g = table[members[lane], col]
                ok = np.isclose(g, w, rtol=2e-5, atol=1e-5) if t == "float" else g == dtype(w) if k < len(ops) else g == w
                if not ok:
                    failures.append(f"{op} lane {lane} of group at {members[0]}: got {g}, want {w}")
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} mismatches)"


def test_simd_vectors_and_half(simd_lib):
    grid, tg = 80, 80  # SIMD groups of 32, 32, 16
    x = _rng(5).integers(-20, 20, (grid, 4)).astype(np.float32)
    o4 = _zeros(simd_lib, grid * 3 * 4)
    o2 = _zeros(simd_lib, grid * 2 * 2, "int")
    oh = _zeros(simd_lib, grid * 2)
    simd_lib.run_function(grid, [_buf(simd_lib, x), o4, o2, oh], function_name="simd_vectors", threadgroup=tg)
    o4 = o4.contents.reshape(grid, 3, 4)
    o2 = o2.contents.reshape(grid, 2, 2)
    oh = oh.contents.reshape(grid, 2)
    for members in _simd_groups(grid, tg):
        xs = x[members]
        w = len(members)
        np.testing.assert_array_equal(o4[members, 0], np.broadcast_to(xs.sum(0), (w, 4)))
        np.testing.assert_array_equal(o4[members, 1], np.cumsum(xs, 0) - xs)
        xor_src = [(lane ^ 1) if (lane ^ 1) < w else lane for lane in range(w)]
        np.testing.assert_array_equal(o4[members, 2], xs[xor_src])
        iv = xs[:, :2].astype(np.int32)
        np.testing.assert_array_equal(o2[members, 0], np.broadcast_to(iv.max(0), (w, 2)))
        src = [(31 - lane) if (31 - lane) < w else lane for lane in range(w)]
        np.testing.assert_array_equal(o2[members, 1], iv[src])
        np.testing.assert_array_equal(oh[members, 0], xs[:, 2].sum())
        np.testing.assert_array_equal(oh[members, 1], xs[0, 3])


# --------------------------------------------------------------------------- algorithms


@pytest.mark.parametrize("tg", [32, 64, 256])
def test_tree_reduction(alg, tg):
    n = 10_000  # not a multiple of any threadgroup size
    x = _rng(1).integers(-100, 100, n).astype(np.float32)
    groups = -(-n // tg)
    out = _zeros(alg, groups)
    alg.run_function(groups * tg, [_buf(alg, x), out, n], function_name="tree_reduce",
                     threadgroup=tg, threadgroup_memory={0: tg * 4})
    padded = np.zeros(groups * tg, np.float32)
    padded[:n] = x
    np.testing.assert_array_equal(out.contents, padded.reshape(groups, tg).sum(1))


def test_tree_reduction_strided(alg):
    n = 1 << 20
    x = _rng(2).integers(-100, 100, n).astype(np.float32)
    groups = 64
    out = _zeros(alg, groups)
    alg.run_function(groups * 256, [_buf(alg, x), out, n], function_name="tree_reduce_strided", threadgroup=256)
    assert out.contents.sum() == x.astype(np.int64).sum()


@pytest.mark.parametrize("tg", [32, 96, 1024, 200])
def test_simd_sum_reduction(alg, tg):
    n = 5000
    x = _rng(3).integers(-100, 100, n).astype(np.float32)
    groups = -(-n // tg)
    out = _zeros(alg, groups)
    # grid = n: the last threadgroup is smaller (and may end in a partial SIMD group)
    alg.run_function(n, [_buf(alg, x), out, n], function_name="simd_reduce", threadgroup=tg)
    padded = np.zeros(groups * tg, np.float32)
    padded[:n] = x
    np.testing.assert_array_equal(out.contents, padded.reshape(groups, tg).sum(1))


def _exclusive_scan(iface, xbuf, n, tg=256):
    groups = -(-n // tg)
    y = _zeros(iface, n, "int")
    sums = _zeros(iface, groups, "int")
    iface.run_function(n, [xbuf, y, sums, n], function_name="scan_groups", threadgroup=tg)
    if groups > 1:
        offsets = _exclusive_scan(iface, sums, groups, tg)
        iface.run_function(n, [y, offsets, n], function_name="add_offsets", threadgroup=tg)
    return y


@pytest.mark.parametrize("n", [1, 100, 256, 70_001])
def test_exclusive_scan(alg, n):
    x = _rng(4).integers(-1000, 1000, n).astype(np.int32)
    y = _exclusive_scan(alg, _buf(alg, x), n)
    expected = np.concatenate([[0], np.cumsum(x)[:-1]]).astype(np.int32)
    np.testing.assert_array_equal(y.contents, expected)


@pytest.mark.parametrize("m,n,k", [(64, 64, 64), (37, 53, 29), (1, 16, 100)])
def test_tiled_matmul(alg, m, n, k):
    rng = _rng(5)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = _zeros(alg, m * n)
    dims = np.array([m, n, k, 0], np.uint32)  # uint3: 16 bytes
    alg.run_function((-(-n // 16) * 16, -(-m // 16) * 16), [_buf(alg, a), _buf(alg, b), c, dims.tobytes()],
                     function_name="matmul_tiled", threadgroup=(16, 16))
    np.testing.assert_allclose(c.contents.reshape(m, n), a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cols", [7, 32, 1000])
def test_softmax_rows(alg, cols):
    rows = 33
    x = (_rng(6).standard_normal((rows, cols)) * 4).astype(np.float32)
    y = _zeros(alg, rows * cols)
    alg.run_function(rows * 32, [_buf(alg, x), y, cols], function_name="softmax_rows", threadgroup=32)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(y.contents.reshape(rows, cols), e / e.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_bitonic_sort(alg):
    groups = 12
    x = _rng(7).standard_normal(groups * 256).astype(np.float32)
    b = _buf(alg, x)
    alg.run_function(groups * 256, [b], function_name="bitonic_sort", threadgroup=256)
    np.testing.assert_array_equal(b.contents.reshape(groups, 256), np.sort(x.reshape(groups, 256), 1))


@pytest.mark.parametrize("kernel", ["histogram_device", "histogram_local"])
def test_histogram(alg, kernel):
    n = 200_003
    x = _rng(8).integers(0, 1 << 20, n).astype(np.uint32)
    hist = _zeros(alg, 64, "uint")
    if kernel == "histogram_device":
        alg.run_function(n, [_buf(alg, x), hist], function_name=kernel, threadgroup=128)
    else:
        alg.run_function(n, [_buf(alg, x), hist, n], function_name=kernel, threadgroup=96)
    np.testing.assert_array_equal(hist.contents, np.bincount(x % 64, minlength=64))


@pytest.mark.parametrize("transpose_b", [False, True])
def test_gemm_simdgroup_matrix(alg, transpose_b):
    rng = _rng(9)
    a = rng.standard_normal((64, 64)).astype(np.float32)
    b = rng.standard_normal((64, 64)).astype(np.float32)
    c = _zeros(alg, 64 * 64)
    bb = b.T.copy() if transpose_b else b
    alg.run_function(64 * 32, [_buf(alg, a), _buf(alg, bb), c, int(transpose_b)],
                     function_name="gemm_simdgroup", threadgroup=128)
    np.testing.assert_allclose(c.contents.reshape(64, 64), a @ b, rtol=1e-4, atol=1e-4)


def test_simdgroup_half_multiply(alg):
    rng = _rng(10)
    a = rng.integers(-4, 4, (8, 8)).astype(np.float16)
    b = rng.integers(-4, 4, (8, 8)).astype(np.float16)
    d = _zeros(alg, 64)
    e = _zeros(alg, 64)
    alg.run_function(32, [_buf(alg, a), _buf(alg, b), d, e], function_name="mma_half", threadgroup=32)
    ab = a.astype(np.float32) @ b.astype(np.float32)
    np.testing.assert_array_equal(d.contents.reshape(8, 8), ab)
    np.testing.assert_array_equal(e.contents.reshape(8, 8), (2 * ab).T)


def test_simdgroup_bfloat_multiply(alg):
    rng = _rng(17)
    a = rng.integers(-4, 4, (8, 8)).astype(np.float32)
    b = rng.integers(-4, 4, (8, 8)).astype(np.float32)
    d = _zeros(alg, 64)
    alg.run_function(32, [_buf(alg, a), _buf(alg, b), d], function_name="mma_bfloat", threadgroup=32)
    np.testing.assert_array_equal(d.contents.reshape(8, 8), a @ b.T + 1)


def test_thread_elements_layout(alg):
    m = np.arange(64, dtype=np.float32).reshape(8, 8)
    lanes = _zeros(alg, 64)
    back = _zeros(alg, 64)
    diag = _zeros(alg, 64)
    alg.run_function(32, [_buf(alg, m), lanes, back, diag], function_name="elements_layout", threadgroup=32)
    expected = np.zeros((32, 2), np.float32)
    for lane in range(32):
        row = ((lane >> 1) & 3) + 4 * ((lane >> 4) & 1)
        col = 2 * (lane & 1) + 4 * ((lane >> 3) & 1)
        expected[lane] = m[row, col], m[row, col + 1]
    np.testing.assert_array_equal(lanes.contents.reshape(32, 2), expected)
    np.testing.assert_array_equal(back.contents.reshape(8, 8), 2 * m)
    np.testing.assert_array_equal(diag.contents.reshape(8, 8), 3 * np.eye(8, dtype=np.float32))


# ------------------------------------------------------------------ barriers and geometry


@pytest.mark.parametrize("tg", [64, 48, 256])
def test_barrier_inside_loop(alg, tg):
    groups, rounds = 3, 5
    x = np.arange(groups * tg, dtype=np.int32) * 10
    y = _zeros(alg, groups * tg, "int")
    alg.run_function(groups * tg, [_buf(alg, x), y, rounds], function_name="barrier_loop", threadgroup=tg)
    local = np.arange(tg)
    expected = np.concatenate([x[g * tg + (local + rounds) % tg] + rounds for g in range(groups)])
    np.testing.assert_array_equal(y.contents, expected)


def test_early_exit_of_a_simd_group(alg):
    groups = 4
    x = _rng(11).integers(-100, 100, groups * 128).astype(np.int32)
    y = _zeros(alg, groups * 128, "int")
    alg.run_function(groups * 128, [_buf(alg, x), y], function_name="early_exit", threadgroup=128)
    got = y.contents.reshape(groups, 4, 32)
    xs = x.reshape(groups, 128)
    for g in range(groups):
        np.testing.assert_array_equal(got[g, 1], -1)
        for sg in (0, 2, 3):
            tids = np.arange(sg * 32, sg * 32 + 32)
            vals = xs[g, tids] + xs[g, (tids + 64) % 128]
            np.testing.assert_array_equal(got[g, sg], vals.sum())


def test_threads_per_threadgroup_at_edges(alg):
    gw, gh, tw, th = 50, 7, 16, 4
    out = _zeros(alg, gw * gh * 4, "uint")
    count = _zeros(alg, 1, "uint")
    alg.run_function((gw, gh), [out, count], function_name="edge_info", threadgroup=(tw, th))
    got = out.contents.reshape(gh, gw, 4)
    assert count.contents[0] == gw * gh  # no out-of-grid thread ran
    for yy in range(gh):
        for xx in range(gw):
            w = min(tw, gw - xx // tw * tw)
            h = min(th, gh - yy // th * th)
            assert tuple(got[yy, xx]) == (w, h, -(-(w * h) // 32), w * h), (xx, yy)


def test_threadgroup_memory_limit(iface):
    iface.load_shader_from_string(ALGORITHMS)
    limit = iface.device.max_threadgroup_memory
    out = iface.create_buffer(64, "float")
    with pytest.raises(ValueError, match="limit|allows"):
        iface.run_function(64, [out], function_name="needs_tg_memory", threadgroup=64,
                           threadgroup_memory={0: limit + 16})
    with pytest.raises(ValueError, match=r"threadgroup\(0\)"):
        iface.run_function(64, [out], function_name="needs_tg_memory", threadgroup=64)
    iface.run_function(64, [out], function_name="needs_tg_memory", threadgroup=64, threadgroup_memory={0: 256})
    np.testing.assert_array_equal(out.contents, 0)


def test_atomics(alg):
    n = 20_000
    v = _rng(12).integers(-100, 100, n).astype(np.int32)
    ai = alg.array_to_buffer(np.array([5, 5, 1 << 30, -(1 << 30), 0, -1], np.int32))
    au = alg.array_to_buffer(np.array([0xFFFFFFFF, 0, 0, 0xFFFFFFFF, 0], np.uint32))
    af = alg.array_to_buffer(np.array([0.0, np.inf, -np.inf], np.float32))
    ab = _zeros(alg, 4, "uchar")
    old = _zeros(alg, n, "int")
    alg.run_function(n, [ai, au, af, ab, _buf(alg, v), old], function_name="atomic_ops", threadgroup=64)
    assert list(ai.contents[:5]) == [5 + v.sum(), 5 - v.sum(), v.min(), v.max(), 2 * n]
    # every old value of the exchange is -1 or another thread's id, each seen once
    olds = np.sort(old.contents)
    final = ai.contents[5]
    assert sorted(set(range(n)) - set(olds.tolist())) == [final]
    assert olds[0] == -1
    xor = np.bitwise_xor.reduce(v.astype(np.uint32))
    assert list(au.contents) == [0, 0xFFFFFFFF, xor, v.min() + 1000, v.max() + 1000]
    np.testing.assert_allclose(af.contents[0], v.sum() * 0.5)
    assert af.contents[1] == v.min() and af.contents[2] == v.max()
    assert ab.contents[0] == int((v > 90).any())


@pytest.mark.skipif(not os.environ.get("METALGPU_TIMINGS"), reason="set METALGPU_TIMINGS=1 to print timings")
def test_cooperative_timings(alg, backend, capsys):
    """Not a benchmark (bench/ has those): prints the cost of barriers for the record."""
    import time

    n = 16 << 20
    x = _rng(13).standard_normal(n).astype(np.float32)
    xb = _buf(alg, x)
    tg = 256
    out = _zeros(alg, n // tg)
    alg.run_function(n, [xb, out, n], function_name="tree_reduce", threadgroup=tg, threadgroup_memory={0: tg * 4})
    t0 = time.perf_counter()
    alg.run_function(n, [xb, out, n], function_name="tree_reduce", threadgroup=tg, threadgroup_memory={0: tg * 4})
    t_tree = time.perf_counter() - t0
    alg.run_function(n, [xb, out, n], function_name="simd_reduce", threadgroup=tg)
    t0 = time.perf_counter()
    alg.run_function(n, [xb, out, n], function_name="simd_reduce", threadgroup=tg)
    t_simd = time.perf_counter() - t0
    t0 = time.perf_counter()
    x.sum()
    t_np = time.perf_counter() - t0

    m = 512
    a = _rng(14).standard_normal((m, m)).astype(np.float32)
    b = _rng(15).standard_normal((m, m)).astype(np.float32)
    ab, bb, c = _buf(alg, a), _buf(alg, b), _zeros(alg, m * m)
    dims = np.array([m, m, m, 0], np.uint32).tobytes()
    alg.run_function((m, m), [ab, bb, c, dims], function_name="matmul_tiled", threadgroup=(16, 16))
    t0 = time.perf_counter()
    alg.run_function((m, m), [ab, bb, c, dims], function_name="matmul_tiled", threadgroup=(16, 16))
    t_mm = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = a @ b
    t_np_mm = time.perf_counter() - t0
    np.testing.assert_allclose(c.contents.reshape(m, m), ref, rtol=1e-3, atol=1e-3)
    with capsys.disabled():
        print(f"\n[{backend}] 16M-float reduction: tree {t_tree * 1e3:.1f} ms, simd_sum {t_simd * 1e3:.1f} ms, "
              f"numpy.sum {t_np * 1e3:.1f} ms; 512x512 tiled matmul {t_mm * 1e3:.1f} ms, "
              f"numpy.matmul {t_np_mm * 1e3:.1f} ms")


ATOMIC_ONLY = r"""
#include <metal_stdlib>
using namespace metal;
// No barrier or SIMD call: threads run as a plain loop, threadgroups on several OS threads.
kernel void count_plain(device const uint* x [[buffer(0)]], device atomic_uint* hist [[buffer(1)]],
                        device atomic_float* total [[buffer(2)]], device atomic<long>* big [[buffer(3)]],
                        uint gid [[thread_position_in_grid]]) {
    atomic_fetch_add_explicit(&hist[x[gid] % 16], 1u, memory_order_relaxed);
    atomic_fetch_add_explicit(total, 1.0f, memory_order_relaxed);
    atomic_fetch_add_explicit(big, long(x[gid]) << 20, memory_order_relaxed);
}
"""


def test_atomics_without_cooperation(iface):
    iface.load_shader_from_string(ATOMIC_ONLY)
    n = 1 << 20
    x = _rng(16).integers(0, 1000, n).astype(np.uint32)
    hist = _zeros(iface, 16, "uint")
    total = _zeros(iface, 1)
    big = _zeros(iface, 1, "long")
    iface.run_function(n, [_buf(iface, x), hist, total, big], function_name="count_plain", threadgroup=64)
    np.testing.assert_array_equal(hist.contents, np.bincount(x % 16, minlength=16))
    assert total.contents[0] == n
    assert big.contents[0] == (x.astype(np.int64) << 20).sum()


PER_KERNEL_SOURCE = """
#include <metal_stdlib>
using namespace metal;
float synced(float x) { threadgroup_barrier(mem_flags::mem_threadgroup); return x; }
struct Reduce { float run(float x) { return simd_sum(x); } };
struct Negate { float apply(float x) { return -x; } };
template <typename Op> kernel void through(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  Op op; o[i] = op.run(o[i]);
}
template <typename Op> kernel void mapped(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  o[i] = Op().apply(o[i]);
}
template [[host_name("through_reduce")]] kernel void through<Reduce>(device float*, uint);
template [[host_name("mapped_negate")]] kernel void mapped<Negate>(device float*, uint);
template <class T, int N = 4>
[[kernel]] void defaulted(device T* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  o[i] = simd_sum(o[i]) * T(N);
}
template [[host_name("defaulted_float")]] [[kernel]] void defaulted<float>(device float*, uint);
template <class T, int N = 4>
[[kernel]] void defaulted_plain(device T* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  o[i] = o[i] * T(N);
}
template [[host_name("defaulted_plain_float")]] [[kernel]] void defaulted_plain<float>(device float*, uint);
kernel void plain(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) { o[i] = cos(o[i]); }
kernel void calls_helper(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) { o[i] = synced(o[i]); }
kernel void storage(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]],
                    uint l [[thread_index_in_threadgroup]]) {
  threadgroup float t[64]; t[l] = o[i]; threadgroup_barrier(mem_flags::mem_threadgroup); o[i] = t[63 - l];
}
"""


@pytest.mark.parametrize("kernel,cooperates", [
    ("plain", False), ("mapped_negate", False), ("calls_helper", True), ("through_reduce", True),
    ("storage", True), ("defaulted_float", True), ("defaulted_plain_float", False)])
def test_cooperation_is_decided_per_kernel_from_what_it_calls(kernel, cooperates):
    # Issue 11: a file-wide flag ran every kernel of a file as fibers once one had a barrier.
    out = mg.translate(PER_KERNEL_SOURCE, kernel, target="cpu")
    # A cooperating kernel runs as fibers, or as work-item loops (issue 13).
    assert ("run_groups_cooperative" in out or "run_groups_wil" in out) == cooperates


def test_plain_and_cooperative_kernels_of_one_file_compute_correctly(iface):
    iface.load_shader_from_string(PER_KERNEL_SOURCE)
    x = np.arange(64, dtype=np.float32)
    for name, expect in [("plain", np.cos(x)), ("mapped_negate", -x), ("storage", x[::-1]),
                         ("through_reduce", np.tile([x[:32].sum(), x[32:].sum()], (32, 1)).T.ravel())]:
        buf = iface.array_to_buffer(x)
        iface.run_function(64, [buf], function_name=name, threadgroup=64)
        np.testing.assert_allclose(buf.contents, expect, rtol=1e-6, atol=2e-5, err_msg=name)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/self/maps")
def test_many_cooperative_shaders_do_not_multiply_fiber_stack_mappings(backend, monkeypatch):
    # Fiber stacks were mapped per module and OS thread, a guard page each: a few dozen loaded
    # cooperative shaders exhausted vm.max_map_count (65,530) and the next mmap failed.
    if backend != "cpu":
        pytest.skip("fibers are the cpu backend's")
    monkeypatch.setenv("METALGPU_CPU_FIBERS", "1")  # these kernels would run as work-item loops
    iface = mg.Interface("cpu")

    def maps():
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)

    before = None
    for k in range(40):
        iface.load_shader_from_string(f"""
#include <metal_stdlib>
using namespace metal;
kernel void rev{k}(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]],
                   uint l [[thread_index_in_threadgroup]]) {{
  threadgroup float t[64]; t[l] = o[i]; threadgroup_barrier(mem_flags::mem_threadgroup);
  o[i] = t[63 - l] + {k}.0f;
}}""")
        b = iface.array_to_buffer(np.arange(128, dtype=np.float32))
        iface.run_function(128, [b], function_name=f"rev{k}", threadgroup=64)
        np.testing.assert_array_equal(b.contents[:64], np.arange(64)[::-1] + k)
        if k == 4:
            before = maps()
    # One set of stacks per OS thread, whatever the number of shaders.
    assert maps() - before < 2000


# A barrier inside code only some lanes of a SIMD group run (MLX's gemv_t does this): Apple
# GPUs let the SIMD group through with the lanes that reach it, and the lanes meet again after
# the `if`, where a SIMD-group reduction needs them all. CUDA's __syncthreads waits for every
# lane of a warp, so the cuda backend gives such a kernel warp-counting barriers and makes the
# lanes meet after the statement where they parted.
PARTED_BARRIERS = """
#include <metal_stdlib>
using namespace metal;
// Column sums: 4 columns per threadgroup, lane % 4 picks the column; the 8 lanes of a column in
// each of the 2 SIMD groups take every 16th row, then add up by shuffles and threadgroup memory.
kernel void column_sums(device const float* m [[buffer(0)]], device float* out [[buffer(1)]],
                        constant uint& rows [[buffer(2)]], constant uint& cols [[buffer(3)]],
                        threadgroup float* part [[threadgroup(0)]],
                        uint group [[threadgroup_position_in_grid]], uint lane [[thread_index_in_simdgroup]],
                        uint sg [[simdgroup_index_in_threadgroup]]) {
  const uint col = group * 4 + lane % 4, slice = lane / 4;
  float s = 0.0f;
  if (col < cols) {
    for (uint r = sg * 8 + slice; r < rows; r += 16) {
      threadgroup_barrier(mem_flags::mem_none);
      s += m[r * cols + col];
    }
  }
  for (ushort d = 16; d >= 4; d >>= 1) s += simd_shuffle_down(s, d);
  if (slice == 0) part[sg * 4 + lane] = s;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (sg == 0 && slice == 0 && col < cols) out[col] = part[lane] + part[4 + lane];
}
"""


@pytest.mark.parametrize("cols", [300, 3, 64])
def test_a_barrier_only_some_lanes_reach_lets_their_simd_group_through(backend, cols):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(PARTED_BARRIERS)
    rows = 200
    m = _rng(11).standard_normal((rows, cols)).astype(np.float32)
    out = _zeros(iface, cols)
    groups = -(-cols // 4)
    iface.run_function(groups * 64, [_buf(iface, m), out, np.uint32(rows), np.uint32(cols)],
                       function_name="column_sums", threadgroup=64, threadgroup_memory={0: 8 * 4})
    np.testing.assert_allclose(out.contents, m.sum(axis=0), rtol=1e-4, atol=1e-4)
