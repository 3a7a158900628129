"""Loading and running a kernel must leave the host's floating-point environment alone.

Kernel modules compiled with fast math used to be linked with -ffast-math, which makes g++
link crtfastmath.o: its constructor sets flush-to-zero / denormals-are-zero when the module is
loaded, and from then on the user's own numpy arithmetic lost every subnormal number.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import pytest

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import metalgpu as mg

    def denormals_survive():
        tiny64 = np.float64(5e-324)
        tiny32 = np.float32(1e-40)  # subnormal in float32
        return (
            tiny64 * 1.0 != 0
            and np.float64(2.2250738585072014e-308) / 4 != 0
            and tiny32 * np.float32(1.0) != 0
            and bool(np.all(np.array([1e-40, 2e-41], dtype=np.float32) * np.float32(2) != 0))
            and np.nextafter(np.float32(0), np.float32(1)) + np.float32(0) != 0
        )

    assert denormals_survive(), "denormals flushed before any kernel was loaded"
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string('''
    #include <metal_stdlib>
    using namespace metal;
    kernel void scale_%(tag)s(device float* a [[buffer(0)]], uint i [[thread_position_in_grid]]) {
        a[i] = a[i] * 2.0f + exp(a[i]);
    }
    ''')
    iface.set_function("scale_%(tag)s")
    buf = iface.array_to_buffer(np.linspace(0, 1, 256, dtype=np.float32))
    iface.run_function(256, [buf])
    assert np.allclose(buf.contents, np.linspace(0, 1, 256) * 2 + np.exp(np.linspace(0, 1, 256)), rtol=1e-4)
    print("after load+run:", denormals_survive())
    assert denormals_survive(), "loading or running a kernel turned on flush-to-zero in the host"
    """
)


def test_loading_a_kernel_keeps_host_denormals(tmp_path):
    import metalgpu as mg

    if "cpu" not in {d.backend for d in mg.devices()}:
        pytest.skip("no cpu backend")
    # A kernel name never compiled before, in an empty cache: the compile path runs too.
    code = CHILD % {"tag": uuid.uuid4().hex[:12]}
    env = dict(os.environ, METALGPU_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "after load+run: True" in proc.stdout
