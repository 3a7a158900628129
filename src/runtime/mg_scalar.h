// metalgpu runtime: Metal scalar types (uint, ushort, uchar, ulong, half, bfloat).
#pragma once

typedef unsigned int uint;
typedef unsigned short ushort;
typedef unsigned char uchar;
typedef unsigned long ulong;

namespace metal {
using ::uint;
using ::ushort;
using ::uchar;
using ::ulong;

struct mg_bits_tag {};

#if defined(__has_builtin)
#  if __has_builtin(__builtin_is_constant_evaluated)
#    define MG_HAS_IS_CONSTANT_EVALUATED 1
#  endif
#endif

// A float taken apart into its bits, and put together from them, by exact arithmetic (scaling
// by 2 is exact): constexpr with any host compiler (NVRTC has the bit casts below).
// tests/runtime/test_runtime.cpp compares them with the bit casts.
#if !MG_CUDA
MG_FN constexpr uint32_t mg_f2u_exact(float f) {
  if (f != f) return 0x7fc00000u;  // a NaN (its sign and payload are not seen)
#if defined(__GNUC__) && !defined(__clang__)
  const uint32_t sign = __builtin_signbit(f) ? 0x80000000u : 0u;
#else
  const uint32_t sign = f < 0.0f ? 0x80000000u : 0u;  // (-0.0f reads as 0.0f: no constexpr signbit)
#endif
  float a = sign ? -f : f;
  if (a == __builtin_huge_valf()) return sign | 0x7f800000u;
  if (a == 0.0f) return sign;
  int e = 0;  // a = [1, 2) * 2^e
  while (a >= 2.0f) a *= 0.5f, ++e;
  while (a < 1.0f) a *= 2.0f, --e;
  if (e >= -126) return sign | uint32_t(e + 127) << 23 | uint32_t((a - 1.0f) * 8388608.0f);
  for (int k = 0; k < e + 149; ++k) a *= 2.0f;  // subnormal: the value in units of 2^-149
  return sign | uint32_t(a);
}
MG_FN constexpr float mg_u2f_exact(uint32_t u) {
  const uint32_t e = (u >> 23) & 0xffu, m = u & 0x7fffffu;
  float v = 0.0f;
  if (e == 255u) {
    v = m ? __builtin_nanf("") : __builtin_huge_valf();
  } else if (e == 0u) {
    v = float(m) * 1.1754943508222875e-38f * 1.1920928955078125e-07f;  // m * 2^-126 * 2^-23
  } else {
    v = 1.0f + float(m) * 1.1920928955078125e-07f;  // 1 + m * 2^-23, then * 2^(e - 127)
    for (uint32_t k = e; k > 127u; --k) v *= 2.0f;
    for (uint32_t k = e; k < 127u; ++k) v *= 0.5f;
  }
  return u >> 31 ? -v : v;
}
#endif

// Bit reinterpretation between float and uint32: constexpr where the compiler has
// __builtin_bit_cast (MG_HAS_BIT_CAST, mg_config.h: bfloat and half constants in constant
// expressions, as Metal allows). GCC 9 and 10 have no bit cast but do have
// __builtin_is_constant_evaluated: there constants go through the exact arithmetic above and
// code that runs uses union punning (fine in g++, clang, nvcc), as everywhere without either.
#if MG_HAS_BIT_CAST
#  define MG_BITS_CONSTEXPR constexpr
#  define MG_BITS_ARE_CONSTEXPR 1
MG_FN constexpr uint32_t mg_f2u(float f) { return __builtin_bit_cast(uint32_t, f); }
MG_FN constexpr float mg_u2f(uint32_t u) { return __builtin_bit_cast(float, u); }
#elif MG_HAS_IS_CONSTANT_EVALUATED && !defined(__CUDA_ARCH__)
#  define MG_BITS_CONSTEXPR constexpr
#  define MG_BITS_ARE_CONSTEXPR 1
MG_FN constexpr uint32_t mg_f2u(float f) {
  if (__builtin_is_constant_evaluated()) return mg_f2u_exact(f);
  union { float f; uint32_t u; } c{f};
  return c.u;
}
MG_FN constexpr float mg_u2f(uint32_t u) {
  if (__builtin_is_constant_evaluated()) return mg_u2f_exact(u);
  union { uint32_t u; float f; } c{u};
  return c.f;
}
#else
#  define MG_BITS_CONSTEXPR
MG_FN uint32_t mg_f2u(float f) { union { float f; uint32_t u; } c; c.f = f; return c.u; }
MG_FN float mg_u2f(uint32_t u) { union { float f; uint32_t u; } c; c.u = u; return c.f; }
#endif

// half <-> float in constant expressions (MLX static_asserts on half arithmetic) needs the
// bit casts above and, on a CUDA device, a way to keep PTX's cvt instructions out of constant
// evaluation: asm may not appear in a C++17 constexpr function, so it lives in plain helpers
// that a constexpr function calls only when __builtin_is_constant_evaluated() is false (the
// call is then never constant-evaluated, which C++17 allows). NVRTC 12 has both builtins.
#if MG_BITS_ARE_CONSTEXPR && (!defined(__CUDA_ARCH__) || MG_HAS_IS_CONSTANT_EVALUATED)
#  define MG_HALF_CONSTEXPR constexpr
#else
#  define MG_HALF_CONSTEXPR
#endif
#if defined(__CUDA_ARCH__)
MG_FN uint16_t mg_float_to_half_bits_ptx(float f) {
  unsigned short r;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(f));
  return r;
}
MG_FN float mg_half_bits_to_float_ptx(uint16_t h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}
#  if MG_HAS_IS_CONSTANT_EVALUATED
#    define MG_USE_PTX_CVT (!__builtin_is_constant_evaluated())
#  else
#    define MG_USE_PTX_CVT true
#  endif
#endif

