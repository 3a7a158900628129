// Glue between the translator's entry points and the user's kernel functions, shared by all
// targets: parameter types of a kernel, binding buffer slots, converting built-in values.
#pragma once

namespace __metalgpu {

template <class T> struct strip { using type = T; };
template <class T> struct strip<const T> { using type = T; };
template <class T> struct strip<volatile T> { using type = T; };
template <class T> struct strip<const volatile T> { using type = T; };
template <class T> struct strip<T&> { using type = typename strip<T>::type; };
template <class T> struct strip<T&&> { using type = typename strip<T>::type; };
template <class T> using strip_t = typename strip<T>::type;

template <int I, class... A> struct nth_arg;
template <class H, class... T> struct nth_arg<0, H, T...> { using type = H; };
template <int I, class H, class... T> struct nth_arg<I, H, T...> {
  using type = typename nth_arg<I - 1, T...>::type;
};

// arg_t<decltype(&kernel), I>: the declared type of the kernel's I-th parameter.
template <class F, int I> struct fn_arg;
template <class R, class... A, int I> struct fn_arg<R (*)(A...), I> {
  using type = typename nth_arg<I, A...>::type;
};
template <class F, int I> using arg_t = typename fn_arg<F, I>::type;

// A [[buffer(n)]] slot holds a pointer to the memory the parameter sees: pointers bind to it,
// references alias it, by-value parameters copy from it. On CUDA every slot is 16-byte aligned
// (allocations are 256-byte aligned; by-value arguments sit at multiples of 16 in the launch
// block), and saying so keeps loads of vectors vector loads where vectors are aligned like their
// elements (METALGPU_CUDA_ELEMENT_ALIGNED_VECTORS, mg_vector.h).
#if MG_CUDA
MG_FN void* slot_memory(void* p) { return __builtin_assume_aligned(p, 16); }
#else
MG_FN void* slot_memory(void* p) { return p; }
#endif
template <class T> struct slot_binder {
  static MG_FN T get(void* p) { return *static_cast<const T*>(slot_memory(p)); }
};
template <class T> struct slot_binder<T*> {
  static MG_FN T* get(void* p) { return static_cast<T*>(slot_memory(p)); }
};
template <class T> struct slot_binder<T* const> {
  static MG_FN T* get(void* p) { return static_cast<T*>(slot_memory(p)); }
};
template <class T> struct slot_binder<T&> {
  static MG_FN T& get(void* p) { return *static_cast<T*>(slot_memory(p)); }
};
template <class T> MG_FN decltype(auto) slot(void* p) { return slot_binder<T>::get(p); }

// A [[texture(n)]] parameter views the launch block's texture n; a [[sampler(n)]] parameter
// unpacks the sampler descriptor bits.
#if !MG_NO_TEXTURES
template <class T> MG_FN strip_t<T> texture_slot(const mg_texture& t) { return strip_t<T>(&t); }
MG_FN metal::sampler sampler_slot(unsigned bits) { return metal::sampler(metal::mg_sampler_bits_tag(), bits); }
#endif

// Bytes of what a slot parameter points or refers to (0 for void), reported to the host so it
// can check what is bound there.
template <class T> struct size_or_zero { static constexpr unsigned value = sizeof(T); };
template <> struct size_or_zero<void> { static constexpr unsigned value = 0; };
template <class T> struct slot_size { static constexpr unsigned value = size_or_zero<strip_t<T>>::value; };
template <class T> struct slot_size<T*> { static constexpr unsigned value = size_or_zero<strip_t<T>>::value; };
template <class T> struct slot_size<T* const> { static constexpr unsigned value = size_or_zero<strip_t<T>>::value; };
template <class T> struct slot_size<T&> { static constexpr unsigned value = size_or_zero<strip_t<T>>::value; };

// Every built-in a kernel may ask for, named as its attribute.
struct thread_ctx {
  metal::uint3 thread_position_in_grid;
  metal::uint3 thread_position_in_threadgroup;
  metal::uint3 threadgroup_position_in_grid;
  metal::uint3 threads_per_threadgroup;
  metal::uint3 threads_per_grid;
  metal::uint3 threadgroups_per_grid;
  metal::uint3 dispatch_threads_per_threadgroup;
  metal::uint3 grid_origin;
  metal::uint3 grid_size;
  uint thread_index_in_threadgroup;
  uint thread_execution_width;
  uint threads_per_simdgroup;
  uint simdgroup_index_in_threadgroup;
  uint thread_index_in_simdgroup;
  uint simdgroups_per_threadgroup;
  uint dispatch_simdgroups_per_threadgroup;
  uint quadgroup_index_in_threadgroup;
  uint thread_index_in_quadgroup;
  uint quadgroups_per_threadgroup;
  uint dispatch_quadgroups_per_threadgroup;
  void* const* threadgroup_slots;  // cpu: [[threadgroup(n)]] memory of cooperative kernels
};

// Built-in values arrive as metal::uint3 or uint; kernels declare them as uint, ushort, uint2, ushort3...
template <class T> struct builtin_conv {
  static MG_FN T from(const metal::uint3& v) { return T(v.x); }
  static MG_FN T from(uint v) { return T(v); }
};
template <class U> struct builtin_conv<metal::vec<U, 2>> {
  static MG_FN metal::vec<U, 2> from(const metal::uint3& v) { return metal::vec<U, 2>(U(v.x), U(v.y)); }
};
template <class U> struct builtin_conv<metal::vec<U, 3>> {
  static MG_FN metal::vec<U, 3> from(const metal::uint3& v) {
    return metal::vec<U, 3>(U(v.x), U(v.y), U(v.z));
  }
};
template <class T, class V> MG_FN T builtin_as(const V& v) { return builtin_conv<strip_t<T>>::from(v); }

}  // namespace __metalgpu

