#include <metal_stdlib>
using namespace metal;

constant int MODE [[function_constant(0)]];
constant float SCALE [[function_constant(1)]];

kernel void fc(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    if (MODE == 1) {
        x[i] = x[i] * SCALE;
    } else {
        x[i] = x[i] + SCALE;
    }
}
