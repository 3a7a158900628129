// SIMD-group (width 32) and quad-group (width 4) functions. On the CPU each function is one
// __metalgpu::simd_exchange() with a simd_fn made for that operation and type: the function
// sees the inputs of every active lane of the SIMD group at once and writes each one's output.
// Only active lanes take part: reductions and prefix operations run over active lanes;
// a shuffle that reads an inactive, missing or out-of-range lane returns the lane's own value.
#pragma once

namespace metal {

// Result of simd_ballot() / simd_active_threads_mask(): bit i is lane i.
class simd_vote {
 public:
  typedef ulong vote_t;
  MG_FN explicit constexpr simd_vote(vote_t v = 0) : mg_v(v) {}
  MG_FN explicit constexpr operator vote_t() const { return mg_v; }
  // True when the bit of every active lane is set.
  MG_FN bool all() const;
  // True when any bit is set.
  MG_FN bool any() const { return mg_v != 0; }
  vote_t mg_v;
};

// Result of quad_ballot() / quad_active_threads_mask(): bit i is lane i of the quad.
class quad_vote {
 public:
  typedef ushort vote_t;
  MG_FN explicit constexpr quad_vote(vote_t v = 0) : mg_v(v) {}
  MG_FN explicit constexpr operator vote_t() const { return mg_v; }
  MG_FN bool all() const;
  MG_FN bool any() const { return (mg_v & 0xfu) != 0; }
  vote_t mg_v;
};

}  // namespace metal

#if !MG_CUDA

