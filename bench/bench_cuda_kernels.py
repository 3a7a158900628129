"""Kernels on the cuda backend beside PyTorch, in one run on one GPU: our MSL kernels (softmax,
a sum, cos, two gemms with simdgroup matrices, a tiled gemm) and, where ../shared/corpus is
present, real-library kernels driven as their hosts drive them (MLX's steel gemm, ggml's mul_mm,
soft_max and rms_norm). Wall time per call including synchronisation: `reps` calls queued, then
one wait, for both.

    python bench/bench_cuda_kernels.py [--out bench/results] [--quick]

Writes <out>/cuda_kernels.md and .json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _common import Result, report

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the corpus drivers the tests use (ggml argument blocks)

MSL = r"""
#include <metal_stdlib>
using namespace metal;

// One threadgroup of 256 threads per row of n floats: max and sum through simd_max / simd_sum
// and threadgroup memory.
kernel void softmax_rows(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                         constant uint& n [[buffer(2)]], uint row [[threadgroup_position_in_grid]],
                         uint tid [[thread_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]],
                         uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float part[8];
    device const float* xr = x + ulong(row) * n;
    float m = -INFINITY;
    for (uint i = tid; i < n; i += 256) m = max(m, xr[i]);
    m = simd_max(m);
    if (lane == 0) part[sg] = m;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    m = simd_max(lane < 8 ? part[lane] : -INFINITY);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float s = 0.0f;
    for (uint i = tid; i < n; i += 256) s += exp(xr[i] - m);
    s = simd_sum(s);
    if (lane == 0) part[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    s = simd_sum(lane < 8 ? part[lane] : 0.0f);
    const float inv = 1.0f / s;
    for (uint i = tid; i < n; i += 256) y[ulong(row) * n + i] = exp(xr[i] - m) * inv;
}

// Each thread adds 4 floats; simd_sum, one partial per SIMD group, one atomic per threadgroup.
kernel void sum_all(device const float4* x [[buffer(0)]], device atomic_float* total [[buffer(1)]],
                    uint gid [[thread_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                    uint lane [[thread_index_in_simdgroup]], uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float part[8];
    const float4 v = x[gid];
    float s = simd_sum(v.x + v.y + v.z + v.w);
    if (lane == 0) part[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (sg == 0) {
        s = simd_sum(lane < 8 ? part[lane] : 0.0f);
        if (lane == 0) atomic_fetch_add_explicit(total, s, memory_order_relaxed);
    }
}

kernel void cos_all(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                    uint i [[thread_position_in_grid]]) { y[i] = cos(x[i]); }

// C = A B (n x n, row-major): a threadgroup of 4 SIMD groups computes a 64 x 64 block, each SIMD
// group 32 x 32 as 4 x 4 tiles of 8 x 8, reading A and B straight from device memory.
template <typename T>
void sg_gemm(device const T* A, device const T* B, device float* C, uint n, uint2 tg, uint sg) {
    const uint row0 = tg.y * 64 + (sg / 2) * 32, col0 = tg.x * 64 + (sg % 2) * 32;
    simdgroup_float8x8 acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = make_filled_simdgroup_matrix<float, 8>(0.0f);
    for (uint k = 0; k < n; k += 8) {
        simdgroup_matrix<T, 8, 8> a[4], b[4];
        for (int i = 0; i < 4; ++i) simdgroup_load(a[i], A, n, ulong2(k, row0 + 8 * i));
        for (int j = 0; j < 4; ++j) simdgroup_load(b[j], B, n, ulong2(col0 + 8 * j, k));
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);
    }
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) simdgroup_store(acc[i][j], C, n, ulong2(col0 + 8 * j, row0 + 8 * i));
}
kernel void sg_gemm_float(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                          device float* C [[buffer(2)]], constant uint& n [[buffer(3)]],
                          uint2 tg [[threadgroup_position_in_grid]], uint sg [[simdgroup_index_in_threadgroup]]) {
    sg_gemm<float>(A, B, C, n, tg, sg);
}
kernel void sg_gemm_half(device const half* A [[buffer(0)]], device const half* B [[buffer(1)]],
                         device float* C [[buffer(2)]], constant uint& n [[buffer(3)]],
                         uint2 tg [[threadgroup_position_in_grid]], uint sg [[simdgroup_index_in_threadgroup]]) {
    sg_gemm<half>(A, B, C, n, tg, sg);
}

// C = A B with 16 x 16 threadgroup tiles.
kernel void tiled_gemm(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                       device float* C [[buffer(2)]], constant uint& n [[buffer(3)]],
                       uint2 gid [[thread_position_in_grid]], uint2 lid [[thread_position_in_threadgroup]]) {
    threadgroup float ta[16][16], tb[16][16];
    float s = 0.0f;
    for (uint k = 0; k < n; k += 16) {
        ta[lid.y][lid.x] = A[gid.y * n + k + lid.x];
        tb[lid.y][lid.x] = B[(k + lid.y) * n + gid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint j = 0; j < 16; ++j) s += ta[lid.y][j] * tb[j][lid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    C[gid.y * n + gid.x] = s;
}
"""


def per_call(run, sync, reps: int, rounds: int = 5) -> float:
    """Best of `rounds` of: `reps` calls, one synchronisation; seconds per call."""
    run()
    sync()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            run()
        sync()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


class Runner:
    """A kernel launch with fixed arguments, queued without waiting."""

    def __init__(self, iface, function, grid, buffers, threadgroup=None, threadgroup_memory=None):
        self.iface, self.function, self.grid, self.buffers = iface, function, grid, buffers
        self.threadgroup, self.threadgroup_memory = threadgroup, threadgroup_memory

    def __call__(self):
        # function None: the one set_function chose (with its function constants)
        self.iface.run_function(self.grid, self.buffers, self.function, wait_for_completion=False,
                                threadgroup=self.threadgroup, threadgroup_memory=self.threadgroup_memory)


def own_kernels(mg, torch, reps):
    iface = mg.Interface("cuda")
    iface.load_shader_from_string(MSL)
    r = np.random.default_rng(0)
    out = []
    tsync = torch.cuda.synchronize
    msync = iface.synchronize

    def row(name, mg_run, torch_run, target, limit):
        t_mg = per_call(mg_run, msync, reps)
        t_torch = per_call(torch_run, tsync, reps)
        ratio = t_mg / t_torch
        out.append(Result(name, t_mg, target=target, met=None if limit is None else ratio <= limit, reference=t_torch,
                          reference_name="PyTorch"))
        print(f"{name}: {t_mg * 1e3:.4f} ms vs {t_torch * 1e3:.4f} ms ({ratio:.2f}x)", flush=True)

    # softmax 4096 x 4096
    n = 4096
    x = r.standard_normal((n, n)).astype(np.float32)
    xb, yb = iface.array_to_buffer(x), iface.create_buffer(n * n, "float")
    run = Runner(iface, "softmax_rows", (n * 256, 1, 1), [xb, yb, np.uint32(n)], threadgroup=(256, 1, 1))
    run()
    iface.synchronize()
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(yb.contents.reshape(n, n), e / e.sum(1, keepdims=True), rtol=1e-4, atol=1e-7)
    tx = torch.from_numpy(x).cuda()
    row("softmax 4096x4096 (simd_max/simd_sum, barriers)", run, lambda: torch.softmax(tx, 1), "<= 1.3x", 1.3)

    # sum of 16M floats
    m = 16 * 1024 * 1024
    v = r.random(m, dtype=np.float32)
    vb, total = iface.array_to_buffer(v), iface.create_buffer(1, "float")
    run = Runner(iface, "sum_all", (m // 4, 1, 1), [vb, total], threadgroup=(256, 1, 1))
    tv = torch.from_numpy(v).cuda()
    row("sum of 16M floats (simd_sum, threadgroup, atomic)", run, lambda: tv.sum(), "<= 1.3x", 1.3)

    # 10M cos
    c = 10_000_000
    cx = r.random(c, dtype=np.float32)
    cb, co = iface.array_to_buffer(cx), iface.create_buffer(c, "float")
    run = Runner(iface, "cos_all", (c, 1, 1), [cb, co])
    tc = torch.from_numpy(cx).cuda()
    row("10M cos", run, lambda: torch.cos(tc), "<= 1.3x", 1.3)

    # gemms, 2048
    g = 2048
    a, b = r.standard_normal((g, g)).astype(np.float32), r.standard_normal((g, g)).astype(np.float32)
    torch.backends.cuda.matmul.allow_tf32 = False
    ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
    cbuf = iface.create_buffer(g * g, "float")
    ab, bb = iface.array_to_buffer(a), iface.array_to_buffer(b)
    expect = a.astype(np.float64) @ b.astype(np.float64)
    for name, kernel, bufs, tol in (("float", "sg_gemm_float", [ab, bb], 1e-4),):
        run = Runner(iface, kernel, (g // 64 * 32, g // 64 * 4, 1), bufs + [cbuf, np.uint32(g)], threadgroup=(32, 4, 1))
        run()
        iface.synchronize()
        err = np.abs(cbuf.contents.reshape(g, g) - expect).max() / np.abs(expect).max()
        print(f"simdgroup gemm {name}: max error / max |C| = {err:.2e}", flush=True)
        assert err < tol, err
        row(f"simdgroup_matrix gemm 2048, {name} (4 simdgroups x 4x4 8x8 tiles)", run, lambda: ta @ tb,
            "<= 2x torch.matmul fp32 (no TF32)", 2.0)
    ah, bh = a.astype(np.float16), b.astype(np.float16)
    ahb, bhb = iface.array_to_buffer(ah), iface.array_to_buffer(bh)
    run = Runner(iface, "sg_gemm_half", (g // 64 * 32, g // 64 * 4, 1), [ahb, bhb, cbuf, np.uint32(g)], threadgroup=(32, 4, 1))
    run()
    iface.synchronize()
    eh = ah.astype(np.float64) @ bh.astype(np.float64)
    err = np.abs(cbuf.contents.reshape(g, g) - eh).max() / np.abs(eh).max()
    print(f"simdgroup gemm half: max error / max |C| = {err:.2e}", flush=True)
    assert err < 1e-4, err
    tah, tbh = ta.half(), tb.half()
    row("simdgroup_matrix gemm 2048, half in, float out", run, lambda: tah @ tbh, "<= 1.5x torch.matmul fp16", 1.5)
    run = Runner(iface, "tiled_gemm", (g, g, 1), [ab, bb, cbuf, np.uint32(g)], threadgroup=(16, 16, 1))
    row("tiled gemm 2048 (16x16 threadgroup tiles)", run, lambda: ta @ tb, "-", None)
    return out


def library_kernels(mg, torch, reps, out):
    """MLX steel gemm, softmax, rms_norm, rope and ggml's mul_mm, soft_max, rms_norm, as the corpus
    tests drive them."""
    import corpus
    if not corpus.CORPUS.is_dir():
        print("no ../shared/corpus: library kernels skipped")
        return
    import test_corpus_mlx_linalg as lin

    tsync = torch.cuda.synchronize

    def row(name, iface, mg_run, torch_run, target, limit):
        t_mg = per_call(mg_run, iface.synchronize, reps)
        t_torch = per_call(torch_run, tsync, reps)
        out.append(Result(name, t_mg, target=target, met=t_mg / t_torch <= limit, reference=t_torch,
                          reference_name="PyTorch"))
        print(f"{name}: {t_mg * 1e3:.4f} ms vs {t_torch * 1e3:.4f} ms ({t_mg / t_torch:.2f}x)", flush=True)

    r = np.random.default_rng(1)
    # MLX steel gemm at 4096, nn, 64 x 64 x 16 tiles, 2 x 2 SIMD groups
    iface = mg.Interface("cuda")
    corpus.load_mlx(iface, "steel/gemm/kernels/steel_gemm_fused.metal")
    n = 4096
    for dtype, tname, tt in ((np.float16, "float16", torch.float16), (lin.BF16, "bfloat16", torch.bfloat16),
                             (np.float32, "float32", torch.float32)):
        a, a64 = lin.random_in(r, dtype, (1, n, n))
        b, b64 = lin.random_in(r, dtype, (1, n, n))
        name = f"steel_gemm_fused_nn_{tname}_{tname}_bm64_bn64_bk16_wm2_wn2"
        iface.set_function(name, constants={"has_batch": False, "use_out_source": False, "do_axpby": False,
                                            "align_M": True, "align_N": True, "align_K": True})
        p = np.zeros((), lin.GEMM_PARAMS)
        p["M"], p["N"], p["K"], p["lda"], p["ldb"], p["ldd"] = n, n, n, n, n, n
        p["tiles_n"], p["tiles_m"] = n // 64, n // 64
        p["batch_stride_a"], p["batch_stride_b"], p["batch_stride_d"] = n * n, n * n, n * n
        p["swizzle_log"], p["gemm_k_iterations_aligned"], p["batch_ndim"] = 0, n // 16, 1
        o = lin.new_buffer(iface, n * n, dtype)
        bufs = [lin.to_buffer(iface, a, dtype), lin.to_buffer(iface, b, dtype), None, o, p.tobytes()]
        run = Runner(iface, None, (n // 64 * 32, n // 64 * 2, 2), bufs, threadgroup=(32, 2, 2))
        run()
        iface.synchronize()
        got = lin.read_out(o, dtype, (n, n))
        ref = a64[0] @ b64[0]
        err = np.abs(got - ref).max() / np.abs(ref).max()
        print(f"steel gemm {tname}: max error / max |C| = {err:.2e}", flush=True)
        ta = torch.from_numpy(a64[0]).to(tt).cuda()
        tb = torch.from_numpy(b64[0]).to(tt).cuda()
        row(f"MLX steel gemm 4096, {tname}", iface, run, lambda ta=ta, tb=tb: ta @ tb, "<= 1.5x torch.matmul", 1.5)

    # MLX softmax and rms_norm (one row per threadgroup, 4096 x 4096 f32) and rope (f32,
    # 32 heads x 4096 positions x 128), driven as softmax.cpp, normalization.cpp and rope.cpp do
    import test_corpus_families as fam
    import test_corpus_mlx_ops as ops

    x = r.standard_normal((n, n)).astype(np.float32)
    tx = torch.from_numpy(x).cuda()
    mi = mg.Interface("cuda")
    corpus.load_mlx(mi, "softmax.metal")
    mi.set_function("block_softmax_float32")
    tg = fam.mlx_row_threadgroup(n, 4)
    xb, ob = mi.array_to_buffer(x), mi.create_buffer(n * n, "float")
    run = Runner(mi, None, (n * tg, 1, 1), [xb, ob, np.int32(n)], threadgroup=(tg, 1, 1))
    run()
    mi.synchronize()
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(ob.contents.reshape(n, n), e / e.sum(1, keepdims=True), rtol=1e-4, atol=1e-7)
    row("MLX softmax f32 4096x4096", mi, run, lambda: torch.softmax(tx, -1), "<= 1.3x", 1.3)

    ri = mg.Interface("cuda")
    corpus.load_mlx(ri, "rms_norm.metal")
    ri.set_function("rmsfloat32")
    w = r.standard_normal(n).astype(np.float32)
    tw = torch.from_numpy(w).cuda()
    rb = ri.create_buffer(n * n, "float")
    run = Runner(ri, None, (n * tg, 1, 1), [ri.array_to_buffer(x), ri.array_to_buffer(w), rb, np.float32(1e-5),
                                            np.uint32(n), np.uint32(1)], threadgroup=(tg, 1, 1))
    run()
    ri.synchronize()
    expect = x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + 1e-5) * w
    np.testing.assert_allclose(rb.contents.reshape(n, n), expect, rtol=1e-4, atol=1e-4)
    row("MLX rms_norm f32 4096x4096", ri, run, lambda: torch.nn.functional.rms_norm(tx, (n,), tw, eps=1e-5),
        "<= 1.3x", 1.3)

    # rope: B = 1, N = 32 heads, T = 4096 positions, D = 128, offset 0, not traditional
    pi = mg.Interface("cuda")
    corpus.load_mlx(pi, "rope.metal")
    pi.set_function("rope_float32", constants={1: True, 2: False, 3: False})
    B, N, T, D = 1, 32, 4096, 128
    base = 10000.0
    q = r.standard_normal((B, N, T, D)).astype(np.float32)
    qb, qo = pi.array_to_buffer(q), pi.create_buffer(q.size, "float")
    bufs = [qb, qo, pi.array_to_buffer(np.array(0, np.int32)), np.float32(1.0), ops.i64s(T * D, D, 1),
            ops.i64s(T * D, D, 1), np.int64(0), np.int32(N), None, None, np.float32(np.log2(base))]
    grid = (D // 2, T, B * -(-N // 4))
    run = Runner(pi, None, grid, bufs, threadgroup=ops.block_dims(*grid))
    run()
    pi.synchronize()
    expect = ops.rope_reference(q, D, False, base, 1.0, np.zeros(B, np.int32), None, True)
    # The kernel's angle is position * frequency in float32: at position 4096 off by ~2.5e-4
    # rad from the float64 reference, so elements of a few units differ by up to ~2e-3 (seen on
    # an H100: 902 of 16M elements past 1e-3, the largest 2.3e-3).
    np.testing.assert_allclose(qo.contents.reshape(q.shape), expect, rtol=1e-3, atol=5e-3)
    inv = 1.0 / base ** (np.arange(D // 2) / (D // 2))
    ang = np.arange(T)[:, None] * inv[None, :]
    tcos = torch.from_numpy(np.cos(ang).astype(np.float32)).cuda()
    tsin = torch.from_numpy(np.sin(ang).astype(np.float32)).cuda()
    tq = torch.from_numpy(q).cuda()

    def torch_rope():  # the usual PyTorch RoPE (halves rotated), cos/sin tables precomputed
        x1, x2 = tq[..., : D // 2], tq[..., D // 2:]
        return torch.cat((x1 * tcos - x2 * tsin, x1 * tsin + x2 * tcos), dim=-1)

    row("MLX rope f32 (32 heads x 4096 x 128)", pi, run, torch_rope, "<= 1.3x", 1.3)

    # ggml: one library, three kernels
    gi = mg.Interface("cuda")
    fam.load_ggml(gi)
    captured = {}
    real_dispatch = fam.dispatch

    def capture(iface, groups, tg, buffers, smem=None):
        captured.update(groups=groups, tg=tg, buffers=buffers, smem=smem)
        real_dispatch(iface, groups, tg, buffers, smem)

    fam.dispatch = capture
    try:
        def replay(function):
            g, t = captured["groups"], captured["tg"]
            grid = tuple(int(x) * int(y) for x, y in zip(tuple(g) + (1,) * (3 - len(g)), tuple(t) + (1,) * (3 - len(t))))
            smem = captured["smem"]
            return Runner(gi, None, grid, captured["buffers"], threadgroup=tuple(int(x) for x in tuple(t) + (1,) * (3 - len(t))),
                          threadgroup_memory=None if smem is None else (smem if isinstance(smem, dict) else {0: int(smem)}))

        # mul_mm f16: dst = a @ b^T, a 4096 x 4096 f16, b 4096 x 4096 f32
        a = r.standard_normal((1, 1, n, n)).astype(np.float16)
        b = r.standard_normal((1, 1, n, n)).astype(np.float32)
        _, path = fam.run_ggml_mul_mat(gi, "f16", a, a.shape, b)
        assert path == "mul_mm", path
        run = replay("kernel_mul_mm_f16_f32")
        ta, tb = torch.from_numpy(a[0, 0]).cuda(), torch.from_numpy(b[0, 0]).half().cuda()
        row("ggml mul_mm f16 4096 (b f32)", gi, run, lambda: tb @ ta.T, "<= 2x torch.matmul fp16", 2.0)

        # soft_max f32, 4096 rows of 4096, no mask
        x = r.standard_normal((1, 1, n, n)).astype(np.float32)
        fields = {**fam.src0(x.shape, 4), **fam.src1(x.shape, 4), **fam.dst(x.shape, 4), "scale": 1.0,
                  "max_bias": 0.0, "m0": 1.0, "m1": 1.0, "n_head_log2": 1}
        args = fam.kargs("soft_max", **fam.only(fields, "soft_max"))
        xb, ob = gi.array_to_buffer(x), gi.create_buffer(x.size, np.float32)
        gi.set_function("kernel_soft_max_f32_4")
        capture(gi, (n, 1, 1), (1024, 1, 1), [args, xb, xb, xb, ob], smem=32 * 4)
        run = replay("kernel_soft_max_f32_4")
        e = np.exp(x[0, 0] - x[0, 0].max(1, keepdims=True))
        np.testing.assert_allclose(ob.contents.reshape(n, n), e / e.sum(1, keepdims=True), rtol=1e-4, atol=1e-7)
        tx = torch.from_numpy(x[0, 0]).cuda()
        row("ggml soft_max f32 4096x4096", gi, run, lambda: torch.softmax(tx, -1), "<= 1.3x", 1.3)

        # rms_norm f32, 4096 rows of 4096
        ne, nb = fam.ne_nb(x.shape[1:], 4)
        z = [0, 0]
        args = fam.kargs("norm", ne00=n, ne00_t=n // 4, nb1=nb[1], nb2=nb[2], nb3=nb[3], eps=1e-5,
                         nef1=[ne[1]] + z, nef2=[ne[2]] + z, nef3=[ne[3]] + z,
                         nbf1=[nb[1]] + z, nbf2=[nb[2]] + z, nbf3=[nb[3]] + z)
        gi.set_function("kernel_rms_norm_f32_4")
        capture(gi, (ne[1], ne[2], ne[3]), (1024, 1, 1), [args, xb, xb, xb, ob], smem=32 * 4)
        run = replay("kernel_rms_norm_f32_4")
        expect = x[0, 0] / np.sqrt((x[0, 0].astype(np.float64) ** 2).mean(-1, keepdims=True) + 1e-5)
        np.testing.assert_allclose(ob.contents.reshape(n, n), expect, rtol=1e-4, atol=1e-4)
        row("ggml rms_norm f32 4096x4096", gi, run, lambda: torch.nn.functional.rms_norm(tx, (n,), eps=1e-5),
            "<= 1.3x", 1.3)
    finally:
        fam.dispatch = real_dispatch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import torch

    import metalgpu as mg

    reps = 10 if args.quick else 50
    results = own_kernels(mg, torch, reps)
    try:  # rows measured before a library kernel fails are kept; the failure is reported
        library_kernels(mg, torch, max(5, reps // 5), results)
    except (RuntimeError, AssertionError, ValueError) as e:
        print(f"library kernels: {type(e).__name__}: {e}", flush=True)
    notes = [f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}; fp32 matmul without TF32",
             "wall time per call including synchronisation: best of 5 rounds of queued calls and one wait"]
    report(results, args.out, "cuda_kernels", "CUDA kernels beside PyTorch", notes=notes)


if __name__ == "__main__":
    main()
