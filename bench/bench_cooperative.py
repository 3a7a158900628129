"""Cost of cooperation on the CPU backend (issue 4): kernels with barriers and SIMD-group
functions run each thread as a fiber, switched at every barrier.

    python bench/bench_cooperative.py [--quick] [--out bench/results] [--backend cpu]

Measures a 16M-float reduction (threadgroup tree with barriers; and simd_sum) against
numpy.sum, and a 16x16 tiled matmul with barriers at 512x512 against numpy.matmul. Writes
<out>/cooperative_<backend>.md/.json.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import Result, machine_info, measure, report  # noqa: E402

import metalgpu as mg  # noqa: E402

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

kernel void tree_sum(device const float* in [[buffer(0)]], device float* partial [[buffer(1)]],
                     threadgroup float* tmp [[threadgroup(0)]],
                     uint i [[thread_position_in_grid]], uint lid [[thread_position_in_threadgroup]],
                     uint group [[threadgroup_position_in_grid]], uint n [[threads_per_threadgroup]]) {
    tmp[lid] = in[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = n / 2; s > 0; s >>= 1) {
        if (lid < s) tmp[lid] += tmp[lid + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (lid == 0) partial[group] = tmp[0];
}

kernel void simd_reduce(device const float* in [[buffer(0)]], device float* partial [[buffer(1)]],
                        uint i [[thread_position_in_grid]], uint lane [[thread_index_in_simdgroup]],
                        uint sg [[simdgroup_index_in_threadgroup]], uint group [[threadgroup_position_in_grid]],
                        uint sgs [[simdgroups_per_threadgroup]]) {
    float s = simd_sum(in[i]);
    if (lane == 0) partial[group * sgs + sg] = s;
}

kernel void tiled_matmul(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                         device float* C [[buffer(2)]], constant uint& N [[buffer(3)]],
                         uint2 gid [[thread_position_in_grid]], uint2 lid [[thread_position_in_threadgroup]]) {
    threadgroup float ta[16][16];
    threadgroup float tb[16][16];
    float acc = 0.0f;
    for (uint t = 0; t < N; t += 16) {
        ta[lid.y][lid.x] = A[gid.y * N + t + lid.x];
        tb[lid.y][lid.x] = B[(t + lid.y) * N + gid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint k = 0; k < 16; ++k) acc += ta[lid.y][k] * tb[k][lid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    C[gid.y * N + gid.x] = acc;
}
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    reps = 3 if args.quick else 5
    n = (1 << 20) if args.quick else (16 << 20)
    iface = mg.Interface(backend=args.backend)
    iface.load_shader_from_string(SOURCE)
    rng = np.random.default_rng(0)
    x = rng.integers(-8, 8, n).astype(np.float32)  # small integers: exact float sums
    buf = iface.array_to_buffer(x)
    results = []

    tg = 256
    partial = iface.create_buffer(n // tg, "float")
    iface.set_function("tree_sum")

    def tree():
        iface.run_function(n, [buf, partial], threadgroup=tg, threadgroup_memory={0: tg * 4})
        return float(partial.contents.sum())

    assert tree() == float(x.sum())
    t_tree = measure(tree, repeat=reps, warmup=1)
    t_np = measure(lambda: float(x.sum()), repeat=20)
    results.append(Result(f"sum {n >> 20}M float32, threadgroup tree (barriers)", t_tree.median, t_np.median,
                          "numpy.sum", target="reported (correct fallback)", raw={"m": t_tree.summary()}))

    partial_s = iface.create_buffer(n // 32, "float")
    iface.set_function("simd_reduce")

    def simd():
        iface.run_function(n, [buf, partial_s], threadgroup=tg)
        return float(partial_s.contents.sum())

    assert simd() == float(x.sum())
    t_simd = measure(simd, repeat=reps, warmup=1)
    results.append(Result(f"sum {n >> 20}M float32, simd_sum", t_simd.median, t_np.median, "numpy.sum",
                          target="reported", raw={"m": t_simd.summary()}))

    m = 256 if args.quick else 512
    A = rng.standard_normal((m, m)).astype(np.float32)
    B = rng.standard_normal((m, m)).astype(np.float32)
    bA, bB, bC = iface.array_to_buffer(A), iface.array_to_buffer(B), iface.create_buffer(m * m, "float")
    iface.set_function("tiled_matmul")

    def tiled():
        iface.run_function((m, m), [bA, bB, bC, m], threadgroup=(16, 16))

    tiled()
    np.testing.assert_allclose(bC.contents.reshape(m, m), A @ B, rtol=1e-3, atol=1e-3)
    t_mm = measure(tiled, repeat=reps, warmup=1)
    t_npmm = measure(lambda: A @ B, repeat=20)
    results.append(Result(f"matmul {m}x{m}, 16x16 tiles + barriers", t_mm.median, t_npmm.median, "numpy.matmul",
                          target="reported (correct fallback)", raw={"m": t_mm.summary()}))

    report(results, args.out, f"cooperative_{args.backend}", f"Cooperative kernels ({args.backend} backend)",
           machine=machine_info(), config={"quick": args.quick, "n": n, "matmul": m},
           notes=["On the CPU each thread of a cooperative kernel is a fiber; every barrier switches "
                  "all of a group's fibers, so these kernels are correct but slower than numpy, "
                  "which runs the same reductions as tight vector loops."])
    return 0


if __name__ == "__main__":
    sys.exit(main())
