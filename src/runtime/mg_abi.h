// The binary interface between the metalgpu core and a compiled kernel module.
// Plain C layout: the core includes this file directly and generated code gets it through the
// embedded runtime, so both sides always agree.
#pragma once

#define MG_MAX_BUFFERS 31
#define MG_MAX_THREADGROUP_SLOTS 31
#define MG_INLINE_BYTES 512
#define MG_NOT_INLINE 0xffffffffu

// Everything one dispatch needs. Each buffer slot points at the memory the kernel sees for
// [[buffer(n)]]: a buffer's device memory, or a copy of by-value bytes.
struct mg_launch {
  void* slots[MG_MAX_BUFFERS];
  unsigned int threadgroup_sizes[MG_MAX_THREADGROUP_SLOTS];  // bytes for [[threadgroup(n)]]
  unsigned int grid[3];    // threads_per_grid
  unsigned int tg[3];      // threads_per_threadgroup as dispatched (edge groups may be smaller)
  unsigned int groups[3];  // threadgroups_per_grid
  unsigned int group_offset[3];  // first threadgroup of this launch (a dispatch may be split)
  // GPU targets: by-value arguments travel inside the launch block itself; slot n's bytes are
  // at inline_data + inline_offset[n] (MG_NOT_INLINE: use slots[n]). The cpu target points
  // slots[n] at host copies instead and leaves these unused.
  unsigned int inline_offset[MG_MAX_BUFFERS];
  unsigned char inline_data[MG_INLINE_BYTES] __attribute__((aligned(16)));
};

// Runs threadgroups [first, end) (linear index, x fastest) of one dispatch.
typedef void (*mg_cpu_entry)(const struct mg_launch* launch, unsigned long long first,
                             unsigned long long end);

enum mg_kernel_flags {
  MG_KERNEL_COOPERATIVE = 1,  // uses barriers or SIMD-group functions: threads must interleave
};

// One row per kernel of a module; `slot_sizes[n]` is sizeof the type a [[buffer(n)]] parameter
// points or refers to (0 where the slot is unused or the type has no size, like void).
struct mg_kernel_desc {
  const char* name;
  void* entry;
  unsigned int slot_sizes[MG_MAX_BUFFERS];
  unsigned int flags;
  unsigned int static_threadgroup_bytes;
};
