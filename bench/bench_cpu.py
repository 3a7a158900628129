"""CPU-backend benchmarks of metalgpu against numpy (the foundation issue's targets).

    python bench/bench_cpu.py            # full run (about 1-2 minutes)
    python bench/bench_cpu.py --quick    # smoke run (well under 30 s)
    python bench/bench_cpu.py --out DIR  # where cpu.md / cpu.json go (default bench/results)

See bench/README.md for what each benchmark measures and how to read the results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (LoadMonitor, Result, Stats, machine_info, measure, report, run_child,  # noqa: E402
                     wait_for_idle)

import metalgpu as mg  # noqa: E402

HERE = Path(__file__).resolve().parent

ELEMENTWISE_SRC = """
#include <metal_stdlib>
using namespace metal;
kernel void cos_kernel(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                       uint id [[thread_position_in_grid]]) {
    out[id] = cos(in[id]);
}
kernel void sqrt_kernel(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                        uint id [[thread_position_in_grid]]) {
    out[id] = sqrt(in[id]);
}
"""

TINY_SRC = """
#include <metal_stdlib>
using namespace metal;
kernel void tiny(device uint* out [[buffer(0)]], uint id [[thread_position_in_grid]]) {
    out[id] = id;
}
kernel void axpb(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                 device float* c [[buffer(2)]], constant float& s [[buffer(3)]],
                 uint id [[thread_position_in_grid]]) {
    c[id] = a[id] * s + b[id];
}
"""

MATMUL_SRC = """
#include <metal_stdlib>
using namespace metal;
kernel void matmul(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                   device float* C [[buffer(2)]], constant uint& N [[buffer(3)]],
                   uint2 gid [[thread_position_in_grid]]) {
    float acc = 0.0f;
    for (uint k = 0; k < N; ++k)
        acc += A[gid.y * N + k] * B[k * N + gid.x];
    C[gid.y * N + gid.x] = acc;
}
"""

# A child process times one compile path and prints JSON. {src!r} is a source no process
# has seen before (a random constant), so only the caches under test can serve it.
COMPILE_CHILD = r"""
import json, time
t0 = time.perf_counter()
import metalgpu as mg
t1 = time.perf_counter()
iface = mg.Interface(backend="cpu")
t2 = time.perf_counter()
iface.load_shader_from_string({src!r})
t3 = time.perf_counter()
iface.set_function("scale")
t4 = time.perf_counter()
a = iface.array_to_buffer(__import__("numpy").arange(32, dtype="float32"))
b = iface.create_buffer(32, "float")
iface.run_function(32, [a, b])
ok = bool((b.contents == a.contents * {k}.0).all())
print(json.dumps({{"import_s": t1 - t0, "interface_s": t2 - t1, "load_s": t3 - t2,
                  "set_function_s": t4 - t3, "ok": ok}}))
