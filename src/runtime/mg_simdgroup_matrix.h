// simdgroup_matrix<T, 8, 8>: an 8x8 matrix spread over the 32 lanes of a SIMD group, two
// elements per lane in Apple's layout: lane l holds row ((l>>1)&3) + 4*((l>>4)&1), columns c and
// c+1 with c = 2*(l&1) + 4*((l>>3)&1). Loads and stores are per lane; products gather all 64
// elements of each operand with one SIMD-group exchange.
#pragma once

namespace metal {

MG_FN uint mg_sgm_row(uint lane) { return ((lane >> 1) & 3u) + 4u * ((lane >> 4) & 1u); }
MG_FN uint mg_sgm_col(uint lane) { return 2u * (lane & 1u) + 4u * ((lane >> 3) & 1u); }

// uniform<T>: a value the same in every thread (a hint to Apple's compiler); the value itself.
template <class T> using uniform = T;
template <class T> MG_FN constexpr T make_uniform(T value) { return value; }

template <class T, int Cols, int Rows> struct simdgroup_matrix;

template <class T> struct simdgroup_matrix<T, 8, 8> {
  typedef T value_type;
  vec<T, 2> mg_e;

  simdgroup_matrix() = default;
  // A diagonal matrix with `d` on the diagonal.
  MG_FN explicit simdgroup_matrix(T d) {
    const uint lane = __metalgpu::simd_lane_id(), r = mg_sgm_row(lane), c = mg_sgm_col(lane);
    mg_e.x = r == c ? d : T(0);
    mg_e.y = r == c + 1 ? d : T(0);
  }
  MG_FN vec<T, 2>& thread_elements() { return mg_e; }
  MG_FN const vec<T, 2>& thread_elements() const { return mg_e; }
};

typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;
typedef simdgroup_matrix<bfloat, 8, 8> simdgroup_bfloat8x8;

template <class T, int Cols, int Rows = Cols>
MG_FN simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(const T value) {
  simdgroup_matrix<T, Cols, Rows> m;
  m.mg_e = vec<T, 2>(value);
  return m;
}

// Element (row r, col c) is src[(origin.y + r) * elements_per_row + origin.x + c]; transposed,
// the matrix read that way is transposed.
template <class T, class U>
MG_FN void simdgroup_load(simdgroup_matrix<T, 8, 8>& d, const U* src, ulong elements_per_row = 8,
                          ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
  const uint lane = __metalgpu::simd_lane_id(), r = mg_sgm_row(lane), c = mg_sgm_col(lane);
  const U* base = src + matrix_origin.y * elements_per_row + matrix_origin.x;
  if (!transpose_matrix) {
    d.mg_e.x = T(base[r * elements_per_row + c]);
    d.mg_e.y = T(base[r * elements_per_row + c + 1]);
  } else {
    d.mg_e.x = T(base[c * elements_per_row + r]);
    d.mg_e.y = T(base[(c + 1) * elements_per_row + r]);
  }
}

template <class T, class U>
MG_FN void simdgroup_store(const simdgroup_matrix<T, 8, 8>& a, U* dst, ulong elements_per_row = 8,
                           ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
  const uint lane = __metalgpu::simd_lane_id(), r = mg_sgm_row(lane), c = mg_sgm_col(lane);
  U* base = dst + matrix_origin.y * elements_per_row + matrix_origin.x;
  if (!transpose_matrix) {
    base[r * elements_per_row + c] = U(a.mg_e.x);
    base[r * elements_per_row + c + 1] = U(a.mg_e.y);
  } else {
    base[c * elements_per_row + r] = U(a.mg_e.x);
    base[(c + 1) * elements_per_row + r] = U(a.mg_e.y);
  }
}

}  // namespace metal

#if !MG_CUDA

