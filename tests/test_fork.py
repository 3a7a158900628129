"""Processes that fork after an Interface exists (multiprocessing, Dask and DataLoader workers,
gunicorn) keep working in parent and child (issue 15). Each scenario runs in a fresh Python so
that a hang is a timeout here, not a stuck test session."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import AVAILABLE_BACKENDS

pytestmark = [pytest.mark.skipif("cpu" not in AVAILABLE_BACKENDS, reason="forks with the cpu backend"),
              pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork here")]

COMMON = """
import os, sys, multiprocessing as mp
import numpy as np
import metalgpu as mg

SOURCE = '''#include <metal_stdlib>
using namespace metal;
kernel void scale(device float* x [[buffer(0)]], constant float& k [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) { x[i] *= k; }'''

def dispatch(iface, k, n=100000):
    iface.load_shader_from_string(SOURCE + "\\n// %d" % k)   # a new shader each time: a compile
    iface.set_function("scale")
    buf = iface.array_to_buffer(np.ones(n, np.float32))
    iface.run_function(n, [buf, np.float32(k)])
    assert (buf.contents == k).all(), buf.contents[:4]

def in_child(k):
    dispatch(mg.Interface(backend="cpu"), k)
    return k
"""


def run(tmp_path, script, env_extra=None, timeout=180):
    import os
    env = dict(os.environ, METALGPU_CPU_THREADS="4", **(env_extra or {}))
    # A file, not -c: multiprocessing's spawn re-imports the main module in each worker.
    path = tmp_path / "scenario.py"
    path.write_text(textwrap.dedent(COMMON) + textwrap.dedent(script))
    proc = subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("cache", ["on", "off"])
def test_os_fork_child_dispatches_and_exits_normally_and_the_parent_goes_on(cache, tmp_path):
    # The child ends through sys.exit (static destructors run): it used to wait forever for the
    # parent's worker threads, and (cache off) delete the parent's folder of compiled kernels.
    env = {"METALGPU_CACHE_DIR": str(tmp_path / "cache") if cache == "on" else "0"}
    out = run(tmp_path, """
    iface = mg.Interface(backend="cpu")
    dispatch(iface, 2)
    pid = os.fork()
    if pid == 0:
        dispatch(iface, 3)                       # the parent's Interface, in the child
        dispatch(mg.Interface(backend="cpu"), 4)
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    dispatch(iface, 5)                           # a new compile: the scratch folder is still there
    print("ok")
    """, env, timeout=120)
    assert "ok" in out


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_pool_workers_dispatch(method, tmp_path):
    out = run(tmp_path, f"""
    iface = mg.Interface(backend="cpu")
    dispatch(iface, 2)
    if __name__ == "__main__":
        with mp.get_context({method!r}).Pool(2) as pool:
            assert pool.map(in_child, [6, 7, 8]) == [6, 7, 8]
        dispatch(iface, 9)
        print("ok")
    """)
    assert "ok" in out
