// How a kernel runs on the CPU backend: the translator's entry point calls run_groups() for a
// range of threadgroups; a thread pool on the host spreads ranges over the cores.
#pragma once

#define MG_KERNEL_FN static inline __attribute__((always_inline))
#define MG_CONSTANT_DATA const  // namespace-scope const: internal linkage already
#define MG_CONSTANT_SPACE       // `constant` where the declaration says const itself
#define MG_EXPORT __attribute__((visibility("default")))
#define MG_LAMBDA_INLINE __attribute__((always_inline))
// Variables declared `threadgroup` in a kernel: one instance per OS thread, shared by the
// fibers of the threadgroup that thread is running (see mg_cpu_fiber.h).
#define MG_THREADGROUP_STORAGE static thread_local
#define MG_THREADGROUP_INIT(...) = __VA_ARGS__  // an initializer: see mg_cuda_exec.h
// After each such declaration: its bytes, for the kernel descriptors (see threadgroup_note).
#define MG_THREADGROUP_NOTE(index, bytes) (void)::__metalgpu::cpu::threadgroup_note<index, (bytes)>::noted;

namespace __metalgpu {


// A [[threadgroup(n)]] parameter: a pointer into the group's dynamic threadgroup memory.
template <class T> MG_FN T threadgroup_slot(const thread_ctx& t, unsigned n) {
  return static_cast<T>(t.threadgroup_slots[n]);
}

namespace cpu {

MG_FN uint min_u(uint a, uint b) { return a < b ? a : b; }

// Static threadgroup memory: the sizes of a module's threadgroup variables come from the
// compiler, not the translator (their types may be templates, structs, constants). Each
// declaration names threadgroup_note<its index, its bytes>::noted; that member's initializer
// runs as the module loads and lists the size, so a descriptor (built after loading) can sum
// the declarations its kernel reaches. A template declares one size per instantiation: the
// largest counts. Internal linkage: every module keeps its own list.
namespace {
struct threadgroup_record {
  unsigned index;
  unsigned long long bytes;
  const threadgroup_record* next;
};
inline const threadgroup_record*& threadgroup_records() {
  static const threadgroup_record* head = nullptr;
  return head;
}
template <unsigned Index, unsigned long long Bytes> struct threadgroup_note {
  static inline threadgroup_record record{Index, Bytes, nullptr};
  static inline const bool noted = (record.next = threadgroup_records(), threadgroup_records() = &record, true);
};
// The static threadgroup bytes of a kernel reaching declarations `indices[0..n)`, at most
// 0xffffffff (the descriptor's field; far past any device's limit).
inline unsigned threadgroup_total(const unsigned* indices, unsigned n) {
  unsigned long long total = 0;
  for (unsigned i = 0; i < n; ++i) {
    unsigned long long largest = 0;
    for (const threadgroup_record* r = threadgroup_records(); r; r = r->next)
      if (r->index == indices[i] && r->bytes > largest) largest = r->bytes;
    total += largest;
  }
  return total > 0xffffffffull ? 0xffffffffu : unsigned(total);
}
}  // namespace


// Enters threadgroup g: its group-level built-ins in t (grid, group and dispatch sizes already
// there); returns where its first thread sits in the grid. Edge groups of a grid that is not a
// multiple of the threadgroup are smaller, and report their real size.
MG_FN metal::uint3 enter_group(thread_ctx& t, unsigned long long g) {
  const metal::uint3 grid = t.threads_per_grid, tg = t.dispatch_threads_per_threadgroup;
  const metal::uint3 groups = t.threadgroups_per_grid;
  const uint gx = uint(g % groups.x);
  const uint gy = uint((g / groups.x) % groups.y);
  const uint gz = uint(g / ((unsigned long long)groups.x * groups.y));  // 65536 x 65536 groups fit
  const uint ox = gx * tg.x, oy = gy * tg.y, oz = gz * tg.z;
  t.threadgroup_position_in_grid = metal::uint3(gx, gy, gz);
  t.threads_per_threadgroup =
      metal::uint3(min_u(tg.x, grid.x - ox), min_u(tg.y, grid.y - oy), min_u(tg.z, grid.z - oz));
  const uint group_threads = t.threads_per_threadgroup.x * t.threads_per_threadgroup.y * t.threads_per_threadgroup.z;
  t.simdgroups_per_threadgroup = (group_threads + 31) / 32;
  t.quadgroups_per_threadgroup = (group_threads + 3) / 4;
  return metal::uint3(ox, oy, oz);
}

// The built-ins every thread of a dispatch shares.
MG_FN void dispatch_ctx(thread_ctx& t, const mg_launch* L) {
  const metal::uint3 grid(L->grid[0], L->grid[1], L->grid[2]);
  const metal::uint3 tg(L->tg[0], L->tg[1], L->tg[2]);
  const metal::uint3 groups(L->groups[0], L->groups[1], L->groups[2]);
  t.threadgroup_slots = nullptr;
  t.threads_per_grid = grid;
  t.grid_size = grid;
  t.grid_origin = metal::uint3(0u, 0u, 0u);
  t.threadgroups_per_grid = groups;
  t.dispatch_threads_per_threadgroup = tg;
  t.thread_execution_width = 32;
  t.threads_per_simdgroup = 32;
  const uint dispatch_threads = tg.x * tg.y * tg.z;
  t.dispatch_simdgroups_per_threadgroup = (dispatch_threads + 31) / 32;
  t.dispatch_quadgroups_per_threadgroup = (dispatch_threads + 3) / 4;
}

// Runs threadgroups [g0, g1). Threads of a group run as a plain loop, x innermost, so the
// compiler can vectorise simple kernels across threads.
template <class Body>
MG_FN void run_groups(const mg_launch* L, unsigned long long g0, unsigned long long g1, Body&& body) {
  thread_ctx t;
  dispatch_ctx(t, L);
#if MG_DEBUG
  dbg::state& checks = dbg::st();
  checks.has_pos = true;
#endif
  for (unsigned long long g = g0; g < g1; ++g) {
#if MG_DEBUG
    if (dbg::faulted()) return;  // the dispatch has failed: skip the rest of it
#endif
    const metal::uint3 o = enter_group(t, g);
    const uint ox = o.x, oy = o.y, oz = o.z;
    const uint rx = t.threads_per_threadgroup.x, ry = t.threads_per_threadgroup.y, rz = t.threads_per_threadgroup.z;
    for (uint z = 0; z < rz; ++z) {
      for (uint y = 0; y < ry; ++y) {
        const uint row = rx * (y + ry * z);
        // The grid position is the loop counter, bounded by the group's end (<= grid.x):
        // the compiler can then prove the index never wraps and vectorise across threads.
        const uint xend = ox + rx;
        for (uint px = ox; px < xend; ++px) {
          const uint x = px - ox;
          t.thread_position_in_threadgroup = metal::uint3(x, y, z);
          t.thread_position_in_grid = metal::uint3(px, oy + y, oz + z);
          const uint index = row + x;
          t.thread_index_in_threadgroup = index;
          t.simdgroup_index_in_threadgroup = index / 32;
          t.thread_index_in_simdgroup = index % 32;
          t.quadgroup_index_in_threadgroup = index / 4;
          t.thread_index_in_quadgroup = index % 4;
#if MG_DEBUG
          checks.pos[0] = px;
          checks.pos[1] = oy + y;
          checks.pos[2] = oz + z;
#endif
          body(t);
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace __metalgpu