namespace __metalgpu {
namespace sgm {

template <class TA, class TB, class TC> struct mma_in {
  const metal::vec<TA, 2>* a;
  const metal::vec<TB, 2>* b;
  const metal::vec<TC, 2>* c;  // null: no accumulator
};

// Gathers the 64 elements of a matrix from the active lanes (missing lanes read as 0).
template <class T, class Get> MG_FN void gather(const simd_call& call, Get get, float (&m)[8][8]) {
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) m[i][j] = 0.0f;
  for (unsigned l = 0; l < 32; ++l) {
    if (!(call.active >> l & 1u)) continue;
    const metal::vec<T, 2>* e = get(l);
    if (!e) continue;
    const unsigned r = metal::mg_sgm_row(l), c = metal::mg_sgm_col(l);
    m[r][c] = float(e->x);
    m[r][c + 1] = float(e->y);
  }
}

template <class TD, class TA, class TB, class TC> void mma_fn(simd_call& call) {
  typedef mma_in<TA, TB, TC> In;
  float a[8][8], b[8][8], c[8][8];
  gather<TA>(call, [&](unsigned l) { return static_cast<const In*>(call.lane[l].in)->a; }, a);
  gather<TB>(call, [&](unsigned l) { return static_cast<const In*>(call.lane[l].in)->b; }, b);
  gather<TC>(call, [&](unsigned l) { return static_cast<const In*>(call.lane[l].in)->c; }, c);
  float d[8][8];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) {
      float s = c[i][j];
      for (int k = 0; k < 8; ++k) s += a[i][k] * b[k][j];
      d[i][j] = s;
    }
  for (unsigned l = 0; l < 32; ++l) {
    if (!(call.active >> l & 1u)) continue;
    const unsigned r = metal::mg_sgm_row(l), col = metal::mg_sgm_col(l);
    metal::vec<TD, 2>* out = static_cast<metal::vec<TD, 2>*>(call.lane[l].out);
    out->x = TD(d[r][col]);
    out->y = TD(d[r][col + 1]);
  }
}

}  // namespace sgm
}  // namespace __metalgpu

namespace metal {

// d = a * b + c (d may be any of a, b, c).
template <class TD, class TA, class TB, class TC>
MG_FN void simdgroup_multiply_accumulate(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                                         const simdgroup_matrix<TB, 8, 8>& b,
                                         const simdgroup_matrix<TC, 8, 8>& c) {
  __metalgpu::sgm::mma_in<TA, TB, TC> in{&a.mg_e, &b.mg_e, &c.mg_e};
  vec<TD, 2> r;
  __metalgpu::simd_exchange(&in, &r, 0, &__metalgpu::sgm::mma_fn<TD, TA, TB, TC>);
  d.mg_e = r;
}

// d = a * b.
template <class TD, class TA, class TB>
MG_FN void simdgroup_multiply(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                              const simdgroup_matrix<TB, 8, 8>& b) {
  __metalgpu::sgm::mma_in<TA, TB, TD> in{&a.mg_e, &b.mg_e, nullptr};
  vec<TD, 2> r;
  __metalgpu::simd_exchange(&in, &r, 0, &__metalgpu::sgm::mma_fn<TD, TA, TB, TD>);
  d.mg_e = r;
}
}  // namespace metal

