"""Debug mode on the cuda backend: bounds checks (races and barriers are the cpu backend's).
The cpu backend's bounds tests run here unchanged against a cuda interface in debug mode: the
same KernelFault, message and thread - the report keeps the fault of the lowest thread in the
grid, so which fault is told does not depend on how the GPU scheduled the threads.

Without a GPU, CI still compiles every debug-mode kernel's CUDA translation: the cpu backend's
debug tests run with METALGPU_CHECK_CUDA, which NVRTC-compiles the cuda debug translation."""

from __future__ import annotations

import numpy as np
import pytest
import test_debug_mode as cpu_debug
from conftest import AVAILABLE_BACKENDS, mg

pytestmark = pytest.mark.skipif("cuda" not in AVAILABLE_BACKENDS, reason="needs the cuda backend (a GPU)")

HEADER = cpu_debug.HEADER

# The cpu backend's tests of bounds, of correct kernels running unchanged and of the interface
# staying usable after a fault: (test, its parameters).
SHARED = [
    (cpu_debug.test_write_far_past_a_buffer_names_everything, {}),
    (cpu_debug.test_one_element_past_the_end_is_caught_at_the_last_thread, {}),
    (cpu_debug.test_reads_through_pointer_arithmetic_dereference_and_arrow, {}),
    (cpu_debug.test_an_argument_name_pointing_at_another_buffer_is_checked_against_that_one, {"how": "reassigned"}),
    (cpu_debug.test_an_argument_name_pointing_at_another_buffer_is_checked_against_that_one, {"how": "shadowed"}),
    (cpu_debug.test_accesses_by_the_grid_position_are_checked_per_share_and_still_caught, {}),
    (cpu_debug.test_a_grid_position_a_helper_changes_is_checked_as_it_is, {}),
    (cpu_debug.test_arguments_read_through_star_and_arrow_and_moved_inside_their_buffer, {}),
    (cpu_debug.test_writes_to_a_by_value_struct_slot_and_threadgroup_slot_are_bounded, {}),
    (cpu_debug.test_threadgroup_array_and_metal_array_indices_are_checked, {}),
    (cpu_debug.test_taking_the_end_address_is_not_an_access, {}),
    (cpu_debug.test_correct_cooperative_kernels_run_unchanged, {}),
    (cpu_debug.test_a_fault_after_a_barrier_names_the_thread_and_then_leaves_the_interface_usable, {}),
    (cpu_debug.test_a_faulting_dispatch_leaves_the_interface_usable, {}),
]


@pytest.fixture(scope="module")
def cuda_dbg():
    return mg.Interface(backend="cuda", debug=True)


def test_the_cuda_interface_reports_debug_mode(cuda_dbg, monkeypatch):
    assert cuda_dbg.debug is True
    assert mg.Interface(backend="cuda").debug is False
    monkeypatch.setenv("METALGPU_DEBUG", "1")
    assert mg.Interface(backend="cuda").debug is True


@pytest.mark.parametrize("test,params", SHARED, ids=[f"{t.__name__}{list(p.values()) or ''}" for t, p in SHARED])
def test_cpu_bounds_checks_hold_on_cuda(cuda_dbg, test, params):
    test(cuda_dbg, **params)


def test_many_faulting_threads_report_the_lowest_one(cuda_dbg):
    # Every thread from 1000 on writes past the end, in 64 threadgroups the GPU runs in any
    # order: the report is always thread 1000's.
    x = cuda_dbg.create_buffer(1000, "float")
    src = """
kernel void over(device float* x [[buffer(0)]], uint id [[thread_position_in_grid]]) {
  x[id] = 1.0f;
}"""
    for _ in range(3):
        e = cpu_debug.run_fault(cuda_dbg, src, "over", 64 * 256, [x], threadgroup=(256, 1, 1))
        assert e.thread_position == (1000, 0, 0) and "element 1000" in str(e) and "holds 1000" in str(e)
    np.testing.assert_array_equal(x.contents, 1)


