// simdgroup_matrix<T, 8, 8>: an 8x8 matrix spread over the 32 lanes of a SIMD group, two
// elements per lane. Apple's layout: lane l holds row ((l>>1)&3) + 4*((l>>4)&1), columns c and
// c+1 with c = 2*(l&1) + 4*((l>>3)&1); thread_elements() shows it. On the cpu a matrix is always
// in Apple's layout and a product gathers all 64 elements of each operand (one SIMD-group
// exchange, or in place in work-item loops). On NVIDIA GPUs a matrix is kept in the tensor
// cores' layout, so loads, stores and products move nothing between lanes (see the CUDA part).
#pragma once

// Left out (MG_NO_SIMDGROUP_MATRIX) of a module whose source names no simdgroup matrix
// (Translation::runtime_omissions).
#if !MG_NO_SIMDGROUP_MATRIX

namespace metal {

MG_FN uint mg_sgm_row(uint lane) { return ((lane >> 1) & 3u) + 4u * ((lane >> 4) & 1u); }
MG_FN uint mg_sgm_col(uint lane) { return 2u * (lane & 1u) + 4u * ((lane >> 3) & 1u); }

// uniform<T>: a value the same in every thread (a hint to Apple's compiler); the value itself.
template <class T> using uniform = T;
template <class T> MG_FN constexpr T make_uniform(T value) { return value; }

template <class T, int Cols, int Rows> struct simdgroup_matrix;

// The pair of elements of a diagonal matrix (d on the diagonal) at row r, columns c and c + 1.
template <class T> MG_FN vec<T, 2> mg_sgm_diagonal_pair(uint r, uint c, T d) {
  return vec<T, 2>(r == c ? d : T(0), r == c + 1 ? d : T(0));
}

#if !MG_CUDA
template <class T> struct simdgroup_matrix<T, 8, 8> {
  typedef T value_type;
  vec<T, 2> mg_e;

  simdgroup_matrix() = default;
  // A diagonal matrix with `d` on the diagonal.
  MG_FN explicit simdgroup_matrix(T d) {
    const uint lane = __metalgpu::simd_lane_id();
    mg_e = mg_sgm_diagonal_pair(mg_sgm_row(lane), mg_sgm_col(lane), d);
  }
  MG_FN vec<T, 2>& thread_elements() { return mg_e; }
  MG_FN const vec<T, 2>& thread_elements() const { return mg_e; }

  // The layout loads, stores and element-wise operators work in (here always Apple's): the
  // row and first column of a lane's pair, and the lane's elements in it.
  MG_FN static uint mg_row(uint lane) { return mg_sgm_row(lane); }
  MG_FN static uint mg_col(uint lane) { return mg_sgm_col(lane); }
  MG_FN const vec<T, 2>& mg_native() const { return mg_e; }
  MG_FN void mg_set_native(const vec<T, 2>& e) { mg_e = e; }
};
#else
}  // namespace metal

namespace __metalgpu {
namespace sgm {

// The tensor-core layout (the mma.sync accumulator's, rows 0-7): lane l holds row l / 4, columns
// 2 (l % 4) and 2 (l % 4) + 1. Loads and stores cost the same in either layout, and in this one
// the products need no exchange between lanes (only the B operand is transposed, by movmatrix).
__device__ __forceinline__ unsigned tc_row(unsigned lane) { return lane >> 2; }
__device__ __forceinline__ unsigned tc_col(unsigned lane) { return (lane & 3u) << 1; }
__device__ __forceinline__ unsigned tc_lane(unsigned r, unsigned c) { return (r << 2) | (c >> 1); }
// The lane holding elements (r, c) and (r, c + 1) in Apple's layout (c even).
__device__ __forceinline__ unsigned apple_lane(unsigned r, unsigned c) {
  return ((c >> 1) & 1u) | ((r & 3u) << 1) | ((c >> 2) << 3) | ((r >> 2) << 4);
}

// The pair lane `src` holds, as floats; 0 where that lane is not active.
template <class T> __device__ __forceinline__ metal::float2 pair_from(unsigned mask, const metal::vec<T, 2>& e, unsigned src) {
  const bool ok = (mask >> src) & 1u;
  const metal::vec<T, 2> v = __metalgpu::simd::shfl(mask, e, ok ? src : __metalgpu::simd_lane_id());
  return ok ? metal::float2(float(v.x), float(v.y)) : metal::float2(0.0f, 0.0f);
}
// The pair lane `src` holds (0 where that lane is not active): one exchange.
template <class T> __device__ __forceinline__ metal::vec<T, 2> pair_of(const metal::vec<T, 2>& e, unsigned src) {
  const unsigned mask = __activemask();
  const bool ok = (mask >> src) & 1u;
  const metal::vec<T, 2> v = __metalgpu::simd::shfl(mask, e, ok ? src : __metalgpu::simd_lane_id());
  return ok ? v : metal::vec<T, 2>(T(0));
}
template <class T> __device__ __forceinline__ metal::vec<T, 2> to_apple(const metal::vec<T, 2>& tc) {
  const unsigned l = __metalgpu::simd_lane_id();
  return pair_of(tc, tc_lane(metal::mg_sgm_row(l), metal::mg_sgm_col(l)));
}
template <class T> __device__ __forceinline__ metal::vec<T, 2> to_tc(const metal::vec<T, 2>& apple) {
  const unsigned l = __metalgpu::simd_lane_id();
  return pair_of(apple, apple_lane(tc_row(l), tc_col(l)));
}

}  // namespace sgm
}  // namespace __metalgpu

