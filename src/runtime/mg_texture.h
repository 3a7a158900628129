// metalgpu runtime: textures and samplers.
//
// A texture parameter is a thin view over the launch block's mg_texture (linear rows, see
// mg_abi.h); reads convert the stored texels to the kernel's element type as Metal does
// (float/half formats -> float, unorm -> [0, 1], snorm -> [-1, 1], integer formats as
// integers; missing channels read as 0, alpha as 1). Sampling is done in software, the same
// code on every target: nearest or linear filtering at level 0, normalised or pixel
// coordinates, the address modes clamp_to_edge, repeat, mirrored_repeat, clamp_to_zero and
// clamp_to_border. Reads and writes outside the texture are dropped (reads give zero).
#pragma once

// Left out (MG_NO_TEXTURES) of a module whose source names no texture or sampler: the
// translator says so (Translation::runtime_omissions), and the host compiler parses less.
#if !MG_NO_TEXTURES

namespace metal {

enum class access { read, write, read_write, sample };

// Sampler arguments, spelled as Metal's.
enum class coord { normalized, pixel };
enum class address { clamp_to_edge, repeat, mirrored_repeat, clamp_to_zero, clamp_to_border };
enum class s_address { clamp_to_edge, repeat, mirrored_repeat, clamp_to_zero, clamp_to_border };
enum class t_address { clamp_to_edge, repeat, mirrored_repeat, clamp_to_zero, clamp_to_border };
enum class r_address { clamp_to_edge, repeat, mirrored_repeat, clamp_to_zero, clamp_to_border };
enum class filter { nearest, linear };
enum class mag_filter { nearest, linear };
enum class min_filter { nearest, linear };
enum class mip_filter { none, nearest, linear };
enum class border_color { transparent_black, opaque_black, opaque_white };
enum class compare_func { none, less, less_equal, greater, greater_equal, equal, not_equal, always, never };

struct mg_sampler_bits_tag {};

// sample() options; only level 0 exists, so they select it.
struct level { float lod; MG_FN explicit level(float l) : lod(l) {} };
struct bias { float value; MG_FN explicit bias(float b) : value(b) {} };
struct min_lod_clamp { float lod; MG_FN explicit min_lod_clamp(float l) : lod(l) {} };

MG_FN constexpr unsigned mg_sampler_axis(unsigned b, int axis, unsigned mode) {
  return (b & ~(7u << MG_SAMPLER_ADDRESS_SHIFT(axis))) | (mode << MG_SAMPLER_ADDRESS_SHIFT(axis));
}
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, coord c) {
  return c == coord::normalized ? (b | MG_SAMPLER_NORMALIZED) : (b & ~MG_SAMPLER_NORMALIZED);
}
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, address a) {
  return mg_sampler_axis(mg_sampler_axis(mg_sampler_axis(b, 0, unsigned(a)), 1, unsigned(a)), 2, unsigned(a));
}
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, s_address a) { return mg_sampler_axis(b, 0, unsigned(a)); }
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, t_address a) { return mg_sampler_axis(b, 1, unsigned(a)); }
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, r_address a) { return mg_sampler_axis(b, 2, unsigned(a)); }
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, mag_filter f) {
  return f == mag_filter::linear ? (b | MG_SAMPLER_MAG_LINEAR) : (b & ~MG_SAMPLER_MAG_LINEAR);
}
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, min_filter f) {
  return f == min_filter::linear ? (b | MG_SAMPLER_MIN_LINEAR) : (b & ~MG_SAMPLER_MIN_LINEAR);
}
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, filter f) {
  return f == filter::linear ? (b | MG_SAMPLER_MAG_LINEAR | MG_SAMPLER_MIN_LINEAR)
                             : (b & ~(MG_SAMPLER_MAG_LINEAR | MG_SAMPLER_MIN_LINEAR));
}
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, border_color c) {
  return (b & ~(3u << MG_SAMPLER_BORDER_SHIFT)) | (unsigned(c) << MG_SAMPLER_BORDER_SHIFT);
}
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, mip_filter) { return b; }     // one level only
MG_FN constexpr unsigned mg_sampler_apply(unsigned b, compare_func) { return b; }   // depth textures only

