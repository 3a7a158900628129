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

// __builtin_bit_cast (g++ 11, clang 9, NVRTC 12): constexpr bit reinterpretation, for float
// constants with no literal (infinity, NaN) and constexpr half/bfloat conversions.
#if defined(__has_builtin)
#  if __has_builtin(__builtin_bit_cast)
#    define MG_HAS_BIT_CAST 1
#  endif
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
// No <math.h> (nor <stdlib.h>): a C++ library wraps those headers - libstdc++'s and libc++'s
// add float overloads such as exp(float) and abs(float) to the global namespace - and a
// compiler or wrapper that adds its C++ include folders brings the wrappers in despite
// -nostdinc++. With `using namespace metal;` in user code, an unqualified exp(x) would then be
// ambiguous between ::exp and metal::exp. Only the C library's functions the runtime calls are
// declared instead, below: their C names (expf, not exp) collide with no Metal name, and at
// global scope GCC and clang recognise them as builtins (GCC does not inside a namespace).
// The macros <math.h> would define (INFINITY, NAN, FLT_MAX ...) come from mg_constants.h, as
// for NVRTC.
#  include <stdint.h>
#  include <stddef.h>
// glibc's vector math library (libmvec, x86-64): the backend defines MG_LIBMVEC when it links.
// GCC then vectorises loops over these functions with their SIMD variants (_ZGVdN8v_expf ...),
// declared as glibc's <math.h> declares them: the first five since glibc 2.22, the rest 2.35.
#  if defined(MG_LIBMVEC) && MG_LIBMVEC && defined(__x86_64__) && defined(__GLIBC__) && \
      defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 6
#    define MG_SIMD_222 __attribute__((__simd__("notinbranch")))
#    if __GLIBC__ > 2 || __GLIBC_MINOR__ >= 35
#      define MG_SIMD_235 MG_SIMD_222
#    endif
#  endif
#  ifndef MG_SIMD_222
#    define MG_SIMD_222
#  endif
#  ifndef MG_SIMD_235
#    define MG_SIMD_235
#  endif
extern "C" {
float sinf(float) noexcept MG_SIMD_222;
float cosf(float) noexcept MG_SIMD_222;
float expf(float) noexcept MG_SIMD_222;
float logf(float) noexcept MG_SIMD_222;
float powf(float, float) noexcept MG_SIMD_222;
float tanf(float) noexcept MG_SIMD_235;
float asinf(float) noexcept MG_SIMD_235;
float acosf(float) noexcept MG_SIMD_235;
float atanf(float) noexcept MG_SIMD_235;
float atan2f(float, float) noexcept MG_SIMD_235;
float sinhf(float) noexcept MG_SIMD_235;
float coshf(float) noexcept MG_SIMD_235;
float tanhf(float) noexcept MG_SIMD_235;
float asinhf(float) noexcept MG_SIMD_235;
float acoshf(float) noexcept MG_SIMD_235;
float atanhf(float) noexcept MG_SIMD_235;
float exp2f(float) noexcept MG_SIMD_235;
float exp10f(float) noexcept MG_SIMD_235;
float log2f(float) noexcept MG_SIMD_235;
float log10f(float) noexcept MG_SIMD_235;
float cbrtf(float) noexcept MG_SIMD_235;
float sqrtf(float) noexcept;
float fabsf(float) noexcept;
float floorf(float) noexcept;
float ceilf(float) noexcept;
float roundf(float) noexcept;
float rintf(float) noexcept;
float truncf(float) noexcept;
float fmodf(float, float) noexcept;
float fminf(float, float) noexcept;
float fmaxf(float, float) noexcept;
float fdimf(float, float) noexcept;
float fmaf(float, float, float) noexcept;
float copysignf(float, float) noexcept;
float nextafterf(float, float) noexcept;
float ldexpf(float, int) noexcept;
float frexpf(float, int*) noexcept;
float modff(float, float*) noexcept;
float logbf(float) noexcept;
}
#endif
// half is _Float16 on the host where the compiler provides it; a class elsewhere (CUDA, clang
// on targets without _Float16), see mg_scalar.h. MG_HOST_FLOAT16 lets the class's conversions
// still use the hardware's (MG_NO_FLOAT16 forces the class, for tests).
// GCC 13 and later give _Float16 C++23's rules for extended floating types: a wider float no
// longer converts to it implicitly. is_convertible (mg_traits.h) keeps Metal's answer; a
// user-defined conversion to float followed by float -> half (`half(x)` for a struct with only
// `operator float()`) is rejected there, which only a class half would avoid - and GCC does not
// allow a class with constructors in an anonymous struct (ggml's block types).
// Clang 15 (Apple clang 14), the first with _Float16 on x86 without AVX512-FP16, crashes in
// its backend on vectorised half min/max ("Cannot select: v8f16 = X86ISD::FMIN"): the class
// there too.
#if defined(__clang__) && (defined(__x86_64__) || defined(__i386__)) && \
    __clang_major__ < (defined(__apple_build_version__) ? 15 : 16)
#  define MG_CLANG_X86_FLOAT16_UNSAFE 1
#else
#  define MG_CLANG_X86_FLOAT16_UNSAFE 0
#endif
// GCC on AArch64 has _Float16 in C++ only from GCC 13 (GCC 12 defines __FLT16_MAX__ for C).
#if defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#  define MG_GCC_ARM_NO_CXX_FLOAT16 1
#else
#  define MG_GCC_ARM_NO_CXX_FLOAT16 0
#endif
#if !MG_CUDA && defined(__FLT16_MAX__) && !MG_CLANG_X86_FLOAT16_UNSAFE && !MG_GCC_ARM_NO_CXX_FLOAT16
#  define MG_HOST_FLOAT16 1
#else
#  define MG_HOST_FLOAT16 0
#endif
#if MG_HOST_FLOAT16 && !defined(MG_NO_FLOAT16)
#  define MG_HALF_IS_FLOAT16 1
#else
#  define MG_HALF_IS_FLOAT16 0
#endif
