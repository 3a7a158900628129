// metalgpu runtime: Metal math, geometric, integer and relational functions.
// Scalars: non-template overloads for float and half (exact matches beat glibc's double
// functions) - none for bfloat, as in Apple's metal_stdlib: a bfloat argument converts to float
// and the result is float (libraries such as MLX declare their own bfloat overloads); templates for the other arithmetic types and for mixed-type calls; vectors
// component-wise (a scalar argument is broadcast where Metal allows it).
#pragma once

namespace metal {

// ---------------------------------------------------------------- helpers
template<class T> struct mg_identity { typedef T type; };
template<class T> using mg_identity_t = typename mg_identity<T>::type;

// 0 integer, 1 half, 2 bfloat, 3 float/double
template<class T> struct mg_fkind {
  static constexpr int value = is_integral<T>::value ? 0
                             : is_same<remove_cv_t<T>, half>::value ? 1
                             : is_same<remove_cv_t<T>, bfloat>::value ? 2 : 3;
};
// Floating type a math function computes for scalar arguments A, B, ...
template<class... A> struct mg_ftype {
  static constexpr int k1 = ((mg_fkind<A>::value == 1) || ...);
  static constexpr int k2 = ((mg_fkind<A>::value == 2) || ...);
  static constexpr int k3 = ((mg_fkind<A>::value == 3) || ...);
  typedef conditional_t<k3 || (k1 && k2) || !(k1 || k2), float, conditional_t<k1 != 0, half, bfloat>> type;
};
// Common type for min/max/clamp: integers keep their (common) type; otherwise as mg_ftype.
template<class... A> struct mg_ctype;
template<class A> struct mg_ctype<A> {
  typedef conditional_t<is_integral<A>::value, A, typename mg_ftype<A>::type> type;
};
template<class A, class B, class... R> struct mg_ctype<A, B, R...> {
  typedef conditional_t<is_integral<A>::value && is_integral<B>::value,
                        conditional_t<is_same<A, B>::value, A, decltype(mg_declval<A>() + mg_declval<B>())>,
                        typename mg_ftype<A, B>::type> AB;
  typedef typename mg_ctype<AB, R...>::type type;
};
template<class... A> struct mg_all_scalar {
  static constexpr bool value = ((mg_vinfo<A>::n == 1) && ...);
};
// Vector argument lists: at least one vector, all vectors the same size, the rest scalars.
template<class... A> struct mg_first_vec_elem { typedef void type; };
template<class A, class... R> struct mg_first_vec_elem<A, R...> {
  typedef conditional_t<mg_vinfo<A>::is_vec, typename mg_vinfo<A>::elem,
                        typename mg_first_vec_elem<R...>::type> type;
};
MG_FN constexpr int mg_imax(int a) { return a; }
template<class... R> MG_FN constexpr int mg_imax(int a, int b, R... r) { return mg_imax(a > b ? a : b, r...); }
template<class... A> struct mg_vargs {
  static constexpr int n = mg_imax(0, mg_imax((mg_vinfo<A>::is_vec ? mg_vinfo<A>::n : 0)...));
  static constexpr bool ok = n >= 2 && ((mg_vinfo<A>::n == 1 || mg_vinfo<A>::n == n) && ...);
  typedef typename mg_first_vec_elem<A...>::type elem;
};
template<class A> struct mg_vargs<A> {
  static constexpr int n = mg_vinfo<A>::is_vec ? mg_vinfo<A>::n : 0;
  static constexpr bool ok = n >= 2;
  typedef typename mg_vinfo<A>::elem elem;
};

// Component-wise by index: E(i, F) for i in 0..N-1.
#define MG_CWI(R, N, E, F)                                                   \
  if constexpr ((N) == 2) return R(E(0, F), E(1, F));                        \
  else if constexpr ((N) == 3) return R(E(0, F), E(1, F), E(2, F));          \
  else return R(E(0, F), E(1, F), E(2, F), E(3, F));
#define MG_E_V1(i, F) F(E_(mg_comp<i>(a)))
#define MG_E_V2(i, F) F(E_(mg_comp<i>(a)), E_(mg_comp<i>(b)))
#define MG_E_V3(i, F) F(E_(mg_comp<i>(a)), E_(mg_comp<i>(b)), E_(mg_comp<i>(c)))

// Vector forms of a 1-, 2-, 3-argument scalar function NAME.
#define MG_VEC1(NAME)                                                                            \
  template<class T, int N, bool P>                                                               \
  MG_FN auto NAME(const mg_basic_vec<T, N, P>& a)->vec<decltype(NAME(mg_declval<T>())), N> {           \
    typedef T E_;                                                                                \
    typedef vec<decltype(NAME(mg_declval<T>())), N> R_;                                             \
    MG_CWI(R_, N, MG_E_V1, NAME)                                                                 \
  }
#define MG_VEC2(NAME)                                                                            \
  template<class A, class B, enable_if_t<mg_vargs<A, B>::ok, int> = 0,                           \
           class E_ = typename mg_vargs<A, B>::elem>                                             \
  MG_FN auto NAME(const A& a, const B& b)                                                        \
      ->vec<decltype(NAME(mg_declval<E_>(), mg_declval<E_>())), mg_vargs<A, B>::n> {                   \
    typedef vec<decltype(NAME(mg_declval<E_>(), mg_declval<E_>())), mg_vargs<A, B>::n> R_;             \
    MG_CWI(R_, (mg_vargs<A, B>::n), MG_E_V2, NAME)                                               \
  }
#define MG_VEC3(NAME)                                                                            \
  template<class A, class B, class C, enable_if_t<mg_vargs<A, B, C>::ok, int> = 0,               \
           class E_ = typename mg_vargs<A, B, C>::elem>                                          \
  MG_FN auto NAME(const A& a, const B& b, const C& c)                                            \
      ->vec<decltype(NAME(mg_declval<E_>(), mg_declval<E_>(), mg_declval<E_>())), mg_vargs<A, B, C>::n> { \
    typedef vec<decltype(NAME(mg_declval<E_>(), mg_declval<E_>(), mg_declval<E_>())),                     \
                mg_vargs<A, B, C>::n> R_;                                                        \
    MG_CWI(R_, (mg_vargs<A, B, C>::n), MG_E_V3, NAME)                                            \
  }

// ---------------------------------------------------------------- float math, 1 argument
// Scalar: float / half overloads plus a template for integers and double.
#define MG_MATH1(NAME, EXPR)                                                                     \
  MG_FN float NAME(float x) { return EXPR; }                                                     \
  MG_FN half NAME(half h) { const float x = float(h); return half(EXPR); }                       \
  template<class S, enable_if_t<is_integral<S>::value || is_same<S, double>::value, int> = 0>    \
  MG_FN float NAME(S s) { const float x = float(s); return EXPR; }                               \
  MG_VEC1(NAME)

#if MG_CUDA
#  define MG_SQRTF(x) sqrtf(x)
#  define MG_RSQRTF(x) rsqrtf(x)
#  define MG_EXP10F(x) exp10f(x)
#else
#  define MG_SQRTF(x) sqrtf(x)
#  define MG_RSQRTF(x) (1.0f / sqrtf(x))
#  define MG_EXP10F(x) exp10f(x)
#endif

MG_MATH1(sin, sinf(x))
MG_MATH1(cos, cosf(x))
MG_MATH1(tan, tanf(x))
MG_MATH1(asin, asinf(x))
MG_MATH1(acos, acosf(x))
MG_MATH1(atan, atanf(x))
MG_MATH1(sinh, sinhf(x))
MG_MATH1(cosh, coshf(x))
MG_MATH1(tanh, tanhf(x))
MG_MATH1(asinh, asinhf(x))
MG_MATH1(acosh, acoshf(x))
MG_MATH1(atanh, atanhf(x))
MG_MATH1(exp, expf(x))
MG_MATH1(exp2, exp2f(x))
MG_MATH1(exp10, MG_EXP10F(x))
MG_MATH1(log, logf(x))
MG_MATH1(log2, log2f(x))
MG_MATH1(log10, log10f(x))
MG_MATH1(sqrt, MG_SQRTF(x))
MG_MATH1(rsqrt, MG_RSQRTF(x))
MG_MATH1(cbrt, cbrtf(x))
MG_MATH1(fabs, fabsf(x))
MG_MATH1(floor, floorf(x))
MG_MATH1(ceil, ceilf(x))
MG_MATH1(round, roundf(x))
MG_MATH1(rint, rintf(x))
MG_MATH1(trunc, truncf(x))
MG_MATH1(fract, fminf(x - floorf(x), 0.99999994f))
MG_MATH1(saturate, fminf(fmaxf(x, 0.0f), 1.0f))
MG_MATH1(sign, (x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f)))
MG_MATH1(sinpi, sinf(x * 3.14159265358979f))
MG_MATH1(cospi, cosf(x * 3.14159265358979f))
MG_MATH1(tanpi, tanf(x * 3.14159265358979f))
MG_MATH1(logb, logbf(x))
#undef MG_MATH1

