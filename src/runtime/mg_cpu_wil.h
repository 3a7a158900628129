// Work-item loops on the CPU (see src/msl/work_item_loops.hpp): a cooperative kernel whose
// barriers sit in structured control flow is called once per threadgroup; its body loops over
// the group's threads between barriers. This is the group it runs for: each thread's
// built-ins, and storage for the variables and masks the body keeps per thread.
#pragma once

#define MG_WI_SLOTS 1024

namespace __metalgpu {
namespace cpu {

// A SIMD-group function called by a statement of a work-item loop: each thread's input,
// recorded in a first pass over the threads, and its result, computed per SIMD group when the
// statement itself runs.
struct wi_lane_record {
  // Read and written as the function's types (float4: 16-byte aligned moves).
  alignas(16) unsigned char in[64];
  alignas(16) unsigned char out[64];
  unsigned arg;
  unsigned called;
  simd_fn fn;
};

enum wi_simd_mode : unsigned { wi_simd_off, wi_simd_recording };

// Plain data, calloc'ed (generated modules use no C++ runtime: see group_runner).
struct wi_group {
  metal::uint3 size;    // threads of the current group, per axis
  metal::uint3 origin;  // its first thread's position in the grid
  unsigned capacity;    // threads of a full group of this dispatch: what slots are sized for
  // Per-thread storage of the body's variables and masks, by slot: allocated on first use in a
  // dispatch and reused by its later groups (edge groups are smaller, never larger).
  void* slots[MG_WI_SLOTS];
  unsigned char* arena;
  size_t arena_size, arena_used;
  void* extra[MG_WI_SLOTS];  // slots that did not fit in the arena this dispatch
  unsigned extra_count;
  size_t extra_bytes;
  unsigned char* tg_memory;
  size_t tg_capacity;
  void* tg_slots[MG_MAX_THREADGROUP_SLOTS];
  // SIMD-group functions (see wi_exchange).
  unsigned simd_mode;
  unsigned simd_thread;  // the thread evaluating the statement
  // Set by a body that uses simdgroup matrices: its thread loops keep simd_thread current, so
  // a matrix's per-lane operations (a diagonal constructor) know their lane.
  unsigned lanes_known;
  unsigned char simd_done[kMaxGroupThreads / 32];
  wi_lane_record lanes[kMaxGroupThreads];
};

inline wi_group*& current_wi_slot() {
  static thread_local wi_group* g = nullptr;
  return g;
}
MG_FN wi_group& wi_current() { return *current_wi_slot(); }

inline module_registry<wi_group>& wi_groups() {
  static module_registry<wi_group> r = {};
  return r;
}
__attribute__((destructor)) static void free_wi_groups_at_unload() {
  module_registry<wi_group>& reg = wi_groups();
  for (unsigned i = 0; i < reg.count; ++i) {
    for (unsigned k = 0; k < reg.list[i]->extra_count; ++k) free(reg.list[i]->extra[k]);
    free(reg.list[i]->arena);
    free(reg.list[i]->tg_memory);
    free(reg.list[i]);
  }
  reg.count = 0;
}

inline wi_group* wi_for_this_thread() {
  wi_group*& g = current_wi_slot();
  if (g) return g;
  g = static_cast<wi_group*>(calloc(1, sizeof(wi_group)));
  if (!g) abort();
  wi_groups().add(g);
  return g;
}

// Storage for `capacity` values of `size` bytes for slot k of the body: the same storage each
// time the body reaches that declaration, in every group of the dispatch. Blocks come from an
// arena; one that does not fit gets its own allocation, and the next dispatch a larger arena
// (the arena cannot move while slots point into it).
[[gnu::noinline]] inline void* wi_overflow(wi_group& g, unsigned k, size_t bytes) {
  void* p = aligned_alloc(64, bytes);
  if (!p) abort();
  g.extra[g.extra_count++] = p;
  g.extra_bytes += bytes;
  return g.slots[k] = p;
}
inline void* wi_slot(wi_group& g, unsigned k, size_t size, size_t /*align: blocks are 64-byte aligned*/) {
  if (g.slots[k]) return g.slots[k];
  const size_t bytes = (size * g.capacity + 63) & ~size_t(63);
  if (g.arena_used + bytes > g.arena_size) return wi_overflow(g, k, bytes);
  void* p = g.arena + g.arena_used;
  g.arena_used += bytes;
  return g.slots[k] = p;
}
// A new dispatch: no slot is allocated yet; last dispatch's overflow folded into the arena.
inline void wi_begin(wi_group& g) {
  if (g.extra_count) {
    for (unsigned i = 0; i < g.extra_count; ++i) free(g.extra[i]);
    const size_t want = 2 * (g.arena_size + g.extra_bytes);
    free(g.arena);
    g.arena = static_cast<unsigned char*>(aligned_alloc(64, want));
    if (!g.arena) abort();
    g.arena_size = want;
    g.extra_count = 0;
    g.extra_bytes = 0;
  }
  memset(g.slots, 0, sizeof g.slots);
  g.arena_used = 0;
}

// The type `auto x = e` gives x (e by value: decayed). Only named inside decltype.
template <class T> T wi_decay(T);

// A per-thread variable declared without an initialiser: constructed as declared (a class's
// constructor runs); nothing to do for a type that has none.
template <class T> __attribute__((always_inline)) inline void wi_default_construct(T& x) {
  if constexpr (!__is_trivially_constructible(T)) {
    T v;
    __builtin_memcpy((void*)&x, (const void*)&v, sizeof x);
  }
}

// A statement with a SIMD-group function: first each live thread evaluates the call alone
// (recording its input), then the statement runs per thread with the call replaced by the
// lane's result, computed for the whole SIMD group by its first lane to ask.
inline void wi_simd_record(wi_group& g) {
  const unsigned n = g.size.x * g.size.y * g.size.z;
  for (unsigned i = 0; i < n; ++i) g.lanes[i].called = 0;
  g.simd_mode = wi_simd_recording;
}
inline void wi_simd_recorded(wi_group& g) {
  memset(g.simd_done, 0, sizeof g.simd_done);
  g.simd_mode = wi_simd_off;
}

// The SIMD group's call, run once by its first lane to ask: every recorded lane's result.
[[gnu::noinline]] inline void wi_replay_group(wi_group* g, unsigned group, simd_fn fn) {
  const unsigned n = g->size.x * g->size.y * g->size.z, base = group * 32;
  simd_call call;
  call.active = 0;
  call.width = n - base < 32 ? n - base : 32;
  for (unsigned l = 0; l < call.width; ++l) {
    wi_lane_record& r = g->lanes[base + l];
    if (!r.called || r.fn != fn) continue;
    call.active |= 1u << l;
    call.lane[l] = simd_lane{r.in, r.out, r.arg};
  }
  fn(call);
  g->simd_done[group] = 1;
#if MG_DEBUG
  dbg::simd_synced(group);  // the exchange orders the SIMD group's accesses (race detector)
#endif
}
// Thread i's result of the statement's call.
template <class R> __attribute__((always_inline)) inline R wi_simd_result(wi_group& g, unsigned i) {
  static_assert(sizeof(R) <= sizeof(g.lanes[0].out), "a SIMD-group result is at most 64 bytes");
  if (!g.simd_done[i / 32]) wi_replay_group(&g, i / 32, g.lanes[i].fn);
  R r;
  __builtin_memcpy((void*)&r, g.lanes[i].out, sizeof(R));
  return r;
}
// Recording: inlined into each SIMD-group function, so the sizes are constants and the copies
// are moves.
__attribute__((always_inline)) inline bool wi_exchange(const void* in, void* out, unsigned arg, simd_fn fn,
                                                       unsigned in_size, unsigned out_size) {
  wi_group* g = current_wi_slot();
  if (!g || g->simd_mode != wi_simd_recording) return false;
  wi_lane_record& me = g->lanes[g->simd_thread];
  me.called = 1;
  me.arg = arg;
  me.fn = fn;
  if (in_size) __builtin_memcpy(me.in, in, in_size);
  if (out_size) __builtin_memset(out, 0, out_size);
  return true;
}
inline bool wi_lane(unsigned* lane) {
  wi_group* g = current_wi_slot();
  if (!g || (g->simd_mode == wi_simd_off && !g->lanes_known)) return false;
  *lane = g->simd_thread % 32;
  return true;
}

// Debug mode left a kernel through a fault, perhaps mid-statement: no SIMD call is pending.
inline void wi_abandon() {
  if (wi_group* g = current_wi_slot()) {
    g->simd_mode = wi_simd_off;
    g->lanes_known = 0;
  }
}

}  // namespace cpu

#if MG_DEBUG
// Debug mode: thread i of the current group runs next (fault reports, the race detector).
// (Called for every thread of every loop: two stores, no divisions.)
// A thread's turn in a loop: only its index (a store the loop can afford). The group is the one
// run_groups_wil names when it starts it (wil_enter_group), the only one a loop of it can see.
inline void dbg::wil_thread(const cpu::wi_group&, unsigned i) { st().wil_tid = i; }
inline void dbg::wil_enter_group(const cpu::wi_group& g) {
  state& s = st();
  s.wil_group = &g;
  s.wil_tid = 0;
}
inline void dbg::wil_position(const state& s, unsigned (&pos)[3]) {
  const cpu::wi_group& g = *s.wil_group;
  const unsigned i = s.wil_tid, sx = g.size.x, sy = g.size.y;
  pos[0] = g.origin.x + i % sx;
  pos[1] = g.origin.y + i / sx % sy;
  pos[2] = g.origin.z + i / (sx * sy);
}
// A barrier of a work-item-loop kernel, which `reached` of the group's threads reach: all of
// them or none (its masks skip it for the group), else a fault, as on fibers.
// `missing`: 1 + the first thread that does not.
inline void dbg::wil_barrier(const cpu::wi_group& g, unsigned reached, unsigned missing, const char* file, int line,
                             bool simd) {
  const unsigned n = g.size.x * g.size.y * g.size.z;
  if (reached && reached != n && missing) {
    char what[320];
    snprintf(what, sizeof what,
             "%s reached by %u of the %u threads of the threadgroup: the other %u skip it or have returned, thread "
             "%u first (every thread of the group must reach a barrier; on a GPU this hangs or is undefined)",
             simd ? "simdgroup_barrier" : "threadgroup_barrier", reached, n, n - reached, missing - 1);
    wil_thread(g, missing - 1);
    fault(file, line, what);
  }
  if (!reached) return;  // skipped by the whole group (a break, say): it orders nothing
  if (simd) simd_barrier_all();
  else next_epoch();
}
#endif

namespace cpu {

// Runs groups [g0, g1): the body once per group (it loops over the group's threads itself).
template <class Body>
inline void run_groups_wil(const mg_launch* L, unsigned long long g0, unsigned long long g1, Body&& body) {
  wi_group* g = wi_for_this_thread();
  g->capacity = L->tg[0] * L->tg[1] * L->tg[2];
  wi_begin(*g);
  lay_out_threadgroup_slots(L, g->tg_memory, g->tg_capacity, g->tg_slots);
  // The built-ins passed to the kernel are its first thread's; the per-thread ones are re-bound
  // inside the body's loops.
  thread_ctx t;
  dispatch_ctx(t, L);
  t.threadgroup_slots = g->tg_slots;
#if MG_DEBUG
  dbg::state& checks = dbg::st();
  checks.wil = true;
  checks.has_pos = true;
  dbg::note_threadgroup_slots(g->tg_slots, L->threadgroup_sizes);
#endif
  for (unsigned long long k = g0; k < g1; ++k) {
#if MG_DEBUG
    if (dbg::faulted()) break;  // the dispatch has failed: skip the rest of it
    dbg::next_epoch();          // a new group: nothing it touches is ordered against the last one's
#endif
    g->lanes_known = 0;
    g->origin = enter_group(t, k);
    g->size = t.threads_per_threadgroup;
    t.thread_position_in_grid = g->origin;
    t.thread_position_in_threadgroup = metal::uint3(0u, 0u, 0u);
    t.thread_index_in_threadgroup = t.simdgroup_index_in_threadgroup = t.thread_index_in_simdgroup = 0;
    t.quadgroup_index_in_threadgroup = t.thread_index_in_quadgroup = 0;
#if MG_DEBUG
    dbg::wil_enter_group(*g);  // statements at group level: reported as the group's first thread
#endif
    body(static_cast<const thread_ctx&>(t));
  }
  g->lanes_known = 0;
#if MG_DEBUG
  checks.wil = false;
#endif
}
// A kernel on fibers: lanes are the fibers', whatever a work-item-loop kernel left behind.
inline void wi_forget_lanes() {
  if (wi_group* g = current_wi_slot()) g->lanes_known = 0;
}

}  // namespace cpu
}  // namespace __metalgpu