template<class A> struct mg_is_sampler_arg : false_type {};
template<> struct mg_is_sampler_arg<coord> : true_type {};
template<> struct mg_is_sampler_arg<address> : true_type {};
template<> struct mg_is_sampler_arg<s_address> : true_type {};
template<> struct mg_is_sampler_arg<t_address> : true_type {};
template<> struct mg_is_sampler_arg<r_address> : true_type {};
template<> struct mg_is_sampler_arg<filter> : true_type {};
template<> struct mg_is_sampler_arg<mag_filter> : true_type {};
template<> struct mg_is_sampler_arg<min_filter> : true_type {};
template<> struct mg_is_sampler_arg<mip_filter> : true_type {};
template<> struct mg_is_sampler_arg<border_color> : true_type {};
template<> struct mg_is_sampler_arg<compare_func> : true_type {};

MG_FN constexpr unsigned mg_sampler_pack(unsigned b) { return b; }
template<class A, class... R> MG_FN constexpr unsigned mg_sampler_pack(unsigned b, A a, R... r) {
  return mg_sampler_pack(mg_sampler_apply(b, a), r...);
}

// Metal's defaults: normalised coordinates, clamp_to_edge, nearest.
struct sampler {
  unsigned bits;
  MG_FN constexpr sampler() : bits(MG_SAMPLER_VALID | MG_SAMPLER_NORMALIZED) {}
  MG_FN constexpr sampler(mg_sampler_bits_tag, unsigned b) : bits(b) {}
  template<class A, class... R,
           enable_if_t<mg_is_sampler_arg<A>::value && (mg_is_sampler_arg<R>::value && ...), int> = 0>
  MG_FN constexpr sampler(A a, R... r)
      : bits(mg_sampler_pack(MG_SAMPLER_VALID | MG_SAMPLER_NORMALIZED, a, r...)) {}
};

// ---- texel access ----

MG_FN bool mg_format_is_float(unsigned format) { return (format >> 4) <= MG_TEXEL_SNORM16; }
MG_FN unsigned mg_texel_bytes(unsigned format) {
  const unsigned kind = format >> 4, n = format & 15u;
  const unsigned size = (kind == MG_TEXEL_FLOAT32 || kind == MG_TEXEL_UINT32 || kind == MG_TEXEL_SINT32) ? 4u
                        : (kind == MG_TEXEL_UNORM8 || kind == MG_TEXEL_SNORM8 || kind == MG_TEXEL_UINT8 ||
                           kind == MG_TEXEL_SINT8) ? 1u : 2u;
  return size * n;
}

// Channel c of the texel at p, as float (any format).
MG_FN float mg_texel_channel_f(unsigned kind, const unsigned char* p, unsigned c) {
  switch (kind) {
    case MG_TEXEL_FLOAT32: return reinterpret_cast<const float*>(p)[c];
    case MG_TEXEL_FLOAT16: return mg_half_bits_to_float(reinterpret_cast<const uint16_t*>(p)[c]);
    case MG_TEXEL_UNORM8: return float(p[c]) * (1.0f / 255.0f);
    case MG_TEXEL_SNORM8: {
      const float v = float(reinterpret_cast<const int8_t*>(p)[c]) * (1.0f / 127.0f);
      return v < -1.0f ? -1.0f : v;
    }
    case MG_TEXEL_UNORM16: return float(reinterpret_cast<const uint16_t*>(p)[c]) * (1.0f / 65535.0f);
    case MG_TEXEL_SNORM16: {
      const float v = float(reinterpret_cast<const int16_t*>(p)[c]) * (1.0f / 32767.0f);
      return v < -1.0f ? -1.0f : v;
    }
    case MG_TEXEL_UINT32: return float(reinterpret_cast<const uint32_t*>(p)[c]);
    case MG_TEXEL_SINT32: return float(reinterpret_cast<const int32_t*>(p)[c]);
    case MG_TEXEL_UINT16: return float(reinterpret_cast<const uint16_t*>(p)[c]);
    case MG_TEXEL_SINT16: return float(reinterpret_cast<const int16_t*>(p)[c]);
    case MG_TEXEL_UINT8: return float(p[c]);
    case MG_TEXEL_SINT8: return float(reinterpret_cast<const int8_t*>(p)[c]);
  }
  return 0.0f;
}

