"""The CUDA translation (mg.translate(..., target="cuda")): the shape of the generated code,
and - where NVRTC can be loaded (the nvidia-cuda-nvrtc wheel, no GPU needed) - that
cooperative kernels compile for sm_80 and sm_90.

NVRTC is reached through the CPU backend's check mode: with METALGPU_CHECK_CUDA=80,90 every
shader the CPU backend builds is also translated for CUDA and compiled by NVRTC.
"""

from __future__ import annotations

import itertools
import re
import uuid
from pathlib import Path

import numpy as np
import pytest

import metalgpu as mg

REPO_DIR = Path(__file__).resolve().parents[1]

PLAIN = """#include <metal_stdlib>
using namespace metal;
kernel void scale(device float* x [[buffer(0)]], constant float& k [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) {
    x[i] *= k;
}
"""

# Threadgroup memory (static and dynamic), barriers, SIMD-group functions, atomics and
# simdgroup matrices in one shader.
COOPERATIVE = """#include <metal_stdlib>
using namespace metal;

kernel void reduce_and_count(device const float* x [[buffer(0)]],
                             device float* sums [[buffer(1)]],
                             device atomic_uint* count [[buffer(2)]],
                             device atomic_float* total [[buffer(3)]],
                             threadgroup float* scratch [[threadgroup(0)]],
                             uint gid [[thread_position_in_grid]],
                             uint tid [[thread_index_in_threadgroup]],
                             uint lane [[thread_index_in_simdgroup]],
                             uint sg [[simdgroup_index_in_threadgroup]],
                             uint nsg [[simdgroups_per_threadgroup]],
                             uint2 group [[threadgroup_position_in_grid]]) {
    threadgroup atomic_int local_hits;
    threadgroup float4 tile[64];
    if (tid == 0) atomic_store_explicit(&local_hits, 0, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float v = x[gid];
    tile[tid % 64] = float4(v);
    float s = simd_sum(v);
    int ps = simd_prefix_exclusive_sum(int(v));
    float m = simd_max(v) + simd_min(v) + simd_shuffle_down(v, 1) + simd_shuffle_xor(v, 2)
            + simd_broadcast_first(v) + simd_shuffle_rotate_up(v, 3) + quad_sum(v)
            + simd_shuffle_and_fill_up(v, 0.0f, 1) + simd_prefix_inclusive_product(v);
    uint bits = uint(simd_and(uint(v))) ^ uint(simd_or(int(v))) ^ uint(quad_xor(uint(v)));
    half h = simd_sum(half(v));
    float2 f2 = simd_max(float2(v, -v));
    simd_vote vote = simd_ballot(v > 0.0f);
    if (simd_all(v > -1.0f) && simd_any(v > 0.0f) && vote.any() && simd_is_first()) {
        atomic_fetch_add_explicit(&local_hits, 1, memory_order_relaxed);
    }
    simdgroup_barrier(mem_flags::mem_none);
    if (lane == 0) scratch[sg] = s + m + float(bits & 1u) + float(h) + f2.x + float(ps);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
        float t = 0.0f;
        for (uint k = 0; k < nsg; ++k) t += scratch[k];
        sums[group.x] = t + tile[0].x;
        atomic_fetch_add_explicit(count, uint(atomic_load_explicit(&local_hits, memory_order_relaxed)),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(total, t, memory_order_relaxed);
        atomic_fetch_max_explicit(total, t, memory_order_relaxed);
    }
}

kernel void atomics_all(device atomic_int* ai [[buffer(0)]], device atomic_uint* au [[buffer(1)]],
                        device atomic_float* af [[buffer(2)]], device atomic_bool* ab [[buffer(3)]],
                        device atomic<ulong>* al [[buffer(4)]], uint i [[thread_position_in_grid]]) {
    atomic_fetch_sub_explicit(&ai[0], 1, memory_order_relaxed);
    atomic_fetch_min_explicit(&ai[1], int(i), memory_order_relaxed);
    atomic_fetch_max_explicit(&au[0], i, memory_order_relaxed);
    atomic_fetch_and_explicit(&au[1], ~i, memory_order_relaxed);
    atomic_fetch_or_explicit(&au[2], i, memory_order_relaxed);
    atomic_fetch_xor_explicit(&au[3], i, memory_order_relaxed);
    atomic_fetch_min_explicit(&af[0], float(i), memory_order_relaxed);
    atomic_fetch_sub_explicit(&af[1], 1.0f, memory_order_relaxed);
    float old = atomic_exchange_explicit(&af[2], float(i), memory_order_relaxed);
    int expected = 0;
    atomic_compare_exchange_weak_explicit(&ai[2], &expected, int(i), memory_order_relaxed,
                                          memory_order_relaxed);
    bool was = atomic_exchange_explicit(&ab[0], true, memory_order_relaxed);
    bool f = false;
    atomic_compare_exchange_weak_explicit(&ab[1], &f, was, memory_order_relaxed, memory_order_relaxed);
    atomic_store_explicit(&ab[2], old > 0.0f, memory_order_relaxed);
    atomic_fetch_add_explicit(&al[0], ulong(i), memory_order_relaxed);
    atomic_fetch_max_explicit(&al[1], ulong(i), memory_order_relaxed);
}

kernel void gemm8(device const float* A [[buffer(0)]], device const half* B [[buffer(1)]],
                  device float* C [[buffer(2)]], uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup simdgroup_float8x8 keep[2];
    simdgroup_float8x8 a, c = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    simdgroup_half8x8 b;
    simdgroup_bfloat8x8 d;
    simdgroup_load(a, A, 8, ulong2(0, 0), sg == 1);
    simdgroup_load(b, B);
    simdgroup_load(d, A);
    simdgroup_multiply_accumulate(c, a, b, c);
    simdgroup_multiply(c, c, a);
    simdgroup_multiply_accumulate(c, d, a, c);
    keep[sg % 2] = c;
    c.thread_elements()[0] += 1.0f;
    simdgroup_store(c, C + 64 * sg, 8);
}
"""

