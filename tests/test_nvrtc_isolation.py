"""NVRTC runs in a helper process (metalgpu-nvrtc), so that a crash or a hang of the compiler is
an exception in the user's process, never the end of it.

NVRTC 12.9 crashed intermittently inside nvrtcCompileProgram on translated ggml kernels, which
used to kill the Python process (cuda backend, and the cpu backend's METALGPU_CHECK_CUDA mode).
These tests point METALGPU_NVRTC at a fake libnvrtc.so built here, whose nvrtcCompileProgram
raises SIGSEGV, hangs, or fails with a diagnostic, and drive it through the cpu backend's CUDA
check in a child Python: the child must survive, report the error and keep working. No GPU and
no real NVRTC needed, except in the one test that says so.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import metalgpu as mg

pytestmark = pytest.mark.skipif(
    "cpu" not in {d.backend for d in mg.devices()}, reason="needs the cpu backend (a host C++ compiler)"
)

# FAKE_NVRTC_MODE: segv (default), hang, or fail (a diagnostic at shader.metal line 3).
FAKE_NVRTC = r"""
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
static const char kLog[] = "shader.metal(3): error: fake NVRTC diagnostic\n";
static const char* mode() { const char* m = std::getenv("FAKE_NVRTC_MODE"); return m ? m : "segv"; }
extern "C" {
int nvrtcVersion(int* major, int* minor) { *major = 12; *minor = 9; return 0; }
int nvrtcCreateProgram(void** prog, const char*, const char*, int, const char* const*, const char* const*) {
  static int dummy;
  *prog = &dummy;
  return 0;
}
int nvrtcDestroyProgram(void**) { return 0; }
int nvrtcCompileProgram(void*, int, const char* const*) {
  if (!std::strcmp(mode(), "hang")) for (;;) pause();
  if (!std::strcmp(mode(), "fail")) return 6;  // NVRTC_ERROR_COMPILATION
  std::raise(SIGSEGV);
  return 0;
}
int nvrtcGetProgramLogSize(void*, std::size_t* size) { *size = sizeof kLog; return 0; }
int nvrtcGetProgramLog(void*, char* log) { std::memcpy(log, kLog, sizeof kLog); return 0; }
int nvrtcGetCUBINSize(void*, std::size_t* size) { *size = 0; return 0; }
int nvrtcGetCUBIN(void*, char*) { return 0; }
const char* nvrtcGetErrorString(int r) { return r == 6 ? "NVRTC_ERROR_COMPILATION" : "NVRTC_ERROR_FAKE"; }
}
"""

SHADER = """#include <metal_stdlib>
using namespace metal;
kernel void scale(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] *= 2.0f;
}
"""

# Builds SHADER on the cpu backend with the CUDA check on, prints what happened, then builds
# and runs it again with the check off: the process must still work.
CHILD = textwrap.dedent(
    """
    import os
    import numpy as np
    import metalgpu as mg

    source = %(source)r
    iface = mg.Interface(backend="cpu")
    try:
        iface.load_shader_from_string(source)
        iface.set_function("scale")
        print("NO ERROR")
    except mg.CompileError as e:
        print("COMPILE ERROR:", e)
        print("LINENO:", e.lineno)
    except RuntimeError as e:
        print("RUNTIME ERROR:", e)
    del os.environ["METALGPU_CHECK_CUDA"]
    iface.load_shader_from_string(source)
    iface.set_function("scale")
    buf = iface.array_to_buffer(np.ones(4, np.float32))
    iface.run_function(4, [buf])
    print("ALIVE", float(buf.contents[0]))
    """
)


@pytest.fixture(scope="module")
def fake_nvrtc(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fake-nvrtc")
    src = folder / "fake_nvrtc.cpp"
    src.write_text(FAKE_NVRTC)
    lib = folder / "libnvrtc-fake.so"
    cxx = shlex.split(os.environ.get("CXX") or "") or [shutil.which("c++") or "g++"]
    subprocess.run([*cxx, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, timeout=120)
    return lib


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    # One cache for every child: the cpu module is compiled once, not per scenario.
    return tmp_path_factory.mktemp("cache")


def run_child(fake_nvrtc: Path, cache_dir: Path, **env_extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        METALGPU_NVRTC=str(fake_nvrtc), METALGPU_CHECK_CUDA="80", METALGPU_CACHE_DIR=str(cache_dir),
        METALGPU_BACKEND="cpu",  # the cpu backend's cross-check (on a GPU machine, not the cuda backend)
        PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1",  # if the child dies: what it printed, and where
    )
    env.update(env_extra)
    source = f"// {uuid.uuid4()}\n{SHADER}"  # a fresh source: nothing cached in memory or on disk
    return subprocess.run(
        [sys.executable, "-c", CHILD % {"source": source}],
        env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_helper_is_installed_beside_the_extension():
    helper = Path(mg._core.__file__).parent / "metalgpu-nvrtc"
    assert helper.is_file() and os.access(helper, os.X_OK), helper


def test_an_nvrtc_crash_is_an_exception_not_a_dead_process(fake_nvrtc, cache_dir, tmp_path):
    r = run_child(fake_nvrtc, cache_dir, METALGPU_DUMP=str(tmp_path))
    assert r.returncode == 0, f"the child died ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "COMPILE ERROR: [nvrtc] the NVRTC compiler crashed (signal 11" in r.stdout, r.stdout
    assert "[CUDA translation check, sm_80]" in r.stdout
    assert "ALIVE 2.0" in r.stdout
    # The CUDA source that crashed NVRTC is kept for a report, and the message says where.
    dumped = list(tmp_path.glob("nvrtc-failed-*.cu"))
    assert len(dumped) == 1 and str(dumped[0]) in r.stdout
    assert "extern \"C\"" in dumped[0].read_text()


def test_in_process_compilation_would_have_died(fake_nvrtc, cache_dir):
    # The control: without the helper the same crash ends the process. It shows that the test
    # above tests something, and that METALGPU_NVRTC_HELPER=inprocess does what it says.
    r = run_child(fake_nvrtc, cache_dir, METALGPU_NVRTC_HELPER="inprocess")
    assert r.returncode == -11, f"returncode {r.returncode}:\n{r.stdout}\n{r.stderr}"


def test_an_nvrtc_hang_is_stopped_after_the_time_limit(fake_nvrtc, cache_dir):
    r = run_child(fake_nvrtc, cache_dir, FAKE_NVRTC_MODE="hang", METALGPU_NVRTC_TIMEOUT="1")
    assert r.returncode == 0, f"the child died ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "COMPILE ERROR: [nvrtc] the NVRTC compiler did not finish within 1 s" in r.stdout, r.stdout
    assert "ALIVE 2.0" in r.stdout


def test_diagnostics_come_back_from_the_helper(fake_nvrtc, cache_dir):
    r = run_child(fake_nvrtc, cache_dir, FAKE_NVRTC_MODE="fail")
    assert r.returncode == 0, f"the child died ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "COMPILE ERROR: shader.metal:3: error: fake NVRTC diagnostic (NVRTC)" in r.stdout, r.stdout
    assert "LINENO: 3" in r.stdout


def test_a_missing_helper_is_reported(fake_nvrtc, cache_dir, tmp_path):
    missing = tmp_path / "no-such-helper"
    r = run_child(fake_nvrtc, cache_dir, METALGPU_NVRTC_HELPER=str(missing))
    assert r.returncode == 0, f"the child died ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert f"RUNTIME ERROR: [nvrtc] METALGPU_NVRTC_HELPER={missing} is not an executable file" in r.stdout
    assert "ALIVE 2.0" in r.stdout


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="an x86 GCC/Clang builtin")
def test_the_cuda_check_still_catches_translation_errors(monkeypatch):
    """Real NVRTC, through the helper: a kernel the host compiler accepts and NVRTC rejects."""
    monkeypatch.setenv("METALGPU_CHECK_CUDA", "80")
    plain = mg.Interface(backend="cpu")
    try:
        plain.load_shader_from_string(f"// {uuid.uuid4()}\n{SHADER}")
    except mg.CompileError:
        raise
    except Exception as e:  # NVRTC missing: the backend says what is missing
        pytest.skip(f"NVRTC is not available: {e}")
    source = SHADER.replace("x[i] *= 2.0f;", "__builtin_ia32_pause();")  # x86 host only
    iface = mg.Interface(backend="cpu")
    with pytest.raises(mg.CompileError) as e:
        iface.load_shader_from_string(source)
    assert "(NVRTC) [CUDA translation check, sm_80]" in str(e.value)
    assert "__builtin_ia32_pause" in str(e.value)
    assert e.value.lineno == 4
    # The same shader is fine for the host compiler.
    monkeypatch.delenv("METALGPU_CHECK_CUDA")
    iface.load_shader_from_string(source)