namespace __metalgpu {
namespace simd {

// Components of a scalar or vector value.
template <class T> struct comps {
  typedef typename metal::mg_vinfo<T>::elem E;
  static constexpr int n = metal::mg_vinfo<T>::n;
  static MG_FN E& at(T& v, int i) {
    if constexpr (metal::mg_vinfo<T>::is_vec) return v[i];
    else { (void)i; return v; }
  }
  static MG_FN const E& at(const T& v, int i) {
    if constexpr (metal::mg_vinfo<T>::is_vec) return v[i];
    else { (void)i; return v; }
  }
};

template <class T> MG_FN const T& in(const simd_call& c, unsigned l) { return *static_cast<const T*>(c.lane[l].in); }
template <class T> MG_FN void put(simd_call& c, unsigned l, const T& v) { *static_cast<T*>(c.lane[l].out) = v; }
MG_FN bool has(const simd_call& c, unsigned l) { return l < 32 && (c.active >> l & 1u); }

// Binary operations, applied per component.
struct op_sum { template <class E> static MG_FN E f(E a, E b) { return E(a + b); } static constexpr int identity = 0; };
struct op_product { template <class E> static MG_FN E f(E a, E b) { return E(a * b); } static constexpr int identity = 1; };
struct op_min { template <class E> static MG_FN E f(E a, E b) { return b < a ? b : a; } static constexpr int identity = 0; };
struct op_max { template <class E> static MG_FN E f(E a, E b) { return a < b ? b : a; } static constexpr int identity = 0; };
struct op_and { template <class E> static MG_FN E f(E a, E b) { return E(a & b); } static constexpr int identity = -1; };
struct op_or { template <class E> static MG_FN E f(E a, E b) { return E(a | b); } static constexpr int identity = 0; };
struct op_xor { template <class E> static MG_FN E f(E a, E b) { return E(a ^ b); } static constexpr int identity = 0; };

template <class Op, class T> MG_FN T combine(const T& a, const T& b) {
  T r = a;
  for (int i = 0; i < comps<T>::n; ++i) comps<T>::at(r, i) = Op::f(comps<T>::at(a, i), comps<T>::at(b, i));
  return r;
}

// Reduction over the active lanes of each segment of S lanes (S = 32: SIMD group, 4: quad).
template <class Op, class T, unsigned S> void reduce_fn(simd_call& c) {
  for (unsigned base = 0; base < 32; base += S) {
    const unsigned seg = (S == 32 ? c.active : (c.active >> base) & ((1u << S) - 1u) ) ;
    if (!seg) continue;
    T acc;
    bool first = true;
    for (unsigned l = base; l < base + S; ++l) {
      if (!has(c, l)) continue;
      acc = first ? in<T>(c, l) : combine<Op>(acc, in<T>(c, l));
      first = false;
    }
    for (unsigned l = base; l < base + S; ++l)
      if (has(c, l)) put<T>(c, l, acc);
  }
}

// Prefix over the active lanes below each lane (inclusive: this one too).
template <class Op, class T, unsigned S, bool Inclusive> void prefix_fn(simd_call& c) {
  typedef typename comps<T>::E E;
  for (unsigned base = 0; base < 32; base += S) {
    T acc = T(E(Op::identity));
    for (unsigned l = base; l < base + S; ++l) {
      if (!has(c, l)) continue;
      const T v = in<T>(c, l);
      if (Inclusive) {
        acc = combine<Op>(acc, v);
        put<T>(c, l, acc);
      } else {
        put<T>(c, l, acc);
        acc = combine<Op>(acc, v);
      }
    }
  }
}

// Shuffles: each lane names its source; arg packs the lane's parameters.
enum shuffle_kind { sh_index, sh_up, sh_down, sh_xor, sh_rotate_up, sh_rotate_down };

template <class T, unsigned S, int K> void shuffle_fn(simd_call& c) {
  T res[32];
  for (unsigned l = 0; l < 32; ++l) {
    if (!has(c, l)) continue;
    const unsigned a = c.lane[l].arg, base = l & ~(S - 1u), j = l - base;
    // Lanes of this segment that exist (rotation wraps within them).
    const unsigned seg_width = S == 32 ? c.width : (c.width > base ? (c.width - base < S ? c.width - base : S) : 0);
    long src = -1;
    if (K == sh_index) src = a < S ? long(base + a) : -1;
    else if (K == sh_up) src = j >= a ? long(l - a) : -1;
    else if (K == sh_down) src = j + a < S ? long(l + a) : -1;
    else if (K == sh_xor) src = (j ^ a) < S ? long(base + (j ^ a)) : -1;
    else if (K == sh_rotate_up) src = long(base + (j + seg_width - a % seg_width) % seg_width);
    else if (K == sh_rotate_down) src = long(base + (j + a) % seg_width);
    res[l] = (src >= 0 && has(c, unsigned(src))) ? in<T>(c, unsigned(src)) : in<T>(c, l);
  }
  for (unsigned l = 0; l < 32; ++l)
    if (has(c, l)) put<T>(c, l, res[l]);
}

template <class T> struct fill_in {
  T data;
  T fill;
};

// simd_shuffle_and_fill_up/down: arg = delta | modulo << 16; segments of `modulo` lanes.
template <class T, unsigned S, bool Up> void fill_fn(simd_call& c) {
  T res[32];
  for (unsigned l = 0; l < 32; ++l) {
    if (!has(c, l)) continue;
    const unsigned a = c.lane[l].arg, delta = a & 0xffffu;
    unsigned m = a >> 16;
    if (m == 0 || m > S) m = S;
    const unsigned base = l - l % m, j = l % m;
    const fill_in<T>& own = in<fill_in<T>>(c, l);
    long src;
    bool from_fill;
    if (Up) {
      from_fill = j < delta;
      src = from_fill ? long(base + j + m - delta) : long(l - delta);
    } else {
      from_fill = j + delta >= m;
      src = from_fill ? long(base + j + delta - m) : long(l + delta);
    }
    if (delta >= m || src < 0 || !has(c, unsigned(src))) res[l] = own.data;
    else res[l] = from_fill ? in<fill_in<T>>(c, unsigned(src)).fill : in<fill_in<T>>(c, unsigned(src)).data;
  }
  for (unsigned l = 0; l < 32; ++l)
    if (has(c, l)) put<T>(c, l, res[l]);
}

template <class T, unsigned S> void broadcast_first_fn(simd_call& c) {
  for (unsigned base = 0; base < 32; base += S) {
    const unsigned seg = (c.active >> base) & (S == 32 ? 0xffffffffu : ((1u << S) - 1u));
    if (!seg) continue;
    const T v = in<T>(c, base + __builtin_ctz(seg));
    for (unsigned l = base; l < base + S; ++l)
      if (has(c, l)) put<T>(c, l, v);
  }
}

// Ballot: bit per active lane whose input is true (bits relative to the segment).
template <unsigned S> void ballot_fn(simd_call& c) {
  for (unsigned base = 0; base < 32; base += S) {
    unsigned long bits = 0;
    for (unsigned l = base; l < base + S; ++l)
      if (has(c, l) && in<bool>(c, l)) bits |= 1ul << (l - base);
    for (unsigned l = base; l < base + S; ++l)
      if (has(c, l)) put<unsigned long>(c, l, bits);
  }
}

template <unsigned S> void active_fn(simd_call& c) {
  for (unsigned base = 0; base < 32; base += S) {
    const unsigned long bits = (c.active >> base) & (S == 32 ? 0xffffffffu : ((1u << S) - 1u));
    for (unsigned l = base; l < base + S; ++l)
      if (has(c, l)) put<unsigned long>(c, l, bits);
  }
}

// Whether each active lane is the first active one of its segment.
template <unsigned S> void is_first_fn(simd_call& c) {
  for (unsigned base = 0; base < 32; base += S) {
    bool first = true;
    for (unsigned l = base; l < base + S; ++l) {
      if (!has(c, l)) continue;
      put<bool>(c, l, first);
      first = false;
    }
  }
}

template <class T, class In, class Fn> MG_FN T call(const In* x, unsigned arg, Fn fn) {
  static_assert(sizeof(In) <= 64 && sizeof(T) <= 64, "a SIMD-group value is at most 64 bytes");
  T r;
  simd_exchange(x, &r, arg, fn, sizeof(In), sizeof(T));
  return r;
}
template <class T, class Fn> MG_FN T call(decltype(nullptr), unsigned arg, Fn fn) {
  T r;
  simd_exchange(nullptr, &r, arg, fn, 0, sizeof(T));
  return r;
}

template <class T> struct is_simd_value
    : metal::bool_constant<metal::is_arithmetic<T>::value || metal::mg_vinfo<T>::is_vec> {};

}  // namespace simd
}  // namespace __metalgpu

