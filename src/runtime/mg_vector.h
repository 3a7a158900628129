// metalgpu runtime: vec<T,N> and packed_vec<T,N> (N = 2, 3, 4).
// Both are the same template mg_basic_vec<T,N,Packed>; vectors are plain aggregates of x, y, z, w.
#pragma once

namespace metal {

template<class T, int N, bool P> struct mg_basic_vec;
template<class T, int N> using vec = mg_basic_vec<T, N, false>;
template<class T, int N> using packed_vec = mg_basic_vec<T, N, true>;

template<class T, int N, bool P> struct is_vector<mg_basic_vec<T, N, P>> : true_type {};

// Vector info for any type: scalars have n == 1.
template<class X> struct mg_vinfo {
  static constexpr bool is_vec = false;
  static constexpr int n = is_arithmetic<X>::value ? 1 : 0;
  typedef X elem;
};
template<class T, int N, bool P> struct mg_vinfo<mg_basic_vec<T, N, P>> {
  static constexpr bool is_vec = true;
  static constexpr int n = N;
  typedef T elem;
};

template<int... I> struct mg_iseq {};
template<int N> struct mg_make_iseq;
template<> struct mg_make_iseq<1> { typedef mg_iseq<0> type; };
template<> struct mg_make_iseq<2> { typedef mg_iseq<0, 1> type; };
template<> struct mg_make_iseq<3> { typedef mg_iseq<0, 1, 2> type; };
template<> struct mg_make_iseq<4> { typedef mg_iseq<0, 1, 2, 3> type; };

// Component I of a vector (reference), by constant index.
template<int I, class V> MG_FN constexpr auto& mg_get(V& v) {
  if constexpr (I == 0) return v.x;
  else if constexpr (I == 1) return v.y;
  else if constexpr (I == 2) return v.z;
  else return v.w;
}
// Component I of a vector, or the scalar itself (broadcast).
template<int I, class X> MG_FN constexpr auto mg_comp(const X& x) {
  if constexpr (mg_vinfo<X>::is_vec) return mg_get<I>(x);
  else return x;
}
// Component I of the concatenation of the parts.
template<int I, class A, class... R> MG_FN constexpr auto mg_pick(const A& a, const R&... r) {
  if constexpr (I < mg_vinfo<A>::n) return mg_comp<I>(a);
  else return mg_pick<I - mg_vinfo<A>::n>(r...);
}
template<int N, class... A> struct mg_parts_ok {
  static constexpr bool value =
      sizeof...(A) >= 2 && ((mg_vinfo<A>::n >= 1) && ...) && (0 + ... + mg_vinfo<A>::n) == N;  // binary fold: A may be empty
};

// `uint4 v = {a, b, c};`: fewer scalars than components, the rest zero (as Metal's vectors).
template<int N, class... A> struct mg_partial_ok {
  static constexpr bool value = sizeof...(A) >= 2 && int(sizeof...(A)) < N &&
                                ((mg_vinfo<A>::n == 1 && !mg_vinfo<A>::is_vec) && ...);
};
struct mg_partial_tag {};

template<class T, int... I> struct mg_swz_type { typedef vec<T, sizeof...(I)> type; };
template<class T, int I> struct mg_swz_type<T, I> { typedef T type; };

// Write proxy for a multi-component swizzle target: v.template swz_ref<1,0>() = ...
template<class V, int... I> struct mg_swizzle_ref {
  typedef typename V::value_type T;
  typedef vec<T, sizeof...(I)> value_type;
  V& v;
  MG_FN operator value_type() const { return value_type(mg_get<I>(v)...); }
  MG_FN value_type get() const { return value_type(mg_get<I>(v)...); }
  template<int... K> MG_FN void mg_assign(const value_type& o, mg_iseq<K...>) {
    ((mg_get<I>(v) = mg_get<K>(o)), ...);
  }
  MG_FN mg_swizzle_ref& operator=(const value_type& o) {
    mg_assign(o, typename mg_make_iseq<sizeof...(I)>::type());
    return *this;
  }
  MG_FN mg_swizzle_ref& operator=(const mg_swizzle_ref& o) { return *this = o.get(); }
  template<class W, int... J> MG_FN mg_swizzle_ref& operator=(const mg_swizzle_ref<W, J...>& o) {
    return *this = value_type(o.get());
  }
  template<class S, enable_if_t<is_arithmetic<S>::value, int> = 0>
  MG_FN mg_swizzle_ref& operator=(S s) { return *this = value_type(s); }
  template<class U> MG_FN mg_swizzle_ref& operator+=(const U& o) { return *this = value_type(get() + o); }
  template<class U> MG_FN mg_swizzle_ref& operator-=(const U& o) { return *this = value_type(get() - o); }
  template<class U> MG_FN mg_swizzle_ref& operator*=(const U& o) { return *this = value_type(get() * o); }
  template<class U> MG_FN mg_swizzle_ref& operator/=(const U& o) { return *this = value_type(get() / o); }
  template<class U> MG_FN mg_swizzle_ref& operator%=(const U& o) { return *this = value_type(get() % o); }
  template<class U> MG_FN mg_swizzle_ref& operator&=(const U& o) { return *this = value_type(get() & o); }
  template<class U> MG_FN mg_swizzle_ref& operator|=(const U& o) { return *this = value_type(get() | o); }
  template<class U> MG_FN mg_swizzle_ref& operator^=(const U& o) { return *this = value_type(get() ^ o); }
  template<class U> MG_FN mg_swizzle_ref& operator<<=(const U& o) { return *this = value_type(get() << o); }
  template<class U> MG_FN mg_swizzle_ref& operator>>=(const U& o) { return *this = value_type(get() >> o); }
};

#define MG_COMMA ,
// Metal's vectors are aligned to their size (a 3-vector to 4 components) inside structs and
// arrays, and Apple GPUs still load and store them at any address aligned to the element: ggml's
// mul_mm writes rows through `(device float4 *)` at 8-byte aligned addresses. A C++ compiler
// assumes a pointer to a 16-byte aligned type is 16-byte aligned and uses moves that fault
// otherwise, so on the cpu a vector is aligned like its element, and the layout alignment is
// restored where layout is seen: on every struct member (mg_layout_align, which the translator
// writes as alignas) and by a 3-vector's padding. On CUDA vectors keep their size's alignment
// (vector loads; a misaligned one ends the context, which debug mode reports first), unless
// METALGPU_CUDA_ELEMENT_ALIGNED_VECTORS=1 asks for the cpu's rule (MG_CUDA_ELEMENT_ALIGNED_VECTORS):
// then the loads stay vector loads only where the compiler sees the alignment - a kernel's
// buffers and threadgroup memory are known 16-byte aligned (mg_kernel.h, mg_cuda_exec.h) - and
// on an H100 ggml's soft_max, rms_norm and mul_mm ran 1.3-1.4x slower.
template<class T> constexpr size_t mg_vec_layout_align(int n) { return sizeof(T) * (n == 3 ? 4 : n); }
#if MG_CUDA && !MG_CUDA_ELEMENT_ALIGNED_VECTORS
#define MG_VEC_ALIGN(T, N, P) alignas((P) ? alignof(T) : mg_vec_layout_align<T>(N))
#else
#define MG_VEC_ALIGN(T, N, P) alignas(alignof(T))
#endif

#define MG_VEC_COMMON(N, INIT_S, INIT_PICK, INIT_O, INIT_CONV)                                   \
  typedef T value_type;                                                                          \
  static constexpr int mg_n = N;                                                                 \
  mg_basic_vec() = default;                                                                         \
  template<class S, enable_if_t<is_arithmetic<S>::value, int> = 0>                               \
  MG_FN constexpr mg_basic_vec(S s) : INIT_S {}                                                     \
  template<class... A, enable_if_t<mg_parts_ok<N, A...>::value, int> = 0>                        \
  MG_FN constexpr mg_basic_vec(const A&... a) : INIT_PICK {}                                        \
  template<class... A, enable_if_t<mg_partial_ok<N, A...>::value, int> = 0>                      \
  MG_FN constexpr mg_basic_vec(const A&... a)                                                       \
      : mg_basic_vec(mg_partial_tag(), typename mg_make_iseq<N - int(sizeof...(A))>::type(), a...) {} \
  template<int... Z, class... A>                                                                 \
  MG_FN constexpr mg_basic_vec(mg_partial_tag, mg_iseq<Z...>, const A&... a)                        \
      : mg_basic_vec(T(a)..., T(Z * 0)...) {}                                                       \
  MG_FN constexpr mg_basic_vec(const mg_basic_vec<T, N, !mg_packed>& o) : INIT_O {}                            \
  template<class U, bool Q, enable_if_t<!is_same<U, T>::value, int> = 0>                         \
  MG_FN constexpr explicit mg_basic_vec(const mg_basic_vec<U, N, Q>& o) : INIT_CONV {}                 \
  MG_FN T& operator[](int i) { return reinterpret_cast<T*>(this)[i]; }                           \
  MG_FN const T& operator[](int i) const { return reinterpret_cast<const T*>(this)[i]; }        \
  template<int... I> MG_FN constexpr typename mg_swz_type<T, I...>::type swz() const {           \
    return typename mg_swz_type<T, I...>::type(mg_get<I>(*this)...);                             \
  }                                                                                              \
  template<int... I> MG_FN mg_swizzle_ref<mg_basic_vec, I...> swz_ref() {                           \
    return mg_swizzle_ref<mg_basic_vec, I...>{*this};                                               \
  }                                                                                              \
  template<class U> MG_FN mg_basic_vec& operator+=(const U& o) { return *this = *this + o; }        \
  template<class U> MG_FN mg_basic_vec& operator-=(const U& o) { return *this = *this - o; }        \
  template<class U> MG_FN mg_basic_vec& operator*=(const U& o) { return *this = *this * o; }        \
  template<class U> MG_FN mg_basic_vec& operator/=(const U& o) { return *this = *this / o; }        \
  template<class U> MG_FN mg_basic_vec& operator%=(const U& o) { return *this = *this % o; }        \
  template<class U> MG_FN mg_basic_vec& operator&=(const U& o) { return *this = *this & o; }        \
  template<class U> MG_FN mg_basic_vec& operator|=(const U& o) { return *this = *this | o; }        \
  template<class U> MG_FN mg_basic_vec& operator^=(const U& o) { return *this = *this ^ o; }        \
  template<class U> MG_FN mg_basic_vec& operator<<=(const U& o) { return *this = *this << o; }      \
  template<class U> MG_FN mg_basic_vec& operator>>=(const U& o) { return *this = *this >> o; }      \
  MG_FN mg_basic_vec& operator++() { return *this += 1; }                                           \
  MG_FN mg_basic_vec& operator--() { return *this -= 1; }                                           \
  MG_FN mg_basic_vec operator++(int) { mg_basic_vec t = *this; *this += 1; return t; }                 \
  MG_FN mg_basic_vec operator--(int) { mg_basic_vec t = *this; *this -= 1; return t; }

template<class T, bool P> struct MG_VEC_ALIGN(T, 2, P) mg_basic_vec<T, 2, P> {
  T x, y;
  static constexpr bool mg_packed = P;
  MG_VEC_COMMON(2, x(T(s)) MG_COMMA y(T(s)),
                x(T(mg_pick<0>(a...))) MG_COMMA y(T(mg_pick<1>(a...))),
                x(o.x) MG_COMMA y(o.y),
                x(T(o.x)) MG_COMMA y(T(o.y)))
};

template<class T> struct MG_VEC_ALIGN(T, 3, true) mg_basic_vec<T, 3, true> {
  T x, y, z;
  static constexpr bool mg_packed = true;
  MG_VEC_COMMON(3, x(T(s)) MG_COMMA y(T(s)) MG_COMMA z(T(s)),
                x(T(mg_pick<0>(a...))) MG_COMMA y(T(mg_pick<1>(a...))) MG_COMMA
                    z(T(mg_pick<2>(a...))),
                x(o.x) MG_COMMA y(o.y) MG_COMMA z(o.z),
                x(T(o.x)) MG_COMMA y(T(o.y)) MG_COMMA z(T(o.z)))
};

// A 3-vector takes the room of four components (Metal's sizeof(float3) is 16).
template<class T> struct MG_VEC_ALIGN(T, 3, false) mg_basic_vec<T, 3, false> {
  T x, y, z, mg_pad;
  static constexpr bool mg_packed = false;
  MG_VEC_COMMON(3, x(T(s)) MG_COMMA y(T(s)) MG_COMMA z(T(s)) MG_COMMA mg_pad(T(0)),
                x(T(mg_pick<0>(a...))) MG_COMMA y(T(mg_pick<1>(a...))) MG_COMMA
                    z(T(mg_pick<2>(a...))) MG_COMMA mg_pad(T(0)),
                x(o.x) MG_COMMA y(o.y) MG_COMMA z(o.z) MG_COMMA mg_pad(T(0)),
                x(T(o.x)) MG_COMMA y(T(o.y)) MG_COMMA z(T(o.z)) MG_COMMA mg_pad(T(0)))
};

template<class T, bool P> struct MG_VEC_ALIGN(T, 4, P) mg_basic_vec<T, 4, P> {
  T x, y, z, w;
  static constexpr bool mg_packed = P;
  MG_VEC_COMMON(4, x(T(s)) MG_COMMA y(T(s)) MG_COMMA z(T(s)) MG_COMMA w(T(s)),
                x(T(mg_pick<0>(a...))) MG_COMMA y(T(mg_pick<1>(a...))) MG_COMMA
                    z(T(mg_pick<2>(a...))) MG_COMMA w(T(mg_pick<3>(a...))),
                x(o.x) MG_COMMA y(o.y) MG_COMMA z(o.z) MG_COMMA w(o.w),
                x(T(o.x)) MG_COMMA y(T(o.y)) MG_COMMA z(T(o.z)) MG_COMMA w(T(o.w)))
};
#undef MG_VEC_COMMON
#undef MG_VEC_ALIGN

// Metal's alignment of a type as a struct member or array element: alignof, except that a
// vector's (and so a matrix's) is its size on every backend (see MG_VEC_ALIGN).
template<class X> struct mg_layout_align_of { static constexpr size_t value = alignof(X); };
template<class X, size_t N> struct mg_layout_align_of<X[N]> : mg_layout_align_of<X> {};
template<class T, int N> struct mg_layout_align_of<mg_basic_vec<T, N, false>> {
  static constexpr size_t value = mg_vec_layout_align<T>(N);
};
template<class X> constexpr size_t mg_layout_align = mg_layout_align_of<remove_cv_t<X>>::value;
#define MG_ALIGNOF(...) (::metal::mg_layout_align<__VA_ARGS__>)

// Component-wise construction: E(c, OP) is evaluated for c in x, y, z(, w).
#define MG_CW(R, N, E, OP)                                                   \
  if constexpr ((N) == 2) return R(E(x, OP), E(y, OP));                      \
  else if constexpr ((N) == 3) return R(E(x, OP), E(y, OP), E(z, OP));       \
  else return R(E(x, OP), E(y, OP), E(z, OP), E(w, OP));
#define MG_E_VV(c, OP) (a.c OP b.c)
#define MG_E_VS(c, OP) (a.c OP s)
#define MG_E_SV(c, OP) (s OP b.c)
#define MG_E_U(c, OP) (OP a.c)

#define MG_VEC_BINOP(OP, ET)                                                                     \
  template<class T, int N, bool P, bool Q>                                                       \
  MG_FN vec<ET, N> operator OP(const mg_basic_vec<T, N, P>& a, const mg_basic_vec<T, N, Q>& b) {       \
    typedef vec<ET, N> R;                                                                        \
    MG_CW(R, N, MG_E_VV, OP)                                                                     \
  }                                                                                              \
  template<class T, int N, bool P, class S, enable_if_t<is_arithmetic<S>::value, int> = 0>       \
  MG_FN vec<ET, N> operator OP(const mg_basic_vec<T, N, P>& a, S s0) {                              \
    typedef vec<ET, N> R;                                                                        \
    const T s = T(s0);                                                                           \
    MG_CW(R, N, MG_E_VS, OP)                                                                     \
  }                                                                                              \
  template<class T, int N, bool P, class S, enable_if_t<is_arithmetic<S>::value, int> = 0>       \
  MG_FN vec<ET, N> operator OP(S s0, const mg_basic_vec<T, N, P>& b) {                              \
    typedef vec<ET, N> R;                                                                        \
    const T s = T(s0);                                                                           \
    MG_CW(R, N, MG_E_SV, OP)                                                                     \
  }
MG_VEC_BINOP(+, T)
MG_VEC_BINOP(-, T)
MG_VEC_BINOP(*, T)
MG_VEC_BINOP(/, T)
MG_VEC_BINOP(%, T)
MG_VEC_BINOP(&, T)
MG_VEC_BINOP(|, T)
MG_VEC_BINOP(^, T)
MG_VEC_BINOP(<<, T)
MG_VEC_BINOP(>>, T)
MG_VEC_BINOP(==, bool)
MG_VEC_BINOP(!=, bool)
MG_VEC_BINOP(<, bool)
MG_VEC_BINOP(<=, bool)
MG_VEC_BINOP(>, bool)
MG_VEC_BINOP(>=, bool)
MG_VEC_BINOP(&&, bool)
MG_VEC_BINOP(||, bool)
#undef MG_VEC_BINOP

template<class T, int N, bool P> MG_FN vec<T, N> operator+(const mg_basic_vec<T, N, P>& a) { return a; }
template<class T, int N, bool P> MG_FN vec<T, N> operator-(const mg_basic_vec<T, N, P>& a) {
  typedef vec<T, N> R;
  MG_CW(R, N, MG_E_U, -)
}
template<class T, int N, bool P> MG_FN vec<T, N> operator~(const mg_basic_vec<T, N, P>& a) {
  typedef vec<T, N> R;
  MG_CW(R, N, MG_E_U, ~)
}
template<class T, int N, bool P> MG_FN vec<bool, N> operator!(const mg_basic_vec<T, N, P>& a) {
  typedef vec<bool, N> R;
  MG_CW(R, N, MG_E_U, !)
}

// Typedefs: float2 .. ulong4, bool2 .. bool4, packed_float2 .. packed_ulong4.
#define MG_VEC_TYPEDEFS(T, NAME)                                                                 \
  typedef vec<T, 2> NAME##2;                                                                     \
  typedef vec<T, 3> NAME##3;                                                                     \
  typedef vec<T, 4> NAME##4;                                                                     \
  typedef packed_vec<T, 2> packed_##NAME##2;                                                     \
  typedef packed_vec<T, 3> packed_##NAME##3;                                                     \
  typedef packed_vec<T, 4> packed_##NAME##4;
MG_VEC_TYPEDEFS(char, char)
MG_VEC_TYPEDEFS(uchar, uchar)
MG_VEC_TYPEDEFS(short, short)
MG_VEC_TYPEDEFS(ushort, ushort)
MG_VEC_TYPEDEFS(int, int)
MG_VEC_TYPEDEFS(uint, uint)
MG_VEC_TYPEDEFS(long, long)
MG_VEC_TYPEDEFS(ulong, ulong)
MG_VEC_TYPEDEFS(half, half)
MG_VEC_TYPEDEFS(bfloat, bfloat)
MG_VEC_TYPEDEFS(float, float)
typedef vec<bool, 2> bool2;
typedef vec<bool, 3> bool3;
typedef vec<bool, 4> bool4;

} // namespace metal

