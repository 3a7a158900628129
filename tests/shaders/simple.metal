#include <metal_stdlib>
using namespace metal;

kernel void iota(device uint* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = i;
}

kernel void iota_plus(device uint* out [[buffer(0)]], constant uint& k [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
    out[i] = i + k;
}