"""

COMPILE_SRC = """
#include <metal_stdlib>
using namespace metal;
// never seen before: {tag} (comments do not reach the cache key; the constant K does)
constant float K = {k}.0f;
kernel void scale(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                  uint id [[thread_position_in_grid]]) {{
    out[id] = in[id] * K;
}}
"""

# Flags the cpu backend passes to the host compiler (src/backends/cpu/host_compiler.cpp);
# used only for the "raw compiler" reference of the cold compile.
HOST_FLAGS = ("-std=c++17 -O3 -ffast-math -fno-math-errno -fPIC -shared -nostdinc++ "
              "-fvisibility=hidden -fno-exceptions -fno-rtti -w -march=native").split()


def log(msg: str) -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------------------- 1. elementwise


def bench_elementwise(iface, n: int, repeat: int) -> list[Result]:
    iface.load_shader_from_string(ELEMENTWISE_SRC)
    rng = np.random.default_rng(0)
    results = []
    for op, np_fn, make_input in (
        ("cos", np.cos, lambda: rng.uniform(-10.0, 10.0, n).astype(np.float32)),
        ("sqrt", np.sqrt, lambda: rng.uniform(0.0, 1000.0, n).astype(np.float32)),
    ):
        x = make_input()
        inp = iface.array_to_buffer(x)
        out = iface.create_buffer(n, "float")
        iface.set_function(f"{op}_kernel")
        iface.run_function(n, [inp, out])
        ref = np_fn(x)
        if not np.allclose(out.contents, ref, rtol=1e-5, atol=1e-5):
            bad = float(np.max(np.abs(out.contents - ref)))
            raise AssertionError(f"{op}: metalgpu result differs from numpy (max abs err {bad})")

        # Kernel dispatch only: resident buffers, run_function waits for completion.
        mg_kernel = measure(lambda: iface.run_function(n, [inp, out]), repeat=repeat, warmup=3)
        np_out = np.empty_like(x)
        np_kernel = measure(lambda: np_fn(x, out=np_out), repeat=repeat, warmup=3)
        log(f"  {op} kernel: metalgpu {mg_kernel.median * 1e3:.2f} ms, numpy {np_kernel.median * 1e3:.2f} ms")

        # End to end: host writes the input, kernel, host reads a checksum of the output.
        inp_view, out_view = inp.contents, out.contents

        def mg_e2e():
            inp_view[:] = x
            iface.run_function(n, [inp, out])
            return float(out_view.sum(dtype=np.float64))

        np_in = np.empty_like(x)

        def np_e2e():
            np_in[:] = x
            np_fn(np_in, out=np_out)
            return float(np_out.sum(dtype=np.float64))

        a, b = mg_e2e(), np_e2e()
        if not np.isclose(a, b, rtol=1e-4):
            raise AssertionError(f"{op} end-to-end checksums differ: {a} vs {b}")
        mg_end = measure(mg_e2e, repeat=max(5, repeat // 2), warmup=2)
        np_end = measure(np_e2e, repeat=max(5, repeat // 2), warmup=2)
        log(f"  {op} end-to-end: metalgpu {mg_end.median * 1e3:.2f} ms, numpy {np_end.median * 1e3:.2f} ms")

        is_cos = op == "cos"
        r = Result(f"{op} {n / 1e6:g}M float32, kernel", mg_kernel.median, np_kernel.median,
                   f"numpy.{op}", target=">= 2x numpy" if is_cos else "-",
                   raw={"metalgpu": mg_kernel.summary(), "reference": np_kernel.summary()})
        if is_cos:
            r.met = r.ratio is not None and r.ratio >= 2.0
        results.append(r)
        results.append(Result(f"{op} {n / 1e6:g}M float32, end-to-end", mg_end.median, np_end.median,
                              f"numpy.{op}",
                              raw={"metalgpu": mg_end.summary(), "reference": np_end.summary()}))
        inp.release()
        out.release()
    return results


# ----------------------------------------------------------------------------- 2. dispatch


def bench_dispatch(iface, calls: int) -> list[Result]:
    iface.load_shader_from_string(TINY_SRC)
    results = []
    out = iface.create_buffer(32, "uint")
    iface.set_function("tiny")
    iface.run_function(32, [out])
    assert (out.contents == np.arange(32)).all(), "tiny kernel result is wrong"

    # Reference: the cost of one numpy ufunc call on 32 elements (Python call floor).
    small = np.arange(32, dtype=np.float32)
    small_out = np.empty_like(small)
    np_small = measure(lambda: np.cos(small, out=small_out), repeat=calls, warmup=200)

    for threads in (1, 32):
        st = measure(lambda: iface.run_function(threads, [out]), repeat=calls, warmup=200)
        log(f"  dispatch, {threads} thread(s), 1 buffer: {st.median * 1e6:.1f} us")
        results.append(Result(f"dispatch overhead, {threads} thread{'s' if threads > 1 else ''}, 1 buffer",
                              st.median, np_small.median, "numpy.cos on 32 floats",
                              target="< 20 us", met=st.median < 20e-6,
                              raw={"metalgpu": st.summary(), "reference": np_small.summary()}))

    a = iface.array_to_buffer(np.arange(32, dtype=np.float32))
    b = iface.array_to_buffer(np.ones(32, dtype=np.float32))
    c = iface.create_buffer(32, "float")
    iface.set_function("axpb")
    iface.run_function(32, [a, b, c, 2.5])
    assert np.allclose(c.contents, a.contents * 2.5 + 1.0), "axpb kernel result is wrong"
    st = measure(lambda: iface.run_function(32, [a, b, c, 2.5]), repeat=calls, warmup=200)
    log(f"  dispatch, 32 threads, 3 buffers + scalar: {st.median * 1e6:.1f} us")
    results.append(Result("dispatch overhead, 32 threads, 3 buffers + scalar", st.median, np_small.median,
                          "numpy.cos on 32 floats", target="< 20 us", met=st.median < 20e-6,
                          raw={"metalgpu": st.summary(), "reference": np_small.summary()}))
    for buf in (out, a, b, c):
        buf.release()
    return results


# ----------------------------------------------------------------------------- 3. compile


def _compile_child(cache_dir: str, src: str, k: int) -> dict:
    code = COMPILE_CHILD.format(src=src, k=k)
    res = run_child(code, env={"METALGPU_CACHE_DIR": cache_dir})
    if not res.get("ok"):
        raise AssertionError("the compiled test kernel returned a wrong result")
    return res


def _raw_compiler_time(src: str, k: int, tmp: str) -> float | None:
    """Times the host compiler alone on the code metalgpu generates for `src` (dumped via
    METALGPU_DUMP by a child with the disk cache off): the floor a cold compile can reach."""
    dump = Path(tmp) / "dump"
    dump.mkdir()
    code = COMPILE_CHILD.format(src=src, k=k)
    try:
        run_child(code, env={"METALGPU_CACHE_DIR": "0", "METALGPU_DUMP": str(dump)})
        files = list(dump.glob("*.cpp"))
        if not files:
            return None
        import subprocess

        cxx = os.environ.get("CXX", "g++")
        so = Path(tmp) / "raw.so"
        t0 = time.perf_counter()
        subprocess.run([cxx, *HOST_FLAGS, "-x", "c++", str(files[0]), "-o", str(so), "-lmvec", "-lm"],
                       check=True, capture_output=True)
        return time.perf_counter() - t0
    except Exception as e:  # reference only: never fail the run for it
        log(f"  (raw compiler reference unavailable: {e})")
        return None


def bench_compile(trials: int) -> list[Result]:
    cold, warm, warm_iface, raw = [], [], [], []
    for t in range(trials):
        with tempfile.TemporaryDirectory(prefix="mg-bench-") as tmp:
            cache = os.path.join(tmp, "cache")
            os.mkdir(cache)
            k = int(np.random.default_rng().integers(2, 1000))  # a source never seen
            src = COMPILE_SRC.format(tag=uuid.uuid4().hex, k=k)
            c = _compile_child(cache, src, k)  # cold: empty disk cache, never-seen source
            w = _compile_child(cache, src, k)  # warm: new process, disk cache populated
            cold.append(c)
            warm.append(w)
            r = _raw_compiler_time(COMPILE_SRC.format(tag=uuid.uuid4().hex, k=k + 1), k + 1, tmp)
            if r is not None:
                raw.append(r)
    # Warm in-process: a new Interface in this process, after the first one compiled it.
    # (A private cache folder, so the user's cache is left alone.)
    src = COMPILE_SRC.format(tag=uuid.uuid4().hex, k=1001)
    saved = os.environ.get("METALGPU_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="mg-bench-") as tmp:
        os.environ["METALGPU_CACHE_DIR"] = tmp
        try:
            first = mg.Interface(backend="cpu")
            first.load_shader_from_string(src)
            first.set_function("scale")
            for _ in range(max(3, trials)):
                it = mg.Interface(backend="cpu")
                t1 = time.perf_counter()
                it.load_shader_from_string(src)
                it.set_function("scale")
                warm_iface.append(time.perf_counter() - t1)
                del it
            del first
        finally:
            if saved is None:
                os.environ.pop("METALGPU_CACHE_DIR", None)
            else:
                os.environ["METALGPU_CACHE_DIR"] = saved

    def total(d):
        return d["load_s"] + d["set_function_s"]

    cold_s = Stats([total(d) for d in cold])
    warm_s = Stats([total(d) for d in warm])
    wi = Stats(warm_iface)
    raw_ref = Stats(raw).median if raw else None
    log(f"  cold compile: {cold_s.median * 1e3:.0f} ms (raw compiler: "
        f"{'-' if raw_ref is None else f'{raw_ref * 1e3:.0f} ms'}), warm new process: "
        f"{warm_s.median * 1e3:.2f} ms, warm new Interface: {wi.median * 1e3:.2f} ms")
    return [
        Result("compile, cold (empty disk cache, new process)", cold_s.median, raw_ref,
               "host compiler alone on the generated code", target="< 1.5 s", met=cold_s.median < 1.5,
               note="load_shader_from_string + set_function; import metalgpu "
                    f"{Stats([d['import_s'] for d in cold]).median * 1e3:.0f} ms and Interface() "
                    f"{Stats([d['interface_s'] for d in cold]).median * 1e3:.0f} ms not included",
               raw={"children": cold, "metalgpu": cold_s.summary()}),
        Result("compile, warm (disk cache, new process)", warm_s.median, target="< 10 ms",
               met=warm_s.median < 10e-3, raw={"children": warm, "metalgpu": warm_s.summary()}),
        Result("compile, warm (new Interface, same process)", wi.median, target="-",
               raw={"metalgpu": wi.summary()}),
    ]


# ----------------------------------------------------------------------------- 4. matmul


def bench_matmul(iface, n: int, repeat: int) -> list[Result]:
    iface.load_shader_from_string(MATMUL_SRC)
    iface.set_function("matmul")
    rng = np.random.default_rng(1)
    A = rng.standard_normal((n, n), dtype=np.float32)
    B = rng.standard_normal((n, n), dtype=np.float32)
    a, b = iface.array_to_buffer(A.ravel()), iface.array_to_buffer(B.ravel())
    c = iface.create_buffer(n * n, "float")
    iface.run_function((n, n), [a, b, c, np.uint32(n)])
    ref = A @ B
    if not np.allclose(c.contents.reshape(n, n), ref, rtol=1e-3, atol=1e-3):
        raise AssertionError("matmul: metalgpu result differs from numpy")
    mg_t = measure(lambda: iface.run_function((n, n), [a, b, c, np.uint32(n)]), repeat=repeat, warmup=1)
    C = np.empty_like(ref)
    np_t = measure(lambda: np.matmul(A, B, out=C), repeat=repeat, warmup=2)
    log(f"  matmul {n}: metalgpu {mg_t.median * 1e3:.2f} ms "
        f"({2 * n ** 3 / mg_t.median / 1e9:.2f} GFLOP/s), numpy {np_t.median * 1e3:.2f} ms")
    for buf in (a, b, c):
        buf.release()
    return [Result(f"matmul {n}x{n} float32, naive kernel", mg_t.median, np_t.median, "numpy.matmul (BLAS)",
                   note=f"{2 * n ** 3 / mg_t.median / 1e9:.2f} GFLOP/s vs {2 * n ** 3 / np_t.median / 1e9:.2f}",
                   raw={"metalgpu": mg_t.summary(), "reference": np_t.summary()})]


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fast smoke run (fewer repetitions)")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for cpu.md and cpu.json")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                   help="first wait up to S seconds for the machine to be idle (shared machines)")
    args = p.parse_args(argv)
    if args.wait_idle > 0:
        wait_for_idle(args.wait_idle)
    machine = machine_info()
    monitor = LoadMonitor()

    cfg = dict(n=10_000_000, repeat=20, calls=2000, compile_trials=3, matmul_n=512, matmul_repeat=10)
    if args.quick:
        cfg.update(repeat=5, calls=300, compile_trials=1, matmul_repeat=3)

    start = time.perf_counter()
    iface = mg.Interface(backend="cpu")
    log(f"metalgpu {getattr(mg, '__version__', '?')} on {iface.device.name if hasattr(iface.device, 'name') else iface.device}")
    results: list[Result] = []
    log("1. elementwise")
    results += bench_elementwise(iface, cfg["n"], cfg["repeat"])
    log("2. dispatch overhead")
    results += bench_dispatch(iface, cfg["calls"])
    log("3. compile")
    results += bench_compile(cfg["compile_trials"])
    log("4. matmul")
    results += bench_matmul(iface, cfg["matmul_n"], cfg["matmul_repeat"])
    elapsed = time.perf_counter() - start

    cfg["mode"] = "quick" if args.quick else "full"
    cfg["threads"] = os.environ.get("METALGPU_CPU_THREADS", f"default ({os.cpu_count()})")
    cfg["elapsed_s"] = round(elapsed, 1)
    notes = [
        "Times are medians. ratio = reference / metalgpu (above 1: metalgpu is faster).",
        "Kernel rows time run_function (it waits for completion) with resident buffers; "
        "numpy writes into a preallocated out=.",
        "End-to-end rows: host writes the input into the buffer, kernel, host sums the output "
        "(numpy: the same on preallocated arrays).",
    ]
    machine["others_busy_during_run"] = monitor.others_busy()
    if machine["others_busy_during_run"] is not None:
        ob = machine["others_busy_during_run"]
        notes.insert(0, f"Other processes used {ob:.0%} of the CPU during the run"
                     + (": rerun on an idle machine before trusting these numbers." if ob > 0.15 else "."))
    report(results, args.out, "cpu", "metalgpu CPU backend benchmarks", machine=machine,
           config=cfg, notes=notes)
    missed = [r.name for r in results if r.met is False]
    log(f"\n{len(results)} measurements in {elapsed:.1f} s; targets missed: {', '.join(missed) if missed else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
