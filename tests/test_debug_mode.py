"""Debug mode (METALGPU_DEBUG=1 / Interface(debug=True)) on the cpu backend: a kernel's own bugs
raise mg.KernelFault naming the kernel, the .metal line, the access, the slot and the thread -
and correct kernels (cooperative ones included) run and compute exactly as without it."""

from __future__ import annotations

import platform
import subprocess
import sys

import numpy as np
import pytest
from conftest import AVAILABLE_BACKENDS, mg

pytestmark = pytest.mark.skipif("cpu" not in AVAILABLE_BACKENDS, reason="debug mode is the cpu backend's")

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"


@pytest.fixture(params=["loops", "fibers"])
def mode(request, monkeypatch):
    """How cooperative kernels run: rewritten into work-item loops (the default; "0" also
    reports a compile error in the rewrite instead of retrying with fibers), or as fibers."""
    monkeypatch.setenv("METALGPU_CPU_FIBERS", "0" if request.param == "loops" else "1")
    return request.param


@pytest.fixture
def dbg(mode):
    return mg.Interface(backend="cpu", debug=True)


def run_fault(iface, source, function, grid, buffers, **kw):
    iface.load_shader_from_string(HEADER + source)
    iface.set_function(function)
    with pytest.raises(mg.KernelFault) as info:
        iface.run_function(grid, buffers, **kw)
    return info.value


def test_interface_reports_debug_mode(dbg, monkeypatch):
    assert dbg.debug is True
    assert mg.Interface(backend="cpu").debug is False
    monkeypatch.setenv("METALGPU_DEBUG", "1")
    assert mg.Interface(backend="cpu").debug is True
    monkeypatch.setenv("METALGPU_DEBUG", "0")
    assert mg.Interface(backend="cpu").debug is False
    assert issubclass(mg.KernelFault, RuntimeError)


def test_write_far_past_a_buffer_names_everything(dbg):
    x = dbg.create_buffer(8, "float")
    e = run_fault(dbg, """
kernel void poke(device float* x [[buffer(0)]], uint id [[thread_position_in_grid]]) {
  x[id + 1000000] = 42;
}""", "poke", 8, [x])
    text = str(e)
    assert "kernel 'poke'" in text and "<string>:5" in text
    assert "out-of-bounds write `x[id + 1000000]`" in text
    assert "element 1000000" in text and "'x' ([[buffer(0)]], 32 bytes)" in text and "holds 8" in text
    assert e.kernel == "poke" and e.lineno == 5 and e.thread_position == (0, 0, 0)
    assert not np.any(x.contents)  # nothing was written anywhere


def test_one_element_past_the_end_is_caught_at_the_last_thread(dbg):
    x = dbg.create_buffer(8, "float")
    e = run_fault(dbg, """
kernel void shift(device float* x [[buffer(0)]], device const float* y [[buffer(1)]],
                  uint id [[thread_position_in_grid]]) {
  x[id] = y[id + 1];
}""", "shift", 8, [x, dbg.array_to_buffer(np.ones(8, np.float32))])
    assert "out-of-bounds read `y[id + 1]`" in str(e) and "element 8" in str(e) and "'y' ([[buffer(1)]]" in str(e)
    assert e.thread_position == (7, 0, 0)


def test_reads_through_pointer_arithmetic_dereference_and_arrow(dbg):
    src = """
struct P { float a; float b; };
kernel void deref(device float* out [[buffer(0)]], device const P* p [[buffer(1)]],
                  constant uint& n [[buffer(2)]], uint id [[thread_position_in_grid]]) {
  device const P* q = p + id;
  float v = q->a + (*(p + n)).b;
  out[id] = v;
}"""
    p = np.zeros(4, dtype=[("a", "f4"), ("b", "f4")])
    out = dbg.create_buffer(4, "float")
    # n = 3 stays inside: no fault, and the values are right.
    dbg.load_shader_from_string(HEADER + src)
    dbg.set_function("deref")
    p["a"], p["b"] = np.arange(4), 10
    dbg.run_function(4, [out, p.tobytes(), np.uint32(3)])
    np.testing.assert_array_equal(out.contents, np.arange(4) + 10)
    e = run_fault(dbg, src, "deref", 4, [out, p.tobytes(), np.uint32(4)])
    assert "out-of-bounds read `*(p + n)`" in str(e) and "8 bytes each" in str(e) and "[[buffer(1)]]" in str(e)


