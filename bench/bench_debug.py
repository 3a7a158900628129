"""Cost of debug mode (issue 12): the same kernels with and without METALGPU_DEBUG's checks
(cpu: bounds of every subscript, *p and p->; threadgroup races; barriers. cuda: bounds).

    python bench/bench_debug.py [--backend cpu|cuda] [--quick] [--out bench/results]

Target: debug mode at most 10x slower than normal mode on the basic and the cooperative
kernels. Writes <out>/debug_<backend>.md/.json; the `ratio` column is normal / debug, so the
slowdown is its inverse (also in the `target` column).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# numpy is only the oracle here. OpenBLAS's threads spin for a while after each product it
# computes (A @ B in a check), taking a core from the kernel timed next: seen as a 1 ms matmul
# taking 1.8 ms, and its debug-mode twin 10 ms instead of 7, depending on timing.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _common import BLAS_SETTLE_S, Result, Stats, machine_info, report
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


class Mode:
    """One Interface (normal or debug mode) with the benchmark's buffers."""

    def __init__(self, backend, debug, x, A, B):
        n, m = x.size, A.shape[0]
        self.iface = iface = mg.Interface(backend=backend, debug=debug)
        self.bx, self.by = iface.array_to_buffer(x), iface.create_buffer(n, "float")
        self.bA, self.bB = iface.array_to_buffer(A), iface.array_to_buffer(B)
        self.bC = iface.create_buffer(m * m, "float")
        self.partial = iface.create_buffer(n // 256, "float")
        self.partial_s = iface.create_buffer(n // 32, "float")

    def prepare(self, src, fn, grid, buffers, check, **kw):
        """The kernel's call, run once and checked against numpy."""
        self.iface.load_shader_from_string(src)
        self.iface.set_function(fn)
        bufs = buffers(self)

        def go():
            self.iface.run_function(grid, bufs, **kw)

        go()
        check(self)
        return go


def kernels(x, A, B):
    """name -> (source, function, grid, buffers of a Mode, check of a Mode, launch keywords)."""
    n, m = x.size, A.shape[0]
    tg = 256

    product = A @ B

    def matmul_ok(md):
        np.testing.assert_allclose(md.bC.contents.reshape(m, m), product, rtol=1e-3, atol=1e-3)

    return {
        f"cos, {n >> 20}M float32 (basic)": (
            BASIC, "cosine", n, lambda md: [md.bx, md.by],
            lambda md: np.testing.assert_allclose(md.by.contents, np.cos(x), atol=1e-5), {}),
        f"saxpy, {n >> 20}M float32 (basic)": (
            BASIC, "saxpy", n, lambda md: [md.bx, md.by, np.float32(2.0)], lambda md: None, {}),
        f"naive matmul {m}x{m} (basic)": (
            BASIC, "naive_matmul", (m, m), lambda md: [md.bA, md.bB, md.bC, np.uint32(m)], matmul_ok, {}),
        f"sum {n >> 20}M, threadgroup tree + barriers (cooperative)": (
            COOPERATIVE, "tree_sum", n, lambda md: [md.bx, md.partial],
            lambda md: np.testing.assert_equal(float(md.partial.contents.sum()), float(x.sum())),
            {"threadgroup": tg, "threadgroup_memory": {0: tg * 4}}),
        f"sum {n >> 20}M, simd_sum (cooperative)": (
            COOPERATIVE, "simd_reduce", n, lambda md: [md.bx, md.partial_s],
            lambda md: np.testing.assert_equal(float(md.partial_s.contents.sum()), float(x.sum())),
            {"threadgroup": tg}),
        f"matmul {m}x{m}, 16x16 threadgroup tiles (cooperative)": (
            COOPERATIVE, "tiled_matmul", (m, m), lambda md: [md.bA, md.bB, md.bC, np.uint32(m)], matmul_ok,
            {"threadgroup": (16, 16)}),
    }


def time_interleaved(normal, debug, reps):
    """Both modes' calls in turn (normal, debug, normal, ...): the machine's drift from run to
    run - it moves a 1 ms kernel by half - falls on both alike."""
    time.sleep(BLAS_SETTLE_S)
    normal(), debug()  # warm-up
    samples = {False: [], True: []}
    clock = time.perf_counter
    for _ in range(reps):
        for is_debug, go in ((False, normal), (True, debug)):
            t0 = clock()
            go()
            samples[is_debug].append(clock() - t0)
    return Stats(samples[False]), Stats(samples[True])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    reps = 3 if args.quick else 15
    n = (1 << 20) if args.quick else (8 << 20)
    m = 128 if args.quick else 256
    rng = np.random.default_rng(0)
    x = rng.integers(-8, 8, n).astype(np.float32)
    A = rng.standard_normal((m, m)).astype(np.float32)
    B = rng.standard_normal((m, m)).astype(np.float32)

    modes = {False: Mode(args.backend, False, x, A, B), True: Mode(args.backend, True, x, A, B)}
    results = []
    for name, (src, fn, grid, buffers, check, kw) in kernels(x, A, B).items():
        calls = [modes[d].prepare(src, fn, grid, buffers, check, **kw) for d in (False, True)]
        t_normal, t_debug = time_interleaved(*calls, reps)
        slowdown = t_debug.median / t_normal.median
        results.append(Result(name, t_debug.median, t_normal.median, "normal mode",
                              target=f"<= 10x slower (is {slowdown:.1f}x)", met=slowdown <= 10.0,
                              raw={"debug": t_debug.summary(), "normal": t_normal.summary()}))
    common = ("metalgpu = the kernel in debug mode; reference = the same kernel without it. Medians of "
              f"{reps} calls of each, the two modes' calls interleaved.")
    if args.backend == "cuda":
        notes = [common, ("cuda: bounds checks only; every access looks its region up among the launch's "
                          "slots, and a debug dispatch waits for its kernel and reads the fault report back.")]
    else:
        notes = [common,
                 ("Normal mode vectorises the basic kernels across threads (8-16 lanes, libmvec's "
                  "vector cos). In debug mode (since 2026-12-05) `arg[i]`, with `i` the kernel's "
                  "scalar thread_position_in_grid, is checked once per share of the dispatch and the "
                  "loop runs in a copy where such accesses are plain, so cos and saxpy vectorise as "
                  "in normal mode (before: 21.6x and 7.5x, a check per access keeping the loop "
                  "scalar). Other accesses through a buffer argument check against its buffer, looked "
                  "up once per share (naive matmul)."),
                 ("Cooperative kernels run as work-item loops in both modes. Each access to threadgroup "
                  "memory goes through the race detector: an aligned 4-byte access (a float, an int, "
                  "each word of a float4) is recorded in one record per word, in a few comparisons when "
                  "no other thread touched the word in the interval; narrower accesses keep a shadow cell "
                  "per byte. Reads between two barriers with no write between them cannot race and are "
                  "only bounds-checked (the tiled matmul's inner loop). History: 2026-12-05, a thread's "
                  "turn in a loop no longer works out its grid position (tree sum 11x -> 5x); tiled "
                  "matmul 90x -> 42-71x (settled words) -> 14-20x (quiet reads); 2026-12-06, word "
                  "records (tree sum 5.5x -> 3x, tiled matmul -> the figure above). Earlier runs of "
                  "this table timed the tiled matmul right after its check's numpy product, whose "
                  "OpenBLAS threads kept spinning on the 2 cores: normal mode 1.0-1.8 ms and debug "
                  "mode 7-11 ms from run to run; now OpenBLAS runs one thread and the modes alternate.")]
    report(results, args.out, f"debug_{args.backend}", f"Debug mode against normal mode ({args.backend} backend)",
           machine=machine_info(), config={"quick": args.quick, "n": n, "matmul": m}, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
