// Cooperative execution on the CPU: each thread of a threadgroup runs as a fiber (its own
// stack) on one OS thread, switched at barriers and SIMD-group exchanges. A scheduler runs
// every runnable fiber until it blocks; a full pass leaves each one at a barrier, at an
// exchange, or finished. Pending exchanges are resolved first (per SIMD group); only when
// all running threads wait at a barrier is the barrier released.
#pragma once

#include <sys/mman.h>

// The C library functions used here, declared rather than taken from <stdlib.h>/<string.h>,
// which a C++ library may wrap with global overloads (abs(float) ...): see mg_config.h.
extern "C" {
char* getenv(const char*) noexcept;
long atol(const char*) noexcept;
void* aligned_alloc(size_t, size_t) noexcept;
void* calloc(size_t, size_t) noexcept;
void free(void*) noexcept;
void* memset(void*, int, size_t) noexcept;
void* memcpy(void*, const void*, size_t) noexcept;
[[noreturn]] void abort() noexcept;
}

#if !defined(__x86_64__) && !defined(__aarch64__)
#  include <ucontext.h>
#  define MG_FIBER_UCONTEXT 1
#else
#  define MG_FIBER_UCONTEXT 0
#endif

// Context switch: saves the callee-saved registers on the current stack, stores the stack
// pointer in *save, and resumes the context whose stack pointer is `load`.
#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".hidden mg_fiber_switch\n"
    ".globl mg_fiber_switch\n"
    ".type mg_fiber_switch,@function\n"
    "mg_fiber_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size mg_fiber_switch, .-mg_fiber_switch\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".hidden mg_fiber_switch\n"
    ".globl mg_fiber_switch\n"
    ".type mg_fiber_switch,%function\n"
    "mg_fiber_switch:\n"
    "  sub sp, sp, #176\n"
    "  stp x19, x20, [sp, #0]\n  stp x21, x22, [sp, #16]\n  stp x23, x24, [sp, #32]\n"
    "  stp x25, x26, [sp, #48]\n  stp x27, x28, [sp, #64]\n  stp x29, x30, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n  stp d12, d13, [sp, #128]\n"
    "  stp d14, d15, [sp, #144]\n"
    "  mov x2, sp\n  str x2, [x0]\n  mov sp, x1\n"
    "  ldp x19, x20, [sp, #0]\n  ldp x21, x22, [sp, #16]\n  ldp x23, x24, [sp, #32]\n"
    "  ldp x25, x26, [sp, #48]\n  ldp x27, x28, [sp, #64]\n  ldp x29, x30, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n  ldp d12, d13, [sp, #128]\n"
    "  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #176\n"
    "  ret\n"
    ".size mg_fiber_switch, .-mg_fiber_switch\n");
#endif

#if !MG_FIBER_UCONTEXT
extern "C" void mg_fiber_switch(void** save, void* load);
#endif

// AddressSanitizer keeps, per OS thread, the bounds of the stack it runs on (and a "fake
// stack" for use-after-return checks): every switch between stacks is announced to it, or it
// describes fiber stacks as wild memory, and its no-return and fake-stack bookkeeping runs
// against the wrong stack. Compiled in only when the module is (host_compiler.cpp gives kernels
// -fsanitize=address when the library has it); MG_NO_ASAN_FIBER_ANNOTATIONS leaves them out,
// for tests/test_sanitize.py to show what goes wrong then.
#if defined(__SANITIZE_ADDRESS__)
#  define MG_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define MG_ASAN 1
#  endif
#endif
#if defined(MG_ASAN) && defined(MG_NO_ASAN_FIBER_ANNOTATIONS)
#  undef MG_ASAN
#endif
#ifndef MG_ASAN
#  define MG_ASAN 0
#endif
#if MG_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old, size_t* size_old);
void __asan_unpoison_memory_region(const volatile void* addr, size_t size);
void __asan_handle_no_return();
}
#endif