// Round-to-nearest-even float -> IEEE binary16 bits, and back.
MG_FN MG_HALF_CONSTEXPR uint16_t mg_float_to_half_bits(float f) {
#if defined(__CUDA_ARCH__)
  if (MG_USE_PTX_CVT) return mg_float_to_half_bits_ptx(f);
#elif MG_HOST_FLOAT16 && defined(MG_HAS_BIT_CAST)
  return __builtin_bit_cast(uint16_t, (_Float16)f);
#endif
  uint32_t x = mg_f2u(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return (uint16_t)(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (x >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);          // rounds to infinity
  if (x < 0x38800000u) {                                              // half subnormal or zero
    float a = mg_u2f(x) + 0.5f;                                       // ulp(0.5) == 2^-24
    return (uint16_t)(sign | (mg_f2u(a) - 0x3f000000u));
  }
  x += 0xc8000fffu + ((x >> 13) & 1u);                                // rebias + round
  return (uint16_t)(sign | (x >> 13));
}
MG_FN MG_HALF_CONSTEXPR float mg_half_bits_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  if (MG_USE_PTX_CVT) return mg_half_bits_to_float_ptx(h);
#elif MG_HOST_FLOAT16 && defined(MG_HAS_BIT_CAST)
  return (float)__builtin_bit_cast(_Float16, h);
#endif
  uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
  uint32_t e = ((uint32_t)h >> 10) & 0x1fu, m = (uint32_t)h & 0x3ffu;
  if (e == 0) {
    float v = (float)m * 5.9604644775390625e-08f;                     // m * 2^-24
    return mg_u2f(mg_f2u(v) | sign);
  }
  if (e == 31) return mg_u2f(sign | 0x7f800000u | (m << 13));
  return mg_u2f(sign | ((e + 112u) << 23) | (m << 13));
}
MG_FN MG_BITS_CONSTEXPR uint16_t mg_float_to_bfloat_bits(float f) {
  uint32_t u = mg_f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
MG_FN MG_BITS_CONSTEXPR float mg_bfloat_bits_to_float(uint16_t b) { return mg_u2f((uint32_t)b << 16); }

// Scalar classes (bfloat always; half when there is no _Float16).
template<class T> struct mg_is_class_scalar : false_type {};
template<class T> struct mg_is_builtin_arith
    : bool_constant<is_arithmetic<T>::value && !mg_is_class_scalar<remove_cv_t<T>>::value> {};
// Result of (class scalar X) op (builtin S): X for integers, else the wider float type.
template<class X, class S> struct mg_mix {
  typedef conditional_t<is_integral<S>::value, X, decltype(0.0f + mg_declval<S>())> type;
};

struct bfloat;
template<> struct mg_is_float_raw<bfloat> : true_type {};
template<> struct mg_is_class_scalar<bfloat> : true_type {};
#if MG_HALF_IS_FLOAT16
template<> struct mg_is_float_raw<_Float16> : true_type {};
#else
struct half;
template<> struct mg_is_float_raw<half> : true_type {};
template<> struct mg_is_class_scalar<half> : true_type {};
#endif

// Operators for a 2-byte float class X holding `bits`, computing through float.
#define MG_CLASS_SCALAR_OPS(X, CX)                                                                   \
  MG_FN CX X operator+(X a) { return a; }                                                           \
  MG_FN CX X operator-(X a) { return X(mg_bits_tag(), (uint16_t)(a.bits ^ 0x8000u)); }              \
  MG_FN CX X operator+(X a, X b) { return X(float(a) + float(b)); }                                 \
  MG_FN CX X operator-(X a, X b) { return X(float(a) - float(b)); }                                 \
  MG_FN CX X operator*(X a, X b) { return X(float(a) * float(b)); }                                 \
  MG_FN CX X operator/(X a, X b) { return X(float(a) / float(b)); }                                 \
  MG_FN CX bool operator==(X a, X b) { return float(a) == float(b); }                               \
  MG_FN CX bool operator!=(X a, X b) { return float(a) != float(b); }                               \
  MG_FN CX bool operator<(X a, X b) { return float(a) < float(b); }                                 \
  MG_FN CX bool operator<=(X a, X b) { return float(a) <= float(b); }                               \
  MG_FN CX bool operator>(X a, X b) { return float(a) > float(b); }                                 \
  MG_FN CX bool operator>=(X a, X b) { return float(a) >= float(b); }                               \
  MG_CLASS_SCALAR_MIX(X, +, CX) MG_CLASS_SCALAR_MIX(X, -, CX) MG_CLASS_SCALAR_MIX(X, *, CX)                  \
  MG_CLASS_SCALAR_MIX(X, /, CX)                                                                      \
  MG_CLASS_SCALAR_CMP(X, ==, CX) MG_CLASS_SCALAR_CMP(X, !=, CX) MG_CLASS_SCALAR_CMP(X, <, CX)                \
  MG_CLASS_SCALAR_CMP(X, <=, CX) MG_CLASS_SCALAR_CMP(X, >, CX) MG_CLASS_SCALAR_CMP(X, >=, CX)
#define MG_CLASS_SCALAR_MIX(X, OP, CX)                                                               \
  template<class S, enable_if_t<mg_is_builtin_arith<S>::value, int> = 0>                         \
  MG_FN CX typename mg_mix<X, S>::type operator OP(X a, S b) {                                      \
    typedef typename mg_mix<X, S>::type R;                                                       \
    return R(float(a) OP (is_integral<S>::value ? (float)b : b));                                \
  }                                                                                              \
  template<class S, enable_if_t<mg_is_builtin_arith<S>::value, int> = 0>                         \
  MG_FN CX typename mg_mix<X, S>::type operator OP(S a, X b) {                                      \
    typedef typename mg_mix<X, S>::type R;                                                       \
    return R((is_integral<S>::value ? (float)a : a) OP float(b));                                \
  }                                                                                              \
  /* `float_var OP= x`: a builtin on the left (no builtin candidate takes a class operand). */   \
  template<class S, enable_if_t<mg_is_builtin_arith<S>::value, int> = 0>                         \
  MG_FN S& operator OP##=(S& a, X b) { return a = S(a OP float(b)); }
#define MG_CLASS_SCALAR_CMP(X, OP, CX)                                                               \
  template<class S, enable_if_t<mg_is_builtin_arith<S>::value, int> = 0>                         \
  MG_FN CX bool operator OP(X a, S b) { return float(a) OP b; }                                     \
  template<class S, enable_if_t<mg_is_builtin_arith<S>::value, int> = 0>                         \
  MG_FN CX bool operator OP(S a, X b) { return a OP float(b); }
#define MG_CLASS_SCALAR_MEMBERS(X, TOF, FROMF, CX, EXPLICIT)                                                   \
  uint16_t bits;                                                                                 \
  X() = default;                                                                                 \
  MG_FN constexpr X(mg_bits_tag, uint16_t b) : bits(b) {}                                        \
  MG_FN CX EXPLICIT X(float f) : bits(FROMF(f)) {}                                                           \
  /* Not from the other class scalar: half <-> bfloat is explicit in Metal (their own */        \
  /* explicit conversion operators do it). */                                                   \
  template<class S, enable_if_t<is_arithmetic<S>::value && !is_integral<S>::value &&            \
                                !is_same<S, float>::value && !mg_is_class_scalar<S>::value, int> = 0> \
  MG_FN CX EXPLICIT X(S s) : bits(FROMF((float)s)) {}                                            \
  template<class S, enable_if_t<is_integral<S>::value, int> = 0>                                 \
  MG_FN CX X(S s) : bits(FROMF((float)s)) {}                                                     \
  MG_FN static constexpr X from_bits(uint16_t b) { return X(mg_bits_tag(), b); }                 \
  template<class S> MG_FN X& operator+=(S o) { return *this = X(*this + o); }                    \
  template<class S> MG_FN X& operator-=(S o) { return *this = X(*this - o); }                    \
  template<class S> MG_FN X& operator*=(S o) { return *this = X(*this * o); }                    \
  template<class S> MG_FN X& operator/=(S o) { return *this = X(*this / o); }                    \
  MG_FN X& operator++() { return *this = X(float(*this) + 1.0f); }                               \
  MG_FN X& operator--() { return *this = X(float(*this) - 1.0f); }                               \
  MG_FN X operator++(int) { X t = *this; ++*this; return t; }                                    \
  MG_FN X operator--(int) { X t = *this; --*this; return t; }                                    \
  /* Assignment from what converts to float only through a conversion of its own (a struct */   \
  /* with `operator bool()`): one user conversion, as a builtin half or bfloat would need. */    \
  template<class S, enable_if_t<!is_arithmetic<S>::value && !is_same<S, X>::value &&            \
                                    is_convertible<S, float>::value, int> = 0>                  \
  MG_FN X& operator=(const S& s) { bits = FROMF(float(s)); return *this; }

// An integer literal that is an operand of `?:` beside a non-literal (the translator makes
// it one): it converts to the other operand's type, as Metal's arithmetic conversions would
// convert it, and nothing converts to it, so the conditional has the other operand's type.
template<class L, L V> struct mg_int_literal {
  template<class T, enable_if_t<!is_pointer<T>::value, int> = 0>
  MG_FN constexpr operator T() const { return T(V); }
  template<class T> MG_FN constexpr operator T*() const { return nullptr; }  // `p ? p : 0`
};

#if MG_HALF_IS_FLOAT16
template<class T> struct mg_is_half : is_same<remove_cv_t<T>, _Float16> {};
#else
// half is a class, but is_arithmetic (so bfloat's conversion template) still admits it: keep
// bfloat -> half explicit, as Metal does (else metal::isnan(bfloat) is ambiguous between the
// float and half overloads).
template<class T> struct mg_is_half : is_same<remove_cv_t<T>, half> {};
#endif

struct bfloat {
  MG_CLASS_SCALAR_MEMBERS(bfloat, mg_bfloat_bits_to_float, mg_float_to_bfloat_bits, MG_BITS_CONSTEXPR, explicit)
  // bfloat converts implicitly to every arithmetic type but half, as Metal's builtin bfloat
  // does. A template, deduced from the target type, so a conversion to int does not pass
  // through float (and `c ? b : 0.5f` is a float, as in Metal).
  template<class I, enable_if_t<is_arithmetic<I>::value && !mg_is_half<I>::value, int> = 0>
  MG_FN MG_BITS_CONSTEXPR operator I() const { return I(mg_bfloat_bits_to_float(bits)); }
  template<class I, enable_if_t<mg_is_half<I>::value, int> = 0>
  MG_FN MG_BITS_CONSTEXPR explicit operator I() const { return I(mg_bfloat_bits_to_float(bits)); }
};
MG_CLASS_SCALAR_OPS(bfloat, MG_BITS_CONSTEXPR)

#if MG_HALF_IS_FLOAT16
typedef _Float16 half;
#else
struct half {
  MG_CLASS_SCALAR_MEMBERS(half, mg_half_bits_to_float, mg_float_to_half_bits, MG_HALF_CONSTEXPR, )
  MG_FN MG_HALF_CONSTEXPR operator float() const { return mg_half_bits_to_float(bits); }
};
MG_CLASS_SCALAR_OPS(half, MG_HALF_CONSTEXPR)
MG_FN float operator+(half a, bfloat b) { return float(a) + float(b); }
MG_FN float operator-(half a, bfloat b) { return float(a) - float(b); }
MG_FN float operator*(half a, bfloat b) { return float(a) * float(b); }
MG_FN float operator/(half a, bfloat b) { return float(a) / float(b); }
MG_FN float operator+(bfloat a, half b) { return float(a) + float(b); }
MG_FN float operator-(bfloat a, half b) { return float(a) - float(b); }
MG_FN float operator*(bfloat a, half b) { return float(a) * float(b); }
MG_FN float operator/(bfloat a, half b) { return float(a) / float(b); }
#endif

// A member of an anonymous struct (ggml's `union { struct { half d; half m; }; half2 dm; }`):
// GCC allows no member with a constructor there, and the class half has some. The translation
// declares such members as mg_anonymous_member<T>: T itself, except a class half on GCC, where
// it is a stand-in without constructors that reads as half or float and takes a half.
template<class T> struct mg_anonymous_member_of { typedef T type; };
#if !MG_HALF_IS_FLOAT16 && !MG_CUDA && defined(__GNUC__) && !defined(__clang__)
struct mg_half_member {
  uint16_t bits;
  MG_FN operator half() const { return half(mg_bits_tag(), bits); }
  MG_FN operator float() const { return float(half(mg_bits_tag(), bits)); }
  MG_FN mg_half_member& operator=(half h) {
    bits = h.bits;
    return *this;
  }
  // `device const half* dh = &x.d;` (ggml reads d and dmin through it): the same two bytes, as
  // the half they stand for. (Both types are a single uint16_t.)
  MG_FN const half* operator&() const { return reinterpret_cast<const half*>(this); }
  MG_FN half* operator&() { return reinterpret_cast<half*>(this); }
};
template<> struct mg_anonymous_member_of<half> { typedef mg_half_member type; };
#endif
template<class T> using mg_anonymous_member = typename mg_anonymous_member_of<T>::type;

// `T(x)`, T a template's type parameter, as Metal reads it (the translation writes such casts
// through this, cpu only). Where half is GCC 13+'s _Float16, C++23's rules stop a class's
// conversion to float from going on to _Float16 (MLX's T(fp8_e8m0) with T = half): such an
// operand goes through float, as Metal's half takes it. Anything else is T(x) itself.
template<class T, class X, class = void> struct mg_functional_castable : false_type {};
template<class T, class X>
struct mg_functional_castable<T, X, decltype(void(T(mg_declval<X>())))> : true_type {};
template<class T, class X>
MG_FN constexpr T mg_functional_cast(X&& x) {
#if MG_HALF_IS_FLOAT16
  if constexpr (mg_is_half<T>::value && is_class<remove_cvref_t<X>>::value &&
                !mg_functional_castable<T, X>::value)
    return T(static_cast<float>(static_cast<X&&>(x)));
  else
#endif
    return T(static_cast<X&&>(x));
}
// Emitted after each user function of one float parameter: where half is a class, a half
// overload forwarding to it, so a half argument picks it as Metal's half -> float standard
// conversion does (a class half beside a user class that float converts to ties otherwise).
#if MG_HALF_IS_FLOAT16
#  define MG_HALF_FORWARD(NAME)
#else
#  define MG_HALF_FORWARD(NAME) \
    static MG_FN auto NAME(half __mg_h)->decltype(NAME(float(__mg_h))) { return NAME(float(__mg_h)); }
#endif
#undef MG_CLASS_SCALAR_OPS
#undef MG_CLASS_SCALAR_MIX
#undef MG_CLASS_SCALAR_CMP
#undef MG_CLASS_SCALAR_MEMBERS

#if MG_HALF_IS_FLOAT16
MG_FN uint16_t mg_half_bits(half h) { union { half h; uint16_t u; } c; c.h = h; return c.u; }
MG_FN half mg_half_from_bits(uint16_t b) { union { half h; uint16_t u; } c; c.u = b; return c.h; }
#define MG_HALF_CONST(BITS, VAL) ((half)(VAL))
#else
MG_FN uint16_t mg_half_bits(half h) { return h.bits; }
MG_FN half mg_half_from_bits(uint16_t b) { return half(mg_bits_tag(), b); }
#define MG_HALF_CONST(BITS, VAL) half(mg_bits_tag(), (uint16_t)(BITS))
#endif

template<> struct numeric_limits<half> {
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static constexpr int digits = 11;
  static constexpr bool has_infinity = true;
  MG_FN static constexpr half min() { return MG_HALF_CONST(0x0400, 6.103515625e-05f); }
  MG_FN static constexpr half max() { return MG_HALF_CONST(0x7bff, 65504.0f); }
  MG_FN static constexpr half lowest() { return MG_HALF_CONST(0xfbff, -65504.0f); }
  MG_FN static constexpr half epsilon() { return MG_HALF_CONST(0x1400, 0.0009765625f); }
  MG_FN static constexpr half infinity() { return MG_HALF_CONST(0x7c00, __builtin_huge_valf()); }
  MG_FN static constexpr half quiet_NaN() { return MG_HALF_CONST(0x7e00, __builtin_nanf("")); }
};
template<> struct numeric_limits<bfloat> {
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static constexpr int digits = 8;
  static constexpr bool has_infinity = true;
  MG_FN static constexpr bfloat min() { return bfloat(mg_bits_tag(), 0x0080); }
  MG_FN static constexpr bfloat max() { return bfloat(mg_bits_tag(), 0x7f7f); }
  MG_FN static constexpr bfloat lowest() { return bfloat(mg_bits_tag(), 0xff7f); }
  MG_FN static constexpr bfloat epsilon() { return bfloat(mg_bits_tag(), 0x3c00); }
  MG_FN static constexpr bfloat infinity() { return bfloat(mg_bits_tag(), 0x7f80); }
  MG_FN static constexpr bfloat quiet_NaN() { return bfloat(mg_bits_tag(), 0x7fc0); }
};
#undef MG_HALF_CONST

// The type the translation converts an operand of `c ? a : b` to (MG_ARM_CAST):
// static_cast<mg_arm_t<decltype((a)), decltype((b))>>(a), and the same for b. A class scalar
// (half on CUDA, bfloat) beside a builtin arithmetic type: both become the type Metal's usual
// arithmetic conversions give (half and float: float; half and int: half), which C++ would
// call ambiguous for a class. Anything else: the operand's own type and value category
// (T& for an lvalue, so `(c ? x : y) = v` still assigns; void stays void).
template<class A, class B, class DA = remove_cvref_t<A>, class DB = remove_cvref_t<B>,
         bool = (mg_is_class_scalar<DA>::value && mg_is_builtin_arith<DB>::value) ||
                (mg_is_builtin_arith<DA>::value && mg_is_class_scalar<DB>::value)>
struct mg_arm {
  typedef A type;
};
template<class A, class B, class DA, class DB> struct mg_arm<A, B, DA, DB, true> {
  typedef conditional_t<mg_is_class_scalar<DA>::value, typename mg_mix<DA, DB>::type,
                        typename mg_mix<DB, DA>::type> type;
};
template<class A, class B> using mg_arm_t = typename mg_arm<A, B>::type;
// What the translation writes before each operand of a conditional (the operand follows in
// parentheses). Where half is the compiler's _Float16 only bfloat is a class, and bfloat's
// conversion template already gives Metal's result: the operands stay as written, and the
// compiler never sees the decltype copies.
#if MG_HALF_IS_FLOAT16
#  define MG_ARM_CAST(A, B)
#else
#  define MG_ARM_CAST(A, B) static_cast< ::metal::mg_arm_t<A, B>>
#endif

// Floating result type of a math function on scalar T: half/bfloat stay, others -> float.
template<class T> struct mg_float_of { typedef float type; };
template<> struct mg_float_of<half> { typedef half type; };
template<> struct mg_float_of<bfloat> { typedef bfloat type; };

} // namespace metal

using metal::half;
using metal::bfloat;
