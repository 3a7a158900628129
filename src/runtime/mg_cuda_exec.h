// How a kernel runs on the CUDA backend: one CUDA block per threadgroup. Edge threadgroups of
// a grid that is not a multiple of the threadgroup are launched separately with their real
// size (the host splits the dispatch), so no thread outside the grid ever exists and barriers
// stay correct.
#pragma once

#define MG_KERNEL_FN static __device__ __forceinline__
#define MG_CONSTANT_DATA __device__ const
#define MG_CONSTANT_SPACE __device__
#define MG_THREADGROUP_STORAGE __shared__
// `threadgroup float buf[32] = {0};` (MLX layer_norm): Apple's compiler accepts an initializer
// on threadgroup storage; CUDA allows none on __shared__ variables, so it is left out here.
// Threadgroup memory has no defined contents when a threadgroup starts (the cpu backend runs
// the initializer once per worker thread, not per threadgroup); the code we know of writes the
// memory before reading it.
#define MG_THREADGROUP_INIT(...)
// The host reads a kernel's static shared memory from the driver (CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES).
#define MG_THREADGROUP_NOTE(index, bytes)

// GCC/clang bit builtins that Metal code calls (MLX fft: `constexpr short power =
// __builtin_ctz(radix);`) and NVRTC lacks: constexpr, with CUDA's intrinsics at run time.
namespace __metalgpu {
template <class T> MG_FN constexpr int builtin_ctz(T x) {
  if (__builtin_is_constant_evaluated()) {
    int n = 0;
    while (n < int(sizeof(T) * 8) && !((x >> n) & 1)) ++n;
    return n;
  }
  return sizeof(T) == 8 ? __ffsll((long long)x) - 1 : __ffs(int(x)) - 1;
}
template <class T> MG_FN constexpr int builtin_clz(T x) {
  if (__builtin_is_constant_evaluated()) {
    int n = 0;
    while (n < int(sizeof(T) * 8) && !((x >> (sizeof(T) * 8 - 1 - n)) & 1)) ++n;
    return n;
  }
  return sizeof(T) == 8 ? __clzll((long long)x) : __clz(int(x));
}
template <class T> MG_FN constexpr int builtin_popcount(T x) {
  if (__builtin_is_constant_evaluated()) {
    int n = 0;
    for (; x; x &= x - 1) ++n;
    return n;
  }
  return sizeof(T) == 8 ? __popcll((unsigned long long)x) : __popc(unsigned(x));
}
}  // namespace __metalgpu
#define __builtin_ctz(x) __metalgpu::builtin_ctz((unsigned)(x))
#define __builtin_ctzl(x) __metalgpu::builtin_ctz((unsigned long)(x))
#define __builtin_ctzll(x) __metalgpu::builtin_ctz((unsigned long long)(x))
#define __builtin_clz(x) __metalgpu::builtin_clz((unsigned)(x))
#define __builtin_clzl(x) __metalgpu::builtin_clz((unsigned long)(x))
#define __builtin_clzll(x) __metalgpu::builtin_clz((unsigned long long)(x))
#define __builtin_popcount(x) __metalgpu::builtin_popcount((unsigned)(x))
#define __builtin_popcountl(x) __metalgpu::builtin_popcount((unsigned long)(x))
#define __builtin_popcountll(x) __metalgpu::builtin_popcount((unsigned long long)(x))

namespace __metalgpu {


namespace cuda {

__device__ __forceinline__ thread_ctx make_ctx(const mg_launch& L) {
  thread_ctx t;
  const metal::uint3 tg(L.tg[0], L.tg[1], L.tg[2]);
  const metal::uint3 local(threadIdx.x, threadIdx.y, threadIdx.z);
  const metal::uint3 group(blockIdx.x + L.group_offset[0], blockIdx.y + L.group_offset[1], blockIdx.z + L.group_offset[2]);
  const metal::uint3 real(blockDim.x, blockDim.y, blockDim.z);
  t.thread_position_in_threadgroup = local;
  t.threadgroup_position_in_grid = group;
  t.threads_per_threadgroup = real;
  t.thread_position_in_grid = metal::uint3(group.x * tg.x + local.x, group.y * tg.y + local.y, group.z * tg.z + local.z);
  t.threads_per_grid = metal::uint3(L.grid[0], L.grid[1], L.grid[2]);
  t.grid_size = t.threads_per_grid;
  t.grid_origin = metal::uint3(0u, 0u, 0u);
  t.threadgroups_per_grid = metal::uint3(L.groups[0], L.groups[1], L.groups[2]);
  t.dispatch_threads_per_threadgroup = tg;
  const uint index = local.x + real.x * (local.y + real.y * local.z);
  const uint count = real.x * real.y * real.z;
  const uint dispatch_count = tg.x * tg.y * tg.z;
  t.thread_index_in_threadgroup = index;
  t.thread_execution_width = 32;
  t.threads_per_simdgroup = 32;
  t.simdgroup_index_in_threadgroup = index / 32;
  t.thread_index_in_simdgroup = index % 32;
  t.simdgroups_per_threadgroup = (count + 31) / 32;
  t.dispatch_simdgroups_per_threadgroup = (dispatch_count + 31) / 32;
  t.quadgroup_index_in_threadgroup = index / 4;
  t.thread_index_in_quadgroup = index % 4;
  t.quadgroups_per_threadgroup = (count + 3) / 4;
  t.dispatch_quadgroups_per_threadgroup = (dispatch_count + 3) / 4;
  return t;
}

extern __shared__ __align__(16) unsigned char dynamic_threadgroup_memory[];

// Where [[buffer(n)]] lives: a device pointer, or bytes bound by value in the launch block
// (the launch block is a __grid_constant__ parameter, so its address is valid).
__device__ __forceinline__ void* slot_address(const mg_launch& L, unsigned n) {
  const unsigned off = L.inline_offset[n];
  return off == MG_NOT_INLINE ? L.slots[n] : const_cast<unsigned char*>(L.inline_data + off);
}

}  // namespace cuda

// A [[threadgroup(n)]] parameter: its part of the block's dynamic shared memory.
template <class T> __device__ __forceinline__ T threadgroup_slot(const mg_launch& L, unsigned n) {
  unsigned offset = 0;
  for (unsigned k = 0; k < n; ++k) offset += L.threadgroup_sizes[k];
  return reinterpret_cast<T>(cuda::dynamic_threadgroup_memory + offset);
}

MG_DECL inline void threadgroup_barrier_impl() { __syncthreads(); }
MG_DECL inline unsigned simd_lane_id() {
  return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32;
}

}  // namespace __metalgpu
