"""The README example (examples/readme_example.py + examples/shader.metal), run as written."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import numpy as np

SUBPROCESS_TIMEOUT_S = 600


def _run_script(script: str, cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )


def test_readme_example_runs_as_a_program(examples_dir, subprocess_env):
    assert (examples_dir / "shader.metal").is_file()
    proc = _run_script("readme_example.py", examples_dir, subprocess_env)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def test_matmul_example_runs_as_a_program(examples_dir, subprocess_env):
    proc = _run_script("matmul_example.py", examples_dir, subprocess_env)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "matmul ok" in proc.stdout


def test_readme_example_in_process(iface, examples_dir):
    """The same program, in-process on the backend under test, checked with numpy."""
    iface.load_shader(str(examples_dir / "shader.metal"))
    iface.set_function("adder")
    n = 100000
    b1 = iface.create_buffer(n, ctypes.c_int)
    b2 = iface.create_buffer(n, ctypes.c_int)
    b3 = iface.create_buffer(n, ctypes.c_int)
    for i in range(0, n, 997):  # element-wise writes through .contents, as the README does
        b1.contents[i] = i
    b1.contents[:] = np.arange(n, dtype=np.int32)
    b2.contents[:] = np.sqrt(np.arange(n)).astype(np.int32)
    b3.contents[:] = -1
    iface.run_function(n, [b1, b2, b3])
    expected = np.arange(n) + np.sqrt(np.arange(n)).astype(np.int64)
    np.testing.assert_array_equal(b3.contents, expected)
    assert b3.contents.dtype == np.int32
    for i in (0, 1, 4, 99999):
        assert b3.contents[i] == i + int(np.sqrt(i))
    b1.release()
    b2.release()
    b3.release()
    b3.release()  # idempotent


def test_readme_shader_function_names(iface, examples_dir):
    iface.load_shader(str(examples_dir / "shader.metal"))
    assert list(iface.function_names()) == ["adder"]
