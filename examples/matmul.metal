#include <metal_stdlib>
using namespace metal;

// out (M x K) = A (M x N) @ B (N x K), all row-major; one thread per output element.
// The grid is (M, K): gid.x is the row of out, gid.y its column.
kernel void matmul(device float *out [[buffer(0)]],
                   device const float *A [[buffer(1)]],
                   device const float *B [[buffer(2)]],
                   constant uint &N [[buffer(3)]],
                   uint2 gid [[thread_position_in_grid]],
                   uint2 grid_size [[threads_per_grid]]) {
    float sum = 0.0f;
    for (uint k = 0; k < N; k++) {
        sum += A[gid.x * N + k] * B[k * grid_size.y + gid.y];
    }
    out[gid.x * grid_size.y + gid.y] = sum;
}