# A kernel looks up its buffer arguments once; an access through an argument's name checks
# against that buffer - unless the name no longer points into it.
@pytest.mark.parametrize("how", ["reassigned", "shadowed"])
def test_an_argument_name_pointing_at_another_buffer_is_checked_against_that_one(dbg, how):
    body = {"reassigned": "big = small;\n  big[id] = 1;",
            "shadowed": "{ device float* big = small; big[id] = 1; }"}[how]
    big, small = dbg.create_buffer(64, "float"), dbg.create_buffer(4, "float")
    e = run_fault(dbg, f"""
kernel void moved(device float* big [[buffer(0)]], device float* small [[buffer(1)]],
                  uint id [[thread_position_in_grid]]) {{
  {body}
}}""", "moved", 8, [big, small])
    assert "out-of-bounds write `big[id]`" in str(e) and "element 4" in str(e) and "'small' ([[buffer(1)]]" in str(e)
    assert e.thread_position == (4, 0, 0)
    np.testing.assert_array_equal(small.contents, 1)
    assert not np.any(big.contents)


# `arg[i]` with i the grid position: checked once per share of the dispatch, not per access.
def test_accesses_by_the_grid_position_are_checked_per_share_and_still_caught(dbg):
    src = """
kernel void scale(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) {
  y[i] = 2.0f * x[i];
}"""
    x = np.arange(1000, dtype=np.float32)
    y = dbg.create_buffer(1000, "float")
    dbg.load_shader_from_string(HEADER + src)
    dbg.set_function("scale")
    dbg.run_function(1000, [dbg.array_to_buffer(x), y])
    np.testing.assert_array_equal(y.contents, 2 * x)
    short = dbg.create_buffer(700, "float")
    e = run_fault(dbg, src, "scale", 1000, [dbg.array_to_buffer(x), short])
    assert "out-of-bounds write `y[i]`" in str(e) and "element 700" in str(e) and e.thread_position == (700, 0, 0)
    np.testing.assert_array_equal(short.contents, 2 * x[:700])


def test_a_grid_position_a_helper_changes_is_checked_as_it_is(dbg):
    x = dbg.create_buffer(8, "float")
    e = run_fault(dbg, """
void bump(thread uint& j) { j += 100; }
kernel void moved(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  bump(i);
  x[i] = 1.0f;
}""", "moved", 8, [x])
    assert "out-of-bounds write `x[i]`" in str(e) and "element 100" in str(e) and e.thread_position == (0, 0, 0)
    assert not np.any(x.contents)


def test_arguments_read_through_star_and_arrow_and_moved_inside_their_buffer(dbg):
    src = """
struct P { float a; float b; };
kernel void args(device float* out [[buffer(0)]], device const P* p [[buffer(1)]],
                 device const float* x [[buffer(2)]], uint id [[thread_position_in_grid]]) {
  x += 2;
  out[id] = p->a + (*p).b + *x + x[id];
}"""
    p = np.array([(1.0, 2.0)], dtype=[("a", "f4"), ("b", "f4")])
    out = dbg.create_buffer(4, "float")
    dbg.load_shader_from_string(HEADER + src)
    dbg.set_function("args")
    dbg.run_function(4, [out, p.tobytes(), dbg.array_to_buffer(np.arange(6, dtype=np.float32))])
    np.testing.assert_array_equal(out.contents, 3 + 2 + np.arange(2, 6))
    e = run_fault(dbg, src, "args", 5, [out, p.tobytes(), dbg.array_to_buffer(np.arange(6, dtype=np.float32))])
    assert "out-of-bounds read `x[id]`" in str(e) and "element 6" in str(e) and e.thread_position == (4, 0, 0)


def test_writes_to_a_by_value_struct_slot_and_threadgroup_slot_are_bounded(dbg):
    out = dbg.create_buffer(64, "float")
    e = run_fault(dbg, """
kernel void tg(device float* out [[buffer(0)]], threadgroup float* scratch [[threadgroup(0)]],
               uint l [[thread_position_in_threadgroup]], uint g [[thread_position_in_grid]]) {
  scratch[l] = float(l);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[g] = scratch[l];
}""", "tg", 64, [out], threadgroup=(32, 1, 1), threadgroup_memory={0: 64})  # room for 16 floats
    assert "out-of-bounds write `scratch[l]`" in str(e) and "'scratch' ([[threadgroup(0)]], 64 bytes)" in str(e)
    assert e.thread_position[0] % 32 == 16