namespace __metalgpu {
// A divisor as the cpu backend's generated code uses it (src/msl/safe_division.hpp): an integer
// 0 becomes 1, so `x / 0` gives some value as on a GPU instead of trapping; anything else is
// returned as it is. Constant divisors fold: `i / 4` stays a shift.
template <class T> MG_FN constexpr T nz(T x) {
  if constexpr (metal::is_integral<T>::value) {
    return x == T(0) ? T(1) : x;
  } else if constexpr (metal::mg_vinfo<T>::is_vec) {
    if constexpr (metal::is_integral<typename metal::mg_vinfo<T>::elem>::value) {
      T r = x;
      for (int k = 0; k < metal::mg_vinfo<T>::n; ++k)
        if (r[k] == 0) r[k] = 1;
      return r;
    } else {
      return x;
    }
  } else {
    return x;
  }
}
}  // namespace __metalgpu
// Debug mode too: real kernels compute quotients by 0 that they never use (ggml's flash
// attention without a mask), which a fault would report as a bug; and on AArch64 the division
// would not even trap.
#if MG_CUDA
#define MG_NZ(...) (__VA_ARGS__)
#else
#define MG_NZ(...) ::__metalgpu::nz(__VA_ARGS__)
#endif

// Global names. Under CUDA the built-in vector types (::float4 ...) own these names: there the
// translated code must live in namespace metal_user (see mg_constants.h).
#if !MG_CUDA
#define MG_VEC_USING(NAME)                                                                       \
  using metal::NAME##2; using metal::NAME##3; using metal::NAME##4;                              \
  using metal::packed_##NAME##2; using metal::packed_##NAME##3; using metal::packed_##NAME##4;
MG_VEC_USING(char)
MG_VEC_USING(uchar)
MG_VEC_USING(short)
MG_VEC_USING(ushort)
MG_VEC_USING(int)
MG_VEC_USING(uint)
MG_VEC_USING(long)
MG_VEC_USING(ulong)
MG_VEC_USING(half)
MG_VEC_USING(bfloat)
MG_VEC_USING(float)
using metal::bool2;
using metal::bool3;
using metal::bool4;
#undef MG_VEC_USING
#endif
#undef MG_VEC_TYPEDEFS