// A kernel run as work-item loops (mg_cpu_wil.h) calls simdgroup_load, simdgroup_store and the
// products once per SIMD group: each matrix argument is then the variable's copies in all the
// group's lanes (wi_lanes), and the operation reads and writes every lane's two elements
// itself - no exchange, no pass over the lanes per call.
namespace __metalgpu {
namespace cpu {

// The copies of a per-thread variable of type T in the lanes of one SIMD group: lane l's at
// p + l * stride, for the `width` lanes the group has (fewer than 32 at a group's edge).
template <class T> struct wi_lanes {
  unsigned char* p;
  size_t stride;
  unsigned width;
  MG_FN T& lane(unsigned l) const { return *reinterpret_cast<T*>(p + l * stride); }
};
// An array of matrices: indexing picks the same element in every lane's copy.
template <class E, size_t N> struct wi_lanes<E[N]> {
  unsigned char* p;
  size_t stride;
  unsigned width;
  template <class I> MG_FN wi_lanes<E> operator[](I k) const { return {p + size_t(k) * sizeof(E), stride, width}; }
};

template <class T> struct holds_sgm : metal::false_type {};
template <class T> struct holds_sgm<metal::simdgroup_matrix<T, 8, 8>> : metal::true_type {};
template <class E, size_t N> struct holds_sgm<E[N]> : holds_sgm<E> {};

// How a statement run once per SIMD group (its first thread, index i) sees per-thread variable
// slot p: a matrix (or array of them) as every lane's copy, anything else as thread i's.
template <class T> MG_FN decltype(auto) wi_bind(T* p, unsigned i, unsigned width) {
  if constexpr (holds_sgm<T>::value) return wi_lanes<T>{reinterpret_cast<unsigned char*>(p + i), sizeof(T), width};
  else return (p[i]);
}

// f(l) for the lanes of a SIMD group. A whole group is the usual case: a loop of constant
// length, unrolled, so each lane's place in the matrix is a constant.
template <class F> __attribute__((always_inline)) inline void for_lanes(unsigned width, F&& f) {
  if (width == 32) {
#pragma GCC unroll 32
    for (unsigned l = 0; l < 32; ++l) f(l);
  } else {
    for (unsigned l = 0; l < width; ++l) f(l);
  }
}

// f(lane, row, column) for each lane's pair of elements (row, column) and (row, column + 1):
// a whole group row by row (constant places, the pairs of a row next to each other in memory),
// else lane by lane.
constexpr unsigned lane_of(unsigned r, unsigned c) {
  return ((c >> 1) & 1u) | ((r & 3u) << 1) | ((c >> 2) << 3) | ((r >> 2) << 4);
}
template <class F> __attribute__((always_inline)) inline void for_elements(unsigned width, F&& f) {
  if (width == 32) {
#pragma GCC unroll 8
    for (unsigned r = 0; r < 8; ++r)
#pragma GCC unroll 4
      for (unsigned c = 0; c < 8; c += 2) f(lane_of(r, c), r, c);
  } else {
    for (unsigned l = 0; l < width; ++l) f(l, metal::mg_sgm_row(l), metal::mg_sgm_col(l));
  }
}

// The 64 elements of a matrix from its lanes, as floats (missing lanes read as 0).
template <class T> MG_FN void gather(const wi_lanes<metal::simdgroup_matrix<T, 8, 8>>& m, float (&out)[8][8]) {
  if (m.width < 32)
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 8; ++j) out[i][j] = 0.0f;
  for_lanes(m.width, [&](unsigned l) __attribute__((always_inline)) {
    const metal::vec<T, 2>& e = m.lane(l).mg_e;
    const unsigned r = metal::mg_sgm_row(l), c = metal::mg_sgm_col(l);
    out[r][c] = float(e.x);
    out[r][c + 1] = float(e.y);
  });
}
template <class T> MG_FN void scatter(const float (&in)[8][8], const wi_lanes<metal::simdgroup_matrix<T, 8, 8>>& m) {
  for_lanes(m.width, [&](unsigned l) __attribute__((always_inline)) {
    metal::vec<T, 2>& e = m.lane(l).mg_e;
    const unsigned r = metal::mg_sgm_row(l), c = metal::mg_sgm_col(l);
    e.x = T(in[r][c]);
    e.y = T(in[r][c + 1]);
  });
}
// d = a * b (+ d), in float, k = 0..7 in order: the same sums as mma_fn. A row of d at a time
// as one 8-wide vector (GCC's vector extension, which clang has too), so the compiler does not
// vectorise over k instead and reassociate the sums.
typedef float row8 __attribute__((vector_size(32)));
MG_FN void product(const float (&a)[8][8], const float (&b)[8][8], float (&d)[8][8]) {
  row8 brow[8];
  for (int k = 0; k < 8; ++k) __builtin_memcpy(&brow[k], b[k], sizeof(row8));
  for (int i = 0; i < 8; ++i) {
    row8 s;
    __builtin_memcpy(&s, d[i], sizeof s);
    for (int k = 0; k < 8; ++k) s += a[i][k] * brow[k];
    __builtin_memcpy(d[i], &s, sizeof s);
  }
}

// A whole SIMD group's matrices, read and written in place: row r of a matrix is the pairs of
// lanes lane_of(r, 0), (r, 2), (r, 4) and (r, 6) - four 8-byte pieces, gathered straight into
// a vector (no detour through an array, whose piecewise stores a whole-row load would wait on).
template <class T> __attribute__((always_inline)) inline row8 row_of(const wi_lanes<metal::simdgroup_matrix<T, 8, 8>>& m,
                                                                   unsigned r) {
  const metal::vec<T, 2>&p0 = m.lane(lane_of(r, 0)).mg_e, &p1 = m.lane(lane_of(r, 2)).mg_e,
                       &p2 = m.lane(lane_of(r, 4)).mg_e, &p3 = m.lane(lane_of(r, 6)).mg_e;
  return row8{float(p0.x), float(p0.y), float(p1.x), float(p1.y), float(p2.x), float(p2.y), float(p3.x), float(p3.y)};
}
template <class T> __attribute__((always_inline)) inline void set_row(const wi_lanes<metal::simdgroup_matrix<T, 8, 8>>& m,
                                                                    unsigned r, row8 v) {
  for (unsigned q = 0; q < 4; ++q) {
    metal::vec<T, 2>& e = m.lane(lane_of(r, 2 * q)).mg_e;
    e.x = T(v[2 * q]);
    e.y = T(v[2 * q + 1]);
  }
}
template <class T> __attribute__((always_inline)) inline float element(const wi_lanes<metal::simdgroup_matrix<T, 8, 8>>& m,
                                                                     unsigned r, unsigned c) {
  const metal::vec<T, 2>& e = m.lane(lane_of(r, c & ~1u)).mg_e;
  return float((c & 1u) ? e.y : e.x);
}
// d = a * b + c (Acc) or a * b, for a full SIMD group; d may be any of a, b, c (each row of d
// is written after the last read of that row of a and c, and b is read first).
template <bool Acc, class TD, class TA, class TB, class TC>
MG_FN void product_in_place(const wi_lanes<metal::simdgroup_matrix<TD, 8, 8>>& d,
                            const wi_lanes<metal::simdgroup_matrix<TA, 8, 8>>& a,
                            const wi_lanes<metal::simdgroup_matrix<TB, 8, 8>>& b,
                            const wi_lanes<metal::simdgroup_matrix<TC, 8, 8>>* c) {
  row8 brow[8];
#pragma GCC unroll 8
  for (unsigned k = 0; k < 8; ++k) brow[k] = row_of(b, k);
#pragma GCC unroll 8
  for (unsigned i = 0; i < 8; ++i) {
    row8 s = Acc ? row_of(*c, i) : row8{};
#pragma GCC unroll 8
    for (unsigned k = 0; k < 8; ++k) s += element(a, i, k) * brow[k];
    set_row(d, i, s);
  }
}

}  // namespace cpu
}  // namespace __metalgpu

