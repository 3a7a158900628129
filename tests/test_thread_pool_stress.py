"""The cpu backend's thread pool under dispatches whose shapes change every time.

A worker that woke late for one dispatch used to read the next dispatch's job fields while
they were being reset, skipping or repeating threadgroups (or calling a null job). The pool's
size is read once per process, so the stress runs in a child with METALGPU_CPU_THREADS=16.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import metalgpu as mg

CHILD = textwrap.dedent(
    """
    import numpy as np
    import metalgpu as mg

    SOURCE = '''
    #include <metal_stdlib>
    using namespace metal;
    kernel void bump(device int* a [[buffer(0)]], uint i [[thread_position_in_grid]]) {
        a[i] += 1;
    }
    '''
    N = 3 * 16384 + 1024
    DISPATCHES = int(__import__("sys").argv[1])
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string(SOURCE)
    iface.set_function("bump")
    buf = iface.create_buffer(N, "int")
    # Alternate grid and threadgroup shapes: each dispatch differs from the one before in its
    # number of groups and its chunk size, as in the reported failure.
    shapes = [(N, 64), (N, 1024), (N - 1024, 1024), (N, 64), (N - 1024, 32)]
    expected = np.zeros(N, dtype=np.int64)
    wrong = 0
    for k in range(DISPATCHES):
        grid, tg = shapes[k % len(shapes)]
        iface.run_function(grid, [buf], threadgroup=tg)
        expected[:grid] += 1
        if (k + 1) % 5000 == 0 or k + 1 == DISPATCHES:  # stop at the first sign of trouble
            got = buf.contents.astype(np.int64)
            wrong = int(np.count_nonzero(got != expected))
            if wrong:
                break
    print("dispatches", k + 1, "wrong", wrong, "elements")
    assert wrong == 0
    """
)


@pytest.mark.skipif("cpu" not in {d.backend for d in mg.devices()}, reason="no cpu backend")
def test_varying_shapes_with_16_pool_threads():
    env = dict(os.environ, METALGPU_CPU_THREADS="16")
    env.pop("METALGPU_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "100000"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "dispatches 100000 wrong 0 elements" in proc.stdout