HALF_CONSTANTS = """#include <metal_stdlib>
using namespace metal;
constant half hscale [[function_constant(0)]];
constant bfloat bscale [[function_constant(1)]];
kernel void fc(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = float(hscale) * float(bscale);
}
"""

_fresh = itertools.count()


def _unique(source: str) -> str:
    """The source with a unique comment, so no cache hides a compile."""
    return f"// {uuid.uuid4().hex} {next(_fresh)}\n{source}"


def _cuda(source: str, function: str, constants=None) -> str:
    return mg.translate(source, function, target="cuda", constants=constants)


# ---- the generated code ----


def test_entry_point_is_an_extern_c_global_taking_the_launch_block():
    code = _cuda(PLAIN, "scale")
    assert re.search(
        r'extern "C" __global__ void (mg_entry_\d+)\(const __grid_constant__ mg_launch __L\)', code
    )
    # user code in its own namespace, the user's function called from the entry
    assert "namespace metal_user {" in code
    assert "scale(" in code.split("// ---- metalgpu entry points ----")[1]


def test_kernel_table_gives_slot_sizes_and_the_cooperative_flag():
    code = _cuda(PLAIN, "scale")
    entry = re.search(r"__global__ void (mg_entry_\d+)\(", code).group(1)
    table = re.search(
        r'extern "C" __device__ const unsigned ' + entry + r"_slot_sizes\[(\d+)\] = \{(.*)\};", code
    )
    assert table, code
    values = re.findall(r"__metalgpu::slot_size<.*?>::value|\d+u", table.group(2))
    assert len(values) == int(table.group(1))
    assert "slot_size" in values[0] and "slot_size" in values[1]  # buffers 0 and 1
    assert all(v == "0u" for v in values[2:-1])
    assert values[-1] == "0u"  # not cooperative

    coop = _cuda(COOPERATIVE, "reduce_and_count")
    entry = re.search(r"__global__ void (mg_entry_\d+)\(", coop).group(1)
    flags = re.search(entry + r"_slot_sizes\[\d+\] = \{(.*)\};", coop).group(1)
    assert flags.endswith(", 1u")  # cooperative: barriers, SIMD functions


def test_threadgroup_memory_is_shared():
    code = _cuda(COOPERATIVE, "reduce_and_count")
    # static threadgroup storage: MG_THREADGROUP_STORAGE, which the CUDA runtime makes __shared__
    assert re.search(r"MG_THREADGROUP_STORAGE\s+float4\s+tile\[64\]", code)
    assert re.search(r"MG_THREADGROUP_STORAGE\s+atomic_int\s+local_hits", code)
    # dynamic [[threadgroup(0)]]: a part of the block's dynamic shared memory
    assert "__metalgpu::threadgroup_slot<" in code and "(__L, 0)" in code
    exec_header = REPO_DIR / "src" / "runtime" / "mg_cuda_exec.h"
    if exec_header.exists():
        text = exec_header.read_text()
        assert "#define MG_THREADGROUP_STORAGE __shared__" in text
        assert "extern __shared__" in text