namespace metal {

template <class T, class U>
MG_FN void simdgroup_load(__metalgpu::cpu::wi_lanes<simdgroup_matrix<T, 8, 8>> d, const U* src,
                          ulong elements_per_row = 8, ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
  const U* base = src + matrix_origin.y * elements_per_row + matrix_origin.x;
  if constexpr (is_same<remove_cv_t<U>, T>::value) {
    if (!transpose_matrix) {  // each lane's pair is next to each other in memory: one move
      __metalgpu::cpu::for_elements(d.width, [&](unsigned l, unsigned r, unsigned c) __attribute__((always_inline)) {
        __builtin_memcpy((void*)&d.lane(l).mg_e, base + r * elements_per_row + c, 2 * sizeof(T));
      });
      return;
    }
  }
  const ulong across = transpose_matrix ? elements_per_row : 1, down = transpose_matrix ? 1 : elements_per_row;
  __metalgpu::cpu::for_elements(d.width, [&](unsigned l, unsigned r, unsigned c) __attribute__((always_inline)) {
    vec<T, 2>& e = d.lane(l).mg_e;
    e.x = T(base[r * down + c * across]);
    e.y = T(base[r * down + (c + 1) * across]);
  });
}

template <class T, class U>
MG_FN void simdgroup_store(__metalgpu::cpu::wi_lanes<simdgroup_matrix<T, 8, 8>> a, U* dst, ulong elements_per_row = 8,
                           ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
  U* base = dst + matrix_origin.y * elements_per_row + matrix_origin.x;
  if constexpr (is_same<U, T>::value) {
    if (!transpose_matrix) {
      __metalgpu::cpu::for_elements(a.width, [&](unsigned l, unsigned r, unsigned c) __attribute__((always_inline)) {
        __builtin_memcpy((void*)(base + r * elements_per_row + c), &a.lane(l).mg_e, 2 * sizeof(T));
      });
      return;
    }
  }
  const ulong across = transpose_matrix ? elements_per_row : 1, down = transpose_matrix ? 1 : elements_per_row;
  __metalgpu::cpu::for_elements(a.width, [&](unsigned l, unsigned r, unsigned c) __attribute__((always_inline)) {
    const vec<T, 2>& e = a.lane(l).mg_e;
    base[r * down + c * across] = U(e.x);
    base[r * down + (c + 1) * across] = U(e.y);
  });
}

template <class TD, class TA, class TB, class TC>
MG_FN void simdgroup_multiply_accumulate(__metalgpu::cpu::wi_lanes<simdgroup_matrix<TD, 8, 8>> d,
                                         __metalgpu::cpu::wi_lanes<simdgroup_matrix<TA, 8, 8>> a,
                                         __metalgpu::cpu::wi_lanes<simdgroup_matrix<TB, 8, 8>> b,
                                         __metalgpu::cpu::wi_lanes<simdgroup_matrix<TC, 8, 8>> c) {
  if (d.width == 32 && a.width == 32 && b.width == 32 && c.width == 32)
    return __metalgpu::cpu::product_in_place<true>(d, a, b, &c);
  float ma[8][8], mb[8][8], md[8][8];
  __metalgpu::cpu::gather(a, ma);
  __metalgpu::cpu::gather(b, mb);
  __metalgpu::cpu::gather(c, md);
  __metalgpu::cpu::product(ma, mb, md);
  __metalgpu::cpu::scatter(md, d);
}

template <class TD, class TA, class TB>
MG_FN void simdgroup_multiply(__metalgpu::cpu::wi_lanes<simdgroup_matrix<TD, 8, 8>> d,
                              __metalgpu::cpu::wi_lanes<simdgroup_matrix<TA, 8, 8>> a,
                              __metalgpu::cpu::wi_lanes<simdgroup_matrix<TB, 8, 8>> b) {
  if (d.width == 32 && a.width == 32 && b.width == 32)
    return __metalgpu::cpu::product_in_place<false>(d, a, b, &d);
  float ma[8][8], mb[8][8], md[8][8] = {};
  __metalgpu::cpu::gather(a, ma);
  __metalgpu::cpu::gather(b, mb);
  __metalgpu::cpu::product(ma, mb, md);
  __metalgpu::cpu::scatter(md, d);
}

}  // namespace metal

