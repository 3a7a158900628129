// metalgpu runtime: configuration. First file of the metal_stdlib prelude.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#  define MG_CUDA 1
#  define MG_FN __host__ __device__ inline
#  define MG_DECL __host__ __device__
#  define MG_CONSTEXPR_FP
#else
#  define MG_CUDA 0
#  define MG_FN inline __attribute__((always_inline))
#  define MG_DECL
#  define MG_CONSTEXPR_FP constexpr
#endif

#if defined(__CUDA_ARCH__)
#  define MG_DEVICE_CODE 1
#else
#  define MG_DEVICE_CODE 0
#endif

#if defined(__CUDACC_RTC__)
// NVRTC: no system headers at all.
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef unsigned long size_t;
typedef long ptrdiff_t;
typedef unsigned long uintptr_t;
typedef long intptr_t;
#else
#  include <stdint.h>
#  include <stddef.h>
// The C float math functions the runtime calls, declared here instead of including <math.h>:
// a C++ library's <math.h> (what a compiler or wrapper that puts C++ include folders first
// finds) adds std:: float overloads to the global namespace, which make unqualified Metal
// calls such as `exp(x)` ambiguous, and C's double functions (`log1p(double)`) collide with
// user functions of the same name. Apple's metal_stdlib has neither. Under fast math, GCC on
// x86-64 glibc may call libmvec's vector variants of the functions glibc has had them for
// since 2.22, as glibc's own header would declare them.
#  if defined(__x86_64__) && defined(__FAST_MATH__) && defined(__GLIBC__) && defined(__GNUC__) && \
      !defined(__clang__) && !defined(MG_NO_LIBMVEC)
#    define MG_LIBM_SIMD __attribute__((__simd__("notinbranch")))
#  else
#    define MG_LIBM_SIMD
#  endif
namespace mg_libm {
extern "C" {
#  define MG_LIBM_F1(NAME) float NAME(float) noexcept;
#  define MG_LIBM_F2(NAME) float NAME(float, float) noexcept;
MG_LIBM_SIMD float sinf(float) noexcept;
MG_LIBM_SIMD float cosf(float) noexcept;
MG_LIBM_SIMD float expf(float) noexcept;
MG_LIBM_SIMD float logf(float) noexcept;
MG_LIBM_SIMD float powf(float, float) noexcept;
MG_LIBM_F1(tanf) MG_LIBM_F1(asinf) MG_LIBM_F1(acosf) MG_LIBM_F1(atanf) MG_LIBM_F1(sinhf)
MG_LIBM_F1(coshf) MG_LIBM_F1(tanhf) MG_LIBM_F1(asinhf) MG_LIBM_F1(acoshf) MG_LIBM_F1(atanhf)
MG_LIBM_F1(exp2f) MG_LIBM_F1(exp10f) MG_LIBM_F1(log2f) MG_LIBM_F1(log10f) MG_LIBM_F1(cbrtf)
MG_LIBM_F1(fabsf) MG_LIBM_F1(floorf) MG_LIBM_F1(ceilf) MG_LIBM_F1(roundf) MG_LIBM_F1(rintf)
MG_LIBM_F1(truncf) MG_LIBM_F1(logbf) MG_LIBM_F1(sqrtf)
MG_LIBM_F2(atan2f) MG_LIBM_F2(fmodf) MG_LIBM_F2(fminf) MG_LIBM_F2(fmaxf) MG_LIBM_F2(copysignf)
MG_LIBM_F2(fdimf) MG_LIBM_F2(nextafterf)
float fmaf(float, float, float) noexcept;
float frexpf(float, int*) noexcept;
float ldexpf(float, int) noexcept;
float modff(float, float*) noexcept;
#  undef MG_LIBM_F1
#  undef MG_LIBM_F2
}
}  // namespace mg_libm
namespace metal { using namespace ::mg_libm; }
namespace __metalgpu { using namespace ::mg_libm; }
#  undef MG_LIBM_SIMD
#endif

// _Float16 on the host where the compiler provides it.
#if !MG_CUDA && defined(__FLT16_MAX__) && !defined(MG_NO_FLOAT16)
#  define MG_HALF_IS_FLOAT16 1
#else
#  define MG_HALF_IS_FLOAT16 0
#endif