def test_only_the_requested_kernel_gets_an_entry():
    code = _cuda(COOPERATIVE, "gemm8")
    assert code.count("__global__") == 1
    assert "gemm8(" in code.split("// ---- metalgpu entry points ----")[1]


def test_half_and_bfloat_function_constants_are_built_from_bits():
    code = _cuda(HALF_CONSTANTS, "fc", constants={"hscale": 1.5, "bscale": -2.0})
    assert re.search(r"static constexpr half hscale = MG_FC_HALF\(0x3e00u,", code), code
    assert re.search(r"static constexpr bfloat bscale = MG_FC_BFLOAT\(0xc000u,", code), code


LOOP_HINTS = """#include <metal_stdlib>
using namespace metal;
#define UNROLL_FULL _Pragma("clang loop unroll(full)")
kernel void hinted(device float* a [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  float s = 0.0f;
  UNROLL_FULL for (int j = 0; j < 4; ++j) s += a[j];
#pragma clang loop unroll_count(2)
  for (int j = 0; j < 4; ++j) s += a[j];
#pragma clang loop unroll(disable)
  for (int j = 0; j < 4; ++j) s += a[j];
#pragma clang loop vectorize(enable)
  for (int j = 0; j < 4; ++j) s += a[j];
  a[i] = s;
}
"""


def test_clang_loop_hints_become_nvrtc_unroll_pragmas():
    # NVRTC ignores clang's spelling: MLX's GEMM loops (STEEL_PRAGMA_UNROLL) stayed rolled and
    # their fragment arrays went to local memory. Other hints pass as written.
    code = _cuda(LOOP_HINTS, "hinted")
    assert '_Pragma("unroll") for (int j = 0;' in code
    assert "#pragma unroll (2)\n" in code and "#pragma unroll 1\n" in code
    assert "#pragma clang loop vectorize(enable)" in code
    assert "clang loop unroll" not in code
    cpu = mg.translate(LOOP_HINTS, "hinted", target="cpu")  # the host compiler reads clang's own
    assert '_Pragma("clang loop unroll(full)")' in cpu and "#pragma clang loop unroll_count(2)" in cpu


# Barriers where the lanes of a warp may have parted get warp-counting barriers on CUDA (Apple
# GPUs let a SIMD group through with the lanes that reach it; __syncthreads waits for all).
BARRIER_PLACES = """#include <metal_stdlib>
using namespace metal;
void publish(threadgroup float* t, uint lane, uint n) {
  if (lane < n) {                        // the lane reaches the helper through its parameter
    t[lane] = 1.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
}
kernel void lane_branch(device float* out [[buffer(0)]], constant uint& n [[buffer(1)]],
                        uint lid [[thread_index_in_simdgroup]]) {
  const uint col = lid * 4;              // computed from the lane
  if (col < n) {
    threadgroup_barrier(mem_flags::mem_none);
    out[col] = 1.0f;
  }
}
kernel void through_helper(device float* out [[buffer(0)]], constant uint& n [[buffer(1)]],
                           uint lid [[thread_position_in_threadgroup]]) {
  threadgroup float t[64];
  publish(t, lid, n);
  out[lid] = t[0];
}
kernel void loop_exit(device float* out [[buffer(0)]], constant uint& n [[buffer(1)]],
                      uint gid [[thread_position_in_grid]]) {
  for (uint k = 0; k < n; ++k) {
    if (gid > k) break;                  // lanes leave the loop at different trips
    threadgroup_barrier(mem_flags::mem_none);
  }
  out[gid] = 1.0f;
}
kernel void uniform_places(device float* out [[buffer(0)]], constant uint& n [[buffer(1)]],
                           uint2 group [[threadgroup_position_in_grid]], uint lid [[thread_index_in_threadgroup]]) {
  threadgroup float t[64];
  if (lid >= 64u) return;                // an early return is no barrier in parted code
  if (group.x < n) threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint k = 0; k < n; ++k) {
    t[lid] = float(k);
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  out[lid] = t[63 - lid];
}
kernel void no_barrier(device float* out [[buffer(0)]], uint lid [[thread_index_in_simdgroup]]) {
  if (lid < 3) out[lid] = simd_sum(1.0f);
}
"""


@pytest.mark.parametrize("function,per_warp", [
    ("lane_branch", True), ("through_helper", True), ("loop_exit", True), ("uniform_places", False),
    ("no_barrier", False)])