namespace __metalgpu {
namespace cpu {

enum fiber_state : unsigned char { fiber_runnable, fiber_at_barrier, fiber_at_exchange, fiber_done };

constexpr unsigned kMaxGroupThreads = MG_MAX_GROUP_THREADS;

// Plain data, all zero when made (calloc): generated code uses no C++ runtime, so a module
// links with any driver (CXX=gcc has no libstdc++ for operator new).
struct group_runner {
  // Fibers of the current group.
  unsigned count;
  unsigned current;
  fiber_state state[kMaxGroupThreads];
  void* sp[kMaxGroupThreads];
  simd_lane lanes[kMaxGroupThreads];
  simd_fn pending[kMaxGroupThreads];
  thread_ctx ctx[kMaxGroupThreads];
  void* scheduler_sp;
#if MG_FIBER_UCONTEXT
  ucontext_t uc[kMaxGroupThreads];
  ucontext_t scheduler_uc;
#endif
  // What every fiber runs: the entry's per-thread body, type-erased.
  void* body;
  void (*invoke)(void*, const thread_ctx&);
  // Stacks: one mapping, each stack above a guard page.
  unsigned char* stacks;
  size_t stack_size;
  // Dynamic threadgroup memory ([[threadgroup(n)]] parameters).
  unsigned char* tg_memory;
  size_t tg_capacity;
  void* tg_slots[MG_MAX_THREADGROUP_SLOTS];
#if MG_DEBUG
  // Where each fiber waits at a barrier (debug mode names a barrier not all threads reach).
  const char* barrier_file[kMaxGroupThreads];
  int barrier_line[kMaxGroupThreads];
#endif
#if MG_ASAN
  // The OS thread's own stack, where the scheduler runs: ASan names it as the stack left when
  // the scheduler switches to a fiber (resume()). Its fake stack, kept while fibers run.
  const void* os_stack;
  size_t os_stack_size;
  void* os_fake;
  bool on_fiber;  // what runs now: a fiber, or the scheduler
  bool escaped;   // debug mode left a fiber for guarded() (dbg::before_escape())
#endif
};

inline group_runner*& current_runner() {
  static thread_local group_runner* runner = nullptr;
  return runner;
}

// What a module allocated per OS thread (fiber runners, work-item-loop groups), kept to be
// freed when the module is unloaded (dlclose); beyond 1024 they are kept for the process.
template <class T> struct module_registry {
  T* list[1024];
  unsigned count;
  int lock;
  void add(T* p) {
    while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) {}
    if (count < 1024) list[count++] = p;
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
  }
};

// Every runner this module made. Their stacks belong to the host (mg_launch::fiber_stacks),
// one set per OS thread for all modules.
inline module_registry<group_runner>& runners() {
  static module_registry<group_runner> r = {};
  return r;
}
inline void free_runner(group_runner* r) {
  free(r->tg_memory);
  free(r);
}
__attribute__((destructor)) static void free_runners_at_unload() {
  module_registry<group_runner>& reg = runners();
  for (unsigned i = 0; i < reg.count; ++i) free_runner(reg.list[i]);
  reg.count = 0;
}

// The runner of this OS thread, made on first use and kept for the life of the module.
inline group_runner* runner_for_this_thread(const mg_launch* L) {
  group_runner*& r = current_runner();
  if (r) return r;
  unsigned long stack_bytes = 0;
  unsigned char* stacks = L->fiber_stacks ? L->fiber_stacks(&stack_bytes) : nullptr;
  if (!stacks) abort();  // the host could not map them: it has reported why
  r = static_cast<group_runner*>(calloc(1, sizeof(group_runner)));
  if (!r) abort();
  r->stacks = stacks;
  r->stack_size = stack_bytes;
  runners().add(r);
  return r;
}

// Fiber i's stack: its slot less the guard page below it.
inline unsigned char* fiber_stack(const group_runner* r, unsigned i) {
  return r->stacks + i * (r->stack_size + MG_FIBER_GUARD_BYTES) + MG_FIBER_GUARD_BYTES;
}

// ASan: before a switch, the stack about to run (`fiber` < count: that fiber's, else the OS
// thread's); `fake_save` keeps the leaving context's fake stack, null when it never resumes.
inline void asan_leaving(group_runner* r, unsigned fiber, void** fake_save) {
#if MG_ASAN
  if (fiber < r->count) __sanitizer_start_switch_fiber(fake_save, fiber_stack(r, fiber), r->stack_size);
  else __sanitizer_start_switch_fiber(fake_save, r->os_stack, r->os_stack_size);
#else
  (void)r, (void)fiber, (void)fake_save;
#endif
}
// ASan: after a switch, on the stack that now runs (a fiber's or the scheduler's); `fake` is
// what asan_leaving saved for it.
inline void asan_arrived(group_runner* r, void* fake, bool on_fiber) {
#if MG_ASAN
  const void* from;
  size_t from_size;
  __sanitizer_finish_switch_fiber(fake, &from, &from_size);
  if (on_fiber && !r->on_fiber) {  // from the scheduler: the OS thread's stack
    r->os_stack = from;
    r->os_stack_size = from_size;
  }
  r->on_fiber = on_fiber;
#else
  (void)r, (void)fake, (void)on_fiber;
#endif
}
constexpr unsigned kOsStack = ~0u;  // asan_leaving()'s `fiber` for the scheduler's stack

// The next fiber after `i` that can run in this pass, or count if none.
inline unsigned next_runnable(const group_runner* r, unsigned i) {
  unsigned j = i + 1;
  while (j < r->count && r->state[j] != fiber_runnable) ++j;
  return j;
}

[[noreturn]] inline void fiber_main() {
  group_runner* r = current_runner();
  asan_arrived(r, nullptr, true);  // a new fiber: no fake stack yet
  unsigned i = r->current;
  r->invoke(r->body, r->ctx[i]);
  r->state[i] = fiber_done;
  // This fiber never resumes: ASan frees its fake stack (null save).
#if MG_FIBER_UCONTEXT
  asan_leaving(r, kOsStack, nullptr);
  setcontext(&r->scheduler_uc);
#else
  // Hand over directly to the next runnable fiber of this pass (one switch, not two).
  const unsigned j = next_runnable(r, i);
  void* dead;
  if (j < r->count) {
    r->current = j;
    asan_leaving(r, j, nullptr);
    mg_fiber_switch(&dead, r->sp[j]);
  }
  asan_leaving(r, kOsStack, nullptr);
  mg_fiber_switch(&dead, r->scheduler_sp);
#endif
  __builtin_unreachable();
}

inline void fiber_start(group_runner* r, unsigned i) {
  const size_t slot = r->stack_size + MG_FIBER_GUARD_BYTES;
  unsigned char* top = r->stacks + (i + 1) * slot;  // stacks grow down from the slot's end
#if MG_FIBER_UCONTEXT
  getcontext(&r->uc[i]);
  r->uc[i].uc_stack.ss_sp = top - r->stack_size;
  r->uc[i].uc_stack.ss_size = r->stack_size;
  r->uc[i].uc_link = nullptr;
  makecontext(&r->uc[i], (void (*)())fiber_main, 0);
#elif defined(__x86_64__)
  // Six saved registers, then fiber_main as the return address: it starts as if called.
  void** sp = reinterpret_cast<void**>(top - 64);
  for (int k = 0; k < 6; ++k) sp[k] = nullptr;
  sp[6] = reinterpret_cast<void*>(&fiber_main);
  r->sp[i] = sp;
#else
  void** sp = reinterpret_cast<void**>(top - 176);
  memset(sp, 0, 176);
  sp[11] = reinterpret_cast<void*>(&fiber_main);  // x30 (link register) slot
  r->sp[i] = sp;
#endif
  r->state[i] = fiber_runnable;
}

inline void resume(group_runner* r, unsigned i) {
  r->current = i;
#if MG_ASAN
  asan_leaving(r, i, &r->os_fake);
#endif
#if MG_FIBER_UCONTEXT
  swapcontext(&r->scheduler_uc, &r->uc[i]);
#else
  mg_fiber_switch(&r->scheduler_sp, r->sp[i]);
#endif
#if MG_ASAN
  asan_arrived(r, r->os_fake, false);
#endif
}

// Called on a fiber: blocks it until released, running the pass's next fiber meanwhile.
inline void block(group_runner* r, fiber_state why) {
  unsigned i = r->current;
  r->state[i] = why;
  void* fake = nullptr;
#if MG_FIBER_UCONTEXT
  asan_leaving(r, kOsStack, &fake);
  swapcontext(&r->uc[i], &r->scheduler_uc);
#else
  const unsigned j = next_runnable(r, i);
  if (j < r->count) {
    r->current = j;
    asan_leaving(r, j, &fake);
    mg_fiber_switch(&r->sp[i], r->sp[j]);
  } else {
    asan_leaving(r, kOsStack, &fake);
    mg_fiber_switch(&r->sp[i], r->scheduler_sp);
  }
#endif
  asan_arrived(r, fake, true);
}

// Runs the exchanges pending in each SIMD group: lanes that called the same function together.
inline void resolve_exchanges(group_runner* r) {
  for (unsigned base = 0; base < r->count; base += 32) {
    const unsigned width = r->count - base < 32 ? r->count - base : 32;
    unsigned waiting = 0;
    for (unsigned l = 0; l < width; ++l)
      if (r->state[base + l] == fiber_at_exchange) waiting |= 1u << l;
    while (waiting) {
      const simd_fn fn = r->pending[base + __builtin_ctz(waiting)];
      simd_call call;
      call.active = 0;
      call.width = width;
      for (unsigned l = 0; l < width; ++l) {
        if ((waiting >> l & 1u) && r->pending[base + l] == fn) {
          call.active |= 1u << l;
          call.lane[l] = r->lanes[base + l];
        }
      }
      fn(call);
#if MG_DEBUG
      dbg::simd_synced(base / 32);
#endif
      waiting &= ~call.active;
      for (unsigned l = 0; l < width; ++l)
        if (call.active >> l & 1u) r->state[base + l] = fiber_runnable;
    }
  }
}

#if MG_DEBUG
// All running threads wait at a barrier: every one of the group must, at the same one.
[[gnu::cold, gnu::noinline]] inline void barrier_fault(group_runner* r, unsigned waiting, unsigned culprit,
                                                        bool ended) {
  unsigned first = 0;
  while (r->state[first] != fiber_at_barrier) ++first;
  r->current = first;  // the fault names a waiting thread's position
  char what[384];
  const uint3 g = r->ctx[first].threadgroup_position_in_grid;
  if (ended)
    snprintf(what, sizeof what,
             "threadgroup_barrier reached by %u of the %u threads of threadgroup (%u, %u, %u): thread %u ended "
             "without reaching it (every thread of a group must reach each barrier)",
             waiting, r->count, g.x, g.y, g.z, culprit);
  else
    snprintf(what, sizeof what,
             "threads of threadgroup (%u, %u, %u) wait at different barriers: thread %u at %s:%d (every thread "
             "of a group must reach the same barrier)",
             g.x, g.y, g.z, culprit, r->barrier_file[culprit], r->barrier_line[culprit]);
  dbg::fault(r->barrier_file[first], r->barrier_line[first], what);
}
inline void check_barrier(group_runner* r, unsigned waiting) {
  unsigned first = 0;
  while (r->state[first] != fiber_at_barrier) ++first;
  for (unsigned i = 0; i < r->count; ++i) {
    if (r->state[i] == fiber_done) return barrier_fault(r, waiting, i, true);
    if (r->barrier_line[i] != r->barrier_line[first] || r->barrier_file[i] != r->barrier_file[first])
      return barrier_fault(r, waiting, i, false);
  }
}
#endif

// Runs the `r->count` fibers of one threadgroup to completion.
inline void run_fibers(group_runner* r) {
  for (unsigned i = 0; i < r->count; ++i) fiber_start(r, i);
  for (;;) {
#if MG_FIBER_UCONTEXT
    for (unsigned i = 0; i < r->count; ++i)
      if (r->state[i] == fiber_runnable) resume(r, i);
#else
    // Fibers hand over to each other in order; control returns after the pass's last one.
    unsigned first = 0;
    while (first < r->count && r->state[first] != fiber_runnable) ++first;
    if (first < r->count) resume(r, first);
#endif
    unsigned at_barrier = 0, at_exchange = 0;
    for (unsigned i = 0; i < r->count; ++i) {
      at_barrier += r->state[i] == fiber_at_barrier;
      at_exchange += r->state[i] == fiber_at_exchange;
    }
    if (at_exchange) {
      resolve_exchanges(r);
    } else if (at_barrier) {
#if MG_DEBUG
      check_barrier(r, at_barrier);
      dbg::next_epoch();
#endif
      for (unsigned i = 0; i < r->count; ++i)
        if (r->state[i] == fiber_at_barrier) r->state[i] = fiber_runnable;
    } else {
      return;
    }
  }
}

inline void wi_forget_lanes();  // mg_cpu_wil.h
inline void wi_abandon();       // mg_cpu_wil.h

template <class Body> void invoke_body(void* body, const thread_ctx& t) { (*static_cast<Body*>(body))(t); }

// Dynamic threadgroup memory ([[threadgroup(n)]] parameters), laid out once per dispatch on an
// OS thread: `memory` grows to fit; slots[k] points at slot k's part (null where unbound).
inline void lay_out_threadgroup_slots(const mg_launch* L, unsigned char*& memory, size_t& capacity, void** slots) {
  size_t need = 0;
  size_t offsets[MG_MAX_THREADGROUP_SLOTS];
  for (unsigned k = 0; k < MG_MAX_THREADGROUP_SLOTS; ++k) {
    offsets[k] = need;
    need += (size_t(L->threadgroup_sizes[k]) + 15) & ~size_t(15);
  }
  if (need > capacity) {
    free(memory);
    memory = static_cast<unsigned char*>(aligned_alloc(64, (need + 63) & ~size_t(63)));
    if (!memory) abort();
    capacity = need;
  }
  for (unsigned k = 0; k < MG_MAX_THREADGROUP_SLOTS; ++k)
    slots[k] = L->threadgroup_sizes[k] ? memory + offsets[k] : nullptr;
}

// Cooperative counterpart of run_groups(): same geometry, threads as fibers.
template <class Body>
inline void run_groups_cooperative(const mg_launch* L, unsigned long long g0, unsigned long long g1, Body&& body) {
  group_runner* r = runner_for_this_thread(L);
  wi_forget_lanes();
  using B = typename __metalgpu::strip<Body>::type;
  r->body = const_cast<void*>(static_cast<const void*>(&body));
  r->invoke = &invoke_body<B>;
  lay_out_threadgroup_slots(L, r->tg_memory, r->tg_capacity, r->tg_slots);
#if MG_DEBUG
  dbg::note_threadgroup_slots(r->tg_slots, L->threadgroup_sizes);
#endif

  run_groups(L, g0, g1, [&](const thread_ctx& t) {
    // run_groups visits the group's threads in order; collect them, then run them together.
    const unsigned index = t.thread_index_in_threadgroup;
    r->ctx[index] = t;
    r->ctx[index].threadgroup_slots = r->tg_slots;
    const uint3 n = t.threads_per_threadgroup;
    if (index + 1 == n.x * n.y * n.z) {
      r->count = index + 1;
#if MG_DEBUG
      dbg::next_epoch();  // a new group: nothing it touches is ordered against the last one's
#endif
      run_fibers(r);
      r->count = 0;
    }
  });
}

}  // namespace cpu