def test_a_fault_in_a_helper_function_names_the_helper_line(cuda_dbg):
    x = cuda_dbg.create_buffer(16, "int")
    e = cpu_debug.run_fault(cuda_dbg, """
int load(device const int* p, int i) {
  return p[i];
}
kernel void gather(device int* x [[buffer(0)]], device const int* idx [[buffer(1)]],
                   uint id [[thread_position_in_grid]]) {
  x[id] = load(idx, int(id) * 2);
}""", "gather", 16, [x, cuda_dbg.array_to_buffer(np.arange(16, dtype=np.int32))])
    assert "out-of-bounds read `p[i]`" in str(e) and e.lineno == 5 and e.thread_position == (8, 0, 0)
    assert "'idx' ([[buffer(1)]], 64 bytes)" in str(e)


def test_debug_mode_computes_what_normal_mode_computes(cuda_dbg):
    # A tiled matrix product: threadgroup memory, barriers, threads past the matrix edge.
    src = HEADER + """
kernel void matmul(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                   device float* c [[buffer(2)]], constant uint& n [[buffer(3)]],
                   uint2 gid [[thread_position_in_grid]], uint2 lid [[thread_position_in_threadgroup]]) {
  threadgroup float ta[8][8], tb[8][8];
  float acc = 0.0f;
  for (uint k0 = 0; k0 < n; k0 += 8) {
    ta[lid.y][lid.x] = (gid.y < n && k0 + lid.x < n) ? a[gid.y * n + k0 + lid.x] : 0.0f;
    tb[lid.y][lid.x] = (gid.x < n && k0 + lid.y < n) ? b[(k0 + lid.y) * n + gid.x] : 0.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k = 0; k < 8; ++k) acc += ta[lid.y][k] * tb[k][lid.x];
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  if (gid.x < n && gid.y < n) c[gid.y * n + gid.x] = acc;
}"""
    n = 37
    r = np.random.default_rng(3)
    a, b = r.standard_normal((n, n)).astype(np.float32), r.standard_normal((n, n)).astype(np.float32)
    out = {}
    for debug in (False, True):
        iface = mg.Interface(backend="cuda", debug=debug)
        iface.load_shader_from_string(src)
        iface.set_function("matmul")
        c = iface.create_buffer(n * n, "float")
        iface.run_function((40, 40, 1), [iface.array_to_buffer(a), iface.array_to_buffer(b), c, np.uint32(n)],
                           threadgroup=(8, 8, 1))
        out[debug] = c.contents.reshape(n, n).copy()
    np.testing.assert_allclose(out[True], a @ b, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out[True], out[False])


def test_buffers_side_by_side_in_gpu_memory_are_told_apart(cuda_dbg):
    # The allocator can place buffers back to back: the pointer to B is then also the end of A.
    # An access through B must be checked against B (it was reported as past A's end).
    src = """
kernel void add(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                device float* c [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  c[i] = a[i] + b[i];
}"""
    cuda_dbg.load_shader_from_string(src)
    cuda_dbg.set_function("add")
    n = 65536
    r = np.random.default_rng(5)
    for _ in range(4):
        a, b = r.standard_normal(n).astype(np.float32), r.standard_normal(n).astype(np.float32)
        bufs = [cuda_dbg.array_to_buffer(a), cuda_dbg.array_to_buffer(b), cuda_dbg.create_buffer(n, "float")]
        cuda_dbg.run_function(n, bufs)
        np.testing.assert_array_equal(bufs[2].contents, a + b)


MISALIGNED_ROWS = cpu_debug.MISALIGNED_ROWS


def test_a_vector_access_cuda_cannot_do_is_named_not_fatal(cuda_dbg):
    # On CUDA a float4 store at an 8-byte aligned address ends the context; debug mode names it
    # (the cpu backend, like an Apple GPU, performs it: test_debug_mode.py).
    out = cuda_dbg.create_buffer(64, "float")
    e = cpu_debug.run_fault(cuda_dbg, MISALIGNED_ROWS, "rows", 4, [out])
    assert "misaligned write `*row`: 16 bytes at an address aligned to 8 bytes; CUDA needs 16" in str(e), str(e)
    assert e.thread_position == (0, 0, 0) and e.lineno == 6
    # The interface goes on working.
    cuda_dbg.load_shader_from_string(HEADER + MISALIGNED_ROWS.replace("out + 2", "out"))
    cuda_dbg.set_function("rows")
    cuda_dbg.run_function(4, [out])
    assert out.contents[:16].tolist() == [1.0] * 16