namespace metal {

#define MG_SIMD_T template <class T, enable_if_t<__metalgpu::simd::is_simd_value<T>::value, int> = 0>
#define MG_SIMD_REDUCE(PFX, S, NAME, OP)                                                          \
  MG_SIMD_T MG_FN T PFX##_##NAME(T x) {                                                           \
    return __metalgpu::simd::call<T>(&x, 0, &__metalgpu::simd::reduce_fn<__metalgpu::simd::OP, T, S>); \
  }
#define MG_SIMD_PREFIX(PFX, S, NAME, OP)                                                          \
  MG_SIMD_T MG_FN T PFX##_prefix_inclusive_##NAME(T x) {                                          \
    return __metalgpu::simd::call<T>(&x, 0, &__metalgpu::simd::prefix_fn<__metalgpu::simd::OP, T, S, true>); \
  }                                                                                               \
  MG_SIMD_T MG_FN T PFX##_prefix_exclusive_##NAME(T x) {                                          \
    return __metalgpu::simd::call<T>(&x, 0, &__metalgpu::simd::prefix_fn<__metalgpu::simd::OP, T, S, false>); \
  }
#define MG_SIMD_SHUFFLE(PFX, S, NAME, KIND)                                                       \
  MG_SIMD_T MG_FN T PFX##_##NAME(T x, ushort a) {                                                 \
    return __metalgpu::simd::call<T>(&x, a, &__metalgpu::simd::shuffle_fn<T, S, __metalgpu::simd::KIND>); \
  }