// Classification by bits: reliable under -ffast-math.
#define MG_CLASS1(NAME, EXPR)                                                                    \
  MG_FN bool NAME(float f) { const uint32_t u = mg_f2u(f); return EXPR; }                        \
  MG_FN bool NAME(half h) { const uint32_t u = mg_f2u(float(h)); return EXPR; }                  \
  template<class S, enable_if_t<is_integral<S>::value || is_same<S, double>::value, int> = 0>    \
  MG_FN bool NAME(S s) { const uint32_t u = mg_f2u(float(s)); return EXPR; }                     \
  MG_VEC1(NAME)
MG_CLASS1(isnan, (u & 0x7fffffffu) > 0x7f800000u)
MG_CLASS1(isinf, (u & 0x7fffffffu) == 0x7f800000u)
MG_CLASS1(isfinite, (u & 0x7f800000u) != 0x7f800000u)
MG_CLASS1(isnormal, (u & 0x7f800000u) != 0x7f800000u && (u & 0x7f800000u) != 0u)
MG_CLASS1(signbit, (u >> 31) != 0u)
#undef MG_CLASS1

// ilogb: the exponent as an int; C's FP_ILOGB0 / FP_ILOGBNAN (INT_MIN) for 0 and NaN.
MG_FN int mg_ilogb_f(float x) {
  const uint32_t u = mg_f2u(x) & 0x7fffffffu;
  if (u == 0u || u > 0x7f800000u) return -2147483647 - 1;
  if (u == 0x7f800000u) return 2147483647;
  if (u < 0x00800000u) {  // subnormal: from the bits (a flush-to-zero logbf would say 0's)
    int p = 22;
    while (!((u >> p) & 1u)) --p;
    return p - 149;
  }
  return int(u >> 23) - 127;
}
MG_FN int ilogb(float x) { return mg_ilogb_f(x); }
MG_FN int ilogb(half x) { return mg_ilogb_f(float(x)); }
MG_VEC1(ilogb)