def test_barriers_in_code_the_lanes_may_reach_apart_count_warps(function, per_warp):
    code = _cuda(BARRIER_PLACES, function)
    barrier = "cuda::warp_barrier();" if per_warp else "__syncthreads();"
    assert f"inline void threadgroup_barrier_impl() {{ {barrier} }}" in code
    assert ("::__metalgpu::cuda::barriers_begin();" in code) == per_warp
    assert ("::__metalgpu::cuda::barriers_end();" in code) == per_warp
    # The lanes meet again after each statement where they part around a barrier (the helper's
    # `if`, the kernel's `if`, the loop left at different trips): all three, whichever kernel
    # is selected, since the module's barriers are one kind.
    rejoined = re.findall(r"cuda::lanes_here\(\); (if \(lane < n\)|if \(col < n\)|for \(uint k)", code)
    assert sorted(rejoined) == (sorted(["if (lane < n)", "if (col < n)", "for (uint k"]) if per_warp else [])
    assert code.count("cuda::rejoin(__mg_rejoin); }") == (3 if per_warp else 0)


LEFT_EARLY = """#include <metal_stdlib>
using namespace metal;
kernel void left_early(device float* out [[buffer(0)]], constant uint& n [[buffer(1)]],
                       uint lid [[thread_index_in_simdgroup]]) {
  #pragma unroll
  for (uint k = lid; k < n; k += 32) {
    threadgroup_barrier(mem_flags::mem_none);
    out[k] = 1.0f;
  }
  if (lid < n) {
    threadgroup_barrier(mem_flags::mem_none);
    if (n > 100) return;                 // these lanes never reach the end of the `if`
    out[lid] += 1.0f;
  }
  out[0] = simd_sum(1.0f);
}
"""


def test_lanes_rejoin_only_after_statements_they_all_leave_at_the_end():
    code = _cuda(LEFT_EARLY, "left_early")
    assert "inline void threadgroup_barrier_impl() { cuda::warp_barrier(); }" in code
    # The loop is wrapped, its pragma inside the braces with it; the `if` with a return is not
    # (a lane that returns from a helper would never come to the meeting point).
    assert code.count("cuda::lanes_here();") == 1
    wrapped = code[code.index("cuda::lanes_here();"):]
    assert wrapped.index("unroll") < wrapped.index("for (uint k = lid;") < wrapped.index("cuda::rejoin(__mg_rejoin); }")
    assert wrapped.index("cuda::rejoin(__mg_rejoin); }") < wrapped.index("if (lid < n)")


# ---- NVRTC (skipped where it cannot be loaded) ----


def _check_compile(source: str, function: str, constants=None) -> None:
    """Builds `function` on the CPU backend in CUDA check mode (NVRTC for sm_80 and sm_90)."""
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string(_unique(source))
    if constants is None:
        iface.set_function(function)
    else:
        iface.set_function(function, constants=constants)


@pytest.fixture
def nvrtc_check(monkeypatch):
    """CUDA check mode on, or a skip when NVRTC cannot be loaded here."""
    monkeypatch.setenv("METALGPU_CHECK_CUDA", "80,90")
    try:
        _check_compile(PLAIN, "scale")
    except mg.CompileError:
        raise
    except Exception as e:  # NVRTC missing: the backend says what is missing
        pytest.skip(f"NVRTC is not available: {e}")
    return _check_compile


def test_check_mode_reports_cuda_errors(nvrtc_check):
    nvrtc_check(PLAIN, "scale")
    with pytest.raises(mg.CompileError):
        nvrtc_check(PLAIN.replace("x[i] *= k;", "x[i] *= undefined_name;"), "scale")


@pytest.mark.parametrize("function", ["reduce_and_count", "atomics_all", "gemm8"])
def test_cooperative_kernels_compile_with_nvrtc(nvrtc_check, function):
    nvrtc_check(COOPERATIVE, function)


def test_loop_hints_compile_with_nvrtc(nvrtc_check):
    nvrtc_check(LOOP_HINTS, "hinted")


def test_half_function_constants_compile_with_nvrtc(nvrtc_check):
    nvrtc_check(HALF_CONSTANTS, "fc", constants={"hscale": 1.5, "bscale": 0.25})
    nvrtc_check(HALF_CONSTANTS, "fc")


def test_cooperative_kernel_runs_on_cpu_in_check_mode(nvrtc_check):
    # the same shader still runs on the CPU with the check on
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string(_unique(HALF_CONSTANTS))
    iface.set_function("fc", constants={"hscale": 1.5, "bscale": 0.25})
    buf = iface.array_to_buffer(np.zeros(8, np.float32))
    iface.run_function(8, [buf])
    assert np.all(buf.contents == np.float32(0.375))


