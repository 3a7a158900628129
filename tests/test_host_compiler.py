"""The cpu backend's host compiler: which one is used, the flags probed for it, and the errors
when it cannot be used. Each case runs in a child process: the compiler is chosen once per
process. Wrapper scripts around g++ stand in for compilers that lack libmvec or -march=native,
or that build modules which cannot be loaded."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import metalgpu as mg

GXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(
    GXX is None or "cpu" not in {d.backend for d in mg.devices()}, reason="needs the cpu backend and g++"
)

RUN_KERNEL = textwrap.dedent(
    """
    import numpy as np
    import metalgpu as mg
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string('''
    #include <metal_stdlib>
    using namespace metal;
    kernel void twice(device float* a [[buffer(0)]], uint i [[thread_position_in_grid]]) {
        a[i] = a[i] * 2.0f + 1.0f;
    }
    ''')
    iface.set_function("twice")
    buf = iface.array_to_buffer(np.arange(100, dtype=np.float32))
    iface.run_function(100, [buf])
    assert np.array_equal(buf.contents, np.arange(100) * 2 + 1), buf.contents
    print("kernel ok")
    """
)


# Unqualified Metal math on floats and ints, vectorisable across threads (libmvec where linked),
# plus infinities and NaNs, which must compare and classify as on the GPU under fast math.
RUN_MATH = textwrap.dedent(
    """
    import numpy as np
    import metalgpu as mg
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string('''
    #include <metal_stdlib>
    using namespace metal;
    kernel void math(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                     device int* n [[buffer(2)]], uint i [[thread_position_in_grid]]) {
        float v = x[i];
        y[i] = exp(v) + sin(v) + sqrt(abs(v)) + fabs(v) + pow(abs(v), 1.5f) + max(-INFINITY, v);
        int k = int(i) - 50;
        n[i] = abs(k) + min(k, 3);
    }
    kernel void special(device const float* x [[buffer(0)]], device int* out [[buffer(1)]],
                        uint i [[thread_position_in_grid]]) {
        float v = x[i];
        out[i] = int(v == INFINITY) + 2 * int(v == -INFINITY) + 4 * int(isnan(v)) + 8 * int(v != v) +
                 16 * int(isinf(v)) + 32 * int(max(v, -INFINITY) == v);
    }
    ''')
    x = np.linspace(-3, 3, 100).astype(np.float32)
    xb, yb, nb = iface.array_to_buffer(x), iface.create_buffer(100, "float"), iface.create_buffer(100, "int")
    iface.set_function("math")
    iface.run_function(100, [xb, yb, nb])
    x64 = x.astype(np.float64)
    want = np.exp(x64) + np.sin(x64) + np.sqrt(np.abs(x64)) + np.abs(x64) + np.abs(x64) ** 1.5 + x64
    assert np.allclose(yb.contents, want, rtol=1e-4, atol=1e-4), (yb.contents, want)
    k = np.arange(100) - 50
    assert np.array_equal(nb.contents, np.abs(k) + np.minimum(k, 3))
    s = np.array([np.inf, -np.inf, np.nan, 1.0, -0.0, 3e38], np.float32)
    out = iface.create_buffer(len(s), "int")
    iface.set_function("special")
    iface.run_function(len(s), [iface.array_to_buffer(s), out])
    assert out.contents.tolist() == [1 + 16 + 32, 2 + 16 + 32, 4 + 8, 32, 32, 32], out.contents.tolist()
    print("math ok")
    """
)


def _cxx_include_dirs() -> list[str]:
    """g++'s C++ library include folders (what conda, spack and Homebrew wrappers add)."""
    proc = subprocess.run([GXX, "-x", "c++", "-E", "-v", "-"], input="", capture_output=True, text=True,
                          check=False)
    lines = proc.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if "#include <...> search starts here" in line)
    dirs = []
    for line in lines[start + 1:]:
        if line.startswith("End of search list"):
            break
        if "c++" in line:
            dirs.append(line.strip())
    return dirs


def _other_backends() -> bool:
    return any(d.backend != "cpu" for d in mg.devices())


