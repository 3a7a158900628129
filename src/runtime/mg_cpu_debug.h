// Debug mode on the CPU (METALGPU_DEBUG=1, Interface(debug=True)): the translator routes every
// subscript, `*p` and `p->` in the program through debug mode's checks (mg_debug_access.h),
// told the .metal line and whether the access reads or writes; the functions below judge each
// access for them. A check that fails records a fault for the host (which raises KernelFault)
// and redirects the access to a scratch element, so the kernel finishes without touching
// memory it does not own.
//
// What is checked:
// - bounds: an access through a pointer into a buffer or threadgroup memory stays inside the
//   region its base pointer points into; C arrays and metal::array stay inside their extent;
// - threadgroup-memory races: two threads of a group touching the same byte between two
//   barriers, at least one writing (threads of one SIMD group are ordered by their exchanges);
// - barriers that not every thread of the group reaches (mg_cpu_fiber.h; a kernel rewritten
//   into work-item loops has its barriers where every thread reaches them, by construction).
// Memory that is not a buffer or threadgroup memory (thread-local arrays behind a pointer,
// program constants) has no known bounds: a pointer there is followed unchecked.
#pragma once

#if MG_DEBUG

// Leaving a kernel at a fault: GCC's __builtin_setjmp / __builtin_longjmp (two words saved, on
// every target), which clang has on x86 only; elsewhere (clang on AArch64: Apple silicon too)
// the C library's _setjmp / _longjmp, which also leave the signal mask alone.
#if defined(__clang__) && !defined(__x86_64__) && !defined(__i386__)
#  include <setjmp.h>
#  define MG_ESCAPE_BUFFER(name) jmp_buf name
#  define MG_ESCAPE_SET(buffer) _setjmp(buffer)
#  define MG_ESCAPE_JUMP(buffer) _longjmp(buffer, 1)
#else
#  define MG_ESCAPE_BUFFER(name) void* name[5]
#  define MG_ESCAPE_SET(buffer) __builtin_setjmp(buffer)
#  define MG_ESCAPE_JUMP(buffer) __builtin_longjmp(buffer, 1)
#endif

extern "C" {
int snprintf(char*, size_t, const char*, ...) noexcept;
void* malloc(size_t) noexcept;
void* realloc(void*, size_t) noexcept;
[[noreturn]] void abort() noexcept;
}

