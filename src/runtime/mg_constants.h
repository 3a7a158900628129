// metalgpu runtime: Metal's constant macros.
#pragma once

#define M_E_F        2.71828182845904523536f
#define M_LOG2E_F    1.44269504088896340736f
#define M_LOG10E_F   0.434294481903251827651f
#define M_LN2_F      0.693147180559945309417f
#define M_LN10_F     2.30258509299404568402f
#define M_PI_F       3.14159265358979323846f
#define M_PI_2_F     1.57079632679489661923f
#define M_PI_4_F     0.785398163397448309616f
#define M_1_PI_F     0.318309886183790671538f
#define M_2_PI_F     0.636619772367581343076f
#define M_2_SQRTPI_F 1.12837916709551257390f
#define M_SQRT2_F    1.41421356237309504880f
#define M_SQRT1_2_F  0.707106781186547524401f

#define M_E_H        half(M_E_F)
#define M_LOG2E_H    half(M_LOG2E_F)
#define M_LOG10E_H   half(M_LOG10E_F)
#define M_LN2_H      half(M_LN2_F)
#define M_LN10_H     half(M_LN10_F)
#define M_PI_H       half(M_PI_F)
#define M_PI_2_H     half(M_PI_2_F)
#define M_PI_4_H     half(M_PI_4_F)
#define M_1_PI_H     half(M_1_PI_F)
#define M_2_PI_H     half(M_2_PI_F)
#define M_2_SQRTPI_H half(M_2_SQRTPI_F)
#define M_SQRT2_H    half(M_SQRT2_F)
#define M_SQRT1_2_H  half(M_SQRT1_2_F)

#ifndef MAXFLOAT
#define MAXFLOAT 3.40282346638528859812e+38F
#endif
#ifndef HUGE_VALF
#define HUGE_VALF (metal::numeric_limits<float>::infinity())
#endif
#ifndef INFINITY
#define INFINITY (metal::numeric_limits<float>::infinity())
#endif
#ifndef NAN
#define NAN (metal::numeric_limits<float>::quiet_NaN())
#endif
#ifndef FLT_MAX
#define FLT_MAX 3.40282346638528859812e+38F
#endif
#ifndef FLT_MIN
#define FLT_MIN 1.17549435082228750797e-38F
#endif
#ifndef FLT_EPSILON
#define FLT_EPSILON 1.1920928955078125e-07F
#endif
// <float.h>'s other FLT_ limits, and Metal's HALF_ counterparts (IEEE binary16).
#ifndef FLT_DIG
#define FLT_DIG 6
#endif
#ifndef FLT_MANT_DIG
#define FLT_MANT_DIG 24
#endif
#ifndef FLT_MAX_10_EXP
#define FLT_MAX_10_EXP 38
#endif
#ifndef FLT_MAX_EXP
#define FLT_MAX_EXP 128
#endif
#ifndef FLT_MIN_10_EXP
#define FLT_MIN_10_EXP (-37)
#endif
#ifndef FLT_MIN_EXP
#define FLT_MIN_EXP (-125)
#endif
#ifndef FLT_RADIX
#define FLT_RADIX 2
#endif
#define HALF_DIG        3
#define HALF_MANT_DIG   11
#define HALF_MAX_10_EXP 4
#define HALF_MAX_EXP    16
#define HALF_MIN_10_EXP (-4)
#define HALF_MIN_EXP    (-13)
#define HALF_RADIX      2
#define HUGE_VALH       half(HUGE_VALF)
#define HALF_MAX     (metal::numeric_limits<half>::max())
#define MAXHALF      HALF_MAX
#define HALF_MIN     (metal::numeric_limits<half>::min())
#define HALF_EPSILON (metal::numeric_limits<half>::epsilon())
#ifndef CHAR_BIT
#define CHAR_BIT 8
#endif
#ifndef CHAR_MAX
#define CHAR_MAX 127
#endif
#ifndef CHAR_MIN
#define CHAR_MIN (-128)
#endif
#ifndef UCHAR_MAX
#define UCHAR_MAX 255
#endif
#ifndef SCHAR_MAX
#define SCHAR_MAX 127
#endif
#ifndef SCHAR_MIN
#define SCHAR_MIN (-128)
#endif
#ifndef SHRT_MAX
#define SHRT_MAX 32767
#endif
#ifndef SHRT_MIN
#define SHRT_MIN (-32768)
#endif
#ifndef USHRT_MAX
#define USHRT_MAX 65535
#endif
#ifndef INT_MAX
#define INT_MAX 2147483647
#endif
#ifndef INT_MIN
#define INT_MIN (-2147483647 - 1)
#endif
#ifndef UINT_MAX
#define UINT_MAX 4294967295U
#endif
#ifndef LONG_MAX
#define LONG_MAX 9223372036854775807L
#endif
#ifndef LONG_MIN
#define LONG_MIN (-9223372036854775807L - 1L)
#endif
#ifndef ULONG_MAX
#define ULONG_MAX 18446744073709551615UL
#endif