#define MG_SIMD_GROUP(PFX, S, VOTE)                                                               \
  MG_SIMD_REDUCE(PFX, S, sum, op_sum)                                                             \
  MG_SIMD_REDUCE(PFX, S, product, op_product)                                                     \
  MG_SIMD_REDUCE(PFX, S, min, op_min)                                                             \
  MG_SIMD_REDUCE(PFX, S, max, op_max)                                                             \
  MG_SIMD_REDUCE(PFX, S, and, op_and)                                                             \
  MG_SIMD_REDUCE(PFX, S, or, op_or)                                                               \
  MG_SIMD_REDUCE(PFX, S, xor, op_xor)                                                             \
  MG_SIMD_PREFIX(PFX, S, sum, op_sum)                                                             \
  MG_SIMD_PREFIX(PFX, S, product, op_product)                                                     \
  MG_SIMD_SHUFFLE(PFX, S, shuffle, sh_index)                                                      \
  MG_SIMD_SHUFFLE(PFX, S, broadcast, sh_index)                                                    \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_up, sh_up)                                                      \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_down, sh_down)                                                  \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_xor, sh_xor)                                                    \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_rotate_up, sh_rotate_up)                                        \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_rotate_down, sh_rotate_down)                                    \
  MG_SIMD_T MG_FN T PFX##_shuffle_and_fill_up(T data, T fill, ushort delta, ushort modulo = S) {  \
    __metalgpu::simd::fill_in<T> v{data, fill};                                                   \
    return __metalgpu::simd::call<T>(&v, unsigned(delta) | unsigned(modulo) << 16,               \
                                     &__metalgpu::simd::fill_fn<T, S, true>);                     \
  }                                                                                               \
  MG_SIMD_T MG_FN T PFX##_shuffle_and_fill_down(T data, T fill, ushort delta, ushort modulo = S) {\
    __metalgpu::simd::fill_in<T> v{data, fill};                                                   \
    return __metalgpu::simd::call<T>(&v, unsigned(delta) | unsigned(modulo) << 16,               \
                                     &__metalgpu::simd::fill_fn<T, S, false>);                    \
  }                                                                                               \
  MG_SIMD_T MG_FN T PFX##_broadcast_first(T x) {                                                  \
    return __metalgpu::simd::call<T>(&x, 0, &__metalgpu::simd::broadcast_first_fn<T, S>);        \
  }                                                                                               \
  MG_FN VOTE PFX##_ballot(bool b) {                                                               \
    return VOTE(VOTE::vote_t(__metalgpu::simd::call<unsigned long>(&b, 0, &__metalgpu::simd::ballot_fn<S>))); \
  }                                                                                               \
  MG_FN VOTE PFX##_active_threads_mask() {                                                        \
    return VOTE(VOTE::vote_t(__metalgpu::simd::call<unsigned long>(nullptr, 0, &__metalgpu::simd::active_fn<S>))); \
  }                                                                                               \
  MG_FN bool PFX##_all(bool b) {                                                                  \
    return __metalgpu::simd::call<bool>(&b, 0, &__metalgpu::simd::reduce_fn<__metalgpu::simd::op_and, bool, S>); \
  }                                                                                               \
  MG_FN bool PFX##_any(bool b) {                                                                  \
    return __metalgpu::simd::call<bool>(&b, 0, &__metalgpu::simd::reduce_fn<__metalgpu::simd::op_or, bool, S>); \
  }                                                                                               \
  MG_FN bool PFX##_is_first() {                                                                   \
    return __metalgpu::simd::call<bool>(nullptr, 0, &__metalgpu::simd::is_first_fn<S>);          \
  }                                                                                               \
  MG_FN bool VOTE::all() const {                                                                  \
    const VOTE::vote_t active = VOTE::vote_t(PFX##_active_threads_mask());                        \
    return (mg_v & active) == active;                                                             \
  }

MG_SIMD_GROUP(simd, 32u, simd_vote)
MG_SIMD_GROUP(quad, 4u, quad_vote)

#undef MG_SIMD_GROUP
#undef MG_SIMD_SHUFFLE
#undef MG_SIMD_PREFIX
#undef MG_SIMD_REDUCE
#undef MG_SIMD_T

}  // namespace metal

#else  // MG_CUDA

// CUDA: one SIMD group is one warp (the block's threads are numbered x fastest, as Metal's
// thread_index_in_threadgroup, so lane = index % 32). The active lanes are __activemask();
// lanes missing from a partial warp at a block's edge do not exist. Every shuffle below is
// executed the same number of times by all active lanes (no divergence around *_sync calls).

