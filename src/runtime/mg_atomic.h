// Atomics: atomic<T> (atomic_int, atomic_uint, atomic_float, atomic_bool, atomic_long,
// atomic_ulong) and the *_explicit functions. An atomic<T> is exactly a T in memory, so a
// `device atomic_uint*` may view a buffer of uint. Address spaces are stripped by the
// translator: the functions take (volatile) plain pointers.
#pragma once

namespace metal {

enum memory_order {
  memory_order_relaxed = 0,
  memory_order_consume = 1,
  memory_order_acquire = 2,
  memory_order_release = 3,
  memory_order_acq_rel = 4,
  memory_order_seq_cst = 5,
};

enum class thread_scope { thread_scope_thread, thread_scope_simdgroup, thread_scope_threadgroup, thread_scope_device };

template <class T> struct atomic {
  typedef T value_type;
  T mg_value;
};

typedef atomic<int> atomic_int;
typedef atomic<uint> atomic_uint;
typedef atomic<float> atomic_float;
typedef atomic<bool> atomic_bool;
typedef atomic<long> atomic_long;
typedef atomic<ulong> atomic_ulong;

template <class T> struct mg_atomic_identity { typedef T type; };
template <class T> using mg_atomic_arg = typename mg_atomic_identity<T>::type;

}  // namespace metal

#if !MG_CUDA

namespace __metalgpu {
namespace atomics {

MG_FN int order(metal::memory_order o) {
  switch (o) {
    case metal::memory_order_relaxed: return __ATOMIC_RELAXED;
    case metal::memory_order_consume: return __ATOMIC_CONSUME;
    case metal::memory_order_acquire: return __ATOMIC_ACQUIRE;
    case metal::memory_order_release: return __ATOMIC_RELEASE;
    case metal::memory_order_acq_rel: return __ATOMIC_ACQ_REL;
    default: return __ATOMIC_SEQ_CST;
  }
}
// Orders valid for a load / for a compare-exchange failure.
MG_FN int load_order(metal::memory_order o) {
  const int r = order(o);
  return r == __ATOMIC_RELEASE ? __ATOMIC_RELAXED : r == __ATOMIC_ACQ_REL ? __ATOMIC_ACQUIRE : r;
}
MG_FN int store_order(metal::memory_order o) {
  const int r = order(o);
  return (r == __ATOMIC_ACQUIRE || r == __ATOMIC_CONSUME) ? __ATOMIC_RELAXED : r == __ATOMIC_ACQ_REL ? __ATOMIC_RELEASE : r;
}

template <class T> MG_FN T* ptr(const volatile metal::atomic<T>* a) {
  return const_cast<T*>(&a->mg_value);
}

template <class T> MG_FN T load(T* p, int o) {
  T r;
  __atomic_load(p, &r, o);
  return r;
}
template <class T> MG_FN bool cas(T* p, T* expected, T desired, bool weak, int s, int f) {
  return __atomic_compare_exchange(p, expected, &desired, weak, s, f);
}

// Read-modify-write through a compare-exchange loop (floats, min/max); returns the old value.
template <class T, class F> MG_FN T rmw(T* p, F f, int o) {
  T old = load(p, __ATOMIC_RELAXED);
  while (!cas(p, &old, T(f(old)), true, o, __ATOMIC_RELAXED)) {
  }
  return old;
}

template <class T> struct is_int_atomic
    : metal::bool_constant<metal::is_integral<T>::value && !metal::is_same<T, bool>::value> {};

}  // namespace atomics
}  // namespace __metalgpu