# What real libraries (ggml, MLX) need of the CUDA translation: constexpr half arithmetic,
# constexpr float limits, a file-scope `namespace metal` block that extends metal and uses the
# user's names, user overloads of metal functions, a conditional mixing half and float, a
# macro in a loop hint, an initializer on threadgroup storage, constexpr __builtin_ctz, and an
# out-of-class definition of a constant static member.
LIBRARY_IDIOMS = """#include <metal_stdlib>
using namespace metal;
#define MIN(a, b) ((a) < (b) ? (a) : (b))
typedef half my_half_t;
static_assert(half(1.5h) * half(2.0h) == 3.0h, "constexpr half");
namespace metal {
inline my_half_t twice(my_half_t x) { return x * my_half_t(2); }
}
struct Limits { static constexpr constant float inf = metal::numeric_limits<float>::infinity(); };
struct Table { static constexpr constant float w[2] = {0.5f, 0.25f}; };
constant constexpr const float Table::w[2];
inline long simd_sum(long x) { return x; }
kernel void idioms(device float* out [[buffer(0)]], device const half* h [[buffer(1)]],
                   uint i [[thread_position_in_grid]], uint l [[thread_index_in_threadgroup]]) {
    threadgroup float buf[32] = {0};
    buf[l % 32] = 1.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    constexpr short p = __builtin_ctz(8u);
    float s = 0.0f;
    #pragma unroll (MIN(4, 8))
    for (int k = 0; k < 4; ++k) s += float(k);
    const float d = i < 2 ? h[i] : h[i] / 16.f;
    out[i] = d + float(metal::twice(h[i])) + simd_sum(s) + float(p) + float(simd_sum(long(1)))
           + (Limits::inf > 0.0f ? Table::w[0] : 0.0f) + buf[l % 32];
}
"""


def test_library_idioms_compile_with_nvrtc_and_run(nvrtc_check):
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string(_unique(LIBRARY_IDIOMS))
    iface.set_function("idioms")
    h = np.array([1, 2, 4, 8], np.float16)
    out = iface.create_buffer(4, np.float32)
    iface.run_function(4, [out, iface.array_to_buffer(h)], threadgroup=4)
    hs = h.astype(np.float32)
    d = np.where(np.arange(4) < 2, hs, hs / 16)
    # simd_sum over 4 active lanes of s = 6; p = 3; 1 from simd_sum(long); 0.5; buf = 1
    np.testing.assert_allclose(out.contents, d + 2 * hs + 24 + 3 + 1 + 0.5 + 1)


# METALGPU_CUDA_ELEMENT_ALIGNED_VECTORS=1: vectors aligned like their elements on cuda too (as
# Apple GPUs accept them in memory); the GPU run of the ggml mul_mm edge case is in
# test_corpus_families. Here: the define reaches the CUDA source and it compiles, simdgroup
# matrices included.
ELEMENT_ALIGNED = """#include <metal_stdlib>
using namespace metal;
kernel void rows(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
  device float4* row = (device float4*)(out + 2 + 4 * i);
  *row = float4(1.0f);
}
kernel void tile(device const half* a [[buffer(0)]], device float* c [[buffer(1)]],
                 threadgroup float4* t [[threadgroup(0)]], uint l [[thread_index_in_simdgroup]]) {
  threadgroup float4 local[8];
  local[l % 8] = float4(float(l));
  t[l] = local[(l + 1) % 8];
  simdgroup_half8x8 m;
  simdgroup_float8x8 r;
  simdgroup_load(m, a);
  simdgroup_multiply(r, m, m);
  simdgroup_store(r, c);
}
"""


@pytest.mark.parametrize("element_aligned", [False, True], ids=["size-aligned", "element-aligned"])
def test_vectors_aligned_like_their_elements_on_request(nvrtc_check, monkeypatch, tmp_path, element_aligned):
    if element_aligned:
        monkeypatch.setenv("METALGPU_CUDA_ELEMENT_ALIGNED_VECTORS", "1")
    monkeypatch.setenv("METALGPU_DUMP", str(tmp_path))
    for function in ("rows", "tile"):
        nvrtc_check(ELEMENT_ALIGNED, function)
    checked = [f.read_text() for f in tmp_path.glob("check-*.cu")]
    assert checked and all(("#define MG_CUDA_ELEMENT_ALIGNED_VECTORS 1" in c) == element_aligned for c in checked)