def test_threadgroup_array_and_metal_array_indices_are_checked(dbg):
    out = dbg.create_buffer(32, "float")
    e = run_fault(dbg, """
kernel void shared_tile(device float* out [[buffer(0)]], uint l [[thread_position_in_threadgroup]]) {
  threadgroup float tile[32];
  tile[l] = float(l);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[l] = tile[l + 1];
}""", "shared_tile", 32, [out], threadgroup=(32, 1, 1))
    assert "out-of-bounds read `tile[l + 1]`: index 32 of an array of 32 elements" in str(e)
    assert e.thread_position == (31, 0, 0)
    e = run_fault(dbg, """
kernel void arr(device float* out [[buffer(0)]], constant int& k [[buffer(1)]], uint id [[thread_position_in_grid]]) {
  metal::array<float, 4> a = {1, 2, 3, 4};
  out[id] = a[k];
}""", "arr", 4, [out, np.int32(-1)])
    assert "index -1 of an array of 4 elements" in str(e)


def test_taking_the_end_address_is_not_an_access(dbg):
    src = """
kernel void span(device float* x [[buffer(0)]], constant uint& n [[buffer(1)]], uint id [[thread_position_in_grid]]) {
  device float* end = &x[n];
  device float* p = &x[id];
  if (p < end) *p = float(end - p);
}"""
    x = dbg.create_buffer(8, "float")
    dbg.load_shader_from_string(HEADER + src)
    dbg.set_function("span")
    dbg.run_function(8, [x, np.uint32(8)])
    np.testing.assert_array_equal(x.contents, np.arange(8, 0, -1))


def test_write_write_race_in_threadgroup_memory(dbg):
    out = dbg.create_buffer(8, "float")
    e = run_fault(dbg, """
kernel void last_wins(device float* out [[buffer(0)]], threadgroup float* t [[threadgroup(0)]],
                      uint l [[thread_position_in_threadgroup]]) {
  t[0] = float(l);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[l] = t[0];
}""", "last_wins", 8, [out], threadgroup=(8, 1, 1), threadgroup_memory={0: 16})
    text = str(e)
    assert "threadgroup memory race: `t[0]` (write by thread 1" in text and "(write by thread 0)" in text
    assert "'t' ([[threadgroup(0)]]" in text and e.lineno == 6


def test_read_of_a_neighbour_without_a_barrier_is_a_race(dbg):
    out = dbg.create_buffer(64, "float")
    e = run_fault(dbg, """
kernel void neighbour(device float* out [[buffer(0)]], uint l [[thread_position_in_threadgroup]]) {
  threadgroup float tile[64];
  tile[l] = float(l);
  out[l] = tile[(l + 1) % 64];  // the barrier is missing
}""", "neighbour", 64, [out], threadgroup=(64, 1, 1))
    assert "threadgroup memory race" in str(e) and "tile" in str(e)


# Whole-word accesses (a float, an int, each word of a float4) are recorded per word, narrower
# ones per byte (mg_cpu_debug.h): races between the two kinds are caught all the same, and
# threads that each own a byte or a half of one word do not race.
MIXED_WIDTHS = {  # body: the out[1] thread 63 finds (bytes 7 and 10-11 of the tile), or None: a race
    "a float, then a byte of it": ("if (l == 0) f[0] = 1.0f; if (l == 1) b[1] = 2;", None),
    "a byte, then the float holding it": ("if (l == 0) b[1] = 2; if (l == 1) f[0] = 1.0f;", None),
    "a float4, then one of its floats": ("if (l == 0) f4[0] = float4(1.0f); if (l == 1) out[0] = f[2];", None),
    "a float read by many, then written": ("out[l] = f[0]; if (l == 5) f[0] = 3.0f;", None),
    # 2.0f is 0x40000000: byte 7 (the top of f[1]) 0x40, half 5 (the top of f[2]) 0x4000
    "a float, read then written by its thread": ("f[l] = 1.0f; f[l] += 1.0f; out[l] = f[l];", 0x40 + 0x4000),
    "bytes of one word, a thread each": ("b[l] = uchar(l);", 7 + (10 + 11 * 256)),
    "halves of one word, a thread each": ("h[l] = ushort(l);", 5),
}


