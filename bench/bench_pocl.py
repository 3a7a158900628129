"""Cooperative kernels on the cpu backend against PoCL (issue 13), interleaved in one run.

    python bench/bench_pocl.py [--quick] [--out bench/results]

Each kernel is written twice with the same algorithm - in MSL for metalgpu, in OpenCL C for
PoCL (pyopencl's `pocl` extra: `pip install "pyopencl[pocl]"`, a bench-only dependency) - and
both are checked against numpy before they are timed. Rows: softmax with barrier-tree
reductions, a 16x16-tiled matmul, a reduction (barrier tree, and simd_sum against PoCL's
barrier tree: PoCL has no work-group or sub-group reductions), a prefix scan, a histogram with threadgroup atomics, a simdgroup_matrix
gemm against numpy's BLAS, and 10M `cos` (a kernel that does not cooperate) against numpy.
metalgpu runs each cooperative kernel in both cpu modes: work-item loops (the default) and
fibers (METALGPU_CPU_FIBERS=1). Times are wall time per call, dispatch and wait included
(PoCL: enqueue + finish), median of several calls. Writes <out>/cooperative_vs_pocl.md/.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import Result, machine_info, measure, report, run_child

import metalgpu as mg

MSL = r"""
#include <metal_stdlib>
using namespace metal;

// One 256-thread group per row: max and sum by barrier trees.
kernel void softmax(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                    constant uint& cols [[buffer(2)]],
                    uint row [[threadgroup_position_in_grid]], uint t [[thread_index_in_threadgroup]]) {
    threadgroup float red[256];
    device const float* xr = x + row * cols;
    float m = -INFINITY;
    for (uint c = t; c < cols; c += 256) m = max(m, xr[c]);
    red[t] = m;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = 128; s > 0; s >>= 1) {
        if (t < s) red[t] = max(red[t], red[t + s]);
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    const float mx = red[0];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float sum = 0.0f;
    for (uint c = t; c < cols; c += 256) sum += exp(xr[c] - mx);
    red[t] = sum;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = 128; s > 0; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    const float inv = 1.0f / red[0];
    for (uint c = t; c < cols; c += 256) y[row * cols + c] = exp(xr[c] - mx) * inv;
}