namespace __metalgpu {
namespace cpu {
struct wi_group;
}
namespace dbg {

using metal::false_type;
using metal::is_integral;
using metal::is_pointer;
using metal::remove_cv_t;
using metal::remove_cvref_t;
using metal::remove_pointer_t;
using metal::remove_reference_t;
using metal::true_type;
using metal::uint3;

enum region_kind : unsigned char { buffer, threadgroup_slot, threadgroup_variable };

// The accesses to a piece of threadgroup memory in this barrier interval (epoch): the last
// write and the last read(s), with where they happened.
struct access_record {
  unsigned w_epoch, r_epoch;
  unsigned w_sg_epoch, r_sg_epoch;
  unsigned short w_tid, r_tid;  // r_tid == kManyReaders: several threads read
  int w_line, r_line;
  const char *w_file, *r_file;
};
constexpr unsigned short kManyReaders = 0xffff;

// Per byte of threadgroup memory (2-byte halves and single bytes are elements too).
using shadow_cell = access_record;

// Per word (4 cells; each region's cells start at a multiple of 4): its whole-word accesses (a
// float, an int, each word of a float4) - one record where four cells would take four times
// the stores and memory. A word that a narrower access touched in this interval (cell_epoch)
// also keeps its cells, and both are checked.
struct word_cell {
  access_record whole;
  unsigned cell_epoch;
};

struct region {
  const unsigned char* base;
  const unsigned char* end;
  const char* name;
  int slot;  // [[buffer(n)]] / [[threadgroup(n)]], -1 for a threadgroup variable
  region_kind kind;
  size_t shadow;  // threadgroup memory: index of its first byte's cell in state::shadow
};

constexpr unsigned kMaxRegions = MG_MAX_BUFFERS + MG_MAX_THREADGROUP_SLOTS + 64;

// Per OS thread: the dispatch being run, its memory regions and the race detector's state.
// Plain data, zero at thread start: a thread_local without a constructor is reached without
// an initialisation check on every access.
struct state {
  mg_debug_report* report;
  const char* kernel;
  region regions[kMaxRegions];
  unsigned count;
  // Threadgroup memory's regions: from regions[tg_first] on (buffers are noted first), all
  // within [tg_lo, tg_hi) - a thread's own array is told apart by two comparisons.
  unsigned tg_first;
  const unsigned char *tg_lo, *tg_hi;
  const char* tg_slot_names[MG_MAX_THREADGROUP_SLOTS];
  // The position of the thread a plain loop runs (fibers: fiber_ctx()). Only the position:
  // handing out the loop's whole thread_ctx would make it build every field of it per thread.
  unsigned pos[3];
  bool has_pos;
  // Every access `p[i]` of the running kernel whose pointer is a buffer argument and whose index
  // its scalar thread_position_in_grid stays inside its buffer for this share (prove_grid).
  bool grid_proven;
  // A work-item-loop kernel runs (mg_cpu_wil.h): wil_tid is the thread of group wil_group its
  // loops are at (the position is worked out only for a report: wil_position()).
  bool wil;
  unsigned wil_tid;
  const cpu::wi_group* wil_group;
  unsigned epoch;               // barrier interval of the group running (0: none yet)
  unsigned sg_epoch[MG_MAX_GROUP_THREADS / 32];  // exchanges of each SIMD group
  shadow_cell* shadow;
  size_t shadow_cells, shadow_used;
  word_cell* words;  // one per 4 cells
  // Where a fault leaves the kernel (guarded()): the rest of this thread's share of a failed
  // dispatch is not run, so nothing computes on with what the faulting access would have read.
  MG_ESCAPE_BUFFER(escape);
  bool armed;
  alignas(64) unsigned char sink[1 << 16];  // where a faulting access goes when not armed
};
// This OS thread's state. `const`: the address never changes on a thread (fibers share their
// OS thread's), so the compiler computes it once per function instead of once per access - a
// thread_local in a dlopen'ed module costs a __tls_get_addr call each time otherwise.
[[gnu::const, gnu::noinline]] inline state* state_of_this_thread() {
  static thread_local state s;
  return &s;
}
inline state& st() { return *state_of_this_thread(); }

// The fiber running on this OS thread, if any (mg_cpu_fiber.h).
inline const thread_ctx* fiber_ctx();
}  // namespace dbg
namespace cpu {
struct wi_group;
}
namespace dbg {
// Work-item loops (mg_cpu_wil.h): thread i of the group runs next; a barrier `reached` threads reach.
inline void wil_thread(const cpu::wi_group& g, unsigned i);
inline void wil_enter_group(const cpu::wi_group& g);
inline void wil_position(const state& s, unsigned (&pos)[3]);
inline void wil_barrier(const cpu::wi_group& g, unsigned reached, unsigned missing, const char* file, int line,
                        bool simd);

inline bool faulted() {
  const state& s = st();
  return s.report && __atomic_load_n(&s.report->faulted, __ATOMIC_RELAXED);
}

// Records the first fault of the dispatch (`what` says what went wrong; the kernel, place and
// thread are added here), then leaves the kernel through guarded().
[[gnu::cold, gnu::noinline]] inline void record(const char* file, int line, const char* what);

// Sanitized modules: what leaving the kernel by longjmp needs (mg_cpu_fiber.h); nothing else.
inline void before_escape();

// Leaves the kernel for guarded().
[[noreturn]] inline void escape(state& s) {
  s.armed = false;
  before_escape();
  MG_ESCAPE_JUMP(s.escape);
}

// Never returns: the kernel's code runs inside guarded() (each debug entry runs its share
// there), so a check that fails leaves it - and the compiler, knowing a failed check ends the
// loop, may hoist a check's region lookup out of a kernel's thread loop.
[[noreturn, gnu::cold, gnu::noinline]] inline void fault(const char* file, int line, const char* what) {
  record(file, line, what);
  state& s = st();
  if (s.armed) escape(s);
  abort();  // outside guarded(): no debug entry runs a kernel there
}
inline void record(const char* file, int line, const char* what) {
  state& s = st();
  if (!s.report || __atomic_exchange_n(&s.report->faulted, 1, __ATOMIC_ACQ_REL)) return;
  unsigned pos[3] = {0, 0, 0};
  bool known = false;
  if (const thread_ctx* f = fiber_ctx()) {
    for (int k = 0; k < 3; ++k) pos[k] = f->thread_position_in_grid[k];
    known = true;
  } else if (s.wil && s.wil_group) {
    wil_position(s, pos);
    known = true;
  } else if (s.has_pos) {
    for (int k = 0; k < 3; ++k) pos[k] = s.pos[k];
    known = true;
  }
  char where[96] = "";
  if (!file) {  // a signal: the place is the kernel's, not a line's
    snprintf(s.report->message, sizeof s.report->message, "kernel '%s': %s", s.kernel, what);
    file = "";
  }
  if (known) snprintf(where, sizeof where, " (thread_position_in_grid (%u, %u, %u))", pos[0], pos[1], pos[2]);
  if (*file)
    snprintf(s.report->message, sizeof s.report->message, "kernel '%s', %s:%d: %s%s", s.kernel, file, line, what,
             where);
  else
    snprintf(s.report->message, sizeof s.report->message, "kernel '%s': %s%s", s.kernel, what, where);
  s.report->line = line;
  for (int k = 0; k < 3; ++k) s.report->thread_position[k] = pos[k];
}

// What a fault abandons on this OS thread (mg_cpu_fiber.h: the group's fibers).
inline void abandon_group();

// The kernel's loops, compiled apart from guarded(): a function that calls setjmp keeps its
// variables in memory, which inlined loops would pay for on every access.
template <class F> [[gnu::noinline]] void run_apart(F& run) { run(); }

// Runs `run` (the entry's share of the dispatch); a fault inside comes back here.
template <class F> [[gnu::noinline]] void guarded(F&& run) {
  state& s = st();
  if (MG_ESCAPE_SET(s.escape) == 0) {
    s.armed = true;
    run_apart(run);
    s.armed = false;
  } else {
    abandon_group();
  }
}

}  // namespace dbg
}  // namespace __metalgpu

