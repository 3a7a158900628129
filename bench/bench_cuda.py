"""CUDA backend benchmarks (issue 5), side by side with CuPy on the same GPU in one run.

    python bench/bench_cuda.py [--out bench/results] [--quick]

Measures: dispatch overhead (run_function + wait, and queued without waiting) against CuPy
RawKernel launch + synchronize; 10M-element cos/sqrt kernel time against the same kernel
hand-written in CUDA and against the memory-bandwidth bound; end to end (host writes, kernel,
host reads) against CuPy with explicit copies; a 512x512 matmul kernel against its CUDA
equivalent; cold and warm compile. Writes cuda.md and cuda.json under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import metalgpu as mg

MSL = r"""
#include <metal_stdlib>
using namespace metal;
kernel void tiny(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] += 1.0f; }
kernel void k_cos(device const float* a [[buffer(0)]], device float* out [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) { out[i] = cos(a[i]); }
kernel void k_sqrt(device const float* a [[buffer(0)]], device float* out [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) { out[i] = sqrt(a[i]); }
kernel void matmul(device float* out [[buffer(0)]], device const float* A [[buffer(1)]],
                   device const float* B [[buffer(2)]], constant uint& N [[buffer(3)]],
                   uint2 gid [[thread_position_in_grid]], uint2 grid_size [[threads_per_grid]]) {
    float acc = 0.0f;
    for (uint k = 0; k < N; ++k) acc += A[gid.x * N + k] * B[k * grid_size.y + gid.y];
    out[gid.x * grid_size.y + gid.y] = acc;
}
"""

CUDA = r"""
extern "C" __global__ void tiny(float* x, unsigned n) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] += 1.0f; }
extern "C" __global__ void k_cos(const float* a, float* out, unsigned n) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) out[i] = cosf(a[i]); }
extern "C" __global__ void k_sqrt(const float* a, float* out, unsigned n) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) out[i] = sqrtf(a[i]); }
extern "C" __global__ void matmul(float* out, const float* A, const float* B, unsigned N, unsigned M, unsigned K) {
    unsigned x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= M || y >= K) return;
    float acc = 0.0f;
    for (unsigned k = 0; k < N; ++k) acc += A[x * N + k] * B[k * K + y];
    out[x * K + y] = acc;
}
"""


def median_time(fn, reps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cupy_kernel_time(cp, fn, reps: int) -> float:
    start, end = cp.cuda.Event(), cp.cuda.Event()
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) * 1e-3)
    return statistics.median(times)


def compile_times() -> dict:
    """Cold (empty cache) and warm (disk cache, new process) compile of a small kernel."""
    code = (
        "import time, metalgpu as mg\n"
        "t = time.perf_counter(); i = mg.Interface('cuda')\n"
        "src = open(__import__('sys').argv[1]).read()\n"
        "t = time.perf_counter(); i.load_shader_from_string(src); i.set_function('k_cos')\n"
        "print(time.perf_counter() - t)\n"
    )
    with tempfile.TemporaryDirectory() as cache, tempfile.NamedTemporaryFile("w", suffix=".metal", delete=False) as f:
        f.write(MSL.replace("k_cos", "k_cos") + f"\n// {time.time_ns()}\n")
        path = f.name
    env = dict(os.environ, METALGPU_CACHE_DIR=cache)
    run = lambda: float(subprocess.check_output([sys.executable, "-c", code, path], env=env, text=True).split()[-1])
    cold = run()
    warm = min(run() for _ in range(3))
    return {"cold_s": cold, "warm_s": warm}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import cupy as cp

    reps = 20 if args.quick else 100
    n = 10_000_000
    iface = mg.Interface("cuda")
    iface.load_shader_from_string(MSL)
    mod = cp.RawModule(code=CUDA, options=("--use_fast_math",))
    rows = []
    res: dict = {"device": iface.device.name}

    # --- dispatch overhead -------------------------------------------------------------
    small = iface.create_buffer(32, "float")
    iface.set_function("tiny")
    iface.run_function(32, [small])
    d_wait = median_time(lambda: iface.run_function(32, [small]), 2000 if not args.quick else 200)

    def queued():
        for _ in range(100):
            iface.run_function(32, [small], wait_for_completion=False)
        iface.synchronize()

    d_nowait = median_time(queued, 20 if not args.quick else 5) / 100

    def batched():
        with iface.batch():
            for _ in range(100):
                iface.run_function(32, [small])

    d_batch = median_time(batched, 20 if not args.quick else 5) / 100
    cx = cp.zeros(32, dtype=cp.float32)
    tiny = mod.get_function("tiny")

    def cupy_launch_sync():
        tiny((1,), (32,), (cx, np.uint32(32)))
        cp.cuda.Stream.null.synchronize()

    c_wait = median_time(cupy_launch_sync, 2000 if not args.quick else 200)

    def cupy_queued():
        for _ in range(100):
            tiny((1,), (32,), (cx, np.uint32(32)))
        cp.cuda.Stream.null.synchronize()

    c_nowait = median_time(cupy_queued, 20 if not args.quick else 5) / 100
    code = ("import time, statistics, metalgpu as mg\n"
            "i = mg.Interface('cuda'); i.load_shader_from_string(open(__import__('sys').argv[1]).read())\n"
            "i.set_function('tiny'); b = i.create_buffer(32, 'float'); i.run_function(32, [b])\n"
            "ts = []\n"
            "for _ in range(2000):\n"
            "    t = time.perf_counter(); i.run_function(32, [b]); ts.append(time.perf_counter() - t)\n"
            "print(statistics.median(ts))\n")
    with tempfile.NamedTemporaryFile("w", suffix=".metal", delete=False) as f:
        f.write(MSL)
    iface.profiling = True
    d_prof = median_time(lambda: iface.run_function(32, [small]), 2000 if not args.quick else 200)
    iface.profiling = False
    res.update(dispatch_wait_us=d_wait * 1e6, dispatch_nowait_us=d_nowait * 1e6, dispatch_batch_us=d_batch * 1e6,
               cupy_launch_sync_us=c_wait * 1e6, cupy_launch_us=c_nowait * 1e6, dispatch_wait_profiling_us=d_prof * 1e6)
    rows.append(("dispatch + wait, tiny kernel (us)", d_wait * 1e6, c_wait * 1e6, "<= CuPy launch+sync"))
    rows.append(("dispatch + wait, profiling=True (us)", d_prof * 1e6, c_wait * 1e6, "(device timestamps)"))
    rows.append(("dispatch without wait (us/dispatch)", d_nowait * 1e6, c_nowait * 1e6, "<= 5 us"))
    rows.append(("dispatch in batch() (us/dispatch)", d_batch * 1e6, c_nowait * 1e6, "<= 5 us"))

    # --- 10M cos / sqrt: kernel time ----------------------------------------------------
    x = np.random.default_rng(0).uniform(0.1, 10, n).astype(np.float32)
    a = iface.array_to_buffer(x)
    out = iface.create_buffer(n, "float")
    ca, cout = cp.asarray(x), cp.empty(n, dtype=cp.float32)
    big = cp.empty(256 * 1024 * 1024 // 4, dtype=cp.float32)
    bw = 2 * big.nbytes / cupy_kernel_time(cp, lambda: big.copy(), 10)  # read + write bytes/s
    res["copy_bandwidth_GBs"] = bw / 1e9
    for name, ref in (("k_cos", np.cos), ("k_sqrt", np.sqrt)):
        iface.set_function(name)
        iface.run_function(n, [a, out])
        np.testing.assert_allclose(out.readback(), ref(x), rtol=2e-3, atol=2e-3)
        iface.profiling = True  # kernel times from device timestamps
        mg_t = statistics.median(iface.run_function(n, [a, out]).gpu_time for _ in range(reps))
        iface.profiling = False
        fn = mod.get_function(name)
        cu_t = cupy_kernel_time(cp, lambda: fn(((n + 255) // 256,), (256,), (ca, cout, np.uint32(n))), reps)
        bound = 8 * n / bw
        res[f"{name}_kernel_ms"] = mg_t * 1e3
        res[f"{name}_cupy_ms"] = cu_t * 1e3
        res[f"{name}_bound_ms"] = bound * 1e3
        rows.append((f"10M {name[2:]} kernel (ms)", mg_t * 1e3, cu_t * 1e3, "within 5% of CuPy"))
        rows.append((f"10M {name[2:]} vs bandwidth bound (ms)", mg_t * 1e3, bound * 1e3, "<= 1.5x bound"))

    # --- end to end: host writes, kernel, host reads ------------------------------------
    iface.set_function("k_cos")

    def mg_e2e():
        a.contents[:] = x
        iface.run_function(n, [a, out])
        return float(out.contents[::4096].sum())

    pinned = cp.cuda.alloc_pinned_memory(x.nbytes)
    host_in = np.frombuffer(pinned, dtype=np.float32, count=n)
    pinned_out = cp.cuda.alloc_pinned_memory(x.nbytes)
    host_out = np.frombuffer(pinned_out, dtype=np.float32, count=n)
    kc = mod.get_function("k_cos")

    def cupy_e2e():
        host_in[:] = x
        ca.set(host_in)
        kc(((n + 255) // 256,), (256,), (ca, cout, np.uint32(n)))
        cout.get(out=host_out)
        return float(host_out[::4096].sum())

    def cupy_e2e_pageable():  # the common idiom: numpy arrays, cp.asarray / .get()
        d = cp.asarray(x)
        kc(((n + 255) // 256,), (256,), (d, cout, np.uint32(n)))
        return float(cout.get()[::4096].sum())

    e_mg = median_time(mg_e2e, 10 if args.quick else 30)
    e_cu = median_time(cupy_e2e, 10 if args.quick else 30)
    e_cp = median_time(cupy_e2e_pageable, 10 if args.quick else 30)
    res.update(e2e_cos_ms=e_mg * 1e3, e2e_cos_cupy_pinned_ms=e_cu * 1e3, e2e_cos_cupy_pageable_ms=e_cp * 1e3)
    rows.append(("10M cos end to end (ms)", e_mg * 1e3, e_cp * 1e3, "<= CuPy (asarray/get)"))
    rows.append(("10M cos end to end vs pinned CuPy (ms)", e_mg * 1e3, e_cu * 1e3, "(reference)"))

    # --- 512x512 matmul -----------------------------------------------------------------
    m = 512
    A = np.random.default_rng(1).standard_normal((m, m)).astype(np.float32)
    B = np.random.default_rng(2).standard_normal((m, m)).astype(np.float32)
    bA, bB, bC = iface.array_to_buffer(A), iface.array_to_buffer(B), iface.create_buffer(m * m, "float")
    iface.set_function("matmul")
    iface.run_function((m, m), [bC, bA, bB, m], threadgroup=(16, 16))
    np.testing.assert_allclose(bC.readback().reshape(m, m), A @ B, rtol=1e-3, atol=1e-3)
    iface.profiling = True
    mm = statistics.median(iface.run_function((m, m), [bC, bA, bB, m], threadgroup=(16, 16)).gpu_time
                           for _ in range(reps))
    iface.profiling = False
    cA, cB, cC = cp.asarray(A), cp.asarray(B), cp.empty((m, m), dtype=cp.float32)
    fm = mod.get_function("matmul")
    cm = cupy_kernel_time(cp, lambda: fm((m // 16, m // 16), (16, 16), (cC, cA, cB, np.uint32(m), np.uint32(m),
                                                                          np.uint32(m))), reps)
    res.update(matmul_ms=mm * 1e3, matmul_cupy_ms=cm * 1e3)
    rows.append(("512x512 matmul kernel (ms)", mm * 1e3, cm * 1e3, "within 5% of CUDA"))

    # --- compile ------------------------------------------------------------------------
    ct = compile_times()
    res.update(compile_cold_ms=ct["cold_s"] * 1e3, compile_warm_ms=ct["warm_s"] * 1e3)
    rows.append(("compile, cold (ms)", ct["cold_s"] * 1e3, None, "< 300 ms"))
    rows.append(("compile, warm from disk cache (ms)", ct["warm_s"] * 1e3, None, "< 5 ms"))

    machine = (f"{iface.device.name}, CUDA driver via metalgpu; host {platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
               f"CuPy {cp.__version__}; {time.strftime('%Y-%m-%d')}")
    lines = [f"# CUDA backend benchmarks\n\nMachine: {machine}\n",
             f"Device-to-device copy bandwidth (read+write): {bw / 1e9:.0f} GB/s\n",
             "| benchmark | metalgpu | reference | ratio | target |", "|---|---|---|---|---|"]
    for name, mine, ref, target in rows:
        ratio = f"{mine / ref:.2f}" if ref else ""
        lines.append(f"| {name} | {mine:.3f} | {'' if ref is None else f'{ref:.3f}'} | {ratio} | {target} |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "cuda.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "cuda.json"), "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