kernel void tiled_matmul(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                         device float* C [[buffer(2)]], constant uint& N [[buffer(3)]],
                         uint2 gid [[thread_position_in_grid]], uint2 lid [[thread_position_in_threadgroup]]) {
    threadgroup float As[16][16];
    threadgroup float Bs[16][16];
    float acc = 0.0f;
    for (uint t = 0; t < N; t += 16) {
        As[lid.y][lid.x] = A[gid.y * N + t + lid.x];
        Bs[lid.y][lid.x] = B[(t + lid.y) * N + gid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint k = 0; k < 16; ++k) acc += As[lid.y][k] * Bs[k][lid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    C[gid.y * N + gid.x] = acc;
}

kernel void tree_sum(device const float* x [[buffer(0)]], device float* partial [[buffer(1)]],
                     uint i [[thread_position_in_grid]], uint t [[thread_index_in_threadgroup]],
                     uint g [[threadgroup_position_in_grid]]) {
    threadgroup float red[256];
    red[t] = x[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = 128; s > 0; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (t == 0) partial[g] = red[0];
}

kernel void simd_tree_sum(device const float* x [[buffer(0)]], device float* partial [[buffer(1)]],
                          uint i [[thread_position_in_grid]], uint g [[threadgroup_position_in_grid]],
                          uint sg [[simdgroup_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float part[8];
    const float s = simd_sum(x[i]);
    if (lane == 0) part[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (sg == 0) {
        const float v = simd_sum(lane < 8 ? part[lane] : 0.0f);
        if (lane == 0) partial[g] = v;
    }
}

// Inclusive scan of each 256-element block (Hillis-Steele).
kernel void block_scan(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                       uint i [[thread_position_in_grid]], uint t [[thread_index_in_threadgroup]]) {
    threadgroup float sh[256];
    sh[t] = x[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint off = 1; off < 256; off <<= 1) {
        const float v = t >= off ? sh[t - off] : 0.0f;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        sh[t] += v;
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    y[i] = sh[t];
}

kernel void histogram(device const uint* x [[buffer(0)]], device atomic_uint* bins [[buffer(1)]],
                      uint i [[thread_position_in_grid]], uint t [[thread_index_in_threadgroup]]) {
    threadgroup atomic_uint local_bins[256];
    atomic_store_explicit(&local_bins[t], 0u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k = 0; k < 16; ++k)
        atomic_fetch_add_explicit(&local_bins[x[i * 16 + k] & 255u], 1u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    atomic_fetch_add_explicit(&bins[t], atomic_load_explicit(&local_bins[t], memory_order_relaxed),
                              memory_order_relaxed);
}

// 4 simdgroups per group, each a 16x16 block of C from 8x8 simdgroup matrices (32x32 per group).
kernel void sgm_gemm(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                     device float* C [[buffer(2)]], constant uint& N [[buffer(3)]],
                     uint2 g [[threadgroup_position_in_grid]], uint sg [[simdgroup_index_in_threadgroup]]) {
    const uint row = g.y * 32 + (sg / 2) * 16, col = g.x * 32 + (sg % 2) * 16;
    simdgroup_float8x8 acc[2][2];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) acc[i][j] = make_filled_simdgroup_matrix<float, 8>(0.0f);
    for (uint k = 0; k < N; k += 8) {
        simdgroup_float8x8 a[2], b[2];
        for (int i = 0; i < 2; ++i) simdgroup_load(a[i], A + (row + 8 * i) * N + k, N);
        for (int j = 0; j < 2; ++j) simdgroup_load(b[j], B + k * N + col + 8 * j, N);
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);
    }
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) simdgroup_store(acc[i][j], C + (row + 8 * i) * N + col + 8 * j, N);
}

kernel void k_cos(device const float* a [[buffer(0)]], device float* out [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) { out[i] = cos(a[i]); }
"""

OPENCL = r"""
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void softmax(__global const float* x, __global float* y, uint cols) {
    __local float red[256];
    const uint row = get_group_id(0), t = get_local_id(0);
    __global const float* xr = x + row * cols;
    float m = -INFINITY;
    for (uint c = t; c < cols; c += 256) m = fmax(m, xr[c]);
    red[t] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = 128; s > 0; s >>= 1) {
        if (t < s) red[t] = fmax(red[t], red[t + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float mx = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float sum = 0.0f;
    for (uint c = t; c < cols; c += 256) sum += exp(xr[c] - mx);
    red[t] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = 128; s > 0; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float inv = 1.0f / red[0];
    for (uint c = t; c < cols; c += 256) y[row * cols + c] = exp(xr[c] - mx) * inv;
}

__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void tiled_matmul(__global const float* A, __global const float* B, __global float* C, uint N) {
    __local float As[16][16];
    __local float Bs[16][16];
    const uint gx = get_global_id(0), gy = get_global_id(1), lx = get_local_id(0), ly = get_local_id(1);
    float acc = 0.0f;
    for (uint t = 0; t < N; t += 16) {
        As[ly][lx] = A[gy * N + t + lx];
        Bs[ly][lx] = B[(t + ly) * N + gx];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint k = 0; k < 16; ++k) acc += As[ly][k] * Bs[k][lx];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    C[gy * N + gx] = acc;
}

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void tree_sum(__global const float* x, __global float* partial) {
    __local float red[256];
    const uint t = get_local_id(0);
    red[t] = x[get_global_id(0)];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = 128; s > 0; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) partial[get_group_id(0)] = red[0];
}

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void block_scan(__global const float* x, __global float* y) {
    __local float sh[256];
    const uint t = get_local_id(0), i = get_global_id(0);
    sh[t] = x[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint off = 1; off < 256; off <<= 1) {
        const float v = t >= off ? sh[t - off] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        sh[t] += v;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    y[i] = sh[t];
}

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void histogram(__global const uint* x, __global uint* bins) {
    __local uint local_bins[256];
    const uint t = get_local_id(0), i = get_global_id(0);
    local_bins[t] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint k = 0; k < 16; ++k) atomic_inc(&local_bins[x[i * 16 + k] & 255u]);
    barrier(CLK_LOCAL_MEM_FENCE);
    atomic_add(&bins[t], local_bins[t]);
}

__kernel void k_cos(__global const float* a, __global float* out) {
    const size_t i = get_global_id(0);
    out[i] = cos(a[i]);
}
"""


class Pocl:
    """PoCL's CPU device through pyopencl, or None where it is not installed."""

    def __init__(self):
        import pyopencl as cl

        # The first PoCL that can build for this CPU: the wheel's LLVM 14 does not know newer CPUs
        # ("unknown target CPU 'generic'" on Zen 5), where a distribution's PoCL (Debian's
        # pocl-opencl-icd, which targets a fixed CPU variant) still works.
        errors = []
        for platform in (p for p in cl.get_platforms() if "Portable" in p.name):
            try:
                device = platform.get_devices()[0]
                ctx = cl.Context([device])
                self.prg = cl.Program(ctx, OPENCL).build(options=["-cl-std=CL2.0"])
            except cl.Error as e:
                errors.append(f"{platform.version}: {str(e).splitlines()[-3:]}")
                continue
            self.cl, self.device, self.ctx = cl, device, ctx
            self.queue = cl.CommandQueue(ctx)
            self.name = f"{platform.version} on {device.name}"
            return
        raise RuntimeError("no PoCL platform builds here: " + "; ".join(errors))

    def buffer(self, a: np.ndarray):
        mf = self.cl.mem_flags
        return self.cl.Buffer(self.ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=a)

    def empty(self, nbytes: int):
        return self.cl.Buffer(self.ctx, self.cl.mem_flags.READ_WRITE, nbytes)

    def run(self, name, grid, local, *args):
        getattr(self.prg, name)(self.queue, grid, local, *args)
        self.queue.finish()

    def read(self, buf, like: np.ndarray) -> np.ndarray:
        out = np.empty_like(like)
        self.cl.enqueue_copy(self.queue, out, buf)
        self.queue.finish()
        return out


def metalgpu_modes():
    """An Interface per cpu mode: work-item loops (default) and fibers."""
    out = {}
    for mode, env in (("loops", None), ("fibers", "1")):
        if env:
            os.environ["METALGPU_CPU_FIBERS"] = env
        else:
            os.environ.pop("METALGPU_CPU_FIBERS", None)
        iface = mg.Interface(backend="cpu")
        iface.load_shader_from_string(MSL)
        out[mode] = iface
    os.environ.pop("METALGPU_CPU_FIBERS", None)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    reps = 5 if args.quick else 11
    rng = np.random.default_rng(0)
    pocl = Pocl()
    ifaces = metalgpu_modes()
    results: list[Result] = []

    def add(name, run_mg, run_cl, check, target, ref_name="PoCL", ref_time=None):
        """Checks then times each metalgpu mode against the reference, interleaved."""
        times = {}
        for mode in ifaces:
            check(run_mg(mode))
        if run_cl is not None:
            check(run_cl())
        for _ in range(2):  # interleave: the rounds alternate between the implementations
            for mode in ifaces:
                t = measure(lambda mode=mode: run_mg(mode), repeat=reps, warmup=1).median
                times[mode] = min(times.get(mode, t), t)
            if run_cl is not None:
                t = measure(run_cl, repeat=reps, warmup=1).median
                times["ref"] = min(times.get("ref", t), t)
        ref = times.get("ref", ref_time)
        for mode in ifaces:
            met = None
            if target is not None and ref:
                met = times[mode] <= target * ref
            goal = f"<= {target:g}x {ref_name}" if target else "reported"
            results.append(Result(f"{name} [{mode}]", times[mode], ref, ref_name, target=goal if mode == "loops" else "-",
                                  met=met if mode == "loops" else None))
        print(f"{name}: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in times.items()), flush=True)

    # softmax 1024x1024
    rows = cols = 512 if args.quick else 1024
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    ref = np.exp(x - x.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    mbufs = {m: (i.array_to_buffer(x), i.create_buffer(rows * cols, "float")) for m, i in ifaces.items()}
    cx, cy = pocl.buffer(x), pocl.empty(x.nbytes)

    def mg_softmax(mode):
        iface = ifaces[mode]
        bx, by = mbufs[mode]
        iface.set_function("softmax")
        iface.run_function((rows * 256, 1, 1), [bx, by, np.uint32(cols)], threadgroup=(256, 1, 1))
        return by.contents.reshape(rows, cols)

    add(f"softmax {rows}x{cols}, 256-thread groups, barrier trees", mg_softmax,
        lambda: (pocl.run("softmax", (rows * 256,), (256,), cx, cy, np.uint32(cols)), pocl.read(cy, x))[1],
        lambda out: np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-7), 1.0)

    # tiled matmul 256
    n = 256
    a = rng.integers(-4, 4, (n, n)).astype(np.float32)
    b = rng.integers(-4, 4, (n, n)).astype(np.float32)
    mm = {m: (i.array_to_buffer(a), i.array_to_buffer(b), i.create_buffer(n * n, "float")) for m, i in ifaces.items()}
    ca, cb, cc = pocl.buffer(a), pocl.buffer(b), pocl.empty(a.nbytes)

    def mg_tiled(mode):
        iface = ifaces[mode]
        ba, bb, bc = mm[mode]
        iface.set_function("tiled_matmul")
        iface.run_function((n, n, 1), [ba, bb, bc, np.uint32(n)], threadgroup=(16, 16, 1))
        return bc.contents.reshape(n, n)

    add(f"tiled matmul {n}, 16x16 tiles in threadgroup memory", mg_tiled,
        lambda: (pocl.run("tiled_matmul", (n, n), (16, 16), ca, cb, cc, np.uint32(n)), pocl.read(cc, a))[1],
        lambda out: np.testing.assert_array_equal(out, a @ b), 1.0)

    # reductions
    count = (1 << 20) if args.quick else (4 << 20)
    xs = rng.integers(-8, 8, count).astype(np.float32)
    parts = count // 256
    red = {m: (i.array_to_buffer(xs), i.create_buffer(parts, "float")) for m, i in ifaces.items()}
    cxs, cpart = pocl.buffer(xs), pocl.empty(parts * 4)
    expect = xs.reshape(-1, 256).sum(1)

    def mg_reduce(kernel):
        def go(mode):
            iface = ifaces[mode]
            bx, bp = red[mode]
            iface.set_function(kernel)
            iface.run_function((count, 1, 1), [bx, bp], threadgroup=(256, 1, 1))
            return bp.contents
        return go

    check_red = lambda out: np.testing.assert_array_equal(out, expect)
    add(f"reduction {count >> 20}M floats, barrier tree", mg_reduce("tree_sum"),
        lambda: (pocl.run("tree_sum", (count,), (256,), cxs, cpart), pocl.read(cpart, expect))[1], check_red, 1.0)
    # PoCL has no work_group_reduce_add (nor sub-group reductions): its barrier tree stands in.
    add(f"reduction {count >> 20}M floats, simd_sum (PoCL: barrier tree)", mg_reduce("simd_tree_sum"),
        lambda: (pocl.run("tree_sum", (count,), (256,), cxs, cpart), pocl.read(cpart, expect))[1],
        check_red, 1.0)

    # prefix scan
    sc = {m: (i.array_to_buffer(xs), i.create_buffer(count, "float")) for m, i in ifaces.items()}
    cys = pocl.empty(xs.nbytes)
    scan_ref = np.cumsum(xs.reshape(-1, 256), axis=1).ravel()

    def mg_scan(mode):
        iface = ifaces[mode]
        bx, by = sc[mode]
        iface.set_function("block_scan")
        iface.run_function((count, 1, 1), [bx, by], threadgroup=(256, 1, 1))
        return by.contents

    add(f"prefix scan {count >> 20}M floats, 256-element blocks", mg_scan,
        lambda: (pocl.run("block_scan", (count,), (256,), cxs, cys), pocl.read(cys, xs))[1],
        lambda out: np.testing.assert_array_equal(out, scan_ref), 1.0)

    # histogram
    hv = rng.integers(0, 1 << 20, count).astype(np.uint32)
    hist_ref = np.bincount(hv & 255, minlength=256).astype(np.uint32)
    hb = {m: (i.array_to_buffer(hv), i.create_buffer(256, "uint")) for m, i in ifaces.items()}
    chv, cbins = pocl.buffer(hv), pocl.empty(256 * 4)

    def mg_hist(mode):
        iface = ifaces[mode]
        bx, bb = hb[mode]
        bb.contents[:] = 0
        iface.set_function("histogram")
        iface.run_function((count // 16, 1, 1), [bx, bb], threadgroup=(256, 1, 1))
        return bb.contents

    def cl_hist():
        pocl.cl.enqueue_fill_buffer(pocl.queue, cbins, np.uint32(0), 0, 256 * 4)
        pocl.run("histogram", (count // 16,), (256,), chv, cbins)
        return pocl.read(cbins, hist_ref)

    add(f"histogram {count >> 20}M uints, 256 bins, threadgroup atomics", mg_hist, cl_hist,
        lambda out: np.testing.assert_array_equal(out, hist_ref), 1.0)

    # simdgroup_matrix gemm vs numpy
    for size in ((256,) if args.quick else (256, 512)):
        ga = rng.standard_normal((size, size)).astype(np.float32)
        gb = rng.standard_normal((size, size)).astype(np.float32)
        gm = {m: (i.array_to_buffer(ga), i.array_to_buffer(gb), i.create_buffer(size * size, "float"))
              for m, i in ifaces.items()}

        def mg_gemm(mode, gm=gm, size=size):
            iface = ifaces[mode]
            ba, bb, bc = gm[mode]
            iface.set_function("sgm_gemm")
            iface.run_function((size // 32 * 128, size // 32, 1), [ba, bb, bc, np.uint32(size)], threadgroup=(128, 1, 1))
            return bc.contents.reshape(size, size)

        t_np = measure(lambda ga=ga, gb=gb: ga @ gb, repeat=20).median
        ref_mm = ga @ gb
        # OpenBLAS's threads spin for a while after a call (about 0.1 s) before they sleep: on a
        # 2-core machine they would take the cores from whatever is timed next.
        time.sleep(0.5)
        add(f"simdgroup_matrix gemm {size}", mg_gemm, None,
            lambda out, ref_mm=ref_mm: np.testing.assert_allclose(out, ref_mm, rtol=1e-4, atol=1e-3), 5.0,
            ref_name="numpy BLAS", ref_time=t_np)

    # a kernel that does not cooperate: 10M cos
    m10 = (1 << 20) if args.quick else 10_000_000
    xc = rng.standard_normal(m10).astype(np.float32)
    iface = ifaces["loops"]
    bxc, byc = iface.array_to_buffer(xc), iface.create_buffer(m10, "float")
    iface.set_function("k_cos")

    def mg_cos():
        iface.run_function((m10, 1, 1), [bxc, byc])

    mg_cos()
    np.testing.assert_allclose(byc.contents, np.cos(xc), rtol=1e-5, atol=1e-6)
    t_cos = measure(mg_cos, repeat=reps, warmup=1).median
    t_npcos = measure(lambda: np.cos(xc), repeat=reps, warmup=1).median
    results.append(Result(f"{m10 / 1e6:g}M cos (no cooperation)", t_cos, t_npcos, "numpy.cos", target="<= 0.5x numpy",
                          met=t_cos <= 0.5 * t_npcos))

    # Compile time of a small kernel: cold (a fresh process, no kernel cache) and warm (its
    # module from the disk cache), best of 3 fresh processes each.
    compile_child = r"""
import json, time, metalgpu as mg
src = ("#include <metal_stdlib>\nusing namespace metal;\nkernel void scale(device float* x [[buffer(0)]],"
       " uint i [[thread_position_in_grid]]) { x[i] = x[i] * FACTOR; }\n")
t = time.perf_counter()
iface = mg.Interface(backend="cpu")
iface.load_shader_from_string(src)
iface.set_function("scale")
print(json.dumps({"s": time.perf_counter() - t}))
"""
    with tempfile.TemporaryDirectory() as cache:
        cold = min(run_child(compile_child.replace("FACTOR", f"{k + 2}.5f"), env={"METALGPU_CACHE_DIR": "0"})["s"]
                   for k in range(3))
        warm_code = compile_child.replace("FACTOR", "3.5f")
        run_child(warm_code, env={"METALGPU_CACHE_DIR": cache})
        warm = min(run_child(warm_code, env={"METALGPU_CACHE_DIR": cache})["s"] for _ in range(3))
    results.append(Result("small kernel: Interface + load + set_function, cold (no cache)", cold,
                          target="< 200 ms", met=cold < 0.2))
    results.append(Result("small kernel: the same, warm (disk cache)", warm, target="reported"))

    report(results, args.out, "cooperative_vs_pocl", "Cooperative kernels on the cpu backend vs PoCL",
           machine=machine_info(), config={"quick": args.quick, "pocl": pocl.name},
           notes=[("[loops]: work-item loops, the cpu backend's default for kernels whose barriers sit "
                   "in structured control flow; [fibers]: the same kernel with METALGPU_CPU_FIBERS=1, "
                   "each GPU thread a fiber switched at every barrier."),
                  ("SIMD-group functions in [loops]: a simd_sum is recorded per thread, then computed "
                   "once per SIMD group; simdgroup_load/store/multiply_accumulate run once per SIMD "
                   "group on all 32 lanes' elements (8-wide rows, no exchange)."),
                  ("numpy's BLAS (OpenBLAS, 2 threads) is timed first; the bench then waits 0.5 s, "
                   "since its threads spin after a call and would take the cores from what follows.")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