// The host's fault handler calls this in every loaded debug module when a kernel thread gets
// SIGFPE (what = 1) or SIGSEGV/SIGBUS (what = 2). The module whose kernel is running on this
// thread turns it into a fault and leaves the kernel; the others return.
extern "C" __attribute__((visibility("default"))) void mg_debug_signal(int what, void* address) {
  __metalgpu::dbg::state& s = __metalgpu::dbg::st();
  if (!s.armed) return;
  char text[320];
  if (what == 1)
    // (A divisor of 0 never gets here: the translation makes it 1, as MG_NZ says.)
    snprintf(text, sizeof text, "integer division overflow (SIGFPE): a quotient does not fit its type, INT_MIN / -1 "
                                "(on a GPU it would be undefined; on the CPU it stops the program)");
  else
    snprintf(text, sizeof text, "invalid memory access at address %p (SIGSEGV): through an access debug mode "
                                "does not check (a cast pointer, an atomic, a simdgroup load or store?)", address);
  __metalgpu::dbg::record(nullptr, 0, text);
  __metalgpu::dbg::escape(s);
}

namespace __metalgpu {
namespace dbg {

template <class T> inline T& sink() {
  static_assert(sizeof(T) <= sizeof(state::sink), "an element larger than debug mode's scratch space");
  state& s = st();
  for (size_t k = 0; k < sizeof(T); ++k) s.sink[k] = 0;
  return *reinterpret_cast<T*>(s.sink);
}

// ---- regions

inline size_t reserve_shadow(size_t bytes) {
  state& s = st();
  const size_t cells = (bytes + 3) & ~size_t(3), first = s.shadow_used;  // whole words
  if (first + cells > s.shadow_cells) {
    size_t n = s.shadow_cells ? s.shadow_cells : 4096;
    while (n < first + cells) n *= 2;
    void* p = realloc(s.shadow, n * sizeof(shadow_cell));
    void* q = realloc(s.words, n / 4 * sizeof(word_cell));
    if (p) s.shadow = static_cast<shadow_cell*>(p);
    if (q) s.words = static_cast<word_cell*>(q);
    if (!p || !q) abort();
    s.shadow_cells = n;
  }
  for (size_t k = first; k < first + cells; ++k) s.shadow[k] = shadow_cell{};
  for (size_t k = first / 4; k < (first + cells) / 4; ++k) s.words[k] = word_cell{};
  s.shadow_used = first + cells;
  return first;
}

inline void add_region(const void* base, size_t bytes, const char* name, int slot, region_kind kind) {
  state& s = st();
  if (!base || s.count == kMaxRegions) return;
  region& r = s.regions[s.count++];
  r.base = static_cast<const unsigned char*>(base);
  r.end = r.base + bytes;
  r.name = name;
  r.slot = slot;
  r.kind = kind;
  r.shadow = kind == buffer ? 0 : reserve_shadow(bytes);
  if (kind == buffer) {
    if (s.tg_lo != s.tg_hi) s.tg_first = 0;  // (never: buffers come first) scan everything
  } else {
    if (s.tg_lo == s.tg_hi) {
      s.tg_first = s.count - 1;
      s.tg_lo = r.base;
      s.tg_hi = r.end;
    }
    if (r.base < s.tg_lo) s.tg_lo = r.base;
    if (r.end > s.tg_hi) s.tg_hi = r.end;
  }
}

// The entry point of a kernel, on each OS thread that runs part of the dispatch.
inline void enter(const mg_launch* L, const char* kernel) {
  state& s = st();
  s.report = L->debug;
  s.kernel = kernel;
  s.count = 0;
  s.tg_first = 0;
  s.tg_lo = s.tg_hi = nullptr;
  s.shadow_used = 0;
  s.has_pos = false;
  s.grid_proven = false;
  s.wil_group = nullptr;
  for (auto& n : s.tg_slot_names) n = nullptr;
}
inline void note_buffer(const mg_launch* L, unsigned slot, const char* name) {
  add_region(L->slots[slot], size_t(L->slot_bytes[slot]), name, int(slot), buffer);
}
inline void name_threadgroup_slot(unsigned slot, const char* name) { st().tg_slot_names[slot] = name; }

// The dynamic threadgroup memory this OS thread gives its groups (run_groups_cooperative).
inline void note_threadgroup_slots(void* const* slots, const unsigned* sizes) {
  for (unsigned k = 0; k < MG_MAX_THREADGROUP_SLOTS; ++k)
    if (slots[k]) {
      const char* n = st().tg_slot_names[k];
      add_region(slots[k], sizes[k], n ? n : "threadgroup memory", int(k), threadgroup_slot);
    }
}

// `threadgroup T name[...]` declared in a kernel: noted where it is declared (each thread
// passes there; the first one on this OS thread adds it).
inline void note_threadgroup_variable(const void* base, size_t bytes, const char* name) {
  state& s = st();
  for (unsigned k = s.tg_first; k < s.count; ++k)
    if (s.regions[k].base == base) return;
  add_region(base, bytes, name, -1, threadgroup_variable);
}

// A scan of the few regions a dispatch has: cheaper than remembering the last one, which
// kernels reading two buffers in turn would overwrite on every access.
inline const region* find(const void* p) {
  state& s = st();
  const auto* a = static_cast<const unsigned char*>(p);
  for (unsigned k = 0; k < s.count; ++k) {
    const region& r = s.regions[k];
    if (a >= r.base && a < r.end) return &r;
  }
  for (unsigned k = 0; k < s.count; ++k)  // one past the end: a pointer arithmetic may start there
    if (a == s.regions[k].end) return &s.regions[k];
  return nullptr;
}

// The buffer region holding `p`, or null (threadgroup memory, the stack, anywhere unknown).
// `const` - a promise the compiler may act on, and the reason this exists: buffer regions are
// noted before guarded() runs the kernel's share and never change during it, so the answer
// for a kernel's buffer argument is the same for every thread of the share, and the compiler
// hoists the lookup (made at the kernel's start: kernel_buffer()) out of the thread loop.
// noinline keeps the attribute meaningful; guarded() is noinline too, so no lookup moves
// above the note_buffer() calls that come before it.
[[gnu::const, gnu::noinline]] inline const region* buffer_region_of(const void* p) {
  const state& s = st();
  const auto* a = static_cast<const unsigned char*>(p);
  for (unsigned k = 0; k < s.count; ++k) {
    const region& r = s.regions[k];
    if (a >= r.base && a < r.end) return r.kind == buffer ? &r : nullptr;
  }
  return nullptr;
}

// The threadgroup memory region holding `p`, or null.
inline const region* find_threadgroup(const void* p) {
  state& s = st();
  const auto* a = static_cast<const unsigned char*>(p);
  if (a < s.tg_lo || a >= s.tg_hi) return nullptr;
  for (unsigned k = s.tg_first; k < s.count; ++k) {
    const region& r = s.regions[k];
    if (a >= r.base && a < r.end && r.kind != buffer) return &r;
  }
  return nullptr;
}

// A pointer in no region that lands close beyond (or before) a buffer most likely came from
// it: 16 MiB either side, never the stack this thread runs on.
inline const region* near(const void* p) {
  state& s = st();
  const auto* a = static_cast<const unsigned char*>(p);
  unsigned char probe;
  const unsigned char* stack = &probe;
  if ((a > stack ? size_t(a - stack) : size_t(stack - a)) < (size_t(8) << 20)) return nullptr;
  constexpr size_t window = size_t(16) << 20;
  for (unsigned k = 0; k < s.count; ++k) {
    const region& r = s.regions[k];
    if ((a >= r.end && size_t(a - r.end) < window) || (a < r.base && size_t(r.base - a) <= window)) return &r;
  }
  return nullptr;
}

inline void describe_region(char* out, size_t n, const region& r) {
  if (r.kind == buffer) snprintf(out, n, "'%s' ([[buffer(%d)]], %zu bytes)", r.name, r.slot, size_t(r.end - r.base));
  else if (r.kind == threadgroup_slot)
    snprintf(out, n, "'%s' ([[threadgroup(%d)]], %zu bytes)", r.name, r.slot, size_t(r.end - r.base));
  else snprintf(out, n, "threadgroup variable '%s' (%zu bytes)", r.name, size_t(r.end - r.base));
}


[[noreturn, gnu::cold, gnu::noinline]] inline void out_of_bounds(const char* file, int line, const char* expr, unsigned kind,
                                                       const region& r, const void* at, size_t size) {
  char reg[192], what[512];
  describe_region(reg, sizeof reg, r);
  const long long offset = static_cast<const unsigned char*>(at) - r.base;
  const long long index = offset >= 0 ? offset / (long long)size : -((-offset + (long long)size - 1) / (long long)size);
  const unsigned long long length = size_t(r.end - r.base) / size;
  snprintf(what, sizeof what,
           "out-of-bounds %s `%s`: element %lld (%zu bytes each, byte offset %lld) of %s, which holds %llu",
           access_word(kind), expr, index, size, offset, reg, length);
  fault(file, line, what);
}

// ---- races on threadgroup memory

[[noreturn, gnu::cold, gnu::noinline]] inline void race(const char* file, int line, const char* expr, unsigned kind,
                                              const region& r, size_t offset, unsigned tid, unsigned other_tid,
                                              const char* other_file, int other_line, bool other_wrote) {
  char reg[192], what[768];
  describe_region(reg, sizeof reg, r);
  snprintf(what, sizeof what,
           "threadgroup memory race: `%s` (%s by thread %u of the threadgroup) and %s:%d (%s by thread %u) "
           "touch byte %zu of %s with no threadgroup_barrier between them",
           expr, access_word(kind), tid, other_file, other_line, other_wrote ? "write" : "read", other_tid, offset,
           reg);
  fault(file, line, what);
}

// Another thread's access in this interval conflicts unless it is in the same SIMD group and an
// exchange has ordered the two since.
inline bool conflicts(const state& s, unsigned tid, unsigned other, unsigned other_sg_epoch) {
  return other != tid && !(other / 32 == tid / 32 && other_sg_epoch != s.sg_epoch[tid / 32]);
}

// An access of `kind` by thread `tid` against what `a` recorded in this interval: a race is
// reported (at byte `offset` of `r`), and the call does not return.
inline void check_record(const state& s, const access_record& a, unsigned kind, unsigned tid, unsigned epoch,
                         const char* file, int line, const char* expr, const region& r, size_t offset) {
  if (a.w_epoch == epoch && conflicts(s, tid, a.w_tid, a.w_sg_epoch))
    race(file, line, expr, kind, r, offset, tid, a.w_tid, a.w_file, a.w_line, true);
  if ((kind & write) && a.r_epoch == epoch && (a.r_tid == kManyReaders || conflicts(s, tid, a.r_tid, a.r_sg_epoch)))
    race(file, line, expr, kind, r, offset, tid, a.r_tid == kManyReaders ? 0u : a.r_tid, a.r_file, a.r_line, false);
}

inline void record(access_record& a, unsigned kind, unsigned tid, unsigned epoch, unsigned sge, const char* file,
                   int line) {
  if (kind & write) {
    a.w_epoch = epoch;
    a.w_sg_epoch = sge;
    a.w_tid = (unsigned short)tid;
    a.w_file = file;
    a.w_line = line;
  }
  if (kind & read) {
    // Already read by several threads (a tile every thread reads): nothing new to learn - no
    // write may follow - so its last reader's place stays the one a report names.
    if (a.r_epoch == epoch && a.r_tid == kManyReaders) return;
    a.r_tid = a.r_epoch == epoch && a.r_tid != tid ? kManyReaders : (unsigned short)tid;
    a.r_epoch = epoch;
    a.r_sg_epoch = sge;
    a.r_file = file;
    a.r_line = line;
  }
}

// The common access: an aligned 4-byte one (a thread fills or reads its word of a tile) that
// no other thread's write in this interval touches, nor others' reads when it writes. false:
// check_race_general decides (and names a race).
inline bool word_access_ok(state& s, const region& r, const void* at, unsigned kind, unsigned tid, const char* file,
                           int line) {
  const size_t cell = r.shadow + size_t(static_cast<const unsigned char*>(at) - r.base);
  if ((cell & 3) != 0) return false;
  word_cell& wc = s.words[cell / 4];
  const access_record& a = wc.whole;
  const unsigned epoch = s.epoch;
  if (wc.cell_epoch == epoch || (a.w_epoch == epoch && a.w_tid != tid)) return false;
  if ((kind & write) && a.r_epoch == epoch && a.r_tid != tid) return false;
  record(wc.whole, kind, tid, epoch, s.sg_epoch[tid / 32], file, line);
  return true;
}

[[gnu::noinline]] inline void check_race_general(state& s, unsigned tid, const char* file, int line,
                                                 const char* expr, unsigned kind, const region& r, const void* at,
                                                 size_t size) {
  const unsigned epoch = s.epoch, sge = s.sg_epoch[tid / 32];
  // The access's cells [c0, c1], a word at a time.
  const size_t c0 = r.shadow + size_t(static_cast<const unsigned char*>(at) - r.base);
  size_t c1 = c0 + size - 1;
  if (c1 >= s.shadow_used) c1 = s.shadow_used - 1;
  for (size_t word = c0 / 4; word <= c1 / 4; ++word) {
    word_cell& wc = s.words[word];
    const size_t b0 = word * 4 > c0 ? word * 4 : c0, b1 = word * 4 + 3 < c1 ? word * 4 + 3 : c1;
    check_record(s, wc.whole, kind, tid, epoch, file, line, expr, r, b0 - r.shadow);
    if (b0 == word * 4 && b1 == word * 4 + 3 && wc.cell_epoch != epoch) {
      record(wc.whole, kind, tid, epoch, sge, file, line);
      continue;
    }
    for (size_t c = b0; c <= b1; ++c) {
      check_record(s, s.shadow[c], kind, tid, epoch, file, line, expr, r, c - r.shadow);
      record(s.shadow[c], kind, tid, epoch, sge, file, line);
    }
    wc.cell_epoch = epoch;
  }
}

inline void check_race(const char* file, int line, const char* expr, unsigned kind, const region& r,
                       const void* at, size_t size) {
  if (kind == address_only || (kind & quiet)) return;
  state& s = st();
  unsigned tid;
  if (s.wil) {  // checked first: the fiber lookup is a thread_local's, a call from a loaded module
    tid = s.wil_tid;
  } else {
    const thread_ctx* t = fiber_ctx();
    if (!t) return;
    tid = t->thread_index_in_threadgroup;
  }
  if (size == 4 && word_access_ok(s, r, at, kind, tid, file, line)) return;
  check_race_general(s, tid, file, line, expr, kind, r, at, size);
}

// A barrier released / a new group started: a new interval. An exchange in SIMD group `sg`.
// (Never 0, after 2^32 intervals either: zeroed shadow cells and words belong to no interval.)
inline void next_epoch() {
  unsigned& e = st().epoch;
  if (++e == 0) e = 1;
}
inline void simd_synced(unsigned sg) { ++st().sg_epoch[sg]; }
// A simdgroup_barrier run at group level (work-item loops): every SIMD group's exchange.
inline void simd_barrier_all() {
  for (unsigned& e : st().sg_epoch) ++e;
}

// ---- the checks the translator calls

// Does an access of `size` bytes at `a` (an address only: up to one past the end) stay in `r`?
inline bool fits(const region& r, const unsigned char* a, size_t size, unsigned kind) {
  return a >= r.base && (kind == address_only ? a <= r.end : a + size <= r.end && a + size > a);
}

// An access of `size` bytes at `at` through a pointer whose base was `base`.
inline bool pointer_ok(const char* file, int line, const char* expr, unsigned kind, const void* base,
                       const void* at, size_t size) {
  // The region the base points into; a base outside every region (`out + n - offset`, MLX's
  // reverse scans) is judged by where the access lands, then by the buffer it lands near.
  const region* r = find(base);
  if (!r) r = find(at);
  if (!r) r = near(at);
  if (!r) return true;  // memory of unknown extent (thread-local, constants)
  const auto* a = static_cast<const unsigned char*>(at);
  if (!fits(*r, a, size, kind)) {
    out_of_bounds(file, line, expr, kind, *r, at, size);
    return false;
  }
  if (r->kind != buffer && kind != address_only) check_race(file, line, expr, kind, *r, at, size);
  return true;
}

[[noreturn, gnu::cold, gnu::noinline]] inline void index_out_of_range(const char* file, int line, const char* expr,
                                                            unsigned kind, long long index, size_t extent) {
  char what[384];
  snprintf(what, sizeof what, "out-of-bounds %s `%s`: index %lld of an array of %zu elements", access_word(kind),
           expr, index, extent);
  fault(file, line, what);
}

// An element of an array of known extent (a threadgroup array among them), in bounds.
inline void array_element(const char* file, int line, const char* expr, unsigned kind, const void* at, size_t size) {
  if (const region* r = find_threadgroup(at)) check_race(file, line, expr, kind, *r, at, size);
}

// Any alignment will do on the cpu (vectors are aligned like their elements: mg_vector.h).
constexpr bool alignment_ok(const char*, int, const char*, unsigned, const void*, size_t, size_t) { return true; }

// A kernel's buffer argument, looked up once at the kernel's start (the translation declares
// one such region per pointer argument): accesses through the argument then check against
// it with a few comparisons, and only an access that leaves it - or a pointer that no longer
// points into it (a local of the same name, a reassigned argument) - takes the full check.
template <class P> inline const region* kernel_buffer(P p) {
  if constexpr (is_pointer<P>::value) return buffer_region_of((const void*)p);
  else return nullptr;
}
inline bool within(const region* r, const void* base, const void* at, size_t size, size_t /*align: any*/,
                   unsigned kind) {
  const auto *b = static_cast<const unsigned char*>(base), *a = static_cast<const unsigned char*>(at);
  return r && b >= r->base && b < r->end && fits(*r, a, size, kind);
}

// ---- accesses proven for a whole share
// `arg[i]` with `arg` a buffer argument and `i` the kernel's scalar thread_position_in_grid,
// neither of them ever changed or redeclared in the kernel (the translation proves that much
// from the source): for the threads of one share, i runs over a range known before they run,
// so one comparison per argument before the loop covers every such access (prove_grid). The
// entry then runs the share's loop in two copies, `if (grid_proven())`: in the first, these
// accesses are plain and an element-wise kernel vectorises as in normal mode.
struct grid_access {
  const unsigned char* base;
  size_t size;
};
template <class P> inline grid_access grid_access_of(P p) {
  return {static_cast<const unsigned char*>((const void*)p), sizeof(*p)};
}
inline void prove_grid(const mg_launch* L, unsigned long long g0, unsigned long long g1, const grid_access* args,
                       unsigned n) {
  // The x positions of the share's threads: [lo, hi).
  const unsigned long long groups_x = L->groups[0], tg = L->tg[0], grid = L->grid[0];
  unsigned long long lo = 0, hi = grid;
  if (g1 > g0 && groups_x && (g0 / groups_x == (g1 - 1) / groups_x)) {  // one row of groups
    lo = (g0 % groups_x) * tg;
    hi = ((g1 - 1) % groups_x + 1) * tg;
    if (hi > grid) hi = grid;
  }
  bool ok = true;
  for (unsigned k = 0; k < n && ok && lo < hi; ++k) {
    const region* r = buffer_region_of(args[k].base);
    ok = r && args[k].size && size_t(r->end - args[k].base) / args[k].size >= hi;
  }
  st().grid_proven = ok;
}
// `const` as buffer_region_of: set before guarded() runs the share, constant during it.
[[gnu::const, gnu::noinline]] inline bool grid_proven() { return st().grid_proven; }

}  // namespace dbg
}  // namespace __metalgpu

#endif  // MG_DEBUG