@pytest.mark.parametrize("case", list(MIXED_WIDTHS))
def test_races_between_word_and_byte_accesses(dbg, case):
    body, expect = MIXED_WIDTHS[case]
    src = f"""
kernel void widths(device float* out [[buffer(0)]], threadgroup float4* f4 [[threadgroup(0)]],
                   uint l [[thread_position_in_threadgroup]]) {{
  threadgroup float* f = (threadgroup float*)f4;
  threadgroup uchar* b = (threadgroup uchar*)f4;
  threadgroup ushort* h = (threadgroup ushort*)f4;
  f[l] = 0.0f;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  {body}
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (l == 63) out[1] = float(b[7]) + float(h[5]);
}}"""
    out = dbg.create_buffer(64, "float")
    if expect is None:
        e = run_fault(dbg, src, "widths", 64, [out], threadgroup=(64, 1, 1), threadgroup_memory={0: 256})
        assert "threadgroup memory race" in str(e) and e.lineno == 11
    else:
        dbg.load_shader_from_string(HEADER + src)
        dbg.set_function("widths")
        dbg.run_function(64, [out], threadgroup=(64, 1, 1), threadgroup_memory={0: 256})
        assert out.contents[1] == expect


# Reads between two barriers with no write between them cannot race, and skip the race
# detector; a write there, or a call that might write, keeps them checked.
@pytest.mark.parametrize("between", ["a write", "a helper that writes", "a break to a write"])
def test_a_race_between_two_barriers_is_caught_whatever_writes(dbg, between):
    write = {"a write": "tile[(l + 1) % 64] = 0.0f;", "a helper that writes": "clear(tile, (l + 1) % 64);",
             "a break to a write": "if (r == 1) break;"}[between]
    out = dbg.create_buffer(64, "float")
    e = run_fault(dbg, f"""
void clear(threadgroup float* t, uint i) {{ t[i] = 0.0f; }}
kernel void neighbour(device float* out [[buffer(0)]], uint l [[thread_position_in_threadgroup]]) {{
  threadgroup float tile[64];
  tile[l] = float(l);
  for (uint r = 0; r < 2; ++r) {{
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[l] = tile[l];
    {write}
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }}
  tile[(l + 1) % 64] = 1.0f;
}}""", "neighbour", 64, [out], threadgroup=(64, 1, 1))
    assert "threadgroup memory race" in str(e) and "tile" in str(e)


def test_reads_between_barriers_with_no_write_are_still_bounded(dbg):
    out = dbg.create_buffer(64, "float")
    src = """
kernel void shifted(device float* out [[buffer(0)]], constant uint& by [[buffer(1)]],
                    uint l [[thread_position_in_threadgroup]]) {
  threadgroup float tile[8][8];
  tile[l / 8][l % 8] = float(l);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float sum = 0.0f;
  for (uint k = 0; k < 8; ++k) sum += tile[l / 8][(k + by) % 16];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[l] = sum;
}"""
    dbg.load_shader_from_string(HEADER + src)
    dbg.set_function("shifted")
    dbg.run_function(64, [out, np.uint32(0)], threadgroup=(64, 1, 1))
    np.testing.assert_array_equal(out.contents, np.repeat(np.arange(8) * 64 + 28, 8))
    e = run_fault(dbg, src, "shifted", 64, [out, np.uint32(3)], threadgroup=(64, 1, 1))
    assert "out-of-bounds read `tile[l / 8][(k + by) % 16]`" in str(e) and "index 8 of an array of 8" in str(e)


def test_a_barrier_only_some_threads_reach_is_reported_not_hung(dbg, mode):
    out = dbg.create_buffer(32, "float")
    e = run_fault(dbg, """
kernel void half_barrier(device float* out [[buffer(0)]], uint l [[thread_position_in_threadgroup]]) {
  if (l < 16) threadgroup_barrier(mem_flags::mem_threadgroup);
  out[l] = 1;
}""", "half_barrier", 32, [out], threadgroup=(32, 1, 1))
    assert "threadgroup_barrier reached by 16 of the 32 threads" in str(e)
    # Fibers see the others end; work-item loops see them skip it (the if's mask).
    assert ("ended without reaching it" if mode == "fibers" else "the other 16 skip it or have returned") in str(e)
    assert e.lineno == 5


