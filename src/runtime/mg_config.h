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
#  include <math.h>
#  include <stdint.h>
#  include <stddef.h>
// The C headers define these as macros; metal:: provides them as functions.
#  undef isnan
#  undef isinf
#  undef isfinite
#  undef isnormal
#  undef signbit
#  undef fpclassify
#  undef isgreater
#  undef isgreaterequal
#  undef isless
#  undef islessequal
#  undef islessgreater
#  undef isunordered
#endif

// _Float16 on the host where the compiler provides it.
#if !MG_CUDA && defined(__FLT16_MAX__) && !defined(MG_NO_FLOAT16)
#  define MG_HALF_IS_FLOAT16 1
#else
#  define MG_HALF_IS_FLOAT16 0
#endif
