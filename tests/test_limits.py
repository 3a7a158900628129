"""Hostile input and limits (issue 15): each is an exception naming the problem, never a crash,
a silent no-op or a UnicodeDecodeError."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import AVAILABLE_BACKENDS, mg

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"


@pytest.mark.parametrize("expression", [
    "(" * 15000 + "1" + ")" * 15000,        # parentheses
    "!" * 15000 + "1",                      # unary operators
    "1?" * 15000 + "1" + ":0" * 15000,      # conditionals
])
def test_deeply_nested_if_expressions_are_compile_errors(expression):
    with pytest.raises(mg.CompileError, match="nested more than 256 levels deep"):
        mg.translate(f"#if {expression}\nint x;\n#endif\n", "k", target="cpu")


def test_nesting_within_the_limit_still_evaluates():
    source = "#if " + "(" * 200 + "1" + ")" * 200 + "\n#error taken\n#endif\n"
    with pytest.raises(mg.CompileError, match="taken"):
        mg.translate(source, "k", target="cpu")


@pytest.mark.skipif("cpu" not in AVAILABLE_BACKENDS, reason="the cpu backend runs every thread here")
def test_a_grid_near_two_to_the_32_threads_runs_every_group():
    # (width + group - 1) in 32 bits wrapped to zero groups: the dispatch ran nothing.
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string(HEADER + """
kernel void last(device uint* out [[buffer(0)]], uint id [[thread_position_in_grid]]) {
  if (id == 4294967294u) out[0] = 7;
}""")
    iface.set_function("last")
    out = iface.create_buffer(1, "uint")
    iface.run_function(2**32 - 1, [out], threadgroup=1024)
    assert out.contents[0] == 7


def test_a_shader_file_with_bytes_that_are_not_utf8(iface, tmp_path):
    # A Latin-1 comment (Apple's compiler accepts it) loads; an error quoting such a byte is a
    # CompileError at its line, not a UnicodeDecodeError.
    good = tmp_path / "latin1.metal"
    good.write_bytes(HEADER.encode() + b"// caf\xe9 au lait\n"
                     b"kernel void twice(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {"
                     b" x[i] *= 2; }\n")
    iface.load_shader(good)
    iface.set_function("twice")
    buf = iface.array_to_buffer(np.arange(4, dtype=np.float32))
    iface.run_function(4, [buf])
    np.testing.assert_array_equal(buf.contents, [0, 2, 4, 6])
    bad = tmp_path / "stray.metal"
    bad.write_bytes(HEADER.encode() + b"kernel void k(device float* x [[buffer(0)]]) { x[0] = \xff; }\n")
    with pytest.raises(mg.CompileError) as info:
        iface.load_shader(bad)
    assert info.value.lineno == 3


@pytest.mark.skipif("cpu" not in AVAILABLE_BACKENDS, reason="the cpu backend's disk cache")
def test_a_cut_short_cache_entry_is_rebuilt_not_loaded(tmp_path, monkeypatch, subprocess_env):
    # dlopen maps a truncated module and the process dies of SIGBUS when it is touched; the
    # entry must be recognised as broken and compiled again. Fresh processes, as after a crash.
    import subprocess
    import sys
    env = dict(subprocess_env, METALGPU_CACHE_DIR=str(tmp_path))
    script = (
        "import numpy as np, metalgpu as mg\n"
        "i = mg.Interface(backend='cpu')\n"
        f"i.load_shader_from_string({HEADER!r} + 'kernel void inc(device float* x [[buffer(0)]], "
        "uint t [[thread_position_in_grid]]) { x[t] += 1; }')\n"
        "i.set_function('inc')\n"
        "b = i.array_to_buffer(np.zeros(8, np.float32))\n"
        "i.run_function(8, [b])\n"
        "assert (b.contents == 1).all()\n")
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert first.returncode == 0, first.stderr
    entries = [p for p in tmp_path.rglob("*.so")]
    assert entries
    for p in entries:
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    again = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert again.returncode == 0, again.stderr
    assert all(len(p.read_bytes()) > 0 for p in tmp_path.rglob("*.so"))


def test_macros_that_double_at_each_level_are_a_compile_error():
    # 2^40 copies of `a`: bounded by the count of expansions, not by time or memory.
    source = "#define X0 a\n" + "".join(f"#define X{k} X{k - 1} X{k - 1}\n" for k in range(1, 41)) + "int v = X40;\n"
    with pytest.raises(mg.CompileError, match="macro expansion too large"):
        mg.translate(source, "k", target="cpu")