// Function constants of type half / bfloat, written by the translator with their bits and
// their value: where the type is a class (bfloat; half under CUDA) its conversion from float
// is not constexpr, so the constant is built from its bits.
#if MG_HALF_IS_FLOAT16
#  define MG_FC_HALF(BITS, VALUE) (VALUE)
#else
#  define MG_FC_HALF(BITS, VALUE) (metal::half::from_bits(BITS))
#endif
#define MG_FC_BFLOAT(BITS, VALUE) (metal::bfloat::from_bits(BITS))

// The rest of metal's public names, declared after mg_constants.h's MG_USING_METAL_NAMES, as
// using-declarations in metal_user (the CUDA translation's namespace for user code) too. The
// user's own overloads of a metal function at file scope (MLX's simd_shuffle_down(uint64_t,
// uint16_t) ...) then join metal's in one overload set, as they do on the host, where user
// code is at global scope with metal's names brought in by `using namespace metal;`. Without
// them, the user's declaration in metal_user would hide metal's overloads.
namespace metal_user {
using metal::threadgroup_barrier;
using metal::simdgroup_barrier;
#if !MG_NO_ATOMICS
using metal::atomic_thread_fence;
using metal::atomic_load_explicit;
using metal::atomic_store_explicit;
using metal::atomic_exchange_explicit;
using metal::atomic_compare_exchange_weak_explicit;
using metal::atomic_fetch_add_explicit;
using metal::atomic_fetch_sub_explicit;
using metal::atomic_fetch_and_explicit;
using metal::atomic_fetch_or_explicit;
using metal::atomic_fetch_xor_explicit;
using metal::atomic_fetch_min_explicit;
using metal::atomic_fetch_max_explicit;
#endif
using metal::fmax3;
using metal::fmin3;
using metal::fmedian3;
using metal::max3;
using metal::min3;
using metal::median3;
#if !MG_NO_SIMDGROUP_MATRIX
using metal::make_uniform;
using metal::simdgroup_matrix;
using metal::simdgroup_load;
using metal::simdgroup_store;
using metal::simdgroup_multiply;
using metal::simdgroup_multiply_accumulate;
using metal::make_filled_simdgroup_matrix;
#endif
#define MG_USING_SIMD_GROUP(PFX)                                                                  \
  using metal::PFX##_sum; using metal::PFX##_product; using metal::PFX##_min;                     \
  using metal::PFX##_max; using metal::PFX##_and; using metal::PFX##_or; using metal::PFX##_xor;  \
  using metal::PFX##_prefix_inclusive_sum; using metal::PFX##_prefix_exclusive_sum;               \
  using metal::PFX##_prefix_inclusive_product; using metal::PFX##_prefix_exclusive_product;       \
  using metal::PFX##_shuffle; using metal::PFX##_broadcast; using metal::PFX##_shuffle_up;        \
  using metal::PFX##_shuffle_down; using metal::PFX##_shuffle_xor;                                \
  using metal::PFX##_shuffle_rotate_up; using metal::PFX##_shuffle_rotate_down;                   \
  using metal::PFX##_shuffle_and_fill_up; using metal::PFX##_shuffle_and_fill_down;               \
  using metal::PFX##_broadcast_first; using metal::PFX##_ballot;                                  \
  using metal::PFX##_active_threads_mask; using metal::PFX##_all; using metal::PFX##_any;         \
  using metal::PFX##_is_first; using metal::PFX##_vote;
MG_USING_SIMD_GROUP(simd)
MG_USING_SIMD_GROUP(quad)
#undef MG_USING_SIMD_GROUP
}  // namespace metal_user
