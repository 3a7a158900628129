// Synchronisation inside a threadgroup: memory flags, barriers, and the SIMD-group exchange
// primitive that every simd_* function is built on. Declared here for all targets; each
// target's execution header defines the primitives (mg_cpu_fiber.h on the CPU).
#pragma once

namespace metal {

enum class mem_flags : unsigned {
  mem_none = 0,
  mem_device = 1,
  mem_threadgroup = 2,
  mem_texture = 4,
  mem_threadgroup_imageblock = 8,
  mem_object_data = 16,
};
MG_FN constexpr mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(unsigned(a) | unsigned(b)); }
MG_FN constexpr mem_flags operator&(mem_flags a, mem_flags b) { return mem_flags(unsigned(a) & unsigned(b)); }

}  // namespace metal

namespace __metalgpu {

// One lane's part in a SIMD-group exchange.
struct simd_lane {
  const void* in;  // the lane's input value
  void* out;       // where the lane's result goes
  unsigned arg;    // a per-lane integer (shuffle source, delta, ...)
};

// The lanes of one SIMD group that reached the same exchange function together.
struct simd_call {
  unsigned active;     // bit i set: lane i takes part
  unsigned width;      // lanes that exist in this SIMD group (fewer than 32 at a group's edge)
  simd_lane lane[32];  // valid where `active` has the bit
};

typedef void (*simd_fn)(simd_call&);

// Every lane that calls simd_exchange() waits until each lane of its SIMD group that is still
// running has reached an exchange (or a barrier, or its end); then `fn` runs once over the
// lanes that called it with that same `fn`, and they continue. This gives Metal's semantics
// for uniform control flow and for lanes that diverged away (they are inactive).
// `in_size` / `out_size`: bytes of the lane's input and result (work-item loops copy them).
MG_DECL inline void simd_exchange(const void* in, void* out, unsigned arg, simd_fn fn, unsigned in_size = 0,
                                  unsigned out_size = 0);

// This thread's lane in its SIMD group (0..31).
MG_DECL inline unsigned simd_lane_id();

// All threads of the threadgroup that are still running meet here. Debug mode (cpu) passes
// the call's place, to name a barrier that not every thread reaches.
#if MG_DEBUG
inline void threadgroup_barrier_impl(const char* file, int line);
#else
MG_DECL inline void threadgroup_barrier_impl();
#endif

}  // namespace __metalgpu

namespace metal {

#if MG_DEBUG
inline void threadgroup_barrier(mem_flags = mem_flags::mem_none, const char* file = __builtin_FILE(),
                                int line = __builtin_LINE()) {
  __metalgpu::threadgroup_barrier_impl(file, line);
}
#else
MG_FN void threadgroup_barrier(mem_flags = mem_flags::mem_none) { __metalgpu::threadgroup_barrier_impl(); }
#endif

namespace __detail_sync {
MG_FN void nothing(__metalgpu::simd_call&) {}
}  // namespace __detail_sync

MG_FN void simdgroup_barrier(mem_flags = mem_flags::mem_none) {
#if MG_CUDA
  __syncwarp(__activemask());
#else
  __metalgpu::simd_exchange(nullptr, nullptr, 0, &__detail_sync::nothing);
#endif
}

}  // namespace metal
