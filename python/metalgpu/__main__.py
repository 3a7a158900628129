"""python -m metalgpu info | demo | --cmake-dir"""

from __future__ import annotations

import argparse
import os
import sys
import time

DEMO_SHADER = """
#include <metal_stdlib>
using namespace metal;
kernel void adder(device int* arr1 [[buffer(0)]], device int* arr2 [[buffer(1)]],
                  device int* arr3 [[buffer(2)]], uint id [[thread_position_in_grid]]) {
    arr3[id] = arr2[id] + arr1[id];
}
"""


def info() -> int:
    """Prints what can run here; exit status 1 (never a traceback) when no backend can."""
    try:
        import metalgpu as mg
    except Exception as e:  # a broken install: say what failed
        print(f"metalgpu cannot be imported: {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    print(f"metalgpu {mg.__version__}")
    status = 0
    try:
        print(f"default backend: {mg._core.default_backend()}")
    except Exception as e:  # no backend runs here (or METALGPU_BACKEND names no backend)
        print(f"default backend: none ({e})")
        status = 1
    try:
        devices = mg.devices()
    except Exception as e:
        print(f"  devices: cannot be listed ({type(e).__name__}: {e})")
        devices = []
    for d in devices:
        print(f"  {d.backend}:{d.index}  {d.name}  memory={d.memory / 2**30:.1f} GiB  "
              f"max_threads_per_threadgroup={d.max_threads_per_threadgroup}  simd_width={d.simd_width}")
    try:
        unavailable = mg._core.unavailable_backends()
    except Exception as e:
        unavailable = [f"(cannot be listed: {type(e).__name__}: {e})"]
    for line in unavailable:
        print(f"  unavailable: {line}")
    return status


def demo() -> int:
    import numpy as np

    import metalgpu as mg

    iface = mg.Interface()
    print(f"backend: {iface.backend} ({iface.device.name})")
    start = time.perf_counter()
    iface.load_shader_from_string(DEMO_SHADER)
    iface.set_function("adder")
    print(f"compiled 'adder' in {1e3 * (time.perf_counter() - start):.1f} ms")
    n = 100_000
    a = iface.array_to_buffer(np.arange(n, dtype=np.int32))
    b = iface.array_to_buffer(np.sqrt(np.arange(n)).astype(np.int32))
    c = iface.create_buffer(n, "int")
    iface.run_function(n, [a, b, c])
    expected = np.arange(n) + np.sqrt(np.arange(n)).astype(np.int32)
    ok = bool(np.array_equal(c.contents, expected))
    print(f"adder over {n} ints: {'correct' if ok else 'WRONG'}; first values {c.contents[:5].tolist()}")
    for buf in (a, b, c):
        buf.release()
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metalgpu")
    parser.add_argument("command", nargs="?", choices=["info", "demo"], default="info")
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the CMake package folder for C++ hosts")
    args = parser.parse_args(argv)
    if args.cmake_dir:
        print(os.path.join(os.path.dirname(__file__), "cpp", "lib", "cmake", "metalgpu"))
        return 0
    return info() if args.command == "info" else demo()


if __name__ == "__main__":
    sys.exit(main())