def test_threads_at_different_barriers_are_reported(dbg, mode):
    out = dbg.create_buffer(32, "float")
    e = run_fault(dbg, """
kernel void split(device float* out [[buffer(0)]], uint l [[thread_position_in_threadgroup]]) {
  if (l < 16) { threadgroup_barrier(mem_flags::mem_threadgroup); }
  else { threadgroup_barrier(mem_flags::mem_threadgroup); }
  out[l] = 1;
}""", "split", 32, [out], threadgroup=(32, 1, 1))
    # Fibers find threads waiting at two barriers; work-item loops run the branches in turn and
    # find the first barrier reached by half the group.
    assert ("wait at different barriers" if mode == "fibers" else "reached by 16 of the 32 threads") in str(e)


REDUCTION = """
kernel void tree_sum(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                     threadgroup float* part [[threadgroup(0)]],
                     uint l [[thread_position_in_threadgroup]], uint g [[threadgroup_position_in_grid]],
                     uint n [[threads_per_threadgroup]], uint lane [[thread_index_in_simdgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
  float v = simd_sum(x[g * n + l]);
  if (lane == 0) part[sg] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (sg == 0) {
    float w = l < n / 32 ? part[l] : 0.0f;
    w = simd_sum(w);
    if (l == 0) out[g] = w;
  }
}
"""


def test_correct_cooperative_kernels_run_unchanged(dbg):
    x = np.random.default_rng(0).standard_normal(8 * 256).astype(np.float32)
    out = dbg.create_buffer(8, "float")
    dbg.load_shader_from_string(HEADER + REDUCTION)
    dbg.set_function("tree_sum")
    dbg.run_function(8 * 256, [dbg.array_to_buffer(x), out], threadgroup=(256, 1, 1), threadgroup_memory={0: 32})
    np.testing.assert_allclose(out.contents, x.reshape(8, 256).sum(axis=1), rtol=1e-5, atol=1e-5)


def test_cooperative_kernels_keep_their_work_item_loops_in_debug_mode(dbg, mode, tmp_path, monkeypatch):
    # Debug mode's checks go into the rewritten kernel (not back to fibers, which cost 10-100x).
    monkeypatch.setenv("METALGPU_DUMP", str(tmp_path))
    monkeypatch.setenv("METALGPU_CACHE_DIR", "0")
    dbg.load_shader_from_string(HEADER + REDUCTION)
    dbg.set_function("tree_sum")
    code = "".join(f.read_text() for f in tmp_path.glob("*.cpp"))
    assert "#define MG_DEBUG 1" in code and "::__metalgpu::dbg::sub" in code
    assert ("cpu::run_groups_wil(__L" in code) == (mode == "loops")


def test_a_fault_after_a_barrier_names_the_thread_and_then_leaves_the_interface_usable(dbg):
    # Thread 37 of group 1 (position 101) writes past the end, after a barrier and a SIMD-group
    # sum; a later dispatch of the same kernel is clean.
    out = dbg.create_buffer(128, "float")
    dbg.load_shader_from_string(HEADER + """
kernel void late(device float* out [[buffer(0)]], constant uint& bad [[buffer(1)]],
                 uint gid [[thread_position_in_grid]], uint l [[thread_position_in_threadgroup]]) {
  threadgroup float t[64];
  t[l] = float(gid);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float s = simd_sum(t[63 - l]);
  out[gid == bad ? 1000u : gid] = s;
}""")
    dbg.set_function("late")
    with pytest.raises(mg.KernelFault) as info:
        dbg.run_function(128, [out, np.uint32(101)], threadgroup=(64, 1, 1))
    e = info.value
    assert "out-of-bounds write" in str(e) and "element 1000" in str(e) and "holds 128" in str(e)
    assert "(thread_position_in_grid (101, 0, 0))" in str(e) and e.lineno == 10
    dbg.run_function(128, [out, np.uint32(999)], threadgroup=(64, 1, 1))
    t = np.arange(128, dtype=np.float32).reshape(2, 64)[:, ::-1]
    expect = np.repeat(t.reshape(4, 32).sum(axis=1), 32)
    np.testing.assert_array_equal(out.contents, expect)


def test_a_faulting_dispatch_leaves_the_interface_usable(dbg):
    x = dbg.create_buffer(4, "float")
    dbg.load_shader_from_string(HEADER + """
kernel void fill(device float* x [[buffer(0)]], constant uint& off [[buffer(1)]], uint id [[thread_position_in_grid]]) {
  x[id + off] = 7;
}""")
    dbg.set_function("fill")
    with pytest.raises(mg.KernelFault):
        dbg.run_function(4, [x, np.uint32(2)])
    dbg.run_function(4, [x, np.uint32(0)])
    np.testing.assert_array_equal(x.contents, 7)


