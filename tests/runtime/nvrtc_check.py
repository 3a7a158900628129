#!/usr/bin/env python3
"""Compile the runtime prelude + a kernel using most of it through NVRTC (no GPU needed).
Usage: nvrtc_check.py [path/to/libnvrtc.so.12]   (default: the nvidia-cuda-nvrtc-cu12 wheel's)
Exit 0 on success, 1 on compile errors, 77 when libnvrtc cannot be found."""
import ctypes, glob, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
RT = os.path.join(HERE, "..", "..", "src", "runtime")
ORDER = ["mg_config.h", "mg_traits.h", "mg_scalar.h", "mg_vector.h", "mg_array.h", "mg_matrix.h", "mg_math.h", "mg_constants.h"]
KERNEL = r'''
namespace metal_user {
using namespace metal;
extern "C" __global__ void k(const float4* in, float4* out, float4x4 m, half* hp, bfloat* bp, uint* up, uint n) {
  uint i = blockIdx.x * blockDim.x + threadIdx.x; if (i >= n) return;
  float4 v = in[i]; float3 p = v.template swz<0,1,2>();
  float4 r = m * float4(normalize(p), 1.0f); r.template swz_ref<0,1>() += cos(v.template swz<2,3>());
  out[i] = clamp(r * 0.5f + 0.5f, 0.0f, 1.0f) + float(dot(p, p) > 1.0f) + select(v, r, v < r) + max(v, 0.0f);
  half h = hp[i]; hp[i] = sqrt(h) * half(2.0f) + max(h, 0.0f) + h * 2; bp[i] = bfloat(float(bp[i]) * 2.0f) + bp[i];
  half4 h4 = half4(v) * h; packed_half3 ph = h4.template swz<0,1,2>(); hp[i] += ph.x;
  up[i] = clz(up[i]) + popcount(up[i]) + reverse_bits(up[i]) + extract_bits(up[i], 2u, 3u) + mulhi(up[i], 3u)
        + as_type<uint>(v.x) + addsat(up[i], 1u) + rotate(up[i], 3u) + ctz(up[i]) + uint(isnan(v.y))
        + uint(M_PI_F + HALF_MAX + INT_MAX) + uint(numeric_limits<float>::infinity() > 0.0f);
  out[i] += float(determinant(m)) + length(transpose(m)[0]) + fast::exp(v.x) + pow(v.y, 2) + fract(v.z)
          + sign(v.w) + sqrt(v) + min(1.0f, 2) + float(mulhi(ulong(up[i]), 5ul));
}
}
'''

def main():
    paths = sys.argv[1:2] or glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages",
                                                    "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*"))
    paths = [p for p in paths if "alt" not in os.path.basename(p)]
    if not paths:
        print("libnvrtc not found: skipped"); return 77
    lib = ctypes.CDLL(paths[0])
    src = "".join(open(os.path.join(RT, f)).read() + "\n" for f in ORDER) + KERNEL
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), b"k.cu", 0, None, None) == 0
    opts = [b"--gpu-architecture=compute_80", b"-std=c++17", b"--use_fast_math", b"-default-device"]  # as the backend
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    n = ctypes.c_size_t(); lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value); lib.nvrtcGetProgramLog(prog, log)
    print(log.value.decode()[:8000]); print("nvrtc rc", rc)
    return 0 if rc == 0 else 1

if __name__ == "__main__":
    sys.exit(main())