#else  // MG_CUDA

namespace __metalgpu {
namespace sgm {

// The lane holding elements (r, c) and (r, c + 1) of a matrix (c even): inverse of the layout.
__device__ __forceinline__ unsigned lane_of(unsigned r, unsigned c) {
  return ((c >> 1) & 1u) | ((r & 3u) << 1) | ((c >> 2) << 3) | ((r >> 2) << 4);
}

// The two elements a lane holds, as floats; 0 where the lane holding them is not active.
template <class T> __device__ __forceinline__ metal::float2 pair_from(unsigned mask, const metal::vec<T, 2>& e, unsigned src) {
  const bool ok = (mask >> src) & 1u;
  const metal::vec<T, 2> v = __metalgpu::simd::shfl(mask, e, ok ? src : __metalgpu::simd_lane_id());
  return ok ? metal::float2(float(v.x), float(v.y)) : metal::float2(0.0f, 0.0f);
}

// This lane's two elements of a * b (+ c): row r of a (4 pairs) times columns col, col + 1 of
// b (8 pairs), accumulated in float in the order k = 0..7 like the CPU backend.
template <class TD, class TA, class TB, class TC, bool Acc>
__device__ __forceinline__ metal::vec<TD, 2> mma(const metal::vec<TA, 2>& a, const metal::vec<TB, 2>& b,
                                                  const metal::vec<TC, 2>& c) {
  const unsigned mask = __activemask(), l = __metalgpu::simd_lane_id();
  const unsigned r = metal::mg_sgm_row(l), col = metal::mg_sgm_col(l);
  float arow[8];
#pragma unroll
  for (unsigned p = 0; p < 4; ++p) {
    const metal::float2 v = pair_from<TA>(mask, a, lane_of(r, 2u * p));
    arow[2 * p] = v.x;
    arow[2 * p + 1] = v.y;
  }
  float s0 = Acc ? float(c.x) : 0.0f, s1 = Acc ? float(c.y) : 0.0f;
#pragma unroll
  for (unsigned k = 0; k < 8; ++k) {
    const metal::float2 v = pair_from<TB>(mask, b, lane_of(k, col));
    s0 += arow[k] * v.x;
    s1 += arow[k] * v.y;
  }
  return metal::vec<TD, 2>(TD(s0), TD(s1));
}

}  // namespace sgm
}  // namespace __metalgpu

