"""Probes behind the CUDA dispatch and end-to-end numbers (run on a GPU machine with CuPy).

1. What a launch costs as its parameter block grows: the same empty kernel launched through
   CuPy with a 16-byte and with a ~1.8 KB by-value struct parameter (metalgpu's generic launch
   block is 1.8 KB), queued and with a synchronize.
2. Where the time of the 10M-element end-to-end run goes: the host write into .contents, the
   dispatch (copy in, kernel, copy out), the host read - for metalgpu and for CuPy with pinned
   buffers.
Writes probe_cuda_overheads.md under the results folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import metalgpu as mg
from bench_cuda import median_time  # this folder is on sys.path when run as a script

SRC = r"""
struct Big { unsigned char bytes[%d]; };
struct Small { float* p; unsigned n; };
extern "C" __global__ void small_k(Small s) { if (threadIdx.x == 1000) s.p[0] = 0; }
extern "C" __global__ void big_k(const __grid_constant__ Big b) { if (threadIdx.x == 1000) ((float*)0)[b.bytes[0]] = 0; }
"""

MSL = """#include <metal_stdlib>
using namespace metal;
kernel void k_cos(const device float* a [[buffer(0)]], device float* out [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) { out[i] = cos(a[i]); }
"""


def med(fn, reps):
    return median_time(fn, reps, warmup=0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    import cupy as cp

    rows = []
    big_bytes = 1776
    mod = cp.RawModule(code=SRC % big_bytes, options=("-std=c++17",))
    small_k, big_k = mod.get_function("small_k"), mod.get_function("big_k")
    x = cp.zeros(4, dtype=cp.float32)
    small_arg = np.zeros(1, dtype=[("p", np.uint64), ("n", np.uint32), ("pad", np.uint32)])
    small_arg["p"] = x.data.ptr
    big_arg = np.zeros(1, dtype=[("bytes", np.uint8, (big_bytes,))])  # one item: passed by value

    for name, fn, arg in (("16-byte", small_k, small_arg), (f"{big_bytes}-byte", big_k, big_arg)):
        def queued():
            for _ in range(200):
                fn((1,), (32,), (arg,))
            cp.cuda.Stream.null.synchronize()

        def synced():
            fn((1,), (32,), (arg,))
            cp.cuda.Stream.null.synchronize()

        queued()
        q = med(queued, 30) / 200
        s = med(synced, 3000)
        rows.append((f"CuPy launch, {name} parameter block: queued (us)", q * 1e6))
        rows.append((f"CuPy launch, {name} parameter block: + synchronize (us)", s * 1e6))

    n = 10_000_000
    xs = np.random.default_rng(0).uniform(0.1, 10, n).astype(np.float32)
    iface = mg.Interface("cuda")
    iface.load_shader_from_string(MSL)
    iface.set_function("k_cos")
    a, out = iface.create_buffer(n, "float"), iface.create_buffer(n, "float")
    a.contents[:] = xs
    iface.run_function(n, [a, out])
    phases = {"write": [], "dispatch": [], "read": []}
    for _ in range(30):
        t0 = time.perf_counter()
        a.contents[:] = xs
        t1 = time.perf_counter()
        iface.run_function(n, [a, out])
        t2 = time.perf_counter()
        float(out.contents[::4096].sum())
        t3 = time.perf_counter()
        phases["write"].append(t1 - t0)
        phases["dispatch"].append(t2 - t1)
        phases["read"].append(t3 - t2)
    for k, v in phases.items():
        rows.append((f"metalgpu e2e phase: {k} (ms)", statistics.median(v) * 1e3))

    pin_in = np.frombuffer(cp.cuda.alloc_pinned_memory(xs.nbytes), dtype=np.float32, count=n)
    pin_out = np.frombuffer(cp.cuda.alloc_pinned_memory(xs.nbytes), dtype=np.float32, count=n)
    ca, cout = cp.empty(n, dtype=cp.float32), cp.empty(n, dtype=cp.float32)
    kc = cp.RawKernel(r'''extern "C" __global__ void k(const float* a, float* o, unsigned n) {
        unsigned i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) o[i] = __cosf(a[i]); }''', "k")
    phases = {"write": [], "copy in": [], "kernel": [], "copy out": [], "read": []}
    for _ in range(30):
        t0 = time.perf_counter()
        pin_in[:] = xs
        t1 = time.perf_counter()
        ca.set(pin_in)
        cp.cuda.Stream.null.synchronize()
        t2 = time.perf_counter()
        kc(((n + 255) // 256,), (256,), (ca, cout, np.uint32(n)))
        cp.cuda.Stream.null.synchronize()
        t3 = time.perf_counter()
        cout.get(out=pin_out)
        t4 = time.perf_counter()
        float(pin_out[::4096].sum())
        t5 = time.perf_counter()
        for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            phases[k].append(v)
    for k, v in phases.items():
        rows.append((f"CuPy pinned e2e phase: {k} (ms)", statistics.median(v) * 1e3))

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "probe_cuda_overheads.md"), "w") as f:
        f.write(f"# CUDA overhead probes\n\nMachine: {iface.device.name}; CuPy {cp.__version__}; "
                f"{time.strftime('%Y-%m-%d')}\n\n| probe | value |\n|---|---|\n")
        for name, v in rows:
            f.write(f"| {name} | {v:.3f} |\n")
    for name, v in rows:
        print(f"{name:60s} {v:10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