// The primitives declared in mg_sync.h.
#if MG_DEBUG
inline void threadgroup_barrier_impl(const char* file, int line) {
  cpu::group_runner* r = cpu::current_runner();
  if (!r || !r->count) return;
  r->barrier_file[r->current] = file;
  r->barrier_line[r->current] = line;
  cpu::block(r, cpu::fiber_at_barrier);
}
inline const thread_ctx* dbg::fiber_ctx() {
  cpu::group_runner* r = cpu::current_runner();
  return r && r->count ? &r->ctx[r->current] : nullptr;
}
inline void dbg::before_escape() {
#if MG_ASAN
  // The frames between here and guarded() are never returned through: unpoison their
  // redzones (this stack's, from here up), then announce the OS thread's stack if this is a
  // fiber's: guarded() runs there.
  __asan_handle_no_return();
  cpu::group_runner* r = cpu::current_runner();
  if (r && r->on_fiber) {
    r->escaped = true;
    __sanitizer_start_switch_fiber(nullptr, r->os_stack, r->os_stack_size);
  }
#endif
}
inline void dbg::abandon_group() {
  st().wil = false;
  cpu::wi_abandon();
  // The fibers of the faulting group are left where they are: nothing of theirs needs
  // releasing, and the next group starts every fiber afresh.
  cpu::group_runner* r = cpu::current_runner();
  if (!r) return;
#if MG_ASAN
  // Their frames are never returned through either: their stacks' redzones, and the OS
  // stack's frames between resume() and guarded() that a fiber's escape jumped over, would be
  // stale poison for the next group's fibers and for the caller's next calls.
  if (r->escaped) {
    __sanitizer_finish_switch_fiber(r->os_fake, nullptr, nullptr);
    r->escaped = r->on_fiber = false;
#  if !MG_FIBER_UCONTEXT
    const unsigned char* low = static_cast<const unsigned char*>(r->scheduler_sp);
    __asan_unpoison_memory_region(low, static_cast<const unsigned char*>(__builtin_frame_address(0)) - low);
#  endif
  }
  for (unsigned i = 0; i < r->count; ++i) __asan_unpoison_memory_region(cpu::fiber_stack(r, i), r->stack_size);
#endif
  r->count = 0;
}
#else
inline void threadgroup_barrier_impl() {
  cpu::group_runner* r = cpu::current_runner();
  if (r && r->count) cpu::block(r, cpu::fiber_at_barrier);
}
#endif

namespace cpu {
// Work-item loops (mg_cpu_wil.h) record and replay SIMD-group functions instead of switching.
__attribute__((always_inline)) inline bool wi_exchange(const void* in, void* out, unsigned arg, simd_fn fn,
                                                       unsigned in_size, unsigned out_size);
inline bool wi_lane(unsigned* lane);
}  // namespace cpu

__attribute__((always_inline)) inline void simd_exchange(const void* in, void* out, unsigned arg, simd_fn fn,
                                                         unsigned in_size, unsigned out_size) {
  if (cpu::wi_exchange(in, out, arg, fn, in_size, out_size)) return;
  cpu::group_runner* r = cpu::current_runner();
  const unsigned i = r->current;
  r->lanes[i] = simd_lane{in, out, arg};
  r->pending[i] = fn;
  cpu::block(r, cpu::fiber_at_exchange);
}

inline unsigned simd_lane_id() {
  if (unsigned lane; cpu::wi_lane(&lane)) return lane;
  cpu::group_runner* r = cpu::current_runner();
  return r->current % 32;
}

}  // namespace __metalgpu