// abs: floats via fabs, integers directly.
MG_FN float abs(float x) { return fabsf(x); }
MG_FN half abs(half x) { return half(fabsf(float(x))); }
template<class S, enable_if_t<is_integral<S>::value, int> = 0>
MG_FN S abs(S x) { if constexpr (is_signed<S>::value) return x < 0 ? S(-x) : x; else return x; }
template<class S, enable_if_t<is_same<S, double>::value, int> = 0>
MG_FN float abs(S x) { return fabsf(float(x)); }
MG_VEC1(abs)

// ---------------------------------------------------------------- float math, 2-3 arguments
#define MG_MATH2(NAME, EXPR)                                                                     \
  template<class A, class B, enable_if_t<mg_all_scalar<A, B>::value, int> = 0>                   \
  MG_FN typename mg_ftype<A, B>::type NAME(A a, B b) {                                           \
    const float x = float(a), y = float(b);                                                      \
    return typename mg_ftype<A, B>::type(EXPR);                                                  \
  }                                                                                              \
  MG_VEC2(NAME)
#define MG_MATH3(NAME, EXPR)                                                                     \
  template<class A, class B, class C, enable_if_t<mg_all_scalar<A, B, C>::value, int> = 0>       \
  MG_FN typename mg_ftype<A, B, C>::type NAME(A a, B b, C c) {                                   \
    const float x = float(a), y = float(b), z = float(c);                                        \
    return typename mg_ftype<A, B, C>::type(EXPR);                                               \
  }                                                                                              \
  MG_VEC3(NAME)

MG_FN float mg_smoothstep_f(float e0, float e1, float x) {
  float t = fminf(fmaxf((x - e0) / (e1 - e0), 0.0f), 1.0f);
  return t * t * (3.0f - 2.0f * t);
}

MG_MATH2(atan2, atan2f(x, y))
MG_MATH2(pow, powf(x, y))
MG_MATH2(powr, powf(x, y))
MG_MATH2(fmod, fmodf(x, y))
MG_MATH2(fmin, fminf(x, y))
MG_MATH2(fmax, fmaxf(x, y))
MG_MATH2(copysign, copysignf(x, y))
MG_MATH2(fdim, fdimf(x, y))
MG_MATH2(divide, x / y)
MG_MATH2(step, (y < x ? 0.0f : 1.0f))
MG_MATH2(nextafter, nextafterf(x, y))
MG_MATH3(fma, fmaf(x, y, z))
MG_MATH3(mix, x + (y - x) * z)
MG_MATH3(smoothstep, mg_smoothstep_f(x, y, z))
MG_MATH3(fmax3, fmaxf(fmaxf(x, y), z))
MG_MATH3(fmin3, fminf(fminf(x, y), z))
MG_MATH3(fmedian3, fmaxf(fminf(x, y), fminf(fmaxf(x, y), z)))
#undef MG_MATH2
#undef MG_MATH3