namespace __metalgpu {
namespace simd {

template <class T> struct comps {
  typedef typename metal::mg_vinfo<T>::elem E;
  static constexpr int n = metal::mg_vinfo<T>::n;
  static MG_FN E& at(T& v, int i) {
    if constexpr (metal::mg_vinfo<T>::is_vec) return v[i];
    else { (void)i; return v; }
  }
  static MG_FN const E& at(const T& v, int i) {
    if constexpr (metal::mg_vinfo<T>::is_vec) return v[i];
    else { (void)i; return v; }
  }
};

struct op_sum { template <class E> static MG_FN E f(E a, E b) { return E(a + b); } static constexpr int identity = 0; };
struct op_product { template <class E> static MG_FN E f(E a, E b) { return E(a * b); } static constexpr int identity = 1; };
struct op_min { template <class E> static MG_FN E f(E a, E b) { return b < a ? b : a; } static constexpr int identity = 0; };
struct op_max { template <class E> static MG_FN E f(E a, E b) { return a < b ? b : a; } static constexpr int identity = 0; };
struct op_and { template <class E> static MG_FN E f(E a, E b) { return E(a & b); } static constexpr int identity = -1; };
struct op_or { template <class E> static MG_FN E f(E a, E b) { return E(a | b); } static constexpr int identity = 0; };
struct op_xor { template <class E> static MG_FN E f(E a, E b) { return E(a ^ b); } static constexpr int identity = 0; };

template <class Op, class T> MG_FN T combine(const T& a, const T& b) {
  T r = a;
  for (int i = 0; i < comps<T>::n; ++i) comps<T>::at(r, i) = Op::f(comps<T>::at(a, i), comps<T>::at(b, i));
  return r;
}

template <class T> struct is_simd_value
    : metal::bool_constant<metal::is_arithmetic<T>::value || metal::mg_vinfo<T>::is_vec> {};

__device__ __forceinline__ unsigned active() { return __activemask(); }
__device__ __forceinline__ unsigned lane() { return simd_lane_id(); }
// Lanes that exist in this warp (fewer than 32 in the last warp of a block).
__device__ __forceinline__ unsigned warp_width() {
  const unsigned count = blockDim.x * blockDim.y * blockDim.z;
  const unsigned base = (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) & ~31u;
  return count - base < 32u ? count - base : 32u;
}

// Any value moved between lanes as 32-bit words. `src` must be an active lane (or this one).
template <class T> __device__ __forceinline__ T shfl(unsigned mask, const T& v, unsigned src) {
  constexpr int W = int((sizeof(T) + 3) / 4);
  unsigned w[W];
  w[W - 1] = 0u;
  memcpy(w, &v, sizeof(T));
#pragma unroll
  for (int i = 0; i < W; ++i) w[i] = __shfl_sync(mask, w[i], int(src));
  T r = v;
  memcpy(&r, w, sizeof(T));
  return r;
}

template <class T> struct is_word_int
    : metal::bool_constant<metal::is_same<T, int>::value || metal::is_same<T, unsigned>::value> {};

// Reduction over the active lanes of each segment of S lanes. Butterfly over blocks of lanes:
// after the step of size d every active lane of an aligned block of 2d lanes holds the result
// of the active lanes of that block (read from the first active lane of the other half;
// always combined lower half first, so all lanes get bit-identical results).
template <class Op, class T, unsigned S> __device__ __forceinline__ T reduce(T x) {
  const unsigned mask = active();
#if __CUDA_ARCH__ >= 800
  if constexpr (S == 32 && is_word_int<T>::value) {
    if constexpr (metal::is_same<Op, op_sum>::value) return T(__reduce_add_sync(mask, x));
    if constexpr (metal::is_same<Op, op_min>::value) return T(__reduce_min_sync(mask, x));
    if constexpr (metal::is_same<Op, op_max>::value) return T(__reduce_max_sync(mask, x));
    if constexpr (metal::is_same<Op, op_and>::value) return T(__reduce_and_sync(mask, unsigned(x)));
    if constexpr (metal::is_same<Op, op_or>::value) return T(__reduce_or_sync(mask, unsigned(x)));
    if constexpr (metal::is_same<Op, op_xor>::value) return T(__reduce_xor_sync(mask, unsigned(x)));
  }
#endif
  const unsigned l = lane();
#pragma unroll
  for (unsigned d = 1; d < S; d <<= 1) {
    const unsigned lo = (l ^ d) & ~(d - 1u);
    const unsigned bits = (mask >> lo) & ((1u << d) - 1u);
    const unsigned src = bits ? lo + unsigned(__ffs(int(bits))) - 1u : l;
    const T y = shfl(mask, x, src);
    if (bits) x = (l & d) ? combine<Op>(y, x) : combine<Op>(x, y);
  }
  return x;
}

// Inclusive / exclusive prefix over the active lanes below each lane of its segment
// (Hillis-Steele over the ranks of the active lanes).
template <class Op, class T, unsigned S, bool Inclusive> __device__ __forceinline__ T prefix(T x) {
  typedef typename comps<T>::E E;
  const unsigned mask = active(), l = lane();
  const unsigned seg = S == 32 ? mask : mask & (((1u << S) - 1u) << (l & ~(S - 1u)));
  const unsigned below = seg & ((1u << l) - 1u);
  // prev: the first active lane below; rem: active lanes below not yet skipped.
  const unsigned prev = below ? 31u - unsigned(__clz(int(below))) : l;
  T acc = x;
  unsigned rem = below, skipped = 0;
#pragma unroll
  for (unsigned d = 1; d < S; d <<= 1) {
    // The d-th active lane below this one (counting down), if any.
    while (rem && skipped + 1 < d) {
      rem &= ~(1u << (31u - unsigned(__clz(int(rem)))));
      ++skipped;
    }
    const bool ok = rem != 0 && skipped + 1 == d;
    const unsigned src = ok ? 31u - unsigned(__clz(int(rem))) : l;
    const T y = shfl(mask, acc, src);
    if (ok) acc = combine<Op>(y, acc);
  }
  if (Inclusive) return acc;
  const T y = shfl(mask, acc, prev);
  return below ? y : T(E(Op::identity));
}

enum shuffle_kind { sh_index, sh_up, sh_down, sh_xor, sh_rotate_up, sh_rotate_down };

template <class T, unsigned S, int K> __device__ __forceinline__ T shuffle(T x, unsigned a) {
  const unsigned mask = active(), l = lane(), base = l & ~(S - 1u), j = l - base;
  const unsigned width = warp_width();
  const unsigned seg_width = S == 32 ? width : (width > base ? (width - base < S ? width - base : S) : 1u);
  int src = -1;
  if (K == sh_index) src = a < S ? int(base + a) : -1;
  else if (K == sh_up) src = j >= a ? int(l - a) : -1;
  else if (K == sh_down) src = j + a < S ? int(l + a) : -1;
  else if (K == sh_xor) src = (j ^ a) < S ? int(base + (j ^ a)) : -1;
  else if (K == sh_rotate_up) src = int(base + (j + seg_width - a % seg_width) % seg_width);
  else if (K == sh_rotate_down) src = int(base + (j + a) % seg_width);
  const bool ok = src >= 0 && src < 32 && (mask >> src & 1u);
  return shfl(mask, x, ok ? unsigned(src) : l);
}

// simd_shuffle_and_fill_up/down over segments of `modulo` lanes.
template <class T, unsigned S, bool Up>
__device__ __forceinline__ T fill(T data, T fill_value, unsigned delta, unsigned m) {
  const unsigned mask = active(), l = lane();
  if (m == 0 || m > S) m = S;
  const unsigned base = l - l % m, j = l % m;
  bool from_fill;
  int src;
  if (Up) {
    from_fill = j < delta;
    src = from_fill ? int(base + j + m - delta) : int(l) - int(delta);
  } else {
    from_fill = j + delta >= m;
    src = from_fill ? int(base + j + delta - m) : int(l + delta);
  }
  const bool ok = delta < m && src >= 0 && src < 32 && (mask >> src & 1u);
  const unsigned s = ok ? unsigned(src) : l;
  const T d = shfl(mask, data, s);
  const T f = shfl(mask, fill_value, s);
  return ok ? (from_fill ? f : d) : data;
}

template <unsigned S> __device__ __forceinline__ unsigned segment_bits(unsigned bits) {
  return S == 32 ? bits : (bits >> (lane() & ~(S - 1u))) & ((1u << S) - 1u);
}

template <class T, unsigned S> __device__ __forceinline__ T broadcast_first(T x) {
  const unsigned mask = active(), l = lane(), base = l & ~(S - 1u);
  const unsigned seg = segment_bits<S>(mask);
  return shfl(mask, x, base + unsigned(__ffs(int(seg))) - 1u);
}

}  // namespace simd
}  // namespace __metalgpu