// Every public name as a using-declaration. A using-declaration inside the namespace that holds
// the user's code hides same-named globals (CUDA's ::float4, ::sqrt(float), ::isnan(float) ...),
// which a using-directive does not. The CUDA translation must therefore wrap the user's code in
//   namespace metal_user { ...user code... }
// (harmless on the host too). metal_user already holds these declarations.
#define MG_USING_METAL_NAMES \
  using metal::char2; \
  using metal::packed_char2; \
  using metal::char3; \
  using metal::packed_char3; \
  using metal::char4; \
  using metal::packed_char4; \
  using metal::uchar2; \
  using metal::packed_uchar2; \
  using metal::uchar3; \
  using metal::packed_uchar3; \
  using metal::uchar4; \
  using metal::packed_uchar4; \
  using metal::short2; \
  using metal::packed_short2; \
  using metal::short3; \
  using metal::packed_short3; \
  using metal::short4; \
  using metal::packed_short4; \
  using metal::ushort2; \
  using metal::packed_ushort2; \
  using metal::ushort3; \
  using metal::packed_ushort3; \
  using metal::ushort4; \
  using metal::packed_ushort4; \
  using metal::int2; \
  using metal::packed_int2; \
  using metal::int3; \
  using metal::packed_int3; \
  using metal::int4; \
  using metal::packed_int4; \
  using metal::uint2; \
  using metal::packed_uint2; \
  using metal::uint3; \
  using metal::packed_uint3; \
  using metal::uint4; \
  using metal::packed_uint4; \
  using metal::long2; \
  using metal::packed_long2; \
  using metal::long3; \
  using metal::packed_long3; \
  using metal::long4; \
  using metal::packed_long4; \
  using metal::ulong2; \
  using metal::packed_ulong2; \
  using metal::ulong3; \
  using metal::packed_ulong3; \
  using metal::ulong4; \
  using metal::packed_ulong4; \
  using metal::half2; \
  using metal::packed_half2; \
  using metal::half3; \
  using metal::packed_half3; \
  using metal::half4; \
  using metal::packed_half4; \
  using metal::bfloat2; \
  using metal::packed_bfloat2; \
  using metal::bfloat3; \
  using metal::packed_bfloat3; \
  using metal::bfloat4; \
  using metal::packed_bfloat4; \
  using metal::float2; \
  using metal::packed_float2; \
  using metal::float3; \
  using metal::packed_float3; \
  using metal::float4; \
  using metal::packed_float4; \
  using metal::bool2; \
  using metal::bool3; \
  using metal::bool4; \
  using metal::float2x2; \
  using metal::float2x3; \
  using metal::float2x4; \
  using metal::float3x2; \
  using metal::float3x3; \
  using metal::float3x4; \
  using metal::float4x2; \
  using metal::float4x3; \
  using metal::float4x4; \
  using metal::half2x2; \
  using metal::half2x3; \
  using metal::half2x4; \
  using metal::half3x2; \
  using metal::half3x3; \
  using metal::half3x4; \
  using metal::half4x2; \
  using metal::half4x3; \
  using metal::half4x4; \
  using metal::sin; \
  using metal::cos; \
  using metal::tan; \
  using metal::asin; \
  using metal::acos; \
  using metal::atan; \
  using metal::sinh; \
  using metal::cosh; \
  using metal::tanh; \
  using metal::asinh; \
  using metal::acosh; \
  using metal::atanh; \
  using metal::exp; \
  using metal::exp2; \
  using metal::exp10; \
  using metal::log; \
  using metal::log2; \
  using metal::log10; \
  using metal::sqrt; \
  using metal::rsqrt; \
  using metal::cbrt; \
  using metal::fabs; \
  using metal::floor; \
  using metal::ceil; \
  using metal::round; \
  using metal::rint; \
  using metal::trunc; \
  using metal::fract; \
  using metal::saturate; \
  using metal::sign; \
  using metal::sinpi; \
  using metal::cospi; \
  using metal::tanpi; \
  using metal::logb; \
  using metal::ilogb; \
  using metal::isnan; \
  using metal::isinf; \
  using metal::isfinite; \
  using metal::isnormal; \
  using metal::signbit; \
  using metal::isordered; \
  using metal::isunordered; \
  using metal::abs; \
  using metal::atan2; \
  using metal::pow; \
  using metal::powr; \
  using metal::fmod; \
  using metal::fmin; \
  using metal::fmax; \
  using metal::copysign; \
  using metal::fdim; \
  using metal::divide; \
  using metal::step; \
  using metal::nextafter; \
  using metal::fma; \
  using metal::mix; \
  using metal::smoothstep; \
  using metal::min; \
  using metal::max; \
  using metal::clamp; \
  using metal::modf; \
  using metal::frexp; \
  using metal::ldexp; \
  using metal::sincos; \
  using metal::all; \
  using metal::any; \
  using metal::select; \
  using metal::dot; \
  using metal::cross; \
  using metal::length; \
  using metal::length_squared; \
  using metal::distance; \
  using metal::distance_squared; \
  using metal::normalize; \
  using metal::reflect; \
  using metal::refract; \
  using metal::faceforward; \
  using metal::clz; \
  using metal::ctz; \
  using metal::popcount; \
  using metal::reverse_bits; \
  using metal::rotate; \
  using metal::extract_bits; \
  using metal::insert_bits; \
  using metal::mulhi; \
  using metal::madhi; \
  using metal::mul24; \
  using metal::mad24; \
  using metal::addsat; \
  using metal::subsat; \
  using metal::hadd; \
  using metal::rhadd; \
  using metal::absdiff; \
  using metal::madsat; \
  using metal::as_type; \
  using metal::transpose; \
  using metal::determinant; \
  using metal::vec; \
  using metal::packed_vec; \
  using metal::matrix; \
  using metal::numeric_limits; \
  using metal::array; \
  using metal::array_ref;

namespace metal_user {
MG_USING_METAL_NAMES
using namespace metal;
} // namespace metal_user

// Function-definition macros of Apple's metal_stdlib that user code also uses.
#ifndef METAL_FUNC
#define METAL_FUNC MG_FN
#endif
#ifndef METAL_INTERNAL
#define METAL_INTERNAL
#endif
