// metalgpu runtime: Apple's compiler builtins (`__metal_fabs(x, fast_math_mode)`,
// `__metal_simd_sum(x)`, `__metal_get_simdgroup_size(ushort())` ...). Apple's metal_stdlib is
// written with them and some libraries call them directly to declare overloads Apple does
// not have (MLX's bf16_math.h). Each forwards to the metal:: function of the same meaning;
// the math-mode argument selects nothing here (the cpu and cuda targets use one mode).
#pragma once

namespace metal {
enum class mg_math_mode { maybe_fast, fast, precise };
}  // namespace metal

#define __METAL_MAYBE_FAST_MATH__ (::metal::mg_math_mode::maybe_fast)
#define __METAL_FAST_MATH__ (::metal::mg_math_mode::fast)
#define __METAL_PRECISE_MATH__ (::metal::mg_math_mode::precise)

#define MG_BUILTIN1(NAME)                                                                       \
  template<class T> MG_FN auto __metal_##NAME(T x, ::metal::mg_math_mode) { return ::metal::NAME(x); } \
  template<class T> MG_FN auto __metal_##NAME(T x) { return ::metal::NAME(x); }
#define MG_BUILTIN2(NAME)                                                                       \
  template<class T, class U> MG_FN auto __metal_##NAME(T x, U y, ::metal::mg_math_mode) {     \
    return ::metal::NAME(x, y);                                                                 \
  }                                                                                             \
  template<class T, class U> MG_FN auto __metal_##NAME(T x, U y) { return ::metal::NAME(x, y); }
#define MG_BUILTIN3(NAME)                                                                       \
  template<class T, class U, class V>                                                           \
  MG_FN auto __metal_##NAME(T x, U y, V z, ::metal::mg_math_mode) { return ::metal::NAME(x, y, z); } \
  template<class T, class U, class V>                                                           \
  MG_FN auto __metal_##NAME(T x, U y, V z) { return ::metal::NAME(x, y, z); }

MG_BUILTIN1(fabs) MG_BUILTIN1(acos) MG_BUILTIN1(acosh) MG_BUILTIN1(asin) MG_BUILTIN1(asinh)
MG_BUILTIN1(atan) MG_BUILTIN1(atanh) MG_BUILTIN1(ceil) MG_BUILTIN1(cos) MG_BUILTIN1(cosh)
MG_BUILTIN1(cospi) MG_BUILTIN1(exp) MG_BUILTIN1(exp10) MG_BUILTIN1(exp2) MG_BUILTIN1(floor)
MG_BUILTIN1(fract) MG_BUILTIN1(log) MG_BUILTIN1(log10) MG_BUILTIN1(log2) MG_BUILTIN1(rint)
MG_BUILTIN1(round) MG_BUILTIN1(rsqrt) MG_BUILTIN1(sin) MG_BUILTIN1(sinh) MG_BUILTIN1(sinpi)
MG_BUILTIN1(sqrt) MG_BUILTIN1(tan) MG_BUILTIN1(tanh) MG_BUILTIN1(tanpi) MG_BUILTIN1(trunc)
MG_BUILTIN2(atan2) MG_BUILTIN2(divide) MG_BUILTIN2(fdim) MG_BUILTIN2(fmax) MG_BUILTIN2(fmin)
MG_BUILTIN2(fmod) MG_BUILTIN2(nextafter) MG_BUILTIN2(pow) MG_BUILTIN2(powr) MG_BUILTIN2(ldexp)
MG_BUILTIN3(fma) MG_BUILTIN3(fmax3) MG_BUILTIN3(fmin3) MG_BUILTIN3(fmedian3)
#undef MG_BUILTIN1
#undef MG_BUILTIN2
#undef MG_BUILTIN3

template<class T> MG_FN auto __metal_frexp(T x, int* e) { return ::metal::frexp(x, *e); }

// SIMD-group builtins: the value and lane arguments as metal::simd_* take them.
#define MG_SIMD_BUILTIN1(NAME) \
  template<class T> MG_FN T __metal_##NAME(T x) { return ::metal::NAME(x); }
#define MG_SIMD_BUILTIN2(NAME) \
  template<class T> MG_FN T __metal_##NAME(T x, ushort a) { return ::metal::NAME(x, a); }
MG_SIMD_BUILTIN1(simd_sum) MG_SIMD_BUILTIN1(simd_product) MG_SIMD_BUILTIN1(simd_min)
MG_SIMD_BUILTIN1(simd_max) MG_SIMD_BUILTIN1(simd_prefix_inclusive_sum)
MG_SIMD_BUILTIN1(simd_prefix_exclusive_sum) MG_SIMD_BUILTIN1(simd_prefix_inclusive_product)
MG_SIMD_BUILTIN1(simd_prefix_exclusive_product)
MG_SIMD_BUILTIN2(simd_broadcast) MG_SIMD_BUILTIN2(simd_shuffle) MG_SIMD_BUILTIN2(simd_shuffle_up)
MG_SIMD_BUILTIN2(simd_shuffle_down) MG_SIMD_BUILTIN2(simd_shuffle_xor)
MG_SIMD_BUILTIN2(simd_shuffle_rotate_up) MG_SIMD_BUILTIN2(simd_shuffle_rotate_down)
// The bitwise reductions on a float work on its bits.
#define MG_SIMD_BITWISE_BUILTIN(NAME)                                                             \
  template<class T> MG_FN T __metal_##NAME(T x) {                                                 \
    if constexpr (::metal::is_integral<T>::value) return ::metal::NAME(x);                               \
    else return ::metal::as_type<T>(::metal::NAME(::metal::as_type<uint>(float(x))));             \
  }
MG_SIMD_BITWISE_BUILTIN(simd_and) MG_SIMD_BITWISE_BUILTIN(simd_or) MG_SIMD_BITWISE_BUILTIN(simd_xor)
#undef MG_SIMD_BITWISE_BUILTIN
#undef MG_SIMD_BUILTIN1
#undef MG_SIMD_BUILTIN2
template<class T> MG_FN T __metal_simd_shuffle_and_fill_up(T x, T fill, ushort delta, ushort modulo = 32) {
  return ::metal::simd_shuffle_and_fill_up(x, fill, delta, modulo);
}
template<class T> MG_FN T __metal_simd_shuffle_and_fill_down(T x, T fill, ushort delta, ushort modulo = 32) {
  return ::metal::simd_shuffle_and_fill_down(x, fill, delta, modulo);
}
template<class T> MG_FN T __metal_get_simdgroup_size(T) { return T(32); }
template<class T> MG_FN T __metal_get_thread_index_in_simdgroup(T) { return T(__metalgpu::simd_lane_id()); }