// Channel c as an integer (integer formats; float formats convert their value).
MG_FN long long mg_texel_channel_i(unsigned kind, const unsigned char* p, unsigned c) {
  switch (kind) {
    case MG_TEXEL_UINT32: return (long long)reinterpret_cast<const uint32_t*>(p)[c];
    case MG_TEXEL_SINT32: return (long long)reinterpret_cast<const int32_t*>(p)[c];
    case MG_TEXEL_UINT16: return (long long)reinterpret_cast<const uint16_t*>(p)[c];
    case MG_TEXEL_SINT16: return (long long)reinterpret_cast<const int16_t*>(p)[c];
    case MG_TEXEL_UINT8: return (long long)p[c];
    case MG_TEXEL_SINT8: return (long long)reinterpret_cast<const int8_t*>(p)[c];
    default: return (long long)mg_texel_channel_f(kind, p, c);
  }
}

MG_FN float4 mg_texel_load_f(unsigned format, const unsigned char* p) {
  const unsigned kind = format >> 4, n = format & 15u;
  float4 r(0.0f, 0.0f, 0.0f, 1.0f);
  r.x = mg_texel_channel_f(kind, p, 0);
  if (n >= 2) r.y = mg_texel_channel_f(kind, p, 1);
  if (n >= 4) {
    r.z = mg_texel_channel_f(kind, p, 2);
    r.w = mg_texel_channel_f(kind, p, 3);
  }
  return r;
}

template<class T> MG_FN vec<T, 4> mg_texel_load(unsigned format, const unsigned char* p) {
  if constexpr (is_floating_point<T>::value) {
    return vec<T, 4>(mg_texel_load_f(format, p));
  } else {
    const unsigned kind = format >> 4, n = format & 15u;
    vec<T, 4> r(T(0), T(0), T(0), T(1));
    r.x = T(mg_texel_channel_i(kind, p, 0));
    if (n >= 2) r.y = T(mg_texel_channel_i(kind, p, 1));
    if (n >= 4) {
      r.z = T(mg_texel_channel_i(kind, p, 2));
      r.w = T(mg_texel_channel_i(kind, p, 3));
    }
    return r;
  }
}

