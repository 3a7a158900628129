// How a kernel runs on the CUDA backend: one CUDA block per threadgroup. Edge threadgroups of
// a grid that is not a multiple of the threadgroup are launched separately with their real
// size (the host splits the dispatch), so no thread outside the grid ever exists and barriers
// stay correct.
#pragma once

#define MG_KERNEL_FN static __device__ __forceinline__
#define MG_CONSTANT_DATA __device__ const __align__(16)
#define MG_CONSTANT_SPACE __device__
// Threadgroup variables and program constants 16-byte aligned: vector loads there stay vector
// loads where vectors are aligned like their elements (mg_vector.h).
#define MG_THREADGROUP_STORAGE __shared__ __align__(16)
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
  // Each slot's length is a multiple of 16 (as Metal rounds it): 16-byte aligned (for vector
  // loads where vectors are aligned like their elements: mg_vector.h).
  return reinterpret_cast<T>(__builtin_assume_aligned(cuda::dynamic_threadgroup_memory + offset, 16));
}

// ---- threadgroup barriers
// CUDA's barrier (__syncthreads, bar.sync) makes each thread wait for every thread of its warp
// that has not exited, and lets the compiler assume the whole warp reaches it. Apple GPUs let a
// SIMD group through a barrier with the lanes that are in it, and real code relies on that:
// MLX's gemv_t calls threadgroup_barrier inside `if (out_col < out_vec_size)`, which some lanes
// of the last threadgroup skip (with __syncthreads the results are wrong; a __syncwarp there
// deadlocks). A module with a kernel whose barriers sit under control flow that can part the
// lanes of a warp (divergent_barriers.cpp decides) gets barriers that count warps instead: a
// warp arrives when its lanes at the barrier do, the lanes that went elsewhere do not hold it
// up, and a warp whose lanes have all left the kernel stops counting. The translation defines
// threadgroup_barrier_impl() as one or the other, so other modules keep __syncthreads as it is.
MG_DECL inline void threadgroup_barrier_impl();

namespace cuda {

struct warp_barriers {
  // Packed so that one 64-bit CAS sees all of it: the barrier's generation (bits 38..63), the
  // warps still running (32..37) and the warps arrived in this generation (one bit each).
  unsigned long long word;
  unsigned finished_lanes[32];  // per warp: lanes that have left the kernel
};
__shared__ warp_barriers barriers;

__device__ __forceinline__ unsigned long long barrier_word(unsigned long long gen, unsigned alive, unsigned arrived) {
  return gen << 38 | (unsigned long long)alive << 32 | arrived;
}
__device__ __forceinline__ unsigned block_threads() { return blockDim.x * blockDim.y * blockDim.z; }
__device__ __forceinline__ unsigned linear_thread() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

// At the entry of a cooperative kernel of such a module, every thread of the block.
__device__ __forceinline__ void barriers_begin() {
  if (linear_thread() == 0) {
    barriers.word = barrier_word(0, (block_threads() + 31) / 32, 0);
    for (unsigned& n : barriers.finished_lanes) n = 0;
  }
  __syncthreads();
}

// The next generation if every running warp has arrived (after an arrival or a departure).
__device__ __forceinline__ unsigned long long completed(unsigned long long w) {
  const unsigned alive = unsigned(w >> 32) & 63u, arrived = unsigned(w);
  if (arrived == 0 || unsigned(__popc(arrived)) != alive) return w;
  return barrier_word((w >> 38) + 1, alive, 0);
}

__device__ __noinline__ void warp_barrier() {
  const unsigned active = __activemask();
  __threadfence_block();  // this lane's writes, before its warp is counted
  __syncwarp(active);
  if (linear_thread() % 32 == unsigned(__ffs(int(active)) - 1)) {
    const unsigned bit = 1u << (linear_thread() / 32);
    unsigned long long old = barriers.word, seen;
    do {
      seen = old;
      old = atomicCAS(&barriers.word, seen, completed(seen | bit));
    } while (old != seen);
    const unsigned long long gen = seen >> 38;
    while ((*(volatile unsigned long long*)&barriers.word >> 38) == gen) __nanosleep(20);
  }
  __syncwarp(active);
  __threadfence_block();
}

// Around a lane-divergent statement with a barrier inside (the translation writes them): the
// lanes that enter it together wait for each other after it. Without this, lanes held at a
// barrier in it may run the code after it apart from the others, and a SIMD function there
// (MLX gemv_t's simd_shuffle_down reduction) sees only some of the lanes.
__device__ __forceinline__ unsigned lanes_here() { return __activemask(); }
__device__ __forceinline__ void rejoin(unsigned lanes) { __syncwarp(lanes); }

// After the kernel's function returns (early returns included), every thread of the block.
__device__ __forceinline__ void barriers_end() {
  const unsigned warp = linear_thread() / 32, count = block_threads();
  const unsigned lanes = count - warp * 32 < 32u ? count - warp * 32 : 32u;
  if (atomicAdd(&barriers.finished_lanes[warp], 1u) + 1 != lanes) return;
  unsigned long long old = barriers.word, seen;
  do {
    seen = old;
    const unsigned alive = (unsigned(seen >> 32) & 63u) - 1;
    old = atomicCAS(&barriers.word, seen, completed(barrier_word(seen >> 38, alive, unsigned(seen))));
  } while (old != seen);
}

}  // namespace cuda

MG_DECL inline unsigned simd_lane_id() {
  return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32;
}

}  // namespace __metalgpu