namespace metal {

#define MG_SIMD_T template <class T, enable_if_t<__metalgpu::simd::is_simd_value<T>::value, int> = 0>
#define MG_SIMD_REDUCE(PFX, S, NAME, OP)                                                          \
  MG_SIMD_T MG_FN T PFX##_##NAME(T x) { return __metalgpu::simd::reduce<__metalgpu::simd::OP, T, S>(x); }
#define MG_SIMD_PREFIX(PFX, S, NAME, OP)                                                          \
  MG_SIMD_T MG_FN T PFX##_prefix_inclusive_##NAME(T x) {                                          \
    return __metalgpu::simd::prefix<__metalgpu::simd::OP, T, S, true>(x);                         \
  }                                                                                               \
  MG_SIMD_T MG_FN T PFX##_prefix_exclusive_##NAME(T x) {                                          \
    return __metalgpu::simd::prefix<__metalgpu::simd::OP, T, S, false>(x);                        \
  }
#define MG_SIMD_SHUFFLE(PFX, S, NAME, KIND)                                                       \
  MG_SIMD_T MG_FN T PFX##_##NAME(T x, ushort a) {                                                 \
    return __metalgpu::simd::shuffle<T, S, __metalgpu::simd::KIND>(x, a);                         \
  }
#define MG_SIMD_GROUP(PFX, S, VOTE)                                                               \
  MG_SIMD_REDUCE(PFX, S, sum, op_sum)                                                             \
  MG_SIMD_REDUCE(PFX, S, product, op_product)                                                     \
  MG_SIMD_REDUCE(PFX, S, min, op_min)                                                             \
  MG_SIMD_REDUCE(PFX, S, max, op_max)                                                             \
  MG_SIMD_REDUCE(PFX, S, and, op_and)                                                             \
  MG_SIMD_REDUCE(PFX, S, or, op_or)                                                               \
  MG_SIMD_REDUCE(PFX, S, xor, op_xor)                                                             \
  MG_SIMD_PREFIX(PFX, S, sum, op_sum)                                                             \
  MG_SIMD_PREFIX(PFX, S, product, op_product)                                                     \
  MG_SIMD_SHUFFLE(PFX, S, shuffle, sh_index)                                                      \
  MG_SIMD_SHUFFLE(PFX, S, broadcast, sh_index)                                                    \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_up, sh_up)                                                      \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_down, sh_down)                                                  \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_xor, sh_xor)                                                    \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_rotate_up, sh_rotate_up)                                        \
  MG_SIMD_SHUFFLE(PFX, S, shuffle_rotate_down, sh_rotate_down)                                    \
  MG_SIMD_T MG_FN T PFX##_shuffle_and_fill_up(T data, T fill, ushort delta, ushort modulo = S) {  \
    return __metalgpu::simd::fill<T, S, true>(data, fill, delta, modulo);                         \
  }                                                                                               \
  MG_SIMD_T MG_FN T PFX##_shuffle_and_fill_down(T data, T fill, ushort delta, ushort modulo = S) {\
    return __metalgpu::simd::fill<T, S, false>(data, fill, delta, modulo);                        \
  }                                                                                               \
  MG_SIMD_T MG_FN T PFX##_broadcast_first(T x) { return __metalgpu::simd::broadcast_first<T, S>(x); } \
  MG_FN VOTE PFX##_ballot(bool b) {                                                               \
    const unsigned bits = __ballot_sync(__activemask(), b);                                       \
    return VOTE(VOTE::vote_t(__metalgpu::simd::segment_bits<S>(bits)));                           \
  }                                                                                               \
  MG_FN VOTE PFX##_active_threads_mask() {                                                        \
    return VOTE(VOTE::vote_t(__metalgpu::simd::segment_bits<S>(__activemask())));                 \
  }                                                                                               \
  MG_FN bool PFX##_all(bool b) {                                                                  \
    const unsigned mask = __activemask();                                                         \
    const unsigned seg = __metalgpu::simd::segment_bits<S>(mask);                                 \
    return (__metalgpu::simd::segment_bits<S>(__ballot_sync(mask, b)) & seg) == seg;              \
  }                                                                                               \
  MG_FN bool PFX##_any(bool b) {                                                                  \
    return __metalgpu::simd::segment_bits<S>(__ballot_sync(__activemask(), b)) != 0u;            \
  }                                                                                               \
  MG_FN bool PFX##_is_first() {                                                                   \
    const unsigned seg = __metalgpu::simd::segment_bits<S>(__activemask());                       \
    return __metalgpu::simd_lane_id() % S == unsigned(__ffs(int(seg))) - 1u;                      \
  }                                                                                               \
  MG_FN bool VOTE::all() const {                                                                  \
    const VOTE::vote_t active = VOTE::vote_t(PFX##_active_threads_mask());                        \
    return (mg_v & active) == active;                                                             \
  }

MG_SIMD_GROUP(simd, 32u, simd_vote)
MG_SIMD_GROUP(quad, 4u, quad_vote)

#undef MG_SIMD_GROUP
#undef MG_SIMD_SHUFFLE
#undef MG_SIMD_PREFIX
#undef MG_SIMD_REDUCE
#undef MG_SIMD_T

}  // namespace metal

#endif
