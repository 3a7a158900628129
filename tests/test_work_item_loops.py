"""Work-item loops on the cpu backend (issue 13).

A cooperative kernel whose barriers sit in structured control flow runs each stretch between
barriers as a loop over the group's threads (src/msl/work_item_loops.cpp); the rest keep their
fibers. Each kernel here is checked three ways: `translate()` shows which way it runs, numpy
gives the answer, and the same kernel forced onto fibers (METALGPU_CPU_FIBERS=1) agrees.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKENDS, mg

pytestmark = pytest.mark.skipif("cpu" not in BACKENDS, reason="work-item loops are the cpu backend's")

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"


@pytest.fixture(params=["loops", "fibers"])
def mode(request, monkeypatch):
    if request.param == "fibers":
        monkeypatch.setenv("METALGPU_CPU_FIBERS", "1")
    else:
        # "0": loops, and a compile error in the rewritten code is reported (not retried as fibers).
        monkeypatch.setenv("METALGPU_CPU_FIBERS", "0")
    return request.param


def runs_as(source: str, kernel: str) -> str:
    out = mg.translate(HEADER + source, kernel, target="cpu")
    if "run_groups_wil" in out:
        return "loops"
    if "run_groups_cooperative" in out:
        return "fibers"
    return "plain"


def run(source, kernel, grid, buffers, threadgroup, **kw):
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string(HEADER + source)
    iface.set_function(kernel)
    bufs = [iface.array_to_buffer(b) if isinstance(b, np.ndarray) else b for b in buffers]
    iface.run_function(grid, bufs, threadgroup=threadgroup, **kw)
    return [b.contents.copy() if hasattr(b, "contents") else None for b in bufs]


TREE_SUM = """
kernel void tree_sum(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                     uint tid [[thread_position_in_threadgroup]], uint gid [[threadgroup_position_in_grid]],
                     uint n [[threads_per_threadgroup]]) {
    threadgroup float sh[256];
    float v = x[gid * n + tid];
    sh[tid] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = n / 2; s > 0; s >>= 1) {
        if (tid < s) sh[tid] += sh[tid + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (tid == 0) out[gid] = sh[0] - v + v;
}
"""


def test_tree_reduction(mode):
    assert runs_as(TREE_SUM, "tree_sum") == mode
    x = np.arange(256 * 6, dtype=np.float32) % 17
    _, out = run(TREE_SUM, "tree_sum", (256 * 6, 1, 1), [x, np.zeros(6, np.float32)], (256, 1, 1))
    np.testing.assert_array_equal(out, x.reshape(6, 256).sum(1))


TILED_MATMUL = """
kernel void tiled(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                  device float* C [[buffer(2)]], constant uint& N [[buffer(3)]],
                  uint2 gid [[thread_position_in_grid]], uint2 lid [[thread_position_in_threadgroup]]) {
    threadgroup float As[8][8];
    threadgroup float Bs[8][8];
    float acc = 0.0f;
    for (uint t = 0; t < N / 8; ++t) {
        As[lid.y][lid.x] = A[gid.y * N + t * 8 + lid.x];
        Bs[lid.y][lid.x] = B[(t * 8 + lid.y) * N + gid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint k = 0; k < 8; ++k) acc += As[lid.y][k] * Bs[k][lid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    C[gid.y * N + gid.x] = acc;
}
"""


def test_tiled_matmul_2d_groups(mode):
    assert runs_as(TILED_MATMUL, "tiled") == mode
    n = 32
    rng = np.random.default_rng(1)
    a = rng.integers(-4, 4, (n, n)).astype(np.float32)
    b = rng.integers(-4, 4, (n, n)).astype(np.float32)
    *_, c, _ = run(TILED_MATMUL, "tiled", (n, n, 1), [a, b, np.zeros((n, n), np.float32), np.uint32(n)], (8, 8, 1))
    np.testing.assert_array_equal(c.reshape(n, n), a @ b)


SCAN = """
kernel void scan(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                 uint tid [[thread_index_in_threadgroup]], uint i [[thread_position_in_grid]],
                 uint n [[threads_per_threadgroup]]) {
    threadgroup float sh[128];
    sh[tid] = x[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint off = 1; off < n; off <<= 1) {
        float t = tid >= off ? sh[tid - off] : 0.0f;   // read before anyone writes
        threadgroup_barrier(mem_flags::mem_threadgroup);
        sh[tid] += t;
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    out[i] = sh[tid];
}
"""


def test_prefix_scan_variable_live_across_a_barrier_in_the_loop(mode):
    assert runs_as(SCAN, "scan") == mode
    x = (np.arange(128 * 3) % 5).astype(np.float32)
    _, out = run(SCAN, "scan", (128 * 3, 1, 1), [x, np.zeros_like(x)], (128, 1, 1))
    np.testing.assert_array_equal(out, np.cumsum(x.reshape(3, 128), axis=1).ravel())


HISTOGRAM = """
kernel void histogram(device const uint* x [[buffer(0)]], device atomic_uint* bins [[buffer(1)]],
                      uint tid [[thread_index_in_threadgroup]], uint i [[thread_position_in_grid]],
                      uint count [[threads_per_grid]]) {
    threadgroup atomic_uint local_bins[16];
    if (tid < 16) atomic_store_explicit(&local_bins[tid], 0u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    atomic_fetch_add_explicit(&local_bins[x[i] % 16], 1u, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid < 16)
        atomic_fetch_add_explicit(&bins[tid], atomic_load_explicit(&local_bins[tid], memory_order_relaxed),
                                  memory_order_relaxed);
}
"""


def test_histogram_with_threadgroup_atomics(mode):
    assert runs_as(HISTOGRAM, "histogram") == mode
    x = np.random.default_rng(2).integers(0, 1000, 64 * 10).astype(np.uint32)
    _, bins = run(HISTOGRAM, "histogram", (640, 1, 1), [x, np.zeros(16, np.uint32)], (64, 1, 1))
    np.testing.assert_array_equal(bins, np.bincount(x % 16, minlength=16))


EARLY_RETURN = """
kernel void early(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                  constant uint& n [[buffer(2)]],
                  uint tid [[thread_index_in_threadgroup]], uint i [[thread_position_in_grid]],
                  uint g [[threadgroup_position_in_grid]]) {
    threadgroup float sh[64];
    sh[tid] = 0.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (i >= n) return;                 // threads past the end leave
    sh[tid] = x[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
        float s = 0.0f;
        for (uint k = 0; k < 64; ++k) s += sh[k];
        out[g] = s;
    }
}
"""


def test_threads_that_return_sit_out_the_rest(mode):
    assert runs_as(EARLY_RETURN, "early") == mode
    n = 150
    x = np.arange(192, dtype=np.float32)
    _, out, _ = run(EARLY_RETURN, "early", (192, 1, 1), [x, np.zeros(3, np.float32), np.uint32(n)], (64, 1, 1))
    xs = np.where(np.arange(192) < n, x, 0).reshape(3, 64).sum(1)
    np.testing.assert_array_equal(out, xs)


LOOPS = """
struct Pair { float a; int b; };
kernel void loops(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                  constant uint& stop [[buffer(2)]], constant int& mode [[buffer(3)]],
                  uint tid [[thread_index_in_threadgroup]], uint i [[thread_position_in_grid]],
                  uint n [[threads_per_threadgroup]]) {
    threadgroup float sh[32];
    float v = x[i], acc[3] = {0.0f, 1.0f, 2.0f}, w = 1.0f;
    const float scale = 0.5f;
    Pair p = {v, int(tid)};
    for (uint it = 0; it < 8; ++it) {
        if (it == stop) break;                       // the same for every thread
        sh[tid] = v;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        float nb = sh[(tid + 1) % n];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        acc[it % 3] += nb;
        if (nb > v) continue;                        // after both barriers: still conforming
        v += nb * scale;
    }
    uint k = 0;
    while (k < 2) {
        sh[tid] = w;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        w += sh[n - 1 - tid];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        ++k;
    }
    do {
        if (mode == 1) {
            sh[tid] = p.a;
            threadgroup_barrier(mem_flags::mem_threadgroup);
            p.a = sh[0];
        } else {
            threadgroup_barrier(mem_flags::mem_threadgroup);
            p.a = -p.a;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        ++k;
    } while (k < 4);
    out[i] = v + acc[0] * 10.0f + acc[1] * 100.0f + acc[2] * 1000.0f + w * 1e4f + p.a * 1e5f + float(p.b);
}
"""


def loops_reference(x, n, stop, mode):
    out = np.zeros_like(x)
    for g in range(len(x) // n):
        v = x[g * n:(g + 1) * n].astype(np.float64).copy()
        acc = np.tile(np.array([0.0, 1.0, 2.0]), (n, 1))
        for it in range(8):
            if it == stop:
                break
            nb = np.roll(v, -1)
            acc[:, it % 3] += nb
            v = np.where(nb > v, v, v + nb * 0.5)
        w = np.ones(n)
        for _ in range(2):
            w = w + w[::-1]
        pa = x[g * n:(g + 1) * n].astype(np.float64).copy()
        for _ in range(2):
            pa = np.full(n, pa[0]) if mode == 1 else -pa
        out[g * n:(g + 1) * n] = (v + acc[:, 0] * 10 + acc[:, 1] * 100 + acc[:, 2] * 1000 + w * 1e4 + pa * 1e5
                                  + np.arange(n))
    return out


@pytest.mark.parametrize("stop,branch", [(8, 1), (3, 0)])
def test_for_while_do_if_break_continue(mode, stop, branch):
    assert runs_as(LOOPS, "loops") == mode
    n = 32
    x = (np.arange(n * 2) % 7).astype(np.float32)
    _, out, *_ = run(LOOPS, "loops", (n * 2, 1, 1), [x, np.zeros_like(x), np.uint32(stop), np.int32(branch)], (n, 1, 1))
    np.testing.assert_allclose(out, loops_reference(x, n, stop, branch), rtol=1e-6)


GRID_3D = """
kernel void grid3(device uint* out [[buffer(0)]], uint3 p [[thread_position_in_grid]],
                  uint3 l [[thread_position_in_threadgroup]], uint3 tg [[threads_per_threadgroup]],
                  uint3 grid [[threads_per_grid]], uint t [[thread_index_in_threadgroup]]) {
    threadgroup uint sh[32];
    sh[t] = l.x + 10 * l.y + 100 * l.z;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    const uint count = tg.x * tg.y * tg.z;
    out[(p.z * grid.y + p.y) * grid.x + p.x] = sh[count - 1 - t] + 1000 * count;
}
"""


def test_3d_groups_with_edge_groups(mode):
    assert runs_as(GRID_3D, "grid3") == mode
    gx, gy, gz = 10, 7, 3
    (out,) = run(GRID_3D, "grid3", (gx, gy, gz), [np.zeros(gx * gy * gz, np.uint32)], (4, 4, 2))
    out = out.reshape(gz, gy, gx)
    for z in range(gz):
        for y in range(gy):
            for x in range(gx):
                ox, oy, oz = x // 4 * 4, y // 4 * 4, z // 2 * 2
                rx, ry, rz = min(4, gx - ox), min(4, gy - oy), min(2, gz - oz)
                count = rx * ry * rz
                t = (x - ox) + rx * ((y - oy) + ry * (z - oz))
                r = count - 1 - t
                lx, ly, lz = r % rx, r // rx % ry, r // (rx * ry)
                assert out[z, y, x] == lx + 10 * ly + 100 * lz + 1000 * count, (x, y, z)


DYNAMIC = """
template <typename T>
[[kernel]] void reverse_groups(device T* x [[buffer(0)]], threadgroup T* sh [[threadgroup(0)]],
                               uint t [[thread_index_in_threadgroup]], uint i [[thread_position_in_grid]],
                               uint n [[threads_per_threadgroup]]) {
    sh[t] = x[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    x[i] = sh[n - 1 - t];
}
template [[host_name("reverse_float")]] [[kernel]] void reverse_groups<float>(device float*, threadgroup float*, uint, uint, uint);
template [[host_name("reverse_int")]] [[kernel]] void reverse_groups<int>(device int*, threadgroup int*, uint, uint, uint);
"""


@pytest.mark.parametrize("kernel,dtype", [("reverse_float", np.float32), ("reverse_int", np.int32)])
def test_template_kernel_with_dynamic_threadgroup_memory(mode, kernel, dtype):
    assert runs_as(DYNAMIC, kernel) == mode
    x = np.arange(96).astype(dtype)
    (out,) = run(DYNAMIC, kernel, (96, 1, 1), [x], (32, 1, 1), threadgroup_memory={0: 32 * 4})
    np.testing.assert_array_equal(out, x.reshape(3, 32)[:, ::-1].ravel())


FIBERS_STILL = """
float synced(threadgroup float* sh, uint t, float v) {
    sh[t] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return sh[31 - t];
}
kernel void with_simd(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = simd_sum(x[i]) + simd_max(x[i]) * 0.0f;   // two SIMD-group calls in one statement
}
kernel void with_helper(device float* x [[buffer(0)]], uint t [[thread_index_in_threadgroup]],
                        uint i [[thread_position_in_grid]]) {
    threadgroup float sh[32];
    x[i] = synced(sh, t, x[i]);
}
"""


@pytest.mark.parametrize("kernel", ["with_simd", "with_helper"])
def test_kernels_outside_structured_barriers_keep_their_fibers(mode, kernel):
    assert runs_as(FIBERS_STILL, kernel) == "fibers"
    x = np.arange(64, dtype=np.float32)
    (out,) = run(FIBERS_STILL, kernel, (64, 1, 1), [x], (32, 1, 1))
    if kernel == "with_simd":
        np.testing.assert_array_equal(out, np.repeat(x.reshape(2, 32).sum(1), 32))
    else:
        np.testing.assert_array_equal(out, x.reshape(2, 32)[:, ::-1].ravel())


def test_fibers_forced_by_the_environment(monkeypatch):
    monkeypatch.delenv("METALGPU_CPU_FIBERS", raising=False)
    assert runs_as(TREE_SUM, "tree_sum") == "loops"
    monkeypatch.setenv("METALGPU_CPU_FIBERS", "1")
    assert runs_as(TREE_SUM, "tree_sum") == "fibers"


SIMD = """
kernel void simd_ops(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                     device float* sums [[buffer(2)]], device uint* votes [[buffer(3)]],
                     uint i [[thread_position_in_grid]], uint g [[threadgroup_position_in_grid]],
                     uint sg [[simdgroup_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]],
                     uint nsg [[simdgroups_per_threadgroup]]) {
    threadgroup float part[32];
    const float v = x[i];
    const float s = simd_sum(v);
    float m = metal::simd_max(v);
    const float p = simd_prefix_exclusive_sum(v);
    const float d = simd_shuffle_down(v, 1);
    const uint b = uint(ulong(simd_ballot(v > 2.0f)) & 0xffffffffu);
    const float q = quad_sum(v);
    out[i * 6 + 0] = s;
    out[i * 6 + 1] = m;
    out[i * 6 + 2] = p;
    out[i * 6 + 3] = d;
    out[i * 6 + 4] = q;
    out[i * 6 + 5] = simd_is_first() ? 1.0f : 0.0f;
    votes[i] = b;
    if (lane == 0) part[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (sg == 0) {
        float t = lane < nsg ? part[lane] : 0.0f;
        t = simd_sum(t);                 // only the first SIMD group takes part
        if (lane == 0) sums[g] = t;
    }
}
"""


def test_simd_group_functions_record_then_replay(mode):
    # 96-thread groups (3 SIMD groups) over 200 threads: the last group has 8 threads.
    assert runs_as(SIMD, "simd_ops") == mode
    n, tg = 200, 96
    x = (np.arange(n) % 5).astype(np.float32)
    out, votes, sums = np.zeros(n * 6, np.float32), np.zeros(n, np.uint32), np.zeros(3, np.float32)
    _, out, sums, votes = run(SIMD, "simd_ops", (n, 1, 1), [x, out, sums, votes], (tg, 1, 1))
    out = out.reshape(n, 6)
    for i in range(n):
        g0 = i // tg * tg
        s0 = g0 + (i - g0) // 32 * 32
        seg = x[s0:min(s0 + 32, g0 + tg, n)]
        lane = i - s0
        assert out[i, 0] == seg.sum() and out[i, 1] == seg.max(), i
        assert out[i, 2] == seg[:lane].sum(), i
        assert out[i, 3] == (seg[lane + 1] if lane + 1 < len(seg) else x[i]), i
        q0 = i // 4 * 4
        assert out[i, 4] == x[q0:min(q0 + 4, g0 + tg, n)].sum(), i
        assert out[i, 5] == (1.0 if lane == 0 else 0.0), i
        assert votes[i] == sum(1 << k for k, v in enumerate(seg) if v > 2), i
    np.testing.assert_array_equal(sums, [x[k * tg:(k + 1) * tg].sum() for k in range(3)])


PRAGMA = """
kernel void pragma_run(device float* x [[buffer(0)]], uint t [[thread_index_in_threadgroup]],
                       uint i [[thread_position_in_grid]]) {
    threadgroup float sh[32];
    float acc = x[i];
    #pragma unroll
    for (int k = 0; k < 2; ++k) {       // the pragma goes with the group-level loop
        sh[t] = acc;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        acc += sh[31 - t];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    x[i] = acc;
}
"""


def test_pragma_before_a_group_level_loop(mode):
    assert runs_as(PRAGMA, "pragma_run") == mode
    x = np.arange(64, dtype=np.float32)
    (out,) = run(PRAGMA, "pragma_run", (64, 1, 1), [x], (32, 1, 1))
    ref = x.reshape(2, 32).astype(np.float64)
    for _ in range(2):
        ref = ref + ref[:, ::-1]
    np.testing.assert_array_equal(out, ref.ravel())


GROUP_ATOMICS = """
kernel void group_atomics(device const int* x [[buffer(0)]], device int* out [[buffer(1)]],
                          uint t [[thread_index_in_threadgroup]], uint i [[thread_position_in_grid]],
                          uint g [[threadgroup_position_in_grid]]) {
    threadgroup metal::atomic<int> lo;
    threadgroup metal::atomic_int hi;
    threadgroup atomic_int claimed;
    threadgroup atomic_int* via_pointer = &claimed;   // through a plain atomic pointer: still atomic
    if (t == 0) {
        atomic_store_explicit(&lo, 1 << 30, memory_order_relaxed);
        atomic_store_explicit(&hi, -(1 << 30), memory_order_relaxed);
        atomic_store_explicit(via_pointer, -1, memory_order_relaxed);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    atomic_fetch_min_explicit(&lo, x[i], memory_order_relaxed);
    atomic_fetch_max_explicit(&hi, x[i], memory_order_relaxed);
    int expected = -1;
    atomic_compare_exchange_weak_explicit(&claimed, &expected, int(t), memory_order_relaxed, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (t == 0) {
        out[g * 3 + 0] = atomic_load_explicit(&lo, memory_order_relaxed);
        out[g * 3 + 1] = atomic_load_explicit(&hi, memory_order_relaxed);
        out[g * 3 + 2] = atomic_load_explicit(via_pointer, memory_order_relaxed);
    }
}
"""


def test_threadgroup_atomics_of_every_kind(mode):
    assert runs_as(GROUP_ATOMICS, "group_atomics") == mode
    x = np.random.default_rng(3).integers(-1000, 1000, 128).astype(np.int32)
    _, out = run(GROUP_ATOMICS, "group_atomics", (128, 1, 1), [x, np.zeros(6, np.int32)], (64, 1, 1))
    out = out.reshape(2, 3)
    np.testing.assert_array_equal(out[:, 0], x.reshape(2, 64).min(1))
    np.testing.assert_array_equal(out[:, 1], x.reshape(2, 64).max(1))
    assert set(out[:, 2]) <= set(range(64))   # one thread of each group claimed it


VOTE_ALL = """
kernel void vote_all(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    const simd_vote v = simd_ballot(x[i] > 0.0f);
    x[i] = v.all() ? 1.0f : 0.0f;   // all() asks which lanes are active: an exchange of its own
}
"""


def test_a_votes_all_keeps_the_kernel_on_fibers(mode):
    assert runs_as(VOTE_ALL, "vote_all") == "fibers"
    x = np.arange(64, dtype=np.float32) - 1.0   # lanes 0, 1 of the first SIMD group are not > 0
    x[32:] = 5.0
    (out,) = run(VOTE_ALL, "vote_all", (64, 1, 1), [x], (64, 1, 1))
    np.testing.assert_array_equal(out, [0.0] * 32 + [1.0] * 32)


# Simdgroup matrices: loads, stores and products run once per SIMD group on every lane's
# elements; the rest of the kernel (fills, thread_elements(), a diagonal) per thread.
SGM_GEMM = """
kernel void sgm_gemm(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                     device float* C [[buffer(2)]], constant uint& N [[buffer(3)]],
                     uint2 g [[threadgroup_position_in_grid]], uint sg [[simdgroup_index_in_threadgroup]]) {
    const uint row = g.y * 32 + (sg / 2) * 16, col = g.x * 32 + (sg % 2) * 16;
    simdgroup_float8x8 acc[2][2];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) acc[i][j] = make_filled_simdgroup_matrix<float, 8>(0.0f);
    for (uint k = 0; k < N; k += 8) {
        simdgroup_float8x8 a[2], b[2];
        for (int i = 0; i < 2; ++i) simdgroup_load(a[i], A + (row + 8 * i) * N + k, N);
        for (int j = 0; j < 2; ++j) metal::simdgroup_load(b[j], B, N, ulong2(col + 8 * j, k));
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);
    }
    if (sg % 2 == 0) {   // differs between SIMD groups, the same in each
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) simdgroup_store(acc[i][j], C + (row + 8 * i) * N + col + 8 * j, N);
    } else {
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) simdgroup_store(acc[i][j], C, N, ulong2(col + 8 * j, row + 8 * i));
    }
}
"""


def test_simdgroup_matrix_gemm(mode):
    assert runs_as(SGM_GEMM, "sgm_gemm") == mode
    n = 64
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    _, _, c, _ = run(SGM_GEMM, "sgm_gemm", (n // 32 * 128, n // 32, 1),
                     [a, b, np.zeros(n * n, np.float32), np.array([n], np.uint32)], (128, 1, 1))
    np.testing.assert_allclose(c.reshape(n, n), a @ b, rtol=1e-4, atol=1e-4)


SGM_MIXED = """
kernel void sgm_mixed(device const half* A [[buffer(0)]], device const bfloat* B [[buffer(1)]],
                      device float* out [[buffer(2)]], device float* lanes [[buffer(3)]],
                      uint lane [[thread_index_in_simdgroup]], uint t [[thread_index_in_threadgroup]],
                      uint sg [[simdgroup_index_in_threadgroup]]) {
    simdgroup_half8x8 a;
    simdgroup_bfloat8x8 b;
    simdgroup_float8x8 d, e;
    simdgroup_load(a, A + 64 * sg);
    simdgroup_load(b, B + 64 * sg, 8, ulong2(0, 0), true);      // B^T
    simdgroup_multiply(d, a, b);                                   // d = A B^T
    e = simdgroup_float8x8(2.0f);                                  // 2 I: a diagonal, per lane
    simdgroup_multiply_accumulate(e, d, e, d);                     // e = d (2 I) + d = 3 d
    simdgroup_multiply(d, d, e);                                   // d = d (3 d), written over an operand
    simdgroup_store(e, out + 128 * sg, 8);
    simdgroup_store(d, out + 128 * sg + 64, 8, ulong2(0, 0), true);
    lanes[2 * t] = e.thread_elements()[0] + float(lane) * 0.0f;    // each lane's own elements
    lanes[2 * t + 1] = e.thread_elements()[1];
}
"""


def apple_lane_elements(m):
    """The two elements lane l holds of an 8x8 matrix, in Apple's layout."""
    out = np.zeros((32, 2), m.dtype)
    for lane in range(32):
        r = ((lane >> 1) & 3) + 4 * ((lane >> 4) & 1)
        c = 2 * (lane & 1) + 4 * ((lane >> 3) & 1)
        out[lane] = m[r, c:c + 2]
    return out


def test_simdgroup_matrix_types_operands_and_lanes(mode):
    assert runs_as(SGM_MIXED, "sgm_mixed") == mode
    rng = np.random.default_rng(2)
    groups = 2
    a = rng.integers(-3, 4, (groups, 8, 8)).astype(np.float16)
    b = rng.integers(-3, 4, (groups, 8, 8)).astype(np.float32)
    iface = mg.Interface(backend="cpu")
    bb = iface.create_buffer(b.size, "bfloat")
    bb.contents[:] = (b.ravel().view(np.uint32) >> 16).astype(np.uint16)  # bfloat's bits (exact here)
    iface.load_shader_from_string(HEADER + SGM_MIXED)
    iface.set_function("sgm_mixed")
    ba = iface.array_to_buffer(a)
    out = iface.create_buffer(groups * 128, "float")
    lanes = iface.create_buffer(groups * 64, "float")
    iface.run_function((32 * groups, 1, 1), [ba, bb, out, lanes], threadgroup=(32 * groups, 1, 1))
    got = out.contents.reshape(groups, 2, 8, 8)
    for g in range(groups):
        d = a[g].astype(np.float32) @ b[g].T
        e = 3 * d
        np.testing.assert_array_equal(got[g, 0], e)
        np.testing.assert_array_equal(got[g, 1], (d @ e).T)
        np.testing.assert_array_equal(lanes.contents.reshape(groups, 32, 2)[g], apple_lane_elements(e))


SGM_PARTIAL = """
kernel void sgm_partial(device const float* A [[buffer(0)]], device float* out [[buffer(1)]],
                        uint sg [[simdgroup_index_in_threadgroup]]) {
    simdgroup_float8x8 a, d;
    simdgroup_load(a, A);
    simdgroup_multiply(d, a, a);
    simdgroup_store(d, out + 64 * sg);
}
"""


def test_simdgroup_matrix_partial_simd_group_agrees_with_fibers(monkeypatch):
    # 48 threads: the second SIMD group has 16 lanes; the elements of the missing lanes are 0.
    a = np.arange(64, dtype=np.float32).reshape(8, 8) % 5
    results = {}
    for forced in ("0", "1"):
        monkeypatch.setenv("METALGPU_CPU_FIBERS", forced)
        results[forced] = run(SGM_PARTIAL, "sgm_partial", (48, 1, 1), [a, np.zeros(128, np.float32)], (48, 1, 1))[1]
    np.testing.assert_array_equal(results["0"], results["1"])
    np.testing.assert_array_equal(results["0"][:64].reshape(8, 8), a @ a)


SGM_IN_A_STRUCT = """
struct Frag { simdgroup_float8x8 m; };
kernel void sgm_struct(device const float* A [[buffer(0)]], device float* out [[buffer(1)]]) {
    Frag f;
    simdgroup_load(f.m, A);
    simdgroup_store(f.m, out);
}
"""


def test_simdgroup_matrix_in_a_struct_keeps_its_fibers(mode):
    assert runs_as(SGM_IN_A_STRUCT, "sgm_struct") == "fibers"
    a = np.arange(64, dtype=np.float32)
    (_, out) = run(SGM_IN_A_STRUCT, "sgm_struct", (32, 1, 1), [a, np.zeros(64, np.float32)], (32, 1, 1))
    np.testing.assert_array_equal(out, a)


# A helper that synchronises, called by the kernel as a whole statement with the kernel's own
# arguments and built-ins (ggml's `kernel_x(...) { x_impl<...>(args, src, dst, tgpig, tiisg,
# sgitg); }`): the kernel calls a copy of the helper rewritten into work-item loops.
HELPER = """
template <int N>
void scaled_sums(device const float* x, device float* out, uint group, ushort lane, ushort sg, float scale) {
    threadgroup float partial[4];
    float acc[N] = { [0 ... N - 1] = 0.0f };   // a GNU range designator, kept per thread
    for (int k = 0; k < N; ++k) acc[k] = x[(group * 128 + sg * 32 + lane) * N + k];
    float s = 0.0f;
    for (int k = 0; k < N; ++k) s += acc[k];
    s = simd_sum(s);
    if (lane == 0) partial[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (sg != 0) return;                        // leaves the helper, not the kernel
    float t = lane < 4 ? partial[lane] : 0.0f;
    t = simd_sum(t);
    if (lane == 0) out[group] = t * scale;
}
kernel void helper_sums(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                        device float* after [[buffer(2)]],
                        uint group [[threadgroup_position_in_grid]], uint t [[thread_position_in_grid]],
                        ushort lane [[thread_index_in_simdgroup]], ushort sg [[simdgroup_index_in_threadgroup]]) {
    scaled_sums<3>(x, out, group, lane, sg, 2.0f);
    after[t] = float(t);                        // every thread goes on after the helper
}
kernel void helper_varying(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                           device float* after [[buffer(2)]],
                           uint group [[threadgroup_position_in_grid]], uint t [[thread_position_in_grid]],
                           ushort lane [[thread_index_in_simdgroup]], ushort sg [[simdgroup_index_in_threadgroup]]) {
    const float scale = 2.0f + float(lane) * 0.0f;   // differs between threads (as far as we know)
    scaled_sums<3>(x, out, group, lane, sg, scale);
    after[t] = float(t);
}
"""


@pytest.mark.parametrize("kernel,expected_mode", [("helper_sums", None), ("helper_varying", "fibers")])
def test_helper_that_synchronises(mode, kernel, expected_mode):
    assert runs_as(HELPER, kernel) == (expected_mode or mode)
    groups = 3
    x = np.arange(groups * 128 * 3, dtype=np.float32) % 13
    _, out, after = run(HELPER, kernel, (groups * 128, 1, 1),
                        [x, np.zeros(groups, np.float32), np.zeros(groups * 128, np.float32)], (128, 1, 1))
    np.testing.assert_array_equal(out, 2 * x.reshape(groups, -1).sum(1))
    np.testing.assert_array_equal(after, np.arange(groups * 128, dtype=np.float32))


# MLX moves a kernel's pointers through a helper taking them by reference
# (adjust_matrix_offsets): each thread's pointer then moves once, not once per thread.
BY_REFERENCE = """
void move_to_row(device const float*& x, device float*& y, uint row, uint n) { x += row * n; y += row; }
kernel void row_sums(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                     constant uint& n [[buffer(2)]], uint row [[threadgroup_position_in_grid]],
                     uint t [[thread_index_in_threadgroup]]) {
    threadgroup float part[32];
    move_to_row(x, y, row, n);
    part[t] = x[t];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (t == 0) { float s = 0; for (uint k = 0; k < 32; ++k) s += part[k]; y[0] = s; }
}
"""


def test_kernel_pointers_moved_through_a_reference(mode):
    assert runs_as(BY_REFERENCE, "row_sums") == mode
    x = np.arange(4 * 32, dtype=np.float32)
    _, y, _ = run(BY_REFERENCE, "row_sums", (4 * 32, 1, 1), [x, np.zeros(4, np.float32), np.array([32], np.uint32)],
                  (32, 1, 1))
    np.testing.assert_array_equal(y, x.reshape(4, 32).sum(1))


# ggml's flash attention: a switch on a value the whole group shares calls the helper per case;
# inside, an `auto` pointer kept across barriers and a loop counter named like a per-thread
# variable outside the loop.
SWITCHED = """
template <int N>
void scan_scaled(device const float* x, device float* out, uint t, uint g) {
    threadgroup float sh[64];
    uint k = t;                                   // per thread, live across the barriers
    auto p = x + g * 64 + t;                      // `auto`, per thread
    sh[t] = p[0];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k = 1; k < 64; k *= 2) {            // the whole group's counter, hiding the k above
        const float v = t >= k ? sh[t - k] : 0.0f;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        sh[t] += v;
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    out[g * 64 + k] = sh[k] * N + p[0] * 0.0f;
}
kernel void switched(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                     constant uint& m [[buffer(2)]], uint t [[thread_index_in_threadgroup]],
                     uint g [[threadgroup_position_in_grid]]) {
    switch (m) {
        case 1: scan_scaled<1>(x, out, t, g); break;
        case 2:
        case 3: scan_scaled<2>(x, out, t, g); break;
        default: break;
    }
}
"""


@pytest.mark.parametrize("m,scale", [(1, 1), (3, 2), (7, 0)])
def test_switch_auto_and_a_hiding_loop_counter(mode, m, scale):
    assert runs_as(SWITCHED, "switched") == mode
    x = (np.arange(3 * 64, dtype=np.float32) % 7) - 3
    _, out, _ = run(SWITCHED, "switched", (3 * 64, 1, 1), [x, np.zeros(3 * 64, np.float32), np.array([m], np.uint32)],
                    (64, 1, 1))
    np.testing.assert_array_equal(out, np.cumsum(x.reshape(3, 64), axis=1).ravel() * scale)
