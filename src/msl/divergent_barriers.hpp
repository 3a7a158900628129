// Which kernels call threadgroup_barrier where the lanes of one SIMD group may have parted:
// inside an if, switch or loop whose condition depends on the lane (or after a jump out of a
// loop taken on such a condition). Apple GPUs let a SIMD group through a barrier with the lanes
// that reach it, and libraries rely on it (MLX's gemv_t); CUDA's __syncthreads waits for every
// lane of the warp. The cuda backend gives such kernels barriers that count warps
// (mg_cuda_exec.h), and the rest keep __syncthreads.
//
// "Depends on the lane", from the source alone: the kernel's builtins that differ between the
// lanes of a SIMD group (thread_position_in_grid, thread_index_in_simdgroup, ...), the locals
// computed from them, and the parameters of the functions they are passed to (by name: every
// overload), transitively. A false alarm costs speed (warp-counting barriers are slower), never
// a wrong result; a miss (a member variable set from a lane, say) keeps __syncthreads.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "msl/parser.hpp"

namespace metalgpu::msl {

struct DivergentBarriers {
  // Per kernel (the order of model.kernels()): does it reach a barrier in lane-divergent code?
  std::vector<bool> kernels;
  // The outermost lane-divergent statements with a barrier inside, as token ranges [begin, end)
  // (a #pragma right before one included), that nothing leaves by return, break or continue.
  // On Apple GPUs the lanes of a SIMD group that part there meet again after the statement
  // (the SIMD functions after it see them all); CUDA does not promise that once lanes were held
  // at a barrier, so the translation makes them meet (mg_cuda_exec.h, reconverge_*).
  std::vector<std::pair<std::size_t, std::size_t>> rejoin;
};

DivergentBarriers divergent_barriers(const SourceModel& model);

}  // namespace metalgpu::msl