// min / max / clamp: integers stay integers.
template<class A, class B, enable_if_t<mg_all_scalar<A, B>::value, int> = 0>
MG_FN typename mg_ctype<A, B>::type min(A a, B b) {
  typedef typename mg_ctype<A, B>::type R;
  if constexpr (is_integral<R>::value) return R(a) < R(b) ? R(a) : R(b);
  else return R(fminf(float(a), float(b)));
}
template<class A, class B, enable_if_t<mg_all_scalar<A, B>::value, int> = 0>
MG_FN typename mg_ctype<A, B>::type max(A a, B b) {
  typedef typename mg_ctype<A, B>::type R;
  if constexpr (is_integral<R>::value) return R(a) < R(b) ? R(b) : R(a);
  else return R(fmaxf(float(a), float(b)));
}
template<class A, class B, class C, enable_if_t<mg_all_scalar<A, B, C>::value, int> = 0>
MG_FN typename mg_ctype<A, B, C>::type clamp(A x, B lo, C hi) {
  typedef typename mg_ctype<A, B, C>::type R;
  if constexpr (is_integral<R>::value) {
    R v = R(x) < R(lo) ? R(lo) : R(x);
    return R(hi) < v ? R(hi) : v;
  } else {
    return R(fminf(fmaxf(float(x), float(lo)), float(hi)));
  }
}
MG_VEC2(min)
MG_VEC2(max)
MG_VEC3(clamp)
// max3 / min3 / median3: as max and min, over three values.
template<class A, class B, class C, enable_if_t<mg_all_scalar<A, B, C>::value, int> = 0>
MG_FN typename mg_ctype<A, B, C>::type max3(A a, B b, C c) { return max(max(a, b), c); }
template<class A, class B, class C, enable_if_t<mg_all_scalar<A, B, C>::value, int> = 0>
MG_FN typename mg_ctype<A, B, C>::type min3(A a, B b, C c) { return min(min(a, b), c); }
template<class A, class B, class C, enable_if_t<mg_all_scalar<A, B, C>::value, int> = 0>
MG_FN typename mg_ctype<A, B, C>::type median3(A a, B b, C c) { return max(min(a, b), min(max(a, b), c)); }
MG_VEC3(max3)
MG_VEC3(min3)
MG_VEC3(median3)

// Functions with output parameters.
MG_FN float modf(float x, float& i) { return modff(x, &i); }
MG_FN half modf(half x, half& i) { float fi; float r = modff(float(x), &fi); i = half(fi); return half(r); }
MG_FN float frexp(float x, int& e) { return frexpf(x, &e); }
MG_FN half frexp(half x, int& e) { return half(frexpf(float(x), &e)); }
MG_FN float ldexp(float x, int k) { return ldexpf(x, k); }
MG_FN half ldexp(half x, int k) { return half(ldexpf(float(x), k)); }
MG_FN float sincos(float x, float& c) { c = cosf(x); return sinf(x); }
MG_FN half sincos(half x, half& c) { c = half(cosf(float(x))); return half(sinf(float(x))); }
#define MG_E_OUT(i, F) F(mg_get<i>(a), mg_get<i>(o))
#define MG_VEC_OUT(NAME, OT)                                                                     \
  template<class T, int N, bool P>                                                               \
  MG_FN vec<T, N> NAME(const mg_basic_vec<T, N, P>& a, vec<OT, N>& o) {                             \
    typedef vec<T, N> R_;                                                                        \
    MG_CWI(R_, N, MG_E_OUT, NAME)                                                                \
  }
MG_VEC_OUT(modf, T)
MG_VEC_OUT(frexp, int)
MG_VEC_OUT(sincos, T)
#undef MG_VEC_OUT
#undef MG_E_OUT
template<class T, int N, bool P, bool Q>
MG_FN vec<T, N> ldexp(const mg_basic_vec<T, N, P>& a, const mg_basic_vec<int, N, Q>& k) {
  vec<T, N> r;
  for (int i = 0; i < N; ++i) r[i] = ldexp(a[i], k[i]);
  return r;
}

