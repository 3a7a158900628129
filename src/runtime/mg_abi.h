// The binary interface between the metalgpu core and a compiled kernel module.
// Plain C layout: the core includes this file directly and generated code gets it through the
// embedded runtime, so both sides always agree.
#pragma once

#define MG_MAX_BUFFERS 31
#define MG_MAX_THREADGROUP_SLOTS 31
#define MG_INLINE_BYTES 512
#define MG_MAX_GROUP_THREADS 1024  // threads of one threadgroup (Metal's limit)
#define MG_FIBER_GUARD_BYTES 4096  // below each fiber stack (mg_launch::fiber_stacks)
#define MG_NOT_INLINE 0xffffffffu
#define MG_MAX_TEXTURES 16
#define MG_MAX_SAMPLERS 16

// Texel formats: MG_TEXEL_FORMAT(kind, channels), channels 1, 2 or 4.
enum mg_texel_kind {
  MG_TEXEL_FLOAT32 = 0, MG_TEXEL_FLOAT16 = 1, MG_TEXEL_UNORM8 = 2, MG_TEXEL_SNORM8 = 3,
  MG_TEXEL_UNORM16 = 4, MG_TEXEL_SNORM16 = 5, MG_TEXEL_UINT32 = 6, MG_TEXEL_SINT32 = 7,
  MG_TEXEL_UINT16 = 8, MG_TEXEL_SINT16 = 9, MG_TEXEL_UINT8 = 10, MG_TEXEL_SINT8 = 11
};
#define MG_TEXEL_FORMAT(kind, channels) (((unsigned)(kind) << 4) | (unsigned)(channels))

// A texture as kernels see it: linear rows of texels. Texel (x, y) of slice s (the depth
// index of a 3D texture, the layer of an array) is at data + s*slice_pitch + y*row_pitch +
// x*bytes_per_texel. Pitches are in bytes; unbound slots are all zero.
struct mg_texture {
  void* data;
  unsigned int width, height, depth, array_length;
  unsigned int format;  // MG_TEXEL_FORMAT
  unsigned int row_pitch, slice_pitch;
};

// Sampler descriptor bits (one unsigned per [[sampler(n)]] slot).
#define MG_SAMPLER_VALID 0x80000000u
#define MG_SAMPLER_NORMALIZED 0x1u          // bit 0: normalised coordinates (else pixel)
#define MG_SAMPLER_ADDRESS_SHIFT(axis) (1 + 3 * (axis))  // 3 bits per axis s, t, r
#define MG_SAMPLER_MAG_LINEAR 0x400u        // bit 10
#define MG_SAMPLER_MIN_LINEAR 0x800u        // bit 11
#define MG_SAMPLER_BORDER_SHIFT 12          // 2 bits: transparent black, opaque black, opaque white
enum mg_sampler_address {
  MG_ADDRESS_CLAMP_TO_EDGE = 0, MG_ADDRESS_REPEAT = 1, MG_ADDRESS_MIRRORED_REPEAT = 2,
  MG_ADDRESS_CLAMP_TO_ZERO = 3, MG_ADDRESS_CLAMP_TO_BORDER = 4
};

// Debug mode (cpu): where a kernel's checks leave the first fault of a dispatch, which the
// host raises as KernelFault. `faulted` is set once, atomically, before the rest is written.
struct mg_debug_report {
  int faulted;
  int line;                          // in the .metal source
  unsigned int thread_position[3];   // thread_position_in_grid of the faulting thread
  // GPU targets: the faulting thread's linear grid position (the report keeps the lowest, so
  // which fault is told does not depend on scheduling) and a lock for writing the report.
  int lock;
  unsigned long long order;
  char message[1024];
};

// Everything one dispatch needs. Each buffer slot points at the memory the kernel sees for
// [[buffer(n)]]: a buffer's device memory, or a copy of by-value bytes.
struct mg_launch {
  void* slots[MG_MAX_BUFFERS];
  unsigned int threadgroup_sizes[MG_MAX_THREADGROUP_SLOTS];  // bytes for [[threadgroup(n)]]
  unsigned int grid[3];    // threads_per_grid
  unsigned int tg[3];      // threads_per_threadgroup as dispatched (edge groups may be smaller)
  unsigned int groups[3];  // threadgroups_per_grid
  unsigned int group_offset[3];  // first threadgroup of this launch (a dispatch may be split)
  struct mg_texture textures[MG_MAX_TEXTURES];  // [[texture(n)]]
  unsigned int samplers[MG_MAX_SAMPLERS];        // [[sampler(n)]]: sampler descriptor bits
  // GPU targets: by-value arguments travel inside the launch block itself; slot n's bytes are
  // at inline_data + inline_offset[n] (MG_NOT_INLINE: use slots[n]). The cpu target points
  // slots[n] at host copies instead and leaves these unused.
  unsigned int inline_offset[MG_MAX_BUFFERS];
  unsigned char inline_data[MG_INLINE_BYTES] __attribute__((aligned(16)));
  // cpu target: the calling OS thread's fiber stacks, owned by the host and shared by every
  // module (per module and thread they exhausted the process's memory-map limit once a few
  // dozen cooperative shaders were loaded): MG_MAX_GROUP_THREADS stacks of *stack_bytes
  // each, every one above a guard page. Null on GPU targets.
  unsigned char* (*fiber_stacks)(unsigned long* stack_bytes);
  // cpu target, debug mode: each slot's length in bytes (a buffer's, or a by-value argument's
  // own size) and where faults go. Null `debug` outside debug mode.
  unsigned long long slot_bytes[MG_MAX_BUFFERS];
  struct mg_debug_report* debug;
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
