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