// ---------------------------------------------------------------- relational
MG_FN bool all(bool b) { return b; }
MG_FN bool any(bool b) { return b; }
template<class T, int N, bool P> MG_FN bool all(const mg_basic_vec<T, N, P>& v) {
  if constexpr (N == 2) return bool(v.x) && bool(v.y);
  else if constexpr (N == 3) return bool(v.x) && bool(v.y) && bool(v.z);
  else return bool(v.x) && bool(v.y) && bool(v.z) && bool(v.w);
}
template<class T, int N, bool P> MG_FN bool any(const mg_basic_vec<T, N, P>& v) {
  if constexpr (N == 2) return bool(v.x) || bool(v.y);
  else if constexpr (N == 3) return bool(v.x) || bool(v.y) || bool(v.z);
  else return bool(v.x) || bool(v.y) || bool(v.z) || bool(v.w);
}
// select(a, b, c): c ? b : a, component-wise for vectors.
template<class T, enable_if_t<is_arithmetic<T>::value, int> = 0>
MG_FN T select(T a, mg_identity_t<T> b, bool c) { return c ? b : a; }
#define MG_E_SEL(i, F) (mg_get<i>(c) ? mg_get<i>(b) : mg_get<i>(a))
template<class T, int N, bool P, bool Q, bool PC>
MG_FN vec<T, N> select(const mg_basic_vec<T, N, P>& a, const mg_basic_vec<T, N, Q>& b,
                       const mg_basic_vec<bool, N, PC>& c) {
  typedef vec<T, N> R_;
  MG_CWI(R_, N, MG_E_SEL, _)
}
#undef MG_E_SEL
template<class T, int N, bool P, bool Q>
MG_FN vec<T, N> select(const mg_basic_vec<T, N, P>& a, const mg_basic_vec<T, N, Q>& b, bool c) {
  return c ? vec<T, N>(b) : vec<T, N>(a);
}
#define MG_REL2(NAME, OP)                                                                        \
  template<class A, class B, enable_if_t<mg_all_scalar<A, B>::value, int> = 0>                   \
  MG_FN bool NAME(A a, B b) { return a OP b; }                                                   \
  template<class T, int N, bool P, bool Q>                                                       \
  MG_FN vec<bool, N> NAME(const mg_basic_vec<T, N, P>& a, const mg_basic_vec<T, N, Q>& b) {            \
    return a OP b;                                                                               \
  }
// isordered(x, y): neither is NaN; isunordered: one is. By bits (isnan), not x == x, which
// -ffast-math folds to true.
template<class A, class B, enable_if_t<mg_all_scalar<A, B>::value, int> = 0>
MG_FN bool isunordered(A a, B b) { return isnan(a) || isnan(b); }
template<class A, class B, enable_if_t<mg_all_scalar<A, B>::value, int> = 0>
MG_FN bool isordered(A a, B b) { return !isunordered(a, b); }
MG_VEC2(isunordered)
MG_VEC2(isordered)