namespace metal {

// d = a * b + c (d may be any of a, b, c).
template <class TD, class TA, class TB, class TC>
MG_FN void simdgroup_multiply_accumulate(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                                         const simdgroup_matrix<TB, 8, 8>& b,
                                         const simdgroup_matrix<TC, 8, 8>& c) {
  d.mg_e = __metalgpu::sgm::mma<TD, TA, TB, TC, true>(a.mg_e, b.mg_e, c.mg_e);
}

// d = a * b.
template <class TD, class TA, class TB>
MG_FN void simdgroup_multiply(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                              const simdgroup_matrix<TB, 8, 8>& b) {
  d.mg_e = __metalgpu::sgm::mma<TD, TA, TB, TD, false>(a.mg_e, b.mg_e, d.mg_e);
}
}  // namespace metal

#endif

namespace metal {
// a * b, a + b, a - b on matrices of one type (Apple's header has these operators).
template <class T>
MG_FN simdgroup_matrix<T, 8, 8> operator*(const simdgroup_matrix<T, 8, 8>& a, const simdgroup_matrix<T, 8, 8>& b) {
  simdgroup_matrix<T, 8, 8> d;
  simdgroup_multiply(d, a, b);
  return d;
}
template <class T>
MG_FN simdgroup_matrix<T, 8, 8> operator+(const simdgroup_matrix<T, 8, 8>& a, const simdgroup_matrix<T, 8, 8>& b) {
  simdgroup_matrix<T, 8, 8> d;
  d.mg_e = a.mg_e + b.mg_e;
  return d;
}
template <class T>
MG_FN simdgroup_matrix<T, 8, 8> operator-(const simdgroup_matrix<T, 8, 8>& a, const simdgroup_matrix<T, 8, 8>& b) {
  simdgroup_matrix<T, 8, 8> d;
  d.mg_e = a.mg_e - b.mg_e;
  return d;
}

}  // namespace metal
