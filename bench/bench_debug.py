"""Cost of debug mode on the cpu backend (issue 12): the same kernels with and without
METALGPU_DEBUG's checks (bounds of every subscript, *p and p->; threadgroup races; barriers).

    python bench/bench_debug.py [--quick] [--out bench/results]

Target: debug mode at most 10x slower than normal mode on the basic and the cooperative
kernels. Writes <out>/debug_cpu.md/.json; the `ratio` column is normal / debug, so the
slowdown is its inverse (also in the `target` column).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import Result, machine_info, measure, report
from bench_cooperative import SOURCE as COOPERATIVE

import metalgpu as mg

BASIC = r"""
#include <metal_stdlib>
using namespace metal;

kernel void cosine(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) {
    out[i] = cos(in[i]);
}

kernel void saxpy(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                  constant float& a [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    y[i] = a * x[i] + y[i];
}

kernel void naive_matmul(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                         device float* C [[buffer(2)]], constant uint& N [[buffer(3)]],
                         uint2 gid [[thread_position_in_grid]]) {
    float acc = 0.0f;
    for (uint k = 0; k < N; ++k) acc += A[gid.y * N + k] * B[k * N + gid.x];
    C[gid.y * N + gid.x] = acc;
}
"""


def time_kernels(debug, x, A, B, reps):
    """Median times of the basic and cooperative kernels, each checked against numpy first."""
    n, m = x.size, A.shape[0]
    iface = mg.Interface(backend="cpu", debug=debug)
    basic, coop = BASIC, COOPERATIVE
    bx, by = iface.array_to_buffer(x), iface.create_buffer(n, "float")
    bA, bB, bC = iface.array_to_buffer(A), iface.array_to_buffer(B), iface.create_buffer(m * m, "float")
    tg = 256
    partial = iface.create_buffer(n // tg, "float")
    partial_s = iface.create_buffer(n // 32, "float")

    def run(src, fn, grid, bufs, check, **kw):
        iface.load_shader_from_string(src)
        iface.set_function(fn)

        def go():
            iface.run_function(grid, bufs, **kw)

        go()
        check()
        return measure(go, repeat=reps, warmup=1)

    timings = {
        f"cos, {n >> 20}M float32 (basic)": run(basic, "cosine", n, [bx, by],
                                       lambda: np.testing.assert_allclose(by.contents, np.cos(x), atol=1e-5)),
        f"saxpy, {n >> 20}M float32 (basic)": run(basic, "saxpy", n, [bx, by, np.float32(2.0)], lambda: None),
        f"naive matmul {m}x{m} (basic)": run(
            basic, "naive_matmul", (m, m), [bA, bB, bC, np.uint32(m)],
            lambda: np.testing.assert_allclose(bC.contents.reshape(m, m), A @ B, rtol=1e-3, atol=1e-3)),
        f"sum {n >> 20}M, threadgroup tree + barriers (cooperative)": run(
            coop, "tree_sum", n, [bx, partial], lambda: np.testing.assert_equal(float(partial.contents.sum()),
                                                                                float(x.sum())),
            threadgroup=tg, threadgroup_memory={0: tg * 4}),
        f"sum {n >> 20}M, simd_sum (cooperative)": run(
            coop, "simd_reduce", n, [bx, partial_s],
            lambda: np.testing.assert_equal(float(partial_s.contents.sum()), float(x.sum())), threadgroup=tg),
        f"matmul {m}x{m}, 16x16 threadgroup tiles (cooperative)": run(
            coop, "tiled_matmul", (m, m), [bA, bB, bC, np.uint32(m)],
            lambda: np.testing.assert_allclose(bC.contents.reshape(m, m), A @ B, rtol=1e-3, atol=1e-3),
            threadgroup=(16, 16)),
    }
    return timings


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    reps = 3 if args.quick else 7
    n = (1 << 20) if args.quick else (8 << 20)
    m = 128 if args.quick else 256
    rng = np.random.default_rng(0)
    x = rng.integers(-8, 8, n).astype(np.float32)
    A = rng.standard_normal((m, m)).astype(np.float32)
    B = rng.standard_normal((m, m)).astype(np.float32)

    modes = {debug: time_kernels(debug, x, A, B, reps) for debug in (False, True)}

    results = []
    for name, t_debug in modes[True].items():
        t_normal = modes[False][name]
        slowdown = t_debug.median / t_normal.median
        results.append(Result(name, t_debug.median, t_normal.median, "normal mode",
                              target=f"<= 10x slower (is {slowdown:.1f}x)", met=slowdown <= 10.0,
                              raw={"debug": t_debug.summary(), "normal": t_normal.summary()}))
    report(results, args.out, "debug_cpu", "Debug mode against normal mode (cpu backend)",
           machine=machine_info(), config={"quick": args.quick, "n": n, "matmul": m},
           notes=["metalgpu = the kernel in debug mode; reference = the same kernel without it.",
                  ("Normal mode vectorises the basic kernels across threads (8-16 lanes, libmvec's "
                   "vector cos). In debug mode (since 2026-12-05) `arg[i]`, with `i` the kernel's "
                   "scalar thread_position_in_grid, is checked once per share of the dispatch and the "
                   "loop runs in a copy where such accesses are plain, so cos and saxpy vectorise as "
                   "in normal mode (before: 21.6x and 7.5x, a check per access keeping the loop "
                   "scalar). Other accesses through a buffer argument check against its buffer, looked "
                   "up once per share (naive matmul)."),
                  ("Cooperative kernels run as work-item loops in both modes. Each access to threadgroup "
                   "memory goes through the race detector (a shadow cell per byte; a word that several "
                   "threads have read in an interval is settled once and then costs one comparison), "
                   "except reads between two barriers with no write between them, which cannot race "
                   "and are only bounds-checked (the tiled matmul's inner loop). 2026-12-05: a thread's "
                   "turn in a loop no longer works out its grid position (tree sum 11x -> 5x); tiled "
                   "matmul 90x -> 42-71x (settled words) -> the figure above (quiet reads). Its normal "
                   "mode takes 1.0-1.8 ms from run to run, which moves the ratio as much.")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