namespace metal {
template <class T> struct simdgroup_matrix<T, 8, 8> {
  typedef T value_type;
  // This lane's pair: in Apple's layout where mg_apple, else in the tensor-core layout. Loads,
  // products and fills give the tensor-core layout; thread_elements() turns the matrix into
  // Apple's in place (one exchange), so that writes through it land where Apple's would. The
  // flag is the same in every lane and, once inlined, known to the compiler.
  // Aligned as a pair whatever the vectors' alignment (METALGPU_CUDA_ELEMENT_ALIGNED_VECTORS):
  // aligned like its elements, a GEMM's arrays of matrices were no longer kept in registers.
  alignas(2 * sizeof(T)) mutable vec<T, 2> mg_e;
  mutable bool mg_apple = true;  // a new matrix holds no values yet: either layout is right

  simdgroup_matrix() = default;
  // A diagonal matrix with `d` on the diagonal.
  MG_FN explicit simdgroup_matrix(T d) {
    const uint lane = __metalgpu::simd_lane_id();
    mg_set_native(mg_sgm_diagonal_pair(mg_row(lane), mg_col(lane), d));
  }
  MG_FN vec<T, 2>& thread_elements() {
    mg_use_apple_layout();
    return mg_e;
  }
  MG_FN const vec<T, 2>& thread_elements() const {
    mg_use_apple_layout();
    return mg_e;
  }
  MG_FN void mg_use_apple_layout() const {
    if (!mg_apple) mg_e = __metalgpu::sgm::to_apple(mg_e);
    mg_apple = true;
  }

  // The layout loads, stores, products and element-wise operators work in: the tensor cores'.
  MG_FN static uint mg_row(uint lane) { return __metalgpu::sgm::tc_row(lane); }
  MG_FN static uint mg_col(uint lane) { return __metalgpu::sgm::tc_col(lane); }
  MG_FN vec<T, 2> mg_native() const { return mg_apple ? __metalgpu::sgm::to_tc(mg_e) : mg_e; }
  MG_FN void mg_set_native(const vec<T, 2>& e) {
    mg_e = e;
    mg_apple = false;
  }
};
#endif

typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;
typedef simdgroup_matrix<bfloat, 8, 8> simdgroup_bfloat8x8;

template <class T, int Cols, int Rows = Cols>
MG_FN simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(const T value) {
  simdgroup_matrix<T, Cols, Rows> m;
  m.mg_set_native(vec<T, 2>(value));
  return m;
}

// Element (row r, col c) is src[(origin.y + r) * elements_per_row + origin.x + c]; transposed,
// the matrix read that way is transposed.
template <class T, class U>
MG_FN void simdgroup_load(simdgroup_matrix<T, 8, 8>& d, const U* src, ulong elements_per_row = 8,
                          ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
  typedef simdgroup_matrix<T, 8, 8> M;
  const uint lane = __metalgpu::simd_lane_id(), r = M::mg_row(lane), c = M::mg_col(lane);
  const U* base = src + matrix_origin.y * elements_per_row + matrix_origin.x;
  if (!transpose_matrix)
    d.mg_set_native(vec<T, 2>(T(base[r * elements_per_row + c]), T(base[r * elements_per_row + c + 1])));
  else
    d.mg_set_native(vec<T, 2>(T(base[c * elements_per_row + r]), T(base[(c + 1) * elements_per_row + r])));
}

template <class T, class U>
MG_FN void simdgroup_store(const simdgroup_matrix<T, 8, 8>& a, U* dst, ulong elements_per_row = 8,
                           ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
  typedef simdgroup_matrix<T, 8, 8> M;
  const uint lane = __metalgpu::simd_lane_id(), r = M::mg_row(lane), c = M::mg_col(lane);
  const vec<T, 2> e = a.mg_native();
  U* base = dst + matrix_origin.y * elements_per_row + matrix_origin.x;
  if (!transpose_matrix) {
    base[r * elements_per_row + c] = U(e.x);
    base[r * elements_per_row + c + 1] = U(e.y);
  } else {
    base[c * elements_per_row + r] = U(e.x);
    base[(c + 1) * elements_per_row + r] = U(e.y);
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

// This lane's two elements of a * b (+ c) with every operand in the tensor-core layout, by
// exchanges between lanes: row r of a (4 pairs) times columns col, col + 1 of b (8 pairs),
// accumulated in float in the order k = 0..7 like the cpu backend. For SIMD groups that are not
// whole (the tensor cores need all 32 lanes), GPUs without them, and mixed operand types.
template <class TD, class TA, class TB, class TC, bool Acc>
__device__ __forceinline__ metal::vec<TD, 2> mma_by_exchange(const metal::vec<TA, 2>& a, const metal::vec<TB, 2>& b,
                                                              const metal::vec<TC, 2>& c) {
  const unsigned mask = __activemask(), l = __metalgpu::simd_lane_id(), r = tc_row(l), col = tc_col(l);
  float arow[8];
#pragma unroll
  for (unsigned p = 0; p < 4; ++p) {
    const metal::float2 v = pair_from<TA>(mask, a, tc_lane(r, 2u * p));
    arow[2 * p] = v.x;
    arow[2 * p + 1] = v.y;
  }
  float s0 = Acc ? float(c.x) : 0.0f, s1 = Acc ? float(c.y) : 0.0f;
#pragma unroll
  for (unsigned k = 0; k < 8; ++k) {
    const metal::float2 v = pair_from<TB>(mask, b, tc_lane(k, col));
    s0 += arow[k] * v.x;
    s1 += arow[k] * v.y;
  }
  return metal::vec<TD, 2>(TD(s0), TD(s1));
}

#if __CUDA_ARCH__ >= 800
// The same beside the tensor cores, where it is the cold path (a SIMD group that is not whole):
// out of line, so that a GEMM's unrolled loops (MLX's steel tiles: 64-640 products) carry one
// call per product instead of a dozen exchanges each - a third of the code, and of NVRTC's time.
template <class TD, class TA, class TB, class TC, bool Acc>
__device__ __noinline__ metal::vec<TD, 2> mma_by_exchange_cold(const metal::vec<TA, 2> a, const metal::vec<TB, 2> b,
                                                               const metal::vec<TC, 2> c) {
  return mma_by_exchange<TD, TA, TB, TC, Acc>(a, b, c);
}

// The tensor cores (sm_80 and newer). Each 8x8x8 product is one m16n8k8 mma.sync whose A rows
// 0-7 are this matrix: in the tensor-core layout a lane's pair of A is exactly its A fragment,
// its pair of C its accumulator fragment, and its B fragment - rows 2 (l % 4) and 2 (l % 4) + 1
// of column l / 4 - is the pair of B's transpose, which movmatrix makes in one instruction.

template <class T> __device__ __forceinline__ unsigned packed16(const metal::vec<T, 2>& v) {
  static_assert(sizeof(metal::vec<T, 2>) == 4, "a pair of 16-bit elements is one register");
  unsigned u;
  memcpy(&u, &v, 4);
  return u;
}
__device__ __forceinline__ unsigned transposed16(unsigned pair) {
  unsigned t;
  asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(t) : "r"(pair));
  return t;
}

// d (4 floats, rows 0-7 then 8-15) = [a0; a1] * b + c, 16-bit operands in f16x2 / bf16x2.
template <class T> __device__ __forceinline__ void mma16(float (&d)[4], unsigned a0, unsigned a1, unsigned b, const float (&c)[4]) {
  if constexpr (metal::is_same<T, metal::half>::value)
    asm("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a0), "r"(a1), "r"(b), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
  else
    asm("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a0), "r"(a1), "r"(b), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

// The tf32 product puts k in the order 0, 2, 4, 6, 1, 3, 5, 7 (a sum in any order of k is the
// same product): its A fragment (row l / 4, k = l % 4 and l % 4 + 4) is then this lane's pair of
// A, and its B fragment (k = l % 4 and l % 4 + 4, column l / 4) the pair of B's transpose.
__device__ __forceinline__ void mma_tf32(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1,
                                         const float (&c)[4]) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
__device__ __forceinline__ unsigned tf32_of(float x) {
  unsigned t;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(t) : "f"(x));
  return t;
}
// x = big + small, both tf32: big holds x's upper 11 significand bits, small the next 11.
__device__ __forceinline__ void split_tf32(float x, unsigned& big, unsigned& small) {
  big = tf32_of(x);
  small = tf32_of(x - __uint_as_float(big));
}
// The pair of a float matrix's transpose: movmatrix moves 16-bit elements, so the low and the
// high halves of the floats go through it separately.
__device__ __forceinline__ metal::float2 transposed32(const metal::float2& v) {
  const unsigned x = __float_as_uint(v.x), y = __float_as_uint(v.y);
  const unsigned lo = transposed16(__byte_perm(x, y, 0x5410)), hi = transposed16(__byte_perm(x, y, 0x7632));
  return metal::float2(__uint_as_float(__byte_perm(lo, hi, 0x5410)), __uint_as_float(__byte_perm(lo, hi, 0x7632)));
}

// Float matrices keep float accuracy with three tf32 products, as CUTLASS's 3xTF32 does: a * b
// = a_big b_big + a_big b_small + a_small b_big (+ a_small b_small, free here). A's rows 8-15
// carry a_small, so two m16n8k8 products give all four terms; rows 0-7 and 8-15 are then added.
__device__ __forceinline__ metal::float2 mma_3xtf32(const metal::float2& a, const metal::float2& b, float c0, float c1) {
  unsigned ab[4];  // {a_big(k), a_small(k), a_big(k + 4), a_small(k + 4)} in the tf32 k order
  split_tf32(a.x, ab[0], ab[1]);
  split_tf32(a.y, ab[2], ab[3]);
  const metal::float2 bt = transposed32(b);
  unsigned bb0, bs0, bb1, bs1;
  split_tf32(bt.x, bb0, bs0);
  split_tf32(bt.y, bb1, bs1);
  const float c[4] = {c0, c1, 0.0f, 0.0f};
  float d[4], e[4];
  mma_tf32(d, ab, bb0, bb1, c);
  mma_tf32(e, ab, bs0, bs1, d);
  return metal::float2(e[0] + e[2], e[1] + e[3]);
}
#endif

// d = a * b (+ c), every operand in the tensor-core layout.
template <class TD, class TA, class TB, class TC, bool Acc>
__device__ __forceinline__ metal::vec<TD, 2> mma(const metal::vec<TA, 2>& a, const metal::vec<TB, 2>& b,
                                                  const metal::vec<TC, 2>& c) {
#if __CUDA_ARCH__ >= 800
  constexpr bool both_half = metal::is_same<TA, metal::half>::value && metal::is_same<TB, metal::half>::value;
  constexpr bool both_bfloat = metal::is_same<TA, metal::bfloat>::value && metal::is_same<TB, metal::bfloat>::value;
  constexpr bool both_float = metal::is_same<TA, float>::value && metal::is_same<TB, float>::value;
  if constexpr (both_half || both_bfloat || both_float) {
    if (__activemask() == 0xffffffffu) {
      const float c0 = Acc ? float(c.x) : 0.0f, c1 = Acc ? float(c.y) : 0.0f;
      if constexpr (both_float) {
        const metal::float2 d = mma_3xtf32(a, b, c0, c1);
        return metal::vec<TD, 2>(TD(d.x), TD(d.y));
      } else {
        const float cc[4] = {c0, c1, 0.0f, 0.0f};
        float d[4];
        mma16<TA>(d, packed16(a), 0u, transposed16(packed16(b)), cc);
        return metal::vec<TD, 2>(TD(d[0]), TD(d[1]));
      }
    }
    return mma_by_exchange_cold<TD, TA, TB, TC, Acc>(a, b, c);
  }
#endif
  return mma_by_exchange<TD, TA, TB, TC, Acc>(a, b, c);
}

}  // namespace sgm
}  // namespace __metalgpu

namespace metal {

// d = a * b + c (d may be any of a, b, c).
template <class TD, class TA, class TB, class TC>
MG_FN void simdgroup_multiply_accumulate(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                                         const simdgroup_matrix<TB, 8, 8>& b,
                                         const simdgroup_matrix<TC, 8, 8>& c) {
  d.mg_set_native(__metalgpu::sgm::mma<TD, TA, TB, TC, true>(a.mg_native(), b.mg_native(), c.mg_native()));
}

// d = a * b.
template <class TD, class TA, class TB>
MG_FN void simdgroup_multiply(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                              const simdgroup_matrix<TB, 8, 8>& b) {
  d.mg_set_native(__metalgpu::sgm::mma<TD, TA, TB, TD, false>(a.mg_native(), b.mg_native(), vec<TD, 2>(TD(0))));
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
  d.mg_set_native(a.mg_native() + b.mg_native());
  return d;
}
template <class T>
MG_FN simdgroup_matrix<T, 8, 8> operator-(const simdgroup_matrix<T, 8, 8>& a, const simdgroup_matrix<T, 8, 8>& b) {
  simdgroup_matrix<T, 8, 8> d;
  d.mg_set_native(a.mg_native() - b.mg_native());
  return d;
}

}  // namespace metal

#endif  // !MG_NO_SIMDGROUP_MATRIX
