// Atomics: atomic<T> (atomic_int, atomic_uint, atomic_float, atomic_bool, atomic_ulong: Apple's
// names; it has no atomic_long, nor the strong compare-exchange) and the *_explicit functions.
// An atomic<T> is exactly a T in memory, so a `device atomic_uint*` may view a buffer of uint.
// Address spaces are stripped by the translator: the functions take (volatile) plain pointers.
#pragma once

// Left out (MG_NO_ATOMICS) of a module whose source names no atomic type or function
// (Translation::runtime_omissions).
#if !MG_NO_ATOMICS

namespace metal {

enum memory_order {
  memory_order_relaxed = 0,
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
  return r == __ATOMIC_ACQUIRE ? __ATOMIC_RELAXED : r == __ATOMIC_ACQ_REL ? __ATOMIC_RELEASE : r;
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

// A threadgroup atomic of a kernel run as work-item loops (mg_cpu_wil.h): its group's threads
// take turns on one OS thread, so plain operations are atomic. Calls that name the variable
// directly take these overloads; a pointer converted to `atomic<T>*` still works, atomically.
template <class T> struct mg_group_atomic : atomic<T> {};

template <class T> MG_FN T atomic_load_explicit(mg_group_atomic<T>* obj, memory_order) { return obj->mg_value; }
template <class T> MG_FN void atomic_store_explicit(mg_group_atomic<T>* obj, mg_atomic_arg<T> desired, memory_order) {
  obj->mg_value = desired;
}
template <class T>
MG_FN T atomic_exchange_explicit(mg_group_atomic<T>* obj, mg_atomic_arg<T> desired, memory_order) {
  const T old = obj->mg_value;
  obj->mg_value = desired;
  return old;
}
template <class T>
MG_FN bool mg_group_cas(mg_group_atomic<T>* obj, T* expected, T desired) {
  if (obj->mg_value == *expected) {
    obj->mg_value = desired;
    return true;
  }
  *expected = obj->mg_value;
  return false;
}
template <class T>
MG_FN bool atomic_compare_exchange_weak_explicit(mg_group_atomic<T>* obj, T* expected, mg_atomic_arg<T> desired,
                                                 memory_order, memory_order) {
  return mg_group_cas(obj, expected, T(desired));
}
#define MG_GROUP_FETCH(NAME, EXPR)                                                                \
  template <class T>                                                                              \
  MG_FN T atomic_fetch_##NAME##_explicit(mg_group_atomic<T>* obj, mg_atomic_arg<T> operand, memory_order) { \
    const T a = obj->mg_value, b = operand;                                                       \
    obj->mg_value = T(EXPR);                                                                      \
    return a;                                                                                     \
  }
MG_GROUP_FETCH(add, a + b)
MG_GROUP_FETCH(sub, a - b)
MG_GROUP_FETCH(and, a & b)
MG_GROUP_FETCH(or, a | b)
MG_GROUP_FETCH(xor, a ^ b)
MG_GROUP_FETCH(min, b < a ? b : a)
MG_GROUP_FETCH(max, a < b ? b : a)
#undef MG_GROUP_FETCH

}  // namespace metal

#else  // MG_CUDA

// CUDA: 4- and 8-byte atomics map to the hardware atomics on their bits (unsigned /
// unsigned long long); 1- and 2-byte ones (atomic_bool) use a compare-and-swap on the aligned
// 32-bit word that contains them. Orders other than relaxed add __threadfence() around.