def _child(code: str, tmp_path: Path, cxx: str | None, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, METALGPU_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("METALGPU_BACKEND", None)
    if cxx is None:
        env.pop("CXX", None)
    else:
        env["CXX"] = cxx
    argv = [sys.executable, *args] if args else [sys.executable, "-c", code]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


def _wrapper(tmp_path: Path, name: str, body: str) -> str:
    """A bash script standing in for a compiler; runs g++ unless `body` exits first."""
    path = tmp_path / name
    path.write_text(f"#!/bin/bash\n{body}\nexec {GXX} \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


@pytest.mark.parametrize("cxx", ["/nonexistent/c++", "/bin/false"])
def test_a_cxx_that_does_not_run_is_named_not_replaced(tmp_path, cxx):
    if _other_backends():
        pytest.skip("another backend runs here: Interface() does not fail")
    code = textwrap.dedent(
        f"""
        import metalgpu as mg
        for kwargs in ({{}}, {{"backend": "cpu"}}):
            try:
                mg.Interface(**kwargs)
            except RuntimeError as e:
                print("error:", e)
            else:
                print("no error: the cpu backend ran without {cxx}")
        """
    )
    proc = _child(code, tmp_path, cxx)
    assert proc.returncode == 0, proc.stderr
    errors = [line for line in proc.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, proc.stdout
    # Interface() (no working backend at all) and Interface(backend="cpu") both name the compiler.
    assert f"CXX={cxx}" in proc.stdout
    assert proc.stdout.count(f"CXX={cxx} does not work") >= 2, proc.stdout


@pytest.mark.parametrize("cxx", ["/nonexistent/c++", "/bin/false"])
def test_info_never_tracebacks(tmp_path, cxx):
    if _other_backends():
        pytest.skip("another backend runs here: there is a default backend")
    proc = _child("", tmp_path, cxx, "-m", "metalgpu", "info")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 1
    assert "default backend: none" in proc.stdout
    assert f"cpu: [cpu] the C++ compiler CXX={cxx} does not work" in proc.stdout


def test_no_lmvec_where_the_link_fails_without_it(tmp_path):
    # A toolchain without glibc's libmvec (macOS, musl, some clang installs).
    cxx = _wrapper(
        tmp_path,
        "cxx-no-mvec",
        'for a in "$@"; do [ "$a" = -lmvec ] && { echo "ld: cannot find -lmvec" >&2; exit 1; }; done',
    )
    proc = _child(RUN_KERNEL, tmp_path, cxx)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kernel ok" in proc.stdout
    # Math that g++ would vectorise through libmvec: no SIMD variant may be referenced.
    proc = _child(RUN_MATH, tmp_path, cxx)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "math ok" in proc.stdout


def test_math_and_infinities_with_the_default_compiler(tmp_path):
    proc = _child(RUN_MATH, tmp_path, None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "math ok" in proc.stdout


def test_a_wrapper_that_adds_the_cxx_include_folders(tmp_path):
    # The C++ library's <math.h>/<stdlib.h> put exp(float), abs(float) ... in the global
    # namespace: unqualified Metal calls must still resolve to metal's functions.
    dirs = _cxx_include_dirs()
    assert dirs, "g++ reports no C++ include folder"
    cxx = _wrapper(tmp_path, "cxx-with-includes", "set -- " + " ".join(f"-isystem {d}" for d in dirs) + ' "$@"')
    proc = _child(RUN_MATH, tmp_path, cxx)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "math ok" in proc.stdout


@pytest.mark.skipif(shutil.which("clang++") is None, reason="clang++ is not installed")
def test_clang(tmp_path):
    proc = _child(RUN_MATH, tmp_path, "clang++")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "math ok" in proc.stdout


def test_no_march_native_where_it_is_rejected(tmp_path):
    cxx = _wrapper(
        tmp_path,
        "cxx-no-native",
        'for a in "$@"; do [ "$a" = -march=native ] && { echo "error: unknown target CPU native" >&2; exit 1; }; done',
    )
    proc = _child(RUN_KERNEL, tmp_path, cxx)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kernel ok" in proc.stdout


def test_a_compiler_that_crashes_with_march_native_gets_a_second_try_without(tmp_path):
    # clang 18 crashes in its x86 backend on some kernels with -march=native on AVX-512
    # machines (a compiler bug): the module is built again without the flag, with a note.
    cxx = _wrapper(
        tmp_path,
        "cxx-crashes-native",
        'native=0; kernel=0; for a in "$@"; do [ "$a" = -march=native ] && native=1; '
        'case "$a" in *.so.cpp) kernel=1;; esac; done\n'
        '[ $native = 1 ] && [ $kernel = 1 ] && { echo "PLEASE submit a bug report to the compiler" >&2; '
        'echo "c++: error: clang frontend command failed with exit code 139" >&2; exit 1; }',
    )
    proc = _child(RUN_KERNEL, tmp_path, cxx)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kernel ok" in proc.stdout
    assert proc.stderr.count("crashed compiling a kernel module with -march=native") == 1, proc.stderr


def test_the_probe_runs_once_then_its_answer_is_cached(tmp_path):
    log = tmp_path / "calls.log"
    cxx = _wrapper(tmp_path, "cxx-logged", f'echo "$*" >> {log}')
    first = _child(RUN_KERNEL, tmp_path, cxx)
    assert first.returncode == 0, first.stderr[-3000:]
    calls_first = log.read_text().splitlines()
    assert any("/probe-" in c for c in calls_first), calls_first
    log.unlink()
    # Same compiler, same cache: no probe builds and no kernel build, only `--version`.
    second = _child(RUN_KERNEL, tmp_path, cxx)
    assert second.returncode == 0, second.stderr[-3000:]
    assert log.read_text().splitlines() == ["--version"]


def test_a_module_that_cannot_be_loaded_reports_dlerror(tmp_path):
    # A compiler whose kernel modules (not its probe module) need a symbol nothing defines:
    # dlopen fails, and the error must carry dlerror()'s text.
    extra_c = tmp_path / "missing.c"
    extra_c.write_text(
        "extern void mg_test_symbol_that_does_not_exist(void);\n"
        "__attribute__((constructor)) static void use_it(void) { mg_test_symbol_that_does_not_exist(); }\n"
    )
    extra_o = tmp_path / "missing.o"
    subprocess.run([GXX, "-x", "c", "-fPIC", "-c", str(extra_c), "-o", str(extra_o)], check=True)
    cxx = _wrapper(
        tmp_path,
        "cxx-bad-module",
        'case "$*" in *-shared*) case "$*" in *probe-*) ;; *) set -- "$@" ' + str(extra_o) + " ;; esac ;; esac",
    )
    proc = _child(RUN_KERNEL, tmp_path, cxx)
    assert proc.returncode != 0
    assert "cannot be loaded" in proc.stderr
    assert "undefined symbol: mg_test_symbol_that_does_not_exist" in proc.stderr
    assert "basic_string" not in proc.stderr


# A cooperative kernel (fibers, barriers, threadgroup memory): the runtime part that once
# needed the C++ library (operator new), which a C driver does not link.
RUN_COOPERATIVE = textwrap.dedent(
    """
    import numpy as np
    import metalgpu as mg
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string('''
    #include <metal_stdlib>
    using namespace metal;
    kernel void rev(device float* a [[buffer(0)]], uint l [[thread_position_in_threadgroup]],
                    uint n [[threads_per_threadgroup]], uint g [[thread_position_in_grid]]) {
        threadgroup float t[64];
        t[l] = a[g];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        a[g] = t[n - 1 - l] + simd_sum(1.0f);
    }
    ''')
    iface.set_function("rev")
    buf = iface.array_to_buffer(np.arange(128, dtype=np.float32))
    iface.run_function(128, [buf], threadgroup=64)
    expect = np.arange(128, dtype=np.float32).reshape(2, 64)[:, ::-1].ravel() + 32
    assert np.array_equal(buf.contents, expect), buf.contents
    print("cooperative ok")
    """
)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_cxx_set_to_the_c_driver(tmp_path):
    # CXX=gcc: the C driver compiles C++ but links no C++ library; generated modules need none.
    for script, word in ((RUN_KERNEL, "kernel ok"), (RUN_COOPERATIVE, "cooperative ok")):
        proc = _child(script, tmp_path, "gcc")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert word in proc.stdout


def _asan_runtimes() -> str | None:
    """g++'s ASan and UBSan runtimes, for LD_PRELOAD; None where g++ has none."""
    paths = [subprocess.run([GXX, f"-print-file-name={lib}"], capture_output=True, text=True,
                            check=False).stdout.strip() for lib in ("libasan.so", "libubsan.so")]
    return " ".join(paths) if all(os.path.isabs(p) and os.path.exists(p) for p in paths) else None


def test_sanitized_kernels_need_the_asan_runtime(tmp_path):
    # METALGPU_SANITIZE=1 in a process without ASan's runtime: loading an ASan module would end
    # the process, so the cpu backend says what is missing instead.
    if getattr(mg._core, "_sanitized", False):
        pytest.skip("a sanitized build runs with the runtime loaded")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "CXX", "METALGPU_BACKEND")}
    env.update(METALGPU_SANITIZE="1", METALGPU_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", RUN_KERNEL], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "METALGPU_SANITIZE=1 builds kernels with AddressSanitizer" in proc.stderr
    assert "LD_PRELOAD=$(g++ -print-file-name=libasan.so)" in proc.stderr


@pytest.mark.parametrize("cxx", ["g++", "gcc"])
def test_sanitized_kernels_in_a_plain_build(tmp_path, cxx):
    # METALGPU_SANITIZE=1 with the runtimes preloaded: kernels (cooperative ones too, whose
    # fibers are announced to ASan) compile with the sanitizers and run; CXX=gcc still links
    # them without a C++ library. The cache keeps them apart from plain modules.
    runtimes = _asan_runtimes()
    if runtimes is None or shutil.which(cxx) is None:
        pytest.skip(f"{cxx} or g++'s sanitizer runtimes are not installed")
    # Not METALGPU_CHECK_CUDA (CI sets it): NVRTC in a process with libasan preloaded cannot
    # load its builtins library, and this test is about the cpu modules.
    env = {k: v for k, v in os.environ.items() if k not in ("METALGPU_BACKEND", "METALGPU_CHECK_CUDA")}
    env.update(METALGPU_SANITIZE="1", METALGPU_CACHE_DIR=str(tmp_path / "cache"), CXX=cxx,
               LD_PRELOAD=runtimes, ASAN_OPTIONS="detect_leaks=0")
    for script, word in ((RUN_KERNEL, "kernel ok"), (RUN_COOPERATIVE, "cooperative ok")):
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert word in proc.stdout
    modules = list((tmp_path / "cache").glob("*.so"))
    assert len(modules) == 2 and all(b"__asan_report" in m.read_bytes() for m in modules)