// ---------------------------------------------------------------- geometric
template<class T, int N, bool P, bool Q>
MG_FN T dot(const mg_basic_vec<T, N, P>& a, const mg_basic_vec<T, N, Q>& b) {
  if constexpr (N == 2) return a.x * b.x + a.y * b.y;
  else if constexpr (N == 3) return a.x * b.x + a.y * b.y + a.z * b.z;
  else return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
}
template<class T, bool P, bool Q>
MG_FN vec<T, 3> cross(const mg_basic_vec<T, 3, P>& a, const mg_basic_vec<T, 3, Q>& b) {
  return vec<T, 3>(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
template<class T, int N, bool P> MG_FN T length_squared(const mg_basic_vec<T, N, P>& a) { return dot(a, a); }
template<class T, int N, bool P> MG_FN T length(const mg_basic_vec<T, N, P>& a) { return sqrt(dot(a, a)); }
template<class T, int N, bool P, bool Q>
MG_FN T distance_squared(const mg_basic_vec<T, N, P>& a, const mg_basic_vec<T, N, Q>& b) {
  vec<T, N> d = a - b;
  return dot(d, d);
}
template<class T, int N, bool P, bool Q>
MG_FN T distance(const mg_basic_vec<T, N, P>& a, const mg_basic_vec<T, N, Q>& b) {
  return sqrt(distance_squared(a, b));
}
template<class T, int N, bool P> MG_FN vec<T, N> normalize(const mg_basic_vec<T, N, P>& a) {
  return a * rsqrt(dot(a, a));
}
template<class T, int N, bool P, bool Q>
MG_FN vec<T, N> reflect(const mg_basic_vec<T, N, P>& i, const mg_basic_vec<T, N, Q>& n) {
  return i - n * (T(2) * dot(n, i));
}
template<class T, int N, bool P, bool Q, class S, enable_if_t<is_arithmetic<S>::value, int> = 0>
MG_FN vec<T, N> refract(const mg_basic_vec<T, N, P>& i, const mg_basic_vec<T, N, Q>& n, S eta_) {
  const T eta = T(eta_);
  const T d = dot(n, i);
  const T k = T(1) - eta * eta * (T(1) - d * d);
  if (k < T(0)) return vec<T, N>(T(0));
  return i * eta - n * (eta * d + sqrt(k));
}
template<class T, int N, bool P, bool Q, bool R>
MG_FN vec<T, N> faceforward(const mg_basic_vec<T, N, P>& n, const mg_basic_vec<T, N, Q>& i,
                            const mg_basic_vec<T, N, R>& nref) {
  return dot(nref, i) < T(0) ? vec<T, N>(n) : vec<T, N>(-n);
}

// ---------------------------------------------------------------- integer functions
template<class T> using mg_int_only = enable_if_t<is_integral<T>::value, int>;
template<class T> struct mg_ubits { typedef conditional_t<sizeof(T) <= 4, uint32_t, uint64_t> type; };

MG_FN int mg_clz32(uint32_t x) {
#if MG_CUDA
  return __clz((int)x);
#else
  return x ? __builtin_clz(x) : 32;
#endif
}
MG_FN int mg_clz64(uint64_t x) {
#if MG_CUDA
  return __clzll((long long)x);
#else
  return x ? __builtin_clzll(x) : 64;
#endif
}
MG_FN int mg_popc32(uint32_t x) {
#if MG_CUDA
  return __popc(x);
#else
  return __builtin_popcount(x);
#endif
}
MG_FN int mg_popc64(uint64_t x) {
#if MG_CUDA
  return __popcll((unsigned long long)x);
#else
  return __builtin_popcountll(x);
#endif
}
MG_FN uint32_t mg_brev32(uint32_t x) {
#if MG_CUDA
  return __brev(x);
#else
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
#endif
}
MG_FN uint64_t mg_brev64(uint64_t x) {
#if MG_CUDA
  return __brevll((unsigned long long)x);
#else
  return ((uint64_t)mg_brev32((uint32_t)x) << 32) | mg_brev32((uint32_t)(x >> 32));
#endif
}

template<class T, mg_int_only<T> = 0> MG_FN T clz(T x) {
  typedef make_unsigned_t<T> U;
  constexpr int W = int(sizeof(T) * 8);
  if constexpr (sizeof(T) <= 4) return T(mg_clz32((uint32_t)(U)x) - (32 - W));
  else return T(mg_clz64((uint64_t)(U)x));
}
template<class T, mg_int_only<T> = 0> MG_FN T ctz(T x) {
  typedef make_unsigned_t<T> U;
  constexpr int W = int(sizeof(T) * 8);
  if ((U)x == 0) return T(W);
  if constexpr (sizeof(T) <= 4) return T(31 - mg_clz32(((uint32_t)(U)x) & (0u - (uint32_t)(U)x)));
  else return T(63 - mg_clz64(((uint64_t)(U)x) & (0ull - (uint64_t)(U)x)));
}
template<class T, mg_int_only<T> = 0> MG_FN T popcount(T x) {
  typedef make_unsigned_t<T> U;
  if constexpr (sizeof(T) <= 4) return T(mg_popc32((uint32_t)(U)x));
  else return T(mg_popc64((uint64_t)(U)x));
}
template<class T, mg_int_only<T> = 0> MG_FN T reverse_bits(T x) {
  typedef make_unsigned_t<T> U;
  constexpr int W = int(sizeof(T) * 8);
  if constexpr (sizeof(T) <= 4) return T(U(mg_brev32((uint32_t)(U)x) >> (32 - W)));
  else return T(mg_brev64((uint64_t)(U)x));
}
template<class T, class S, mg_int_only<T> = 0, mg_int_only<S> = 0> MG_FN T rotate(T x, S n) {
  typedef make_unsigned_t<T> U;
  constexpr unsigned W = unsigned(sizeof(T) * 8);
  const unsigned k = unsigned(n) & (W - 1);
  if (k == 0) return x;
  return T(U(U((U)x << k) | U((U)x >> (W - k))));
}
template<class T, mg_int_only<T> = 0> MG_FN T extract_bits(T x, uint offset, uint bits) {
  typedef make_unsigned_t<T> U;
  typedef typename mg_ubits<T>::type W_t;
  constexpr unsigned W = unsigned(sizeof(W_t) * 8);
  constexpr unsigned TW = unsigned(sizeof(T) * 8);
  if (bits == 0) return T(0);
  if (bits >= TW) return x;
  W_t v = (W_t)(U)x >> offset;
  W_t mask = ((W_t)1 << bits) - 1;
  v &= mask;
  if constexpr (is_signed<T>::value) {
    typedef make_signed_t<W_t> S_t;
    return T(S_t(v << (W - bits)) >> (W - bits));
  } else {
    return T(v);
  }
}
template<class T, mg_int_only<T> = 0> MG_FN T insert_bits(T base, mg_identity_t<T> ins, uint offset, uint bits) {
  typedef make_unsigned_t<T> U;
  typedef typename mg_ubits<T>::type W_t;
  constexpr unsigned TW = unsigned(sizeof(T) * 8);
  if (bits == 0) return base;
  W_t mask = bits >= TW ? ~(W_t)0 : (((W_t)1 << bits) - 1);
  mask <<= offset;
  return T(U(((W_t)(U)base & ~mask) | (((W_t)(U)ins << offset) & mask)));
}
template<class T, mg_int_only<T> = 0> MG_FN T mulhi(T a, mg_identity_t<T> b) {
  constexpr int W = int(sizeof(T) * 8);
  if constexpr (sizeof(T) <= 2) return T((int(a) * int(b)) >> W);
  else if constexpr (sizeof(T) == 4) {
    if constexpr (is_signed<T>::value) return T(((long long)a * (long long)b) >> 32);
    else return T(((unsigned long long)a * (unsigned long long)b) >> 32);
  } else {
#if MG_CUDA
    if constexpr (is_signed<T>::value) return T(__mul64hi((long long)a, (long long)b));
    else return T(__umul64hi((unsigned long long)a, (unsigned long long)b));
#else
    if constexpr (is_signed<T>::value) return T(((__int128)a * (__int128)b) >> 64);
    else return T(((unsigned __int128)a * (unsigned __int128)b) >> 64);
#endif
  }
}
template<class T, mg_int_only<T> = 0> MG_FN T madhi(T a, mg_identity_t<T> b, mg_identity_t<T> c) {
  return T(mulhi(a, b) + c);
}
template<class T, mg_int_only<T> = 0> MG_FN T mul24(T a, mg_identity_t<T> b) { return T(a * b); }
template<class T, mg_int_only<T> = 0> MG_FN T mad24(T a, mg_identity_t<T> b, mg_identity_t<T> c) {
  return T(a * b + c);
}
template<class T, mg_int_only<T> = 0> MG_FN T addsat(T a, mg_identity_t<T> b) {
  if constexpr (sizeof(T) < 8) {
    long long r = (long long)a + (long long)b;
    if (r > (long long)numeric_limits<T>::max()) return numeric_limits<T>::max();
    if (r < (long long)numeric_limits<T>::min()) return numeric_limits<T>::min();
    return T(r);
  } else if constexpr (is_signed<T>::value) {
    typedef make_unsigned_t<T> U;
    T r = T(U(U(a) + U(b)));
    if (((a ^ r) & (b ^ r)) < 0) return a < 0 ? numeric_limits<T>::min() : numeric_limits<T>::max();
    return r;
  } else {
    T r = T(a + b);
    return r < a ? numeric_limits<T>::max() : r;
  }
}
template<class T, mg_int_only<T> = 0> MG_FN T subsat(T a, mg_identity_t<T> b) {
  if constexpr (sizeof(T) < 8) {
    long long r = (long long)a - (long long)b;
    if (r > (long long)numeric_limits<T>::max()) return numeric_limits<T>::max();
    if (r < (long long)numeric_limits<T>::min()) return numeric_limits<T>::min();
    return T(r);
  } else if constexpr (is_signed<T>::value) {
    typedef make_unsigned_t<T> U;
    T r = T(U(U(a) - U(b)));
    if (((a ^ b) & (a ^ r)) < 0) return a < 0 ? numeric_limits<T>::min() : numeric_limits<T>::max();
    return r;
  } else {
    return a < b ? T(0) : T(a - b);
  }
}
// madsat: a * b + c, saturated. Below 64 bits the exact value fits a (unsigned) long long;
// 64-bit operands take the 128-bit product from mulhi and the low half, then add c with carry.
template<class T, mg_int_only<T> = 0> MG_FN T madsat(T a, mg_identity_t<T> b, mg_identity_t<T> c) {
  if constexpr (sizeof(T) < 8 && is_signed<T>::value) {
    const long long r = (long long)a * (long long)b + (long long)c;
    if (r > (long long)numeric_limits<T>::max()) return numeric_limits<T>::max();
    if (r < (long long)numeric_limits<T>::min()) return numeric_limits<T>::min();
    return T(r);
  } else if constexpr (sizeof(T) < 8) {
    const unsigned long long r = (unsigned long long)a * (unsigned long long)b + (unsigned long long)c;
    return r > (unsigned long long)numeric_limits<T>::max() ? numeric_limits<T>::max() : T(r);
  } else {
    typedef unsigned long long U;
    const U lo = U(a) * U(b), sum = lo + U(c);
    const U carry = sum < lo ? 1u : 0u;
    if constexpr (is_signed<T>::value) {
      // hi:sum is the 128-bit two's-complement value; it fits in 64 bits when hi is sum's sign.
      const long long hi = (long long)mulhi(a, b) + (c < 0 ? -1 : 0) + (long long)carry;
      const long long top = (long long)sum < 0 ? -1 : 0;
      if (hi == top) return T(sum);
      return hi < 0 ? numeric_limits<T>::min() : numeric_limits<T>::max();
    } else {
      return (U(mulhi(a, b)) | carry) != 0u ? numeric_limits<T>::max() : T(sum);
    }
  }
}
template<class T, mg_int_only<T> = 0> MG_FN T hadd(T a, mg_identity_t<T> b) {
  return T((a >> 1) + (b >> 1) + (a & b & 1));
}
template<class T, mg_int_only<T> = 0> MG_FN T rhadd(T a, mg_identity_t<T> b) {
  return T((a >> 1) + (b >> 1) + ((a | b) & 1));
}
template<class T, mg_int_only<T> = 0> MG_FN make_unsigned_t<T> absdiff(T a, mg_identity_t<T> b) {
  typedef make_unsigned_t<T> U;
  return a > b ? U(U(a) - U(b)) : U(U(b) - U(a));
}
MG_VEC1(clz)
MG_VEC1(ctz)
MG_VEC1(popcount)
MG_VEC1(reverse_bits)
MG_VEC2(rotate)
MG_VEC2(mulhi)
MG_VEC3(madhi)
MG_VEC2(mul24)
MG_VEC3(mad24)
MG_VEC2(addsat)
MG_VEC2(subsat)
MG_VEC3(madsat)
MG_VEC2(hadd)
MG_VEC2(rhadd)
MG_VEC2(absdiff)
template<class T, int N, bool P> MG_FN vec<T, N> extract_bits(const mg_basic_vec<T, N, P>& x, uint o, uint b) {
  vec<T, N> r;
  for (int i = 0; i < N; ++i) r[i] = extract_bits(x[i], o, b);
  return r;
}
template<class T, int N, bool P, bool Q>
MG_FN vec<T, N> insert_bits(const mg_basic_vec<T, N, P>& x, const mg_basic_vec<T, N, Q>& y, uint o, uint b) {
  vec<T, N> r;
  for (int i = 0; i < N; ++i) r[i] = insert_bits(x[i], y[i], o, b);
  return r;
}

// ---------------------------------------------------------------- bit casts
template<class To, class From> MG_FN To as_type(const From& f) {
  static_assert(sizeof(To) == sizeof(From), "as_type: sizes differ");
#if MG_CUDA
  union { From f; To t; } u = {f};
  return u.t;
#else
  To t;
  __builtin_memcpy(&t, &f, sizeof(To));
  return t;
#endif
}

// metal::fast and metal::precise: namespaces of their own, as in Apple's metal_stdlib, so a
// library may add overloads there (MLX declares bfloat ones); their functions are metal's
// (the whole program uses one math mode). Apple's sets: the math functions, and of the others
// only clamp, saturate, distance, length and normalize (no fast::mix, fast::step ...).
#define MG_MATH_MODE_NAMES                                                                       \
  using ::metal::abs; using ::metal::acos; using ::metal::acosh;                                 \
  using ::metal::asin; using ::metal::asinh; using ::metal::atan;                                \
  using ::metal::atan2; using ::metal::atanh; using ::metal::cbrt;                               \
  using ::metal::ceil; using ::metal::clamp; using ::metal::copysign; using ::metal::cos;        \
  using ::metal::cosh; using ::metal::cospi; using ::metal::distance; using ::metal::divide;     \
  using ::metal::exp; using ::metal::exp10; using ::metal::exp2; using ::metal::fabs;            \
  using ::metal::fdim; using ::metal::floor; using ::metal::fma; using ::metal::fmax;            \
  using ::metal::fmax3; using ::metal::fmedian3; using ::metal::fmin; using ::metal::fmin3;      \
  using ::metal::fmod; using ::metal::fract; using ::metal::frexp; using ::metal::ldexp;         \
  using ::metal::ilogb;                                                                          \
  using ::metal::length; using ::metal::log; using ::metal::log10; using ::metal::log2;          \
  using ::metal::logb; using ::metal::max; using ::metal::max3; using ::metal::median3;         \
  using ::metal::min; using ::metal::min3; using ::metal::modf;                                 \
  using ::metal::nextafter; using ::metal::normalize; using ::metal::pow; using ::metal::powr;   \
  using ::metal::rint; using ::metal::round; using ::metal::rsqrt; using ::metal::saturate;      \
  using ::metal::sin; using ::metal::sincos; using ::metal::sinh;                               \
  using ::metal::sinpi; using ::metal::sqrt;                                                     \
  using ::metal::tan; using ::metal::tanh; using ::metal::tanpi; using ::metal::trunc;
namespace fast { MG_MATH_MODE_NAMES }
namespace precise { MG_MATH_MODE_NAMES }
#undef MG_MATH_MODE_NAMES

} // namespace metal

#undef MG_VEC1
#undef MG_VEC2
#undef MG_VEC3
#undef MG_CWI
#undef MG_E_V1
#undef MG_E_V2
#undef MG_E_V3