namespace __metalgpu {
namespace atomics {

template <class T> __device__ __forceinline__ T* ptr(const volatile metal::atomic<T>* a) {
  return const_cast<T*>(&a->mg_value);
}

template <unsigned N> struct bits_of;
template <> struct bits_of<1> { typedef unsigned char type; };
template <> struct bits_of<2> { typedef unsigned short type; };
template <> struct bits_of<4> { typedef unsigned type; };
template <> struct bits_of<8> { typedef unsigned long long type; };

template <class B, class T> __device__ __forceinline__ B to_bits(const T& v) {
  B b = 0;
  memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T, class B> __device__ __forceinline__ T from_bits(B b) {
  T v;
  memcpy(&v, &b, sizeof(T));
  return v;
}

__device__ __forceinline__ void fence_before(metal::memory_order o) {
  if (o == metal::memory_order_release || o == metal::memory_order_acq_rel || o == metal::memory_order_seq_cst)
    __threadfence();
}
__device__ __forceinline__ void fence_after(metal::memory_order o) {
  if (o != metal::memory_order_relaxed && o != metal::memory_order_release) __threadfence();
}

template <class T> __device__ __forceinline__ T load(T* p) {
  typedef typename bits_of<sizeof(T)>::type B;
  return from_bits<T>(*reinterpret_cast<volatile B*>(p));
}
template <class T> __device__ __forceinline__ void store(T* p, T v) {
  typedef typename bits_of<sizeof(T)>::type B;
  *reinterpret_cast<volatile B*>(p) = to_bits<B>(v);
}

// Compare-and-swap on the bits of *p; returns the bits found there.
template <class T> __device__ __forceinline__ T cas(T* p, T expected, T desired) {
  if constexpr (sizeof(T) == 4) {
    return from_bits<T>(atomicCAS(reinterpret_cast<unsigned*>(p), to_bits<unsigned>(expected), to_bits<unsigned>(desired)));
  } else if constexpr (sizeof(T) == 8) {
    typedef unsigned long long U;
    return from_bits<T>(atomicCAS(reinterpret_cast<U*>(p), to_bits<U>(expected), to_bits<U>(desired)));
  } else {
    // A 1- or 2-byte value inside its aligned 32-bit word.
    typedef typename bits_of<sizeof(T)>::type B;
    const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
    unsigned* word = reinterpret_cast<unsigned*>(addr & ~uintptr_t(3));
    const unsigned shift = unsigned(addr & 3u) * 8u;
    const unsigned field = (sizeof(T) == 1 ? 0xffu : 0xffffu) << shift;
    const unsigned want = unsigned(to_bits<B>(expected)) << shift, put = unsigned(to_bits<B>(desired)) << shift;
    unsigned old = *reinterpret_cast<volatile unsigned*>(word);
    for (;;) {
      if ((old & field) != want) break;
      const unsigned seen = atomicCAS(word, old, (old & ~field) | put);
      if (seen == old) break;
      old = seen;
    }
    return from_bits<T>(B((old & field) >> shift));
  }
}

// Read-modify-write through a compare-and-swap loop; returns the old value.
template <class T, class F> __device__ __forceinline__ T rmw(T* p, F f) {
  typedef typename bits_of<sizeof(T)>::type B;
  T old = load(p);
  for (;;) {
    const T seen = cas(p, old, T(f(old)));
    if (to_bits<B>(seen) == to_bits<B>(old)) return old;
    old = seen;
  }
}

template <class T> struct is_int_atomic
    : metal::bool_constant<metal::is_integral<T>::value && !metal::is_same<T, bool>::value &&
                           (sizeof(T) == 4 || sizeof(T) == 8)> {};
// The type CUDA's atomic functions take for an integer T of 4 or 8 bytes.
template <class T> using hw_t = metal::conditional_t<sizeof(T) == 4, metal::conditional_t<metal::is_signed<T>::value, int, unsigned>,
                                                     metal::conditional_t<metal::is_signed<T>::value, long long, unsigned long long>>;
template <class T> using hw_bits_t = metal::conditional_t<sizeof(T) == 4, unsigned, unsigned long long>;

enum rmw_op { op_add, op_sub, op_and, op_or, op_xor, op_min, op_max };

template <int Op, class T> __device__ __forceinline__ T fetch(T* p, T b) {
  if constexpr (is_int_atomic<T>::value) {
    typedef hw_bits_t<T> U;
    typedef hw_t<T> H;
    U* q = reinterpret_cast<U*>(p);
    if constexpr (Op == op_add) return T(atomicAdd(q, U(b)));
    if constexpr (Op == op_sub) return T(atomicAdd(q, U(0) - U(b)));
    if constexpr (Op == op_and) return T(atomicAnd(q, U(b)));
    if constexpr (Op == op_or) return T(atomicOr(q, U(b)));
    if constexpr (Op == op_xor) return T(atomicXor(q, U(b)));
    if constexpr (Op == op_min) return T(atomicMin(reinterpret_cast<H*>(p), H(b)));
    if constexpr (Op == op_max) return T(atomicMax(reinterpret_cast<H*>(p), H(b)));
  } else if constexpr (metal::is_same<T, float>::value && Op == op_add) {
    return atomicAdd(p, b);
  } else if constexpr (metal::is_same<T, float>::value && Op == op_sub) {
    return atomicAdd(p, -b);
  } else {
    return rmw(p, [b](T a) {
      if constexpr (Op == op_add) return T(a + b);
      else if constexpr (Op == op_sub) return T(a - b);
      else if constexpr (Op == op_and) return T(a & b);
      else if constexpr (Op == op_or) return T(a | b);
      else if constexpr (Op == op_xor) return T(a ^ b);
      else if constexpr (Op == op_min) return b < a ? b : a;
      else return a < b ? b : a;
    });
  }
}

}  // namespace atomics
}  // namespace __metalgpu

namespace metal {

template <class T>
MG_FN T atomic_load_explicit(const volatile atomic<T>* obj, memory_order o) {
  const T r = __metalgpu::atomics::load(__metalgpu::atomics::ptr(obj));
  __metalgpu::atomics::fence_after(o);
  return r;
}
template <class T>
MG_FN void atomic_store_explicit(volatile atomic<T>* obj, mg_atomic_arg<T> desired, memory_order o) {
  __metalgpu::atomics::fence_before(o);
  __metalgpu::atomics::store(__metalgpu::atomics::ptr(obj), T(desired));
  if (o == memory_order_seq_cst) __threadfence();
}
template <class T>
MG_FN T atomic_exchange_explicit(volatile atomic<T>* obj, mg_atomic_arg<T> desired, memory_order o) {
  T* p = __metalgpu::atomics::ptr(obj);
  const T v = desired;
  __metalgpu::atomics::fence_before(o);
  T r;
  if constexpr (sizeof(T) == 4) {
    r = __metalgpu::atomics::from_bits<T>(atomicExch(reinterpret_cast<unsigned*>(p), __metalgpu::atomics::to_bits<unsigned>(v)));
  } else if constexpr (sizeof(T) == 8) {
    typedef unsigned long long U;
    r = __metalgpu::atomics::from_bits<T>(atomicExch(reinterpret_cast<U*>(p), __metalgpu::atomics::to_bits<U>(v)));
  } else {
    r = __metalgpu::atomics::rmw(p, [v](T) { return v; });
  }
  __metalgpu::atomics::fence_after(o);
  return r;
}
template <class T>
MG_FN bool atomic_compare_exchange_weak_explicit(volatile atomic<T>* obj, T* expected, mg_atomic_arg<T> desired,
                                                 memory_order success, memory_order failure) {
  typedef typename __metalgpu::atomics::bits_of<sizeof(T)>::type B;
  (void)failure;
  __metalgpu::atomics::fence_before(success);
  const T seen = __metalgpu::atomics::cas(__metalgpu::atomics::ptr(obj), *expected, T(desired));
  __metalgpu::atomics::fence_after(success);
  if (__metalgpu::atomics::to_bits<B>(seen) == __metalgpu::atomics::to_bits<B>(*expected)) return true;
  *expected = seen;
  return false;
}

#define MG_ATOMIC_FETCH(NAME)                                                                     \
  template <class T>                                                                              \
  MG_FN T atomic_fetch_##NAME##_explicit(volatile atomic<T>* obj, mg_atomic_arg<T> operand, memory_order o) { \
    __metalgpu::atomics::fence_before(o);                                                         \
    const T r = __metalgpu::atomics::fetch<__metalgpu::atomics::op_##NAME>(__metalgpu::atomics::ptr(obj), T(operand)); \
    __metalgpu::atomics::fence_after(o);                                                          \
    return r;                                                                                     \
  }
MG_ATOMIC_FETCH(add)
MG_ATOMIC_FETCH(sub)
MG_ATOMIC_FETCH(and)
MG_ATOMIC_FETCH(or)
MG_ATOMIC_FETCH(xor)
MG_ATOMIC_FETCH(min)
MG_ATOMIC_FETCH(max)
#undef MG_ATOMIC_FETCH

MG_FN void atomic_thread_fence(mem_flags f, memory_order o, thread_scope s = thread_scope::thread_scope_device) {
  if (o == memory_order_relaxed) return;
  if (s == thread_scope::thread_scope_device && (unsigned(f) & unsigned(mem_flags::mem_device))) __threadfence();
  else __threadfence_block();
}

}  // namespace metal

#endif

#endif  // !MG_NO_ATOMICS