namespace metal {

template <class T>
MG_FN T atomic_load_explicit(const volatile atomic<T>* obj, memory_order o) {
  return __metalgpu::atomics::load(__metalgpu::atomics::ptr(obj), __metalgpu::atomics::load_order(o));
}
template <class T>
MG_FN void atomic_store_explicit(volatile atomic<T>* obj, mg_atomic_arg<T> desired, memory_order o) {
  T v = desired;
  __atomic_store(__metalgpu::atomics::ptr(obj), &v, __metalgpu::atomics::store_order(o));
}
template <class T>
MG_FN T atomic_exchange_explicit(volatile atomic<T>* obj, mg_atomic_arg<T> desired, memory_order o) {
  T v = desired, r;
  __atomic_exchange(__metalgpu::atomics::ptr(obj), &v, &r, __metalgpu::atomics::order(o));
  return r;
}
template <class T>
MG_FN bool atomic_compare_exchange_weak_explicit(volatile atomic<T>* obj, T* expected, mg_atomic_arg<T> desired,
                                                 memory_order success, memory_order failure) {
  return __metalgpu::atomics::cas(__metalgpu::atomics::ptr(obj), expected, T(desired), true,
                                  __metalgpu::atomics::order(success), __metalgpu::atomics::load_order(failure));
}
template <class T>
MG_FN bool atomic_compare_exchange_strong_explicit(volatile atomic<T>* obj, T* expected, mg_atomic_arg<T> desired,
                                                   memory_order success, memory_order failure) {
  return __metalgpu::atomics::cas(__metalgpu::atomics::ptr(obj), expected, T(desired), false,
                                  __metalgpu::atomics::order(success), __metalgpu::atomics::load_order(failure));
}

// fetch_OP: integers through the builtins, floats through a compare-exchange loop.
#define MG_ATOMIC_FETCH(NAME, BUILTIN, EXPR)                                                      \
  template <class T>                                                                              \
  MG_FN T atomic_fetch_##NAME##_explicit(volatile atomic<T>* obj, mg_atomic_arg<T> operand, memory_order o) { \
    T* p = __metalgpu::atomics::ptr(obj);                                                         \
    const T b = operand;                                                                          \
    if constexpr (__metalgpu::atomics::is_int_atomic<T>::value && BUILTIN)                        \
      return MG_ATOMIC_BUILTIN_##NAME(p, b, __metalgpu::atomics::order(o));                       \
    else                                                                                          \
      return __metalgpu::atomics::rmw(p, [b](T a) { return EXPR; }, __metalgpu::atomics::order(o)); \
  }
#define MG_ATOMIC_BUILTIN_add(p, b, o) __atomic_fetch_add(p, b, o)
#define MG_ATOMIC_BUILTIN_sub(p, b, o) __atomic_fetch_sub(p, b, o)
#define MG_ATOMIC_BUILTIN_and(p, b, o) __atomic_fetch_and(p, b, o)
#define MG_ATOMIC_BUILTIN_or(p, b, o) __atomic_fetch_or(p, b, o)
#define MG_ATOMIC_BUILTIN_xor(p, b, o) __atomic_fetch_xor(p, b, o)
#define MG_ATOMIC_BUILTIN_min(p, b, o) T()
#define MG_ATOMIC_BUILTIN_max(p, b, o) T()
MG_ATOMIC_FETCH(add, true, a + b)
MG_ATOMIC_FETCH(sub, true, a - b)
MG_ATOMIC_FETCH(and, true, a & b)
MG_ATOMIC_FETCH(or, true, a | b)
MG_ATOMIC_FETCH(xor, true, a ^ b)
MG_ATOMIC_FETCH(min, false, b < a ? b : a)
MG_ATOMIC_FETCH(max, false, a < b ? b : a)
#undef MG_ATOMIC_FETCH
#undef MG_ATOMIC_BUILTIN_add
#undef MG_ATOMIC_BUILTIN_sub
#undef MG_ATOMIC_BUILTIN_and
#undef MG_ATOMIC_BUILTIN_or
#undef MG_ATOMIC_BUILTIN_xor
#undef MG_ATOMIC_BUILTIN_min
#undef MG_ATOMIC_BUILTIN_max

MG_FN void atomic_thread_fence(mem_flags, memory_order o, thread_scope = thread_scope::thread_scope_device) {
  __atomic_thread_fence(__metalgpu::atomics::order(o));
}

}  // namespace metal

#else  // MG_CUDA

// TODO(cuda): atomic_*_explicit on CUDA atomics (atomicAdd, atomicCAS, atomicExch, atomicMin ...,
// cuda::atomic_ref for orders other than relaxed).

#endif