MG_FN float mg_clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
MG_FN long long mg_clampll(long long v, long long lo, long long hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Stores channel c: floats round to nearest for normalised formats, integers saturate.
MG_FN void mg_texel_store_f(unsigned kind, unsigned char* p, unsigned c, float v) {
  switch (kind) {
    case MG_TEXEL_FLOAT32: reinterpret_cast<float*>(p)[c] = v; return;
    case MG_TEXEL_FLOAT16: reinterpret_cast<uint16_t*>(p)[c] = mg_float_to_half_bits(v); return;
    case MG_TEXEL_UNORM8: p[c] = (unsigned char)(int)(mg_clampf(v, 0.0f, 1.0f) * 255.0f + 0.5f); return;
    case MG_TEXEL_SNORM8: {
      const float s = mg_clampf(v, -1.0f, 1.0f) * 127.0f;
      reinterpret_cast<int8_t*>(p)[c] = (int8_t)(int)(s < 0.0f ? s - 0.5f : s + 0.5f);
      return;
    }
    case MG_TEXEL_UNORM16:
      reinterpret_cast<uint16_t*>(p)[c] = (uint16_t)(int)(mg_clampf(v, 0.0f, 1.0f) * 65535.0f + 0.5f);
      return;
    case MG_TEXEL_SNORM16: {
      const float s = mg_clampf(v, -1.0f, 1.0f) * 32767.0f;
      reinterpret_cast<int16_t*>(p)[c] = (int16_t)(int)(s < 0.0f ? s - 0.5f : s + 0.5f);
      return;
    }
    default: break;
  }
  // Integer formats given a float value.
  const float lim = 2147483520.0f;
  const long long i = (long long)(v != v ? 0.0f : mg_clampf(v, -lim, lim));
  switch (kind) {
    case MG_TEXEL_UINT32: reinterpret_cast<uint32_t*>(p)[c] = (uint32_t)mg_clampll(i, 0, 4294967295LL); return;
    case MG_TEXEL_SINT32: reinterpret_cast<int32_t*>(p)[c] = (int32_t)i; return;
    case MG_TEXEL_UINT16: reinterpret_cast<uint16_t*>(p)[c] = (uint16_t)mg_clampll(i, 0, 65535); return;
    case MG_TEXEL_SINT16: reinterpret_cast<int16_t*>(p)[c] = (int16_t)mg_clampll(i, -32768, 32767); return;
    case MG_TEXEL_UINT8: p[c] = (unsigned char)mg_clampll(i, 0, 255); return;
    case MG_TEXEL_SINT8: reinterpret_cast<int8_t*>(p)[c] = (int8_t)mg_clampll(i, -128, 127); return;
  }
}

MG_FN void mg_texel_store_i(unsigned kind, unsigned char* p, unsigned c, long long i) {
  switch (kind) {
    case MG_TEXEL_UINT32: reinterpret_cast<uint32_t*>(p)[c] = (uint32_t)mg_clampll(i, 0, 4294967295LL); return;
    case MG_TEXEL_SINT32:
      reinterpret_cast<int32_t*>(p)[c] = (int32_t)mg_clampll(i, -2147483647LL - 1, 2147483647LL);
      return;
    case MG_TEXEL_UINT16: reinterpret_cast<uint16_t*>(p)[c] = (uint16_t)mg_clampll(i, 0, 65535); return;
    case MG_TEXEL_SINT16: reinterpret_cast<int16_t*>(p)[c] = (int16_t)mg_clampll(i, -32768, 32767); return;
    case MG_TEXEL_UINT8: p[c] = (unsigned char)mg_clampll(i, 0, 255); return;
    case MG_TEXEL_SINT8: reinterpret_cast<int8_t*>(p)[c] = (int8_t)mg_clampll(i, -128, 127); return;
    default: mg_texel_store_f(kind, p, c, float(i)); return;
  }
}

template<class T> MG_FN void mg_texel_store(unsigned format, unsigned char* p, const vec<T, 4>& v) {
  const unsigned kind = format >> 4, n = format & 15u;
  if constexpr (is_floating_point<T>::value) {
    mg_texel_store_f(kind, p, 0, float(v.x));
    if (n >= 2) mg_texel_store_f(kind, p, 1, float(v.y));
    if (n >= 4) {
      mg_texel_store_f(kind, p, 2, float(v.z));
      mg_texel_store_f(kind, p, 3, float(v.w));
    }
  } else {
    mg_texel_store_i(kind, p, 0, (long long)v.x);
    if (n >= 2) mg_texel_store_i(kind, p, 1, (long long)v.y);
    if (n >= 4) {
      mg_texel_store_i(kind, p, 2, (long long)v.z);
      mg_texel_store_i(kind, p, 3, (long long)v.w);
    }
  }
}

// Address of texel (x, y) of slice s, or null outside the texture.
MG_FN unsigned char* mg_texel_at(const mg_texture* t, unsigned x, unsigned y, unsigned s, unsigned slices) {
  if (!t->data || x >= t->width || y >= t->height || s >= slices) return nullptr;
  return static_cast<unsigned char*>(t->data) + (size_t)s * t->slice_pitch + (size_t)y * t->row_pitch +
         (size_t)x * mg_texel_bytes(t->format);
}

template<class T> MG_FN vec<T, 4> mg_tex_read(const mg_texture* t, unsigned x, unsigned y, unsigned s, unsigned slices) {
  const unsigned char* p = mg_texel_at(t, x, y, s, slices);
  if (!p) return vec<T, 4>(T(0));
  return mg_texel_load<T>(t->format, p);
}

template<class T, class V> MG_FN void mg_tex_write(const mg_texture* t, const V& value, unsigned x, unsigned y,
                                                    unsigned s, unsigned slices) {
  unsigned char* p = mg_texel_at(t, x, y, s, slices);
  if (p) mg_texel_store<T>(t->format, p, vec<T, 4>(value));
}

// One integer texel coordinate through an address mode; false: outside (border colour).
MG_FN bool mg_tex_wrap(int& i, int n, unsigned mode) {
  switch (mode) {
    case MG_ADDRESS_REPEAT: {
      i %= n;
      if (i < 0) i += n;
      return true;
    }
    case MG_ADDRESS_MIRRORED_REPEAT: {
      const int m = 2 * n;
      i %= m;
      if (i < 0) i += m;
      if (i >= n) i = m - 1 - i;
      return true;
    }
    case MG_ADDRESS_CLAMP_TO_ZERO:
    case MG_ADDRESS_CLAMP_TO_BORDER: return i >= 0 && i < n;
    default:
      i = i < 0 ? 0 : (i >= n ? n - 1 : i);
      return true;
  }
}

// Filtered value at coordinates c[0..dims) of slice `layer` (3D textures: dims 3, layer 0).
MG_FN float4 mg_tex_sample(const mg_texture* t, unsigned bits, int dims, float u, float v, float w,
                           unsigned layer) {
  if (!t->data) return float4(0.0f);
  const int n[3] = {int(t->width), int(t->height), int(t->depth)};
  float c[3] = {u, v, w};
  const bool linear = (bits & MG_SAMPLER_MAG_LINEAR) != 0;
  int i0[3] = {0, 0, 0}, i1[3] = {0, 0, 0};
  float a[3] = {0.0f, 0.0f, 0.0f};
  bool in0[3] = {true, true, true}, in1[3] = {true, true, true};
  for (int d = 0; d < dims; ++d) {
    float x = c[d];
    if (x != x) x = 0.0f;
    if (bits & MG_SAMPLER_NORMALIZED) x *= float(n[d]);
    x = mg_clampf(x, -16777216.0f, 16777216.0f);
    if (linear) x -= 0.5f;
    const float f = floorf(x);
    i0[d] = int(f);
    i1[d] = linear ? i0[d] + 1 : i0[d];
    a[d] = linear ? x - f : 0.0f;
    const unsigned mode = (bits >> MG_SAMPLER_ADDRESS_SHIFT(d)) & 7u;
    in0[d] = mg_tex_wrap(i0[d], n[d], mode);
    in1[d] = mg_tex_wrap(i1[d], n[d], mode);
  }
  // Border: clamp_to_zero is (0,0,0,0) for formats with alpha, (0,0,0,1) without.
  const unsigned border = (bits >> MG_SAMPLER_BORDER_SHIFT) & 3u;
  const bool has_alpha = (t->format & 15u) == 4u;
  float4 edge(0.0f, 0.0f, 0.0f, has_alpha ? 0.0f : 1.0f);
  if (border == 1u) edge = float4(0.0f, 0.0f, 0.0f, 1.0f);
  if (border == 2u) edge = float4(1.0f);
  const unsigned slices = dims == 3 ? t->depth : t->array_length;
  if (layer >= slices) layer = slices ? slices - 1 : 0;
  float4 acc(0.0f);
  const int corners = linear ? (1 << dims) : 1;
  for (int k = 0; k < corners; ++k) {
    float weight = 1.0f;
    int idx[3] = {0, 0, 0};
    bool inside = true;
    for (int d = 0; d < dims; ++d) {
      const bool hi = (k >> d) & 1;
      idx[d] = hi ? i1[d] : i0[d];
      inside = inside && (hi ? in1[d] : in0[d]);
      weight *= hi ? a[d] : 1.0f - a[d];
    }
    if (linear && weight == 0.0f) continue;
    float4 texel = edge;
    if (inside) {
      const unsigned s = dims == 3 ? unsigned(idx[2]) : layer;
      texel = mg_texel_load_f(t->format, mg_texel_at(t, unsigned(idx[0]), unsigned(idx[1]), s, slices));
    }
    acc += texel * weight;
  }
  return acc;
}

template<class T> MG_FN vec<T, 4> mg_tex_sampled(const mg_texture* t, sampler s, int dims, float u, float v,
                                                 float w, unsigned layer) {
  return vec<T, 4>(mg_tex_sample(t, s.bits, dims, u, v, w, layer));
}

#define MG_TEXTURE_COMMON(NAME)                                                                  \
  typedef T value_type;                                                                          \
  const mg_texture* mg_t;                                                                        \
  NAME() = default;                                                                              \
  MG_FN explicit NAME(const mg_texture* p) : mg_t(p) {}                                          \
  MG_FN uint get_width(uint lod = 0) const { return lod ? 0u : mg_t->width; }                    \
  MG_FN uint get_num_mip_levels() const { return 1u; }                                           \
  MG_FN void fence() const {}                                                                    \
  template<class V> MG_FN void mg_check_write() const {                                          \
    static_assert(A == access::write || A == access::read_write || sizeof(V) == 0,               \
                  "write() needs a texture declared with access::write or access::read_write");  \
  }

template<class T, access A = access::sample> struct texture1d {
  MG_TEXTURE_COMMON(texture1d)
  template<class C, enable_if_t<is_integral<C>::value, int> = 0>
  MG_FN vec<T, 4> read(C x, uint lod = 0) const {
    return lod ? vec<T, 4>(T(0)) : mg_tex_read<T>(mg_t, uint(x), 0u, 0u, 1u);
  }
  template<class V, class C, enable_if_t<is_integral<C>::value, int> = 0>
  MG_FN void write(const V& value, C x, uint lod = 0) const {
    mg_check_write<V>();
    if (!lod) mg_tex_write<T>(mg_t, value, uint(x), 0u, 0u, 1u);
  }
  MG_FN vec<T, 4> sample(sampler s, float x) const { return mg_tex_sampled<T>(mg_t, s, 1, x, 0.0f, 0.0f, 0u); }
};

template<class T, access A = access::sample> struct texture1d_array {
  MG_TEXTURE_COMMON(texture1d_array)
  MG_FN uint get_array_size() const { return mg_t->array_length; }
  template<class C, class S, enable_if_t<is_integral<C>::value && is_integral<S>::value, int> = 0>
  MG_FN vec<T, 4> read(C x, S slice, uint lod = 0) const {
    return lod ? vec<T, 4>(T(0)) : mg_tex_read<T>(mg_t, uint(x), 0u, uint(slice), mg_t->array_length);
  }
  template<class V, class C, class S, enable_if_t<is_integral<C>::value && is_integral<S>::value, int> = 0>
  MG_FN void write(const V& value, C x, S slice, uint lod = 0) const {
    mg_check_write<V>();
    if (!lod) mg_tex_write<T>(mg_t, value, uint(x), 0u, uint(slice), mg_t->array_length);
  }
  MG_FN vec<T, 4> sample(sampler s, float x, uint slice) const {
    return mg_tex_sampled<T>(mg_t, s, 1, x, 0.0f, 0.0f, slice);
  }
};

template<class T, access A = access::sample> struct texture2d {
  MG_TEXTURE_COMMON(texture2d)
  MG_FN uint get_height(uint lod = 0) const { return lod ? 0u : mg_t->height; }
  template<class C, bool P, enable_if_t<is_integral<C>::value, int> = 0>
  MG_FN vec<T, 4> read(const mg_basic_vec<C, 2, P>& c, uint lod = 0) const {
    return lod ? vec<T, 4>(T(0)) : mg_tex_read<T>(mg_t, uint(c.x), uint(c.y), 0u, 1u);
  }
  template<class V, class C, bool P, enable_if_t<is_integral<C>::value, int> = 0>
  MG_FN void write(const V& value, const mg_basic_vec<C, 2, P>& c, uint lod = 0) const {
    mg_check_write<V>();
    if (!lod) mg_tex_write<T>(mg_t, value, uint(c.x), uint(c.y), 0u, 1u);
  }
  MG_FN vec<T, 4> sample(sampler s, float2 c) const { return mg_tex_sampled<T>(mg_t, s, 2, c.x, c.y, 0.0f, 0u); }
  template<class O> MG_FN vec<T, 4> sample(sampler s, float2 c, O) const { return sample(s, c); }  // level/bias: level 0
};

template<class T, access A = access::sample> struct texture2d_array {
  MG_TEXTURE_COMMON(texture2d_array)
  MG_FN uint get_height(uint lod = 0) const { return lod ? 0u : mg_t->height; }
  MG_FN uint get_array_size() const { return mg_t->array_length; }
  template<class C, bool P, class S, enable_if_t<is_integral<C>::value && is_integral<S>::value, int> = 0>
  MG_FN vec<T, 4> read(const mg_basic_vec<C, 2, P>& c, S slice, uint lod = 0) const {
    return lod ? vec<T, 4>(T(0)) : mg_tex_read<T>(mg_t, uint(c.x), uint(c.y), uint(slice), mg_t->array_length);
  }
  template<class V, class C, bool P, class S, enable_if_t<is_integral<C>::value && is_integral<S>::value, int> = 0>
  MG_FN void write(const V& value, const mg_basic_vec<C, 2, P>& c, S slice, uint lod = 0) const {
    mg_check_write<V>();
    if (!lod) mg_tex_write<T>(mg_t, value, uint(c.x), uint(c.y), uint(slice), mg_t->array_length);
  }
  MG_FN vec<T, 4> sample(sampler s, float2 c, uint slice) const {
    return mg_tex_sampled<T>(mg_t, s, 2, c.x, c.y, 0.0f, slice);
  }
  template<class O> MG_FN vec<T, 4> sample(sampler s, float2 c, uint slice, O) const { return sample(s, c, slice); }
};

template<class T, access A = access::sample> struct texture3d {
  MG_TEXTURE_COMMON(texture3d)
  MG_FN uint get_height(uint lod = 0) const { return lod ? 0u : mg_t->height; }
  MG_FN uint get_depth(uint lod = 0) const { return lod ? 0u : mg_t->depth; }
  template<class C, bool P, enable_if_t<is_integral<C>::value, int> = 0>
  MG_FN vec<T, 4> read(const mg_basic_vec<C, 3, P>& c, uint lod = 0) const {
    return lod ? vec<T, 4>(T(0)) : mg_tex_read<T>(mg_t, uint(c.x), uint(c.y), uint(c.z), mg_t->depth);
  }
  template<class V, class C, bool P, enable_if_t<is_integral<C>::value, int> = 0>
  MG_FN void write(const V& value, const mg_basic_vec<C, 3, P>& c, uint lod = 0) const {
    mg_check_write<V>();
    if (!lod) mg_tex_write<T>(mg_t, value, uint(c.x), uint(c.y), uint(c.z), mg_t->depth);
  }
  MG_FN vec<T, 4> sample(sampler s, float3 c) const { return mg_tex_sampled<T>(mg_t, s, 3, c.x, c.y, c.z, 0u); }
  template<class O> MG_FN vec<T, 4> sample(sampler s, float3 c, O) const { return sample(s, c); }
};

#undef MG_TEXTURE_COMMON

}  // namespace metal

#endif  // !MG_NO_TEXTURES
