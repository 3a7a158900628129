// Standalone test of src/runtime (the portable metal_stdlib).
// Build: g++ -std=c++17 -O2 -ffast-math -nostdinc++ -Wall -Wextra test_runtime.cpp -o t && ./t
#include "../../src/runtime/metal_stdlib.h"
#include <stdio.h>

using namespace metal;

static int g_fail = 0;
#define CHECK(...)                                                        \
  do {                                                                    \
    if (!(__VA_ARGS__)) { printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #__VA_ARGS__); ++g_fail; } \
  } while (0)
static bool near(float a, float b, float eps = 1e-5f) { return fabsf(a - b) <= eps * (1.0f + fabsf(b)); }

// ---- sizes and alignments (Metal's). A vector's layout alignment (a struct member's, which
// generated code writes as alignas) is Metal's; as a C++ type on the cpu it is its element's, so
// that accesses at addresses Apple GPUs allow do not fault (mg_vector.h).
static_assert(sizeof(float2) == 8 && mg_layout_align<float2> == 8 && alignof(float2) == 4, "");
static_assert(sizeof(float3) == 16 && mg_layout_align<float3> == 16 && alignof(float3) == 4, "");
static_assert(sizeof(float4) == 16 && mg_layout_align<float4> == 16 && alignof(float4) == 4, "");
static_assert(sizeof(half3) == 8 && mg_layout_align<half3> == 8 && MG_ALIGNOF(half3) == 8, "");
static_assert(sizeof(half2) == 4 && sizeof(half4) == 8, "");
static_assert(sizeof(bool3) == 4 && sizeof(char3) == 4 && sizeof(uchar4) == 4, "");
static_assert(sizeof(long3) == 32 && mg_layout_align<long3> == 32 && sizeof(ulong2) == 16, "");
static_assert(mg_layout_align<float4x4> == 16 && mg_layout_align<metal::array<float3, 2>> == 16, "");
static_assert(mg_layout_align<packed_float4> == 4 && mg_layout_align<const float2[3]> == 8, "");
static_assert(sizeof(packed_float3) == 12 && alignof(packed_float3) == 4, "");
static_assert(sizeof(packed_half3) == 6 && alignof(packed_half3) == 2, "");
static_assert(sizeof(packed_float4) == 16 && alignof(packed_float4) == 4, "");
static_assert(sizeof(bfloat) == 2 && sizeof(half) == 2 && sizeof(bfloat3) == 8, "");
static_assert(sizeof(uint) == 4 && sizeof(ulong) == 8 && sizeof(ushort) == 2 && sizeof(uchar) == 1, "");
static_assert(sizeof(float3x3) == 48 && sizeof(float4x4) == 64 && sizeof(float2x3) == 32, "");
static_assert(__is_trivially_copyable(float4) && __is_trivially_copyable(packed_float3), "");
static_assert(__is_trivially_copyable(half4) && __is_trivially_copyable(bfloat4), "");
static_assert(__is_trivially_copyable(float4x4) && __is_trivial(float3), "");
static_assert(is_vector_v<float4> && is_vector_v<packed_int2> && !is_vector_v<float>, "");
static_assert(is_same_v<vec<float, 4>, float4> && is_same_v<metal::float4, ::float4>, "");
static_assert(is_floating_point_v<half> && is_floating_point_v<bfloat> && is_integral_v<uint>, "");
static_assert(is_signed_v<int> && is_unsigned_v<uint> && !is_signed_v<uchar> && is_scalar_v<float*>, "");
static_assert(is_same_v<make_unsigned_t<int>, uint> && is_same_v<make_signed_t<ulong>, long>, "");
static_assert(is_same_v<remove_cv_t<const volatile int>, int> && is_same_v<remove_pointer_t<int*>, int>, "");
static_assert(is_same_v<conditional_t<true, int, float>, int> && is_arithmetic_v<bfloat>, "");
static_assert(numeric_limits<int>::max() == 2147483647 && numeric_limits<uchar>::max() == 255, "");
static_assert(numeric_limits<float>::digits == 24 && numeric_limits<half>::digits == 11, "");

// ---- program-scope constants (the translator emits these as constexpr / const)
constexpr float4 k_const4 = float4(1, 2, 3, 4);
constexpr float2 k_const2(0.5f);
static_assert(k_const4.z == 3.0f && k_const2.y == 0.5f, "");

// A user function with an MSL-style reference parameter.
static float3 user_fn(float3 a);

static void test_vectors() {
  float4 z = 0;
  CHECK(all(z == 0.0f));
  float2 a(1, 2);
  float4 b(a, 3, 4);
  CHECK(b.x == 1 && b.y == 2 && b.z == 3 && b.w == 4);
  float4 c(1, a, 4);
  CHECK(c.x == 1 && c.y == 1 && c.z == 2 && c.w == 4);
  float4 d(a, a);
  CHECK(d.z == 1 && d.w == 2);
  float3 e(a, 7.0);
  CHECK(e.z == 7);
  float4 f(e, 1), g(0.5f, e);
  CHECK(f.w == 1 && g.x == 0.5f && g.w == 7);
  float4 h(b.template swz<0, 1>(), 0, 1);
  CHECK(h.z == 0 && h.w == 1 && h.y == 2);
  int4 mixed(1, 2.5, 3.0f, 'a');
  CHECK(mixed.y == 2 && mixed.w == 97);
  packed_float3 pk(1, 2, 3);
  float4 fromp(pk, 9);
  CHECK(fromp.w == 9 && fromp.z == 3);

  // conversions
  int4 iv = int4(float4(1.7f, -2.2f, 3.9f, 0));
  CHECK(iv.x == 1 && iv.y == -2 && iv.z == 3);
  float4 fv = float4(iv);
  CHECK(fv.y == -2.0f);
  half4 hv = half4(float4(1.5f, 2, 3, 65504));
  CHECK(float(hv.x) == 1.5f && float(hv.w) == 65504.0f);
  float3 up = pk;
  packed_float3 down = up * 2.0f;
  CHECK(down.z == 6 && up.y == 2);

  // indexing
  float4 q(1, 2, 3, 4);
  q[2] = 10;
  const float4 cq = q;
  CHECK(cq[2] == 10 && cq[3] == 4);

  // swizzles
  float4 s(1, 2, 3, 4);
  float3 zyx = s.template swz<2, 1, 0>();
  CHECK(zyx.x == 3 && zyx.y == 2 && zyx.z == 1);
  float4 wwww = s.template swz<3, 3, 3, 3>();
  CHECK(all(wwww == 4.0f));
  s.template swz_ref<0, 1>() = s.template swz<1, 0>();
  CHECK(s.x == 2 && s.y == 1 && s.z == 3);
  s.template swz_ref<2, 3>() += float2(10, 20);
  CHECK(s.z == 13 && s.w == 24);
  s.template swz_ref<0, 2>() = 0;
  CHECK(s.x == 0 && s.z == 0 && s.y == 1);
  s.template swz_ref<3, 2, 1>() *= 2.0f;
  CHECK(s.w == 48 && s.y == 2);
  float2 r2 = s.template swz_ref<3, 1>();
  CHECK(r2.x == 48 && r2.y == 2);
  packed_float4 ps(1, 2, 3, 4);
  ps.template swz_ref<0, 3>() = ps.template swz<3, 0>();
  CHECK(ps.x == 4 && ps.w == 1);

  // operators
  float4 v1(1, 2, 3, 4), v2(4, 3, 2, 1);
  float4 sum = v1 + v2;
  CHECK(all(sum == 5.0f));
  CHECK(all(v1 * 2 == float4(2, 4, 6, 8)));
  CHECK(all(2.0 * v1 == float4(2, 4, 6, 8)));
  CHECK(all(v1 / 2.0f == float4(0.5f, 1, 1.5f, 2)));
  CHECK(all(1.0f - v1 == float4(0, -1, -2, -3)));
  CHECK(all(-v1 == float4(-1, -2, -3, -4)));
  half4 hh(1, 2, 3, 4);
  half4 hh2 = hh * 2.0f;
  CHECK(float(hh2.w) == 8.0f);
  float4 acc = v1;
  acc += v2;
  acc *= 2;
  acc -= 1.0f;
  acc /= float4(9, 9, 9, 9);
  CHECK(all(acc == 1.0f));
  acc++;
  ++acc;
  CHECK(all(acc == 3.0f));
  int4 i1(7, 8, 9, 10), i2(2, 3, 4, 5);
  CHECK(all(i1 % i2 == int4(1, 2, 1, 0)));
  CHECK(all((i1 & 1) == int4(1, 0, 1, 0)));
  CHECK(all((i1 | 1) == int4(7, 9, 9, 11)));
  CHECK(all((i1 ^ i1) == 0));
  CHECK(all((i2 << 1) == int4(4, 6, 8, 10)));
  CHECK(all((i1 >> 1) == int4(3, 4, 4, 5)));
  CHECK(all(~int2(0) == int2(-1)));
  uint4 u4(1, 2, 3, 4);
  u4 <<= 2u;
  CHECK(u4.w == 16u);
  short2 sh(100, 200);
  sh = sh + sh;
  CHECK(sh.y == 400);
  uchar4 uc(250, 1, 2, 3);
  uc += 10;
  CHECK(uc.x == 4);

  // comparisons -> bool vectors
  bool4 lt = v1 < v2;
  CHECK(lt.x && lt.y && !lt.z && !lt.w);
  bool4 ge = v1 >= 3.0f;
  CHECK(!ge.x && ge.z);
  bool4 ne = v1 != v2;
  CHECK(all(ne));
  bool4 band = lt && ge;
  CHECK(!any(band));
  bool4 bor = lt || ge;
  CHECK(all(bor));
  CHECK(all(!band));
  CHECK(any(lt) && !all(lt));
  CHECK(all(true) && !any(false));
  bool3 b3(true, false, true);
  CHECK(b3.x && !b3.y);

  // select
  float4 sel = select(v1, v2, lt);
  CHECK(all(sel == float4(4, 3, 3, 4)));
  CHECK(select(1.0f, 2.0f, true) == 2.0f && select(1, 2, false) == 1);
  CHECK(all(select(v1, v2, true) == v2));

  // bfloat / half vectors in arithmetic
  bfloat4 bf(1.0f, 2, 3, 4);
  bfloat4 bf2 = bf * 2.0f + bf;
  CHECK(float(bf2.w) == 12.0f);

  float3 uf = user_fn(float3(1, 2, 3));
  CHECK(uf.x == 2);
}
static float3 user_fn(float3 a) { return a * 2; }

static void test_scalars() {
  // bfloat
  bfloat one = bfloat(1.0f);  // Metal: no implicit float -> bfloat
  CHECK(one.bits == 0x3F80);
  CHECK(float(bfloat(3.0f)) == 3.0f);
  CHECK(bfloat(1.00390625f).bits == 0x3F80);   // tie -> even
  CHECK(bfloat(1.01171875f).bits == 0x3F82);   // tie -> even (up)
  CHECK(bfloat(-2.0f).bits == 0xC000);
  bfloat bsum = one + one;
  CHECK(float(bsum) == 2.0f);
  float mixed = one * 2.5f;                    // bfloat * float -> float
  CHECK(mixed == 2.5f);
  bfloat bi = one * 3;                         // bfloat * int -> bfloat
  CHECK(float(bi) == 3.0f && one < 2.0f && one == 1 && !(one > bsum));
  bfloat bacc = bfloat(1.0f);
  bacc += 2;
  bacc *= 2.0f;
  CHECK(float(bacc) == 6.0f);
  CHECK(isnan(numeric_limits<bfloat>::quiet_NaN()) && isinf(numeric_limits<bfloat>::infinity()));
  CHECK(float(numeric_limits<bfloat>::max()) > 3.38e38f);
  CHECK(float(-one) == -1.0f);

  // half
  half hmax = 65504.0f;
  CHECK(float(hmax) == 65504.0f);
  CHECK(float(numeric_limits<half>::max()) == 65504.0f);
  CHECK(float(HALF_MAX) == 65504.0f && float(HALF_EPSILON) == 0.0009765625f);
  CHECK(float(half(1.0f / 3.0f)) == 0.333251953125f);
  CHECK(float(half(1e-7f)) == 1.1920928955078125e-07f);      // subnormal
  CHECK(isinf(half(70000.0f)));
  half h2 = half(2.0f) * half(3.0f) + half(1.0f);
  CHECK(float(h2) == 7.0f);
  CHECK(mg_half_bits(half(1.0f)) == 0x3C00);
  // software converters (used by CUDA, checked here)
  CHECK(mg_float_to_half_bits(1.0f) == 0x3C00 && mg_float_to_half_bits(65504.0f) == 0x7BFF);
  CHECK(mg_float_to_half_bits(65520.0f) == 0x7C00 && mg_float_to_half_bits(-2.0f) == 0xC000);
  CHECK(mg_float_to_half_bits(5.9604644775390625e-08f) == 0x0001);
  CHECK(mg_float_to_half_bits(1.00048828125f) == 0x3C00);     // tie -> even
  CHECK(mg_float_to_half_bits(1.00146484375f) == 0x3C02);     // tie -> even (up)
  for (uint32_t b = 0; b < 0x7C00; b += 7) {                  // round trip of finite halves
    float f = mg_half_bits_to_float((uint16_t)b);
    if (mg_float_to_half_bits(f) != b) { CHECK(false); break; }
    if (mg_half_bits(half(f)) != b) { CHECK(false); break; }
  }
  CHECK(mg_half_bits_to_float(0x7BFF) == 65504.0f && isinf(mg_half_bits_to_float(0x7C00)));
  // float <-> bits by exact arithmetic (constexpr without __builtin_bit_cast: GCC 9 and 10).
  // Subnormals in constant expressions only: this test runs with -ffast-math's flush to zero.
  static_assert(mg_f2u_exact(1.0f) == 0x3F800000u && mg_f2u_exact(-2.5f) == 0xC0200000u, "");
  static_assert(mg_f2u_exact(1e-45f) == 1u, "");
#if defined(__GNUC__) && !defined(__clang__)
  static_assert(mg_f2u_exact(-0.0f) == 0x80000000u, "");
#endif
  static_assert(mg_f2u_exact(1.1754942e-38f) == 0x007FFFFFu && mg_f2u_exact(3.4028235e38f) == 0x7F7FFFFFu, "");
  static_assert(mg_f2u_exact(__builtin_huge_valf()) == 0x7F800000u && mg_f2u_exact(__builtin_nanf("")) == 0x7FC00000u, "");
  static_assert(mg_u2f_exact(1u) == 1e-45f && mg_u2f_exact(0x007FFFFFu) == 1.1754942e-38f, "");
  static_assert(mg_u2f_exact(0xC0200000u) == -2.5f && mg_u2f_exact(0x7F7FFFFFu) == 3.4028235e38f, "");
  static_assert(mg_u2f_exact(0xFF800000u) == -__builtin_huge_valf(), "");
  for (uint64_t u = 0x00800000u; u < 0x100000000ull; u += 9973) {  // normal floats, both signs
    const uint32_t b = uint32_t(u);
    if ((b & 0x7F800000u) == 0x7F800000u || (b & 0x7F800000u) == 0) continue;
    if (mg_f2u_exact(mg_u2f(b)) != b || mg_f2u(mg_u2f_exact(b)) != b) { CHECK(false); break; }
  }
}

static void test_matrices() {
  float2x2 m(float2(1, 2), float2(3, 4));     // columns (1,2), (3,4): [[1 3],[2 4]]
  CHECK(m[1].x == 3 && m[0].y == 2);
  float2 mv = m * float2(1, 1);
  CHECK(mv.x == 4 && mv.y == 6);
  float2 vm = float2(1, 1) * m;
  CHECK(vm.x == 3 && vm.y == 7);
  float2x2 mm = m * m;                        // [[7 15],[10 22]]
  CHECK(mm[0].x == 7 && mm[0].y == 10 && mm[1].x == 15 && mm[1].y == 22);
  CHECK(determinant(m) == -2.0f);
  float2x2 t = transpose(m);
  CHECK(t[0].y == 3 && t[1].x == 2);
  float2x2 s(1, 2, 3, 4);
  CHECK(s == m);
  float3x3 id(1.0f);
  CHECK(id[1].y == 1 && id[1].x == 0 && determinant(id) == 1.0f);
  float3x3 m3(float3(2, 0, 1), float3(1, 3, 2), float3(1, 1, 1));
  CHECK(determinant(m3) == 2 * (3 - 2) - 1 * (0 - 1) + 1 * (0 - 3));
  float4x4 m4(2.0f);
  CHECK(determinant(m4) == 16.0f);
  float4x4 m4b(1, 2, 3, 4, 5, 6, 7, 8, 2, 6, 4, 8, 3, 1, 1, 2);
  CHECK(fabsf(determinant(m4b) - determinant(transpose(m4b))) < 1e-3f);
  CHECK(determinant(m4b) == 72.0f);
  float4 p = m4 * float4(1, 2, 3, 4);
  CHECK(all(p == float4(2, 4, 6, 8)));
  float2x3 r(float3(1, 2, 3), float3(4, 5, 6));  // 2 columns, 3 rows
  float3 rv = r * float2(1, 1);
  CHECK(all(rv == float3(5, 7, 9)));
  float2 lv = float3(1, 1, 1) * r;
  CHECK(lv.x == 6 && lv.y == 15);
  float3x2 r2 = transpose(r);
  float3x3 prod = r * r2;                      // (3x2)(2x3) -> 3x3
  CHECK(prod[0].x == 1 + 16 && prod[2].y == 2 * 3 + 5 * 6);
  float2x2 sc = m * 2.0f + 1.0f * m - m;
  CHECK(sc == m * 2);
  sc *= 0.5f;
  CHECK(sc == m);
  half3x3 hm(half(1.0f));
  half3 hv = hm * half3(1, 2, 3);
  CHECK(float(hv.z) == 3.0f);
}

static void test_math() {
  CHECK(near(cos(0.5f), 0.87758256f));
  CHECK(near(sin(0.5f), 0.47942554f));
  CHECK(near(tan(0.5f), 0.54630249f));
  CHECK(near(atan2(1.0f, 1.0f), M_PI_4_F));
  CHECK(near(exp(1.0f), M_E_F) && near(exp2(3.0f), 8.0f) && near(exp10(2.0f), 100.0f, 1e-4f));
  CHECK(near(log(M_E_F), 1.0f) && near(log2(8.0f), 3.0f) && near(log10(1000.0f), 3.0f));
  CHECK(near(pow(2.0f, 10.0f), 1024.0f) && near(powr(2.0f, 0.5f), M_SQRT2_F));
  CHECK(near(sqrt(2.0f), M_SQRT2_F) && near(rsqrt(4.0f), 0.5f, 1e-3f) && near(cbrt(27.0f), 3.0f));
  CHECK(fabs(-2.0f) == 2.0f && abs(-3.5f) == 3.5f && abs(-3) == 3);
  CHECK(floor(-1.5f) == -2.0f && ceil(1.2f) == 2.0f && round(2.5f) == 3.0f && trunc(-1.7f) == -1.0f);
  CHECK(rint(2.5f) == 2.0f);
  CHECK(near(fract(1.25f), 0.25f) && near(fract(-0.25f), 0.75f));
  CHECK(near(fmod(7.0f, 3.0f), 1.0f) && fmin(1.0f, 2.0f) == 1.0f && fmax(1.0f, 2.0f) == 2.0f);
  CHECK(fma(2.0f, 3.0f, 1.0f) == 7.0f);
  float ip;
  float fr = modf(3.75f, ip);
  CHECK(ip == 3.0f && fr == 0.75f);
  int ex;
  float mant = frexp(8.0f, ex);
  CHECK(mant == 0.5f && ex == 4 && ldexp(0.5f, 4) == 8.0f);
  CHECK(copysign(2.0f, -1.0f) == -2.0f);
  float cs;
  float sn = sincos(0.5f, cs);
  CHECK(near(sn, 0.47942554f) && near(cs, 0.87758256f));
  CHECK(min(1.0f, 2.0f) == 1.0f && max(1.0f, 2.0f) == 2.0f && clamp(5.0f, 0.0f, 1.0f) == 1.0f);
  CHECK(mix(0.0f, 10.0f, 0.25f) == 2.5f && sign(-3.0f) == -1.0f && sign(0.0f) == 0.0f);
  CHECK(step(0.5f, 0.4f) == 0.0f && step(0.5f, 0.6f) == 1.0f);
  CHECK(smoothstep(0.0f, 1.0f, 0.5f) == 0.5f && saturate(1.5f) == 1.0f && saturate(-1.0f) == 0.0f);
  CHECK(divide(1.0f, 4.0f) == 0.25f);
  float nanv = numeric_limits<float>::quiet_NaN();
  float infv = numeric_limits<float>::infinity();
  CHECK(isnan(nanv) && !isnan(1.0f) && isinf(infv) && !isinf(nanv) && isinf(-INFINITY));
  CHECK(isfinite(1.0f) && !isfinite(infv) && isnormal(1.0f) && !isnormal(1e-40f) && !isnormal(0.0f));
  CHECK(signbit(-1.0f) && !signbit(1.0f) && isnan(NAN));
  // half math
  half hx = 0.5f;
  CHECK(near(float(cos(hx)), 0.87758256f, 1e-3f));
  // Apple's metal_stdlib has no bfloat math: a bfloat argument converts to float (libraries
  // such as MLX declare bfloat overloads themselves).
  CHECK(is_same_v<decltype(cos(hx)), half> && is_same_v<decltype(sqrt(bfloat(4.0f))), float>);
  CHECK(float(sqrt(half(4.0f))) == 2.0f && float(max(half(1.0f), half(2.0f))) == 2.0f);
  // vectors
  float4 v(0.0f, 0.5f, 1.0f, 4.0f);
  float4 cv = cos(v);
  CHECK(near(cv.y, 0.87758256f) && cv.x == 1.0f);
  float4 sq = sqrt(v);
  CHECK(near(sq.w, 2.0f));
  CHECK(all(clamp(v, 0.25f, 1.0f) == float4(0.25f, 0.5f, 1.0f, 1.0f)));
  CHECK(all(clamp(v, float4(0), float4(0.5f)) == float4(0, 0.5f, 0.5f, 0.5f)));
  CHECK(all(max(v, 0.75f) == float4(0.75f, 0.75f, 1.0f, 4.0f)));
  CHECK(all(min(v, v * 2) == v));
  CHECK(all(mix(float2(0), float2(10), 0.5f) == float2(5)));
  CHECK(all(mix(float2(0), float2(10), float2(0.5f, 1.0f)) == float2(5, 10)));
  CHECK(all(step(0.5f, v) == float4(0, 1, 1, 1)));
  CHECK(all(step(v, 0.5f) == float4(1, 1, 0, 0)));
  CHECK(all(pow(float2(2, 3), float2(2)) == float2(4, 9)) || near(pow(float2(2, 3), float2(2)).y, 9.0f));
  CHECK(all(fma(float2(1, 2), float2(3), float2(1)) == float2(4, 7)));
  CHECK(all(abs(float2(-1, 2)) == float2(1, 2)) && all(abs(int3(-1, 2, -3)) == int3(1, 2, 3)));
  CHECK(all(isnan(float2(nanv, 1)) == bool2(true, false)));
  CHECK(all(signbit(float2(-1, 1)) == bool2(true, false)));
  float2 vi;
  float2 vf = modf(float2(1.5f, 2.25f), vi);
  CHECK(all(vi == float2(1, 2)) && all(vf == float2(0.5f, 0.25f)));
  float2 vc;
  float2 vsn = sincos(float2(0.5f), vc);
  CHECK(near(vsn.x, 0.47942554f) && near(vc.y, 0.87758256f));
  half4 hv4(1, 4, 9, 16);
  half4 hs = sqrt(hv4);
  CHECK(float(hs.w) == 4.0f);
  CHECK(all(saturate(float2(-1, 2)) == float2(0, 1)) && all(fract(float2(1.5f)) == float2(0.5f)));
  // geometric
  float3 a(1, 0, 0), b(0, 1, 0);
  CHECK(all(cross(a, b) == float3(0, 0, 1)) && dot(a, b) == 0.0f);
  CHECK(length(float3(3, 4, 0)) == 5.0f && length_squared(float2(3, 4)) == 25.0f);
  CHECK(distance(float2(0), float2(3, 4)) == 5.0f && distance_squared(float2(0), float2(1)) == 2.0f);
  float3 n = normalize(float3(0, 3, 4));
  CHECK(near(n.y, 0.6f, 1e-3f) && near(n.z, 0.8f, 1e-3f));
  CHECK(all(reflect(float2(1, -1), float2(0, 1)) == float2(1, 1)));
  float2 rf = refract(float2(0, -1), float2(0, 1), 1.0f);
  CHECK(near(rf.y, -1.0f) && near(rf.x, 0.0f));
  CHECK(all(faceforward(float2(0, 1), float2(0, -1), float2(0, 1)) == float2(0, 1)));
  packed_float3 pa(1, 2, 3);
  CHECK(dot(pa, float3(1, 1, 1)) == 6.0f && length(pa) > 3.7f);
  // fast / precise
  CHECK(near(fast::cos(0.5f), 0.87758256f) && near(precise::sqrt(4.0f), 2.0f));
  CHECK(near(metal::fast::exp(0.0f), 1.0f) && near(metal::precise::sin(0.0f), 0.0f));
  // constants
  CHECK(near(M_PI_F, 3.14159265f) && near(M_PI_2_F * 2, M_PI_F) && near(M_1_PI_F * M_PI_F, 1.0f));
  CHECK(near(M_SQRT1_2_F * M_SQRT2_F, 1.0f) && near(M_LN2_F, log(2.0f)) && near(M_LOG2E_F * M_LN2_F, 1.0f));
  CHECK(near(float(M_PI_H), 3.140625f) && MAXFLOAT == FLT_MAX && FLT_EPSILON > 0 && FLT_MIN > 0);
  CHECK(INT_MAX == 2147483647 && INT_MIN < 0 && UINT_MAX == 4294967295u && CHAR_BIT == 8);
  CHECK(SHRT_MAX == 32767 && USHRT_MAX == 65535 && UCHAR_MAX == 255 && CHAR_MAX == 127);
  CHECK(LONG_MAX == 9223372036854775807L && ULONG_MAX == 18446744073709551615UL);
  CHECK(isinf(HUGE_VALF) && float(HALF_MIN) == 6.103515625e-05f);
}

static void test_integer() {
  CHECK(clz(1u) == 31 && clz(0u) == 32 && clz(uchar(1)) == 7 && clz(ushort(0)) == 16);
  CHECK(clz(1ul) == 63 && clz(-1) == 0 && clz(char(1)) == 7);
  CHECK(ctz(8u) == 3 && ctz(0u) == 32 && ctz(ulong(1) << 40) == 40 && ctz(uchar(0)) == 8);
  CHECK(popcount(0xFFu) == 8 && popcount(-1) == 32 && popcount(~0ul) == 64 && popcount(uchar(3)) == 2);
  CHECK(reverse_bits(1u) == 0x80000000u && reverse_bits(uchar(1)) == 0x80);
  CHECK(reverse_bits(1ul) == (1ul << 63) && reverse_bits(ushort(0x00F0)) == 0x0F00);
  CHECK(extract_bits(0xABCDu, 4u, 8u) == 0xBCu);
  CHECK(extract_bits(int(0xF0), 4u, 4u) == -1 && extract_bits(int(0x70), 4u, 4u) == 7);
  CHECK(extract_bits(0xFFFFFFFFu, 0u, 32u) == 0xFFFFFFFFu && extract_bits(5u, 0u, 0u) == 0u);
  CHECK(insert_bits(0u, 0xFu, 4u, 4u) == 0xF0u && insert_bits(0xFFFFu, 0u, 8u, 4u) == 0xF0FFu);
  CHECK(rotate(0x80000001u, 1u) == 3u && rotate(uchar(0x81), 1) == 0x03);
  CHECK(mulhi(0x80000000u, 4u) == 2u && mulhi(-1, 1) == -1 && mulhi(ulong(1) << 63, 4ul) == 2ul);
  CHECK(mulhi(long(-1), long(1)) == -1 && madhi(0x80000000u, 4u, 1u) == 3u);
  CHECK(mul24(3, 4) == 12 && mad24(3, 4, 5) == 17);
  CHECK(addsat(uchar(250), uchar(10)) == 255 && addsat(char(120), char(10)) == 127);
  CHECK(addsat(2147483647, 1) == 2147483647 && addsat(~0u, 5u) == ~0u);
  CHECK(addsat(long(9223372036854775807L), long(1)) == 9223372036854775807L);
  CHECK(addsat(long(-9223372036854775807L), long(-5)) == LONG_MIN && addsat(~0ul, 1ul) == ~0ul);
  CHECK(subsat(uchar(5), uchar(10)) == 0 && subsat(char(-120), char(10)) == -128 && subsat(3u, 5u) == 0u);
  CHECK(subsat(long(LONG_MIN), long(1)) == LONG_MIN && subsat(0ul, 1ul) == 0ul);
  CHECK(hadd(0xFFFFFFFFu, 0xFFFFFFFFu) == 0xFFFFFFFFu && hadd(3, 4) == 3 && rhadd(3, 4) == 4);
  CHECK(absdiff(-5, 5) == 10u && absdiff(uchar(3), uchar(250)) == 247);
  CHECK(min(3, 5) == 3 && max(3u, 5u) == 5u && clamp(10, 0, 5) == 5 && clamp(-3, 0, 5) == 0);
  CHECK(is_same_v<decltype(min(short(1), short(2))), short>);
  CHECK(abs(-7) == 7 && abs(long(-7)) == 7 && abs(7u) == 7u);
  uint4 u(1, 2, 4, 8);
  CHECK(all(clz(u) == uint4(31, 30, 29, 28)) && all(popcount(u) == uint4(1)));
  CHECK(all(ctz(u) == uint4(0, 1, 2, 3)) && all(reverse_bits(uint2(1)) == uint2(0x80000000u)));
  CHECK(all(extract_bits(uint2(0xAB, 0xCD), 4u, 4u) == uint2(0xA, 0xC)));
  CHECK(all(insert_bits(uint2(0), uint2(1), 3u, 1u) == uint2(8)));
  CHECK(all(max(int3(1, 5, 3), 2) == int3(2, 5, 3)) && all(min(int2(1, 5), int2(4)) == int2(1, 4)));
  CHECK(all(clamp(int2(-5, 50), 0, 10) == int2(0, 10)) && all(addsat(uchar2(250), uchar2(10)) == uchar2(255)));
  CHECK(all(rotate(uint2(1), uint2(1, 2)) == uint2(2, 4)) && all(absdiff(int2(1), int2(3, -1)) == uint2(2)));
  CHECK(all(mulhi(uint2(0x80000000u), uint2(2)) == uint2(1)) && all(hadd(int2(2), int2(4)) == int2(3)));
}

static void test_as_type() {
  CHECK(as_type<uint>(1.0f) == 0x3F800000u);
  CHECK(as_type<float>(0x40000000u) == 2.0f);
  CHECK(as_type<ushort>(half(1.0f)) == 0x3C00);
  CHECK(as_type<ushort>(bfloat(1.0f)) == 0x3F80);
  uint2 bits = as_type<uint2>(float2(1.0f, 2.0f));
  CHECK(bits.x == 0x3F800000u && bits.y == 0x40000000u);
  float4 f4 = as_type<float4>(uint4(0x3F800000u));
  CHECK(all(f4 == 1.0f));
  CHECK(as_type<uint>(half2(1.0f, 1.0f)) == 0x3C003C00u);
  CHECK(as_type<int>(uchar4(1, 0, 0, 0)) == 1);
  CHECK(float(static_cast<half>(2.5f)) == 2.5f && static_cast<int>(2.7f) == 2);
}

// The calls MSL code makes with `using namespace metal;` next to glibc's C math.h.
static void test_ambiguity() {
  float x = 0.25f, y = 2.0f;
  int a = 3;
  uint ua = 3;
  half h = 0.5f;
  CHECK(sqrt(x) == 0.5f && is_same_v<decltype(sqrt(x)), float>);
  CHECK(max(x, 0.0f) == x && min(x, 1.0f) == x && clamp(x, 0.0f, 1.0f) == x);
  CHECK(min(a, 1) == 1 && max(a, 10) == 10 && clamp(a, 0, 2) == 2 && max(ua, 1u) == 3u);
  CHECK(max(x, 0) == x && min(0, x) == 0.0f && max(x, 1.0) == 1.0f);
  CHECK(is_same_v<decltype(max(x, 1.0)), float> && is_same_v<decltype(max(x, 1)), float>);
  CHECK(fmax(x, 0.0) == x && fmin(x, 0.0f) == 0.0f && is_same_v<decltype(fmax(x, 0.0)), float>);
  CHECK(pow(y, 2) == 4.0f && pow(y, 2.0f) == 4.0f && is_same_v<decltype(pow(y, 2)), float>);
  CHECK(fabs(-x) == x && floor(x) == 0.0f && exp(0.0f) == 1.0f && cos(0) == 1.0f);
  CHECK(float(max(h, half(0.0f))) == 0.5f && max(h, 0.0f) == 0.5f && float(max(h, 1)) == 1.0f);
  CHECK(is_same_v<decltype(sqrt(h)), half> && is_same_v<decltype(max(h, h)), half>);
  CHECK(float(clamp(h, half(0.0f), half(0.25f))) == 0.25f && float(clamp(h, 0.0f, 0.25f)) == 0.25f);
  CHECK(mix(x, y, 0.5f) == 1.125f && fma(x, y, 1) == 1.5f && atan2(0.0f, 1.0f) == 0.0f);
  CHECK(abs(-a) == 3 && abs(-x) == x && sign(x) == 1.0f && fmod(y, 1.5f) == 0.5f);
  CHECK(step(x, y) == 1.0f && smoothstep(0.0f, 1.0f, x) > 0.0f && saturate(y) == 1.0f);
  CHECK(rsqrt(4.0f) > 0.49f && log(1.0f) == 0.0f && exp2(1.0f) == 2.0f && trunc(x) == 0.0f);
  CHECK(isnan(x) == false && isinf(x) == false && isfinite(x) && signbit(-x));
  double d = 4.0;                                // MSL has no double; still no ambiguity
  CHECK(sqrt(d) == 2.0 && metal::sqrt(d) == 2.0f && max(d, 1.0) == 4.0f);
  float4 v = 1.5f;
  CHECK(all(floor(v) == 1.0f) && all(max(v, 2.0f) == 2.0f) && all(v * 2 == 3.0f));
  CHECK(metal::abs(-2) == 2 && metal::min(1.0f, 2) == 1.0f);
}

int main() {
  test_vectors();
  test_scalars();
  test_matrices();
  test_math();
  test_integer();
  test_as_type();
  test_ambiguity();
  if (g_fail) { printf("%d check(s) failed\n", g_fail); return 1; }
  printf("all runtime tests passed\n");
  return 0;
}