def test_without_debug_mode_a_crash_names_the_kernel_and_suggests_it(tmp_path):
    # The same far write without debug mode takes the process down - with a word on stderr.
    script = tmp_path / "crash.py"
    script.write_text(
        "import metalgpu as mg\n"
        "i = mg.Interface(backend='cpu')\n"
        f"i.load_shader_from_string({HEADER!r} + 'kernel void poke(device float* x [[buffer(0)]], "
        "uint id [[thread_position_in_grid]]) { x[id * 100000000u + 900000000u] = 42; }')\n"
        "i.set_function('poke')\n"
        "i.run_function(8, [i.create_buffer(8, 'float')])\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode != 0
    assert "kernel 'poke'" in r.stderr and "METALGPU_DEBUG=1" in r.stderr


def test_an_integer_division_by_zero_gives_a_value_as_on_a_gpu(dbg):
    # Real kernels compute quotients by 0 they never use (ggml's flash attention without a mask):
    # debug mode reports no fault for them, on x86 (where the division would trap) as on AArch64.
    out = dbg.create_buffer(4, "int")
    dbg.load_shader_from_string(HEADER + """
kernel void ratio(device int2* out [[buffer(0)]], constant int& d [[buffer(1)]], uint id [[thread_position_in_grid]]) {
  out[id] = int2(int(id) / d, int(id) % (d * 2));
}""")
    dbg.set_function("ratio")
    dbg.run_function(2, [out, np.int32(0)])
    assert out.contents.tolist() == [0, 0, 1, 0]      # the divisor taken as 1


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="only x86 traps on INT_MIN / -1")
@pytest.mark.skipif(getattr(mg._core, "_sanitized", False), reason="UBSan reports the overflow first")
def test_an_integer_division_overflow_is_a_fault_not_a_crash(dbg):
    out = dbg.create_buffer(4, "int")
    e = run_fault(dbg, """
kernel void ratio(device int* out [[buffer(0)]], constant int& d [[buffer(1)]], uint id [[thread_position_in_grid]]) {
  out[id] = (int(id) - 2147483647 - 1) / d;
}""", "ratio", 1, [out, np.int32(-1)])
    assert "kernel 'ratio'" in str(e) and "integer division overflow (SIGFPE)" in str(e)


def test_an_unchecked_wild_access_is_a_fault_not_a_crash(dbg):
    out = dbg.create_buffer(4, "float")
    e = run_fault(dbg, """
kernel void wild(device float* out [[buffer(0)]], constant ulong& a [[buffer(1)]], uint id [[thread_position_in_grid]]) {
  out[id] = *(device float*)(a + id);  // an address from nowhere: no region to check it against
}""", "wild", 4, [out, np.uint64(16)])
    assert "invalid memory access at address 0x10 (SIGSEGV)" in str(e)


def test_mlx_gemv_t_barrier_in_divergent_code_is_named():
    # MLX's gemv_t (gemv.h) calls threadgroup_barrier inside `if (out_col < out_vec_size)`: the
    # threads of a partial last block skip it. Apple GPUs let a SIMD group through with the
    # lanes that reach it (the cuda backend does the same); Metal calls it undefined, and debug
    # mode says where.
    import corpus
    import test_corpus_mlx_linalg as linalg
    if not corpus.CORPUS.is_dir():
        pytest.skip("../shared/corpus is not here")
    checked = mg.Interface(backend="cpu", debug=True)
    with pytest.raises(mg.KernelFault, match=r"gemv\.h:350: threadgroup_barrier reached by \d+ of the 64 threads"):
        linalg.test_mlx_gemv(checked, "gemv_t", 1, 100, 3, 1)


MISALIGNED_ROWS = """
kernel void rows(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  device float4* row = (device float4*)(out + 2 + 4 * i);   // 8-byte aligned: Apple GPUs take it
  *row = float4(1.0f);
}"""


def test_a_vector_aligned_only_to_its_element_is_no_fault_on_cpu(dbg):
    # As on Apple GPUs (the cuda backend's debug mode names it: test_debug_mode_cuda.py).
    dbg.load_shader_from_string(HEADER + MISALIGNED_ROWS)
    dbg.set_function("rows")
    out = dbg.create_buffer(20, "float")
    dbg.run_function(4, [out])
    assert out.contents.tolist() == [0.0, 0.0] + [1.0] * 16 + [0.0, 0.0]
