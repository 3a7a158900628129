#include <metal_stdlib>
#include "local_helper.h"
#include "inc_helper.h"
using namespace metal;

#ifndef N
#error "N must be defined (pass defines={N: ...})"
#endif

kernel void use_defines(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = int(i) * N + LOCAL_OFFSET + inc_twice(int(i));
}
