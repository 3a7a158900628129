"""MLX's linear algebra and reduction kernels (../shared/corpus/mlx) against numpy: gemv, the
steel fused gemm (float32, float16, bfloat16), the sum reductions, affine quantization and the
quantized matmuls, and the vector path of scaled dot product attention, each driven as
mlx/backend/metal/matmul.cpp, reduce.cpp, quantized.cpp (and upstream's
scaled_dot_product_attention.cpp) drive it (kernel name chosen by the host's rules, argument
slots, function constants, threadgroups and grids).

The corpus is test data read in place; nothing of it is copied into the project. Grids given to
run_function are in threads: a host's dispatch_threadgroups(groups, tg) is groups * tg, its
dispatch_threads(grid, tg) is grid itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mg
from corpus import (
    dispatch,
    from_bf16,
    i64,
    load_mlx,
    requires_corpus,
    skip_metal_double,
    to_bf16,
)

pytestmark = requires_corpus

BF16 = "bfloat16"   # stands for MLX's bfloat16 in the parametrizations
MLX_NAMES = {np.float32: "float32", np.float16: "float16", np.int32: "int32", BF16: "bfloat16"}


@pytest.fixture
def iface(backend):
    # Built here rather than from conftest's `iface`: pytest before 9 does not parametrize a
    # fixture that overrides one of the same name through a parametrized fixture.
    return skip_metal_double(mg.Interface(backend=backend))


def random_in(r, dtype, shape):
    """Standard normal values in dtype: (what the kernel gets, their exact float64 values)."""
    x = r.standard_normal(shape).astype(np.float32)
    if dtype == BF16:
        held = to_bf16(x)
        return held, from_bf16(held).astype(np.float64)
    held = x.astype(dtype)
    return held, held.astype(np.float64)


def to_buffer(iface, held, dtype):
    """A buffer of the kernel's type: bfloat bit patterns go into a "bfloat" buffer (the API
    checks a buffer's element type against the kernel parameter's)."""
    if dtype != BF16:
        return iface.array_to_buffer(held)
    buf = iface.create_buffer(held.size, "bfloat")
    buf.contents[:] = held.reshape(-1)
    return buf


def new_buffer(iface, count, dtype):
    return iface.create_buffer(count, "bfloat" if dtype == BF16 else dtype)


def read_out(buf, dtype, shape):
    got = buf.contents.reshape(shape)
    return (from_bf16(got) if dtype == BF16 else got).astype(np.float64)


# ---------------------------------------------------------------- gemv (matmul.cpp: gemv_axbpy)

def gemv_blocks(transpose_mat, in_len, out_len):
    """gemv_axbpy's choice of (bm, bn, sm, sn, tm, tn) and outputs per threadgroup."""
    tm, tn, sm, sn, bm, bn = 4, 4, 1, 32, 1, 1
    if transpose_mat:
        sm, sn = (4, 8) if in_len >= 8192 and out_len >= 2048 else (8, 4)
        bn = 16 if out_len >= 2048 else 4 if out_len >= 512 else 2
        tn = 1 if out_len < tn else tn
        return (bm, bn, sm, sn, tm, tn), bn * sn * tn
    bm = 8 if out_len >= 4096 else 4
    if in_len <= 64:
        bm, sm, sn = 1, 8, 4
    elif in_len >= 16 * out_len:
        bm, bn = 1, 8
    tm = 1 if out_len < tm else tm
    return (bm, bn, sm, sn, tm, tn), bm * sm * tm


# (M, K) @ (K, 1) runs "gemv_" on the row-major matrix (transpose_mat false); (1, K) @ (K, N)
# runs "gemv_t_" on the row-major (K, N) matrix. A batch (B, M, K) @ (B, K, 1) keeps
# batch_size_out = B: grid z = B, batch strides in slots 11 (vector) and 12 (matrix).
@pytest.mark.parametrize("kind,M,K,N,batch", [
    ("gemv", 300, 200, 1, 2),      # bm4 bn1 sm1 sn32 tm4 tn4
    ("gemv", 50, 40, 1, 1),        # K <= 64: bm1 bn1 sm8 sn4 tm4 tn4
    ("gemv", 10, 1000, 1, 1),      # K >= 16 out: bm1 bn8 sm1 sn32 (threadgroup-memory reduction)
    ("gemv_t", 1, 200, 300, 1),    # bm1 bn2 sm8 sn4 tm4 tn4
    ("gemv_t", 1, 100, 3, 1),      # out < 4: tn1
])
def test_mlx_gemv(iface, kind, M, K, N, batch):
    # gemv_t calls threadgroup_barrier inside `if (out_col < out_vec_size)` (gemv.h), which some
    # lanes of the last threadgroup skip: the cuda backend gives it warp-counting barriers.
    load_mlx(iface, "gemv.metal")
    r = np.random.default_rng(40)
    transpose_mat = kind == "gemv_t"
    if transpose_mat:
        vec = r.standard_normal((batch, K)).astype(np.float32)
        mat = r.standard_normal((batch, K, N)).astype(np.float32)
        out_len, mat_ld, expect = N, N, np.einsum("bk,bkn->bn", vec, mat)
    else:
        mat = r.standard_normal((batch, M, K)).astype(np.float32)
        vec = r.standard_normal((batch, K)).astype(np.float32)
        out_len, mat_ld, expect = M, K, np.einsum("bmk,bk->bm", mat, vec)
    (bm, bn, sm, sn, tm, tn), per_tg = gemv_blocks(transpose_mat, K, out_len)
    iface.set_function(f"{kind}_float32_bm{bm}_bn{bn}_sm{sm}_sn{sn}_tm{tm}_tn{tn}_nc0_axpby0")
    out = iface.create_buffer(batch * out_len, np.float32)
    # Without axpby the host leaves bias (2), alpha (7), beta (8), 13 and 14 unset; this API wants
    # every slot bound, so they get harmless values the kernel does not read.
    unused = iface.create_buffer(1, np.float32)
    bufs = [iface.array_to_buffer(mat), iface.array_to_buffer(vec), unused, out,
            np.int32(K), np.int32(out_len), np.int32(mat_ld), np.float32(1), np.float32(0),
            np.int32(1), np.array([batch], np.int32).tobytes(),
            i64(vec[0].size), i64(mat[0].size), i64(0), np.int32(0)]
    n_tgp = -(-out_len // per_tg)
    dispatch(iface, (n_tgp, 1, batch), (32, bn, bm), bufs)
    np.testing.assert_allclose(out.contents.reshape(batch, out_len), expect, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- steel fused gemm
# (matmul.cpp: steel_matmul_regular_axpby; params.h: GEMMParams, GEMMAddMMParams)

GEMM_PARAMS = np.dtype([("M", "i4"), ("N", "i4"), ("K", "i4"), ("lda", "i4"), ("ldb", "i4"),
                        ("ldd", "i4"), ("tiles_n", "i4"), ("tiles_m", "i4"), ("batch_stride_a", "i8"),
                        ("batch_stride_b", "i8"), ("batch_stride_d", "i8"), ("swizzle_log", "i4"),
                        ("gemm_k_iterations_aligned", "i4"), ("batch_ndim", "i4")], align=True)
ADDMM_PARAMS = np.dtype([("ldc", "i4"), ("fdc", "i4"), ("batch_stride_c", "i8"), ("alpha", "f4"),
                         ("beta", "f4")], align=True)


# Tiles as GEMM_TPARAM_MACRO picks them for these small sizes (none reaches split-K, which wants
# K >= 128 and K >= max(M, N)): 64/64/16/2/2 on a medium device (and float32 nn on a small
# one), 64/64/16/1/2 for half/bfloat nn on a small device, 32/64/16/1/2 for float32 nt on a
# large one, 64/32/32/2/2 for any nt on a small device.
# A batch whose B is not broadcast stays a batch (grid z), has_batch false, strides in params.
# bfloat16 data is passed as uint16 bit patterns; the kernels accumulate in float.
@pytest.mark.parametrize("dtype,trans_b,M,N,K,batch,tile,addmm", [
    (np.float32, False, 64, 64, 64, 1, (64, 64, 16, 2, 2), False),
    (np.float32, False, 70, 40, 33, 2, (64, 64, 16, 2, 2), False),
    (np.float16, False, 64, 64, 64, 1, (64, 64, 16, 1, 2), False),
    (np.float16, False, 70, 40, 33, 1, (64, 64, 16, 1, 2), False),
    (np.float32, True, 70, 40, 33, 1, (32, 64, 16, 1, 2), False),
    (np.float32, False, 70, 40, 33, 1, (64, 64, 16, 2, 2), True),
    (BF16, False, 64, 64, 64, 1, (64, 64, 16, 1, 2), False),
    (BF16, False, 70, 40, 33, 2, (64, 64, 16, 1, 2), True),
    (BF16, True, 100, 50, 70, 1, (64, 32, 32, 2, 2), False),
])
def test_mlx_steel_gemm_fused(iface, dtype, trans_b, M, N, K, batch, tile, addmm):
    load_mlx(iface, "steel/gemm/kernels/steel_gemm_fused.metal")
    bm, bn, bk, wm, wn = tile
    r = np.random.default_rng(41)
    a, a64 = random_in(r, dtype, (batch, M, K))
    b, b64 = random_in(r, dtype, (batch, K, N))
    # A transposed B is held as (N, K) row-major; ldb is then K.
    b_held = np.ascontiguousarray(b.transpose(0, 2, 1)) if trans_b else b
    tname = MLX_NAMES[dtype]
    name = (f"steel_gemm_fused_n{'t' if trans_b else 'n'}_{tname}_{tname}"
            f"_bm{bm}_bn{bn}_bk{bk}_wm{wm}_wn{wn}")
    alpha, beta = 2.0, 0.5
    iface.set_function(name, constants={"has_batch": False, "use_out_source": addmm, "do_axpby": addmm,
                                        "align_M": M % bm == 0, "align_N": N % bn == 0,
                                        "align_K": K % bk == 0})
    tn, tm = -(-N // bn), -(-M // bm)
    p = np.zeros((), GEMM_PARAMS)
    p["M"], p["N"], p["K"], p["lda"], p["ldb"], p["ldd"] = M, N, K, K, K if trans_b else N, N
    p["tiles_n"], p["tiles_m"] = tn, tm
    p["batch_stride_a"], p["batch_stride_b"], p["batch_stride_d"] = M * K, K * N, M * N
    p["swizzle_log"], p["gemm_k_iterations_aligned"], p["batch_ndim"] = 0, K // bk, 1
    out = new_buffer(iface, batch * M * N, dtype)
    expect = np.einsum("bmk,bkn->bmn", a64, b64)
    c_buf, c_params = None, None   # slots 2 and 5 exist only with use_out_source
    if addmm:
        c, c64 = random_in(r, dtype, (batch, M, N))
        q = np.zeros((), ADDMM_PARAMS)
        q["ldc"], q["fdc"], q["batch_stride_c"], q["alpha"], q["beta"] = N, 1, M * N, alpha, beta
        c_buf, c_params = to_buffer(iface, c, dtype), q.tobytes()
        expect = alpha * expect + beta * c64
    bufs = [to_buffer(iface, a, dtype), to_buffer(iface, b_held, dtype), c_buf, out, p.tobytes()]
    if addmm:
        bufs.append(c_params)
    dispatch(iface, (tn, tm, batch), (32, wn, wm), bufs)
    got = read_out(out, dtype, (batch, M, N))
    # float32 accumulation, then one rounding to the output type (bfloat: 8 significant bits,
    # about 2**-9 relative)
    tol = {np.float32: 1e-4, np.float16: 1e-2, BF16: 1e-2}[dtype]
    np.testing.assert_allclose(got, expect, rtol=tol, atol=tol * np.abs(expect).max())


# ---------------------------------------------------------------- reductions (reduce.cpp)

REDUCE_N_READS, REDUCE_N_WRITES = 4, 4   # kernels/defines.h


def round_up32(n):
    return (n + 31) // 32 * 32


# all_reduce_dispatch: up to N_READS * 1024 elements one threadgroup; above, a first pass of
# 32 * N_READS rows into an intermediate and a second pass of one 32-thread group over it.
@pytest.mark.parametrize("dtype,size", [(np.float32, 3000), (np.float32, 100_000), (np.int32, 10_001)])
def test_mlx_all_reduce_sum(iface, dtype, size):
    load_mlx(iface, "reduce.metal")
    iface.set_function("all_reduce_sum" + MLX_NAMES[dtype])
    r = np.random.default_rng(42)
    x = (r.standard_normal(size) if dtype == np.float32 else r.integers(-1000, 1000, size)).astype(dtype)
    out = iface.create_buffer(1, dtype)
    if size <= REDUCE_N_READS * 1024:
        tg = round_up32(-(-size // REDUCE_N_READS))
        iface.run_function(tg, [iface.array_to_buffer(x), out, np.uint64(size), np.uint64(size)],
                           threadgroup=tg)
    else:
        n_rows, tg2 = 32 * REDUCE_N_READS, 32        # nbytes <= 2**26
        inter = iface.create_buffer(n_rows, dtype)
        row_size = -(-size // n_rows)
        tg = round_up32(min(-(-row_size // REDUCE_N_READS), 1024))
        iface.run_function((tg, n_rows, 1), [iface.array_to_buffer(x), inter, np.uint64(size),
                                             np.uint64(row_size)], threadgroup=(tg, 1, 1))
        iface.run_function(tg2, [inter, out, np.uint64(n_rows), np.uint64(n_rows)], threadgroup=tg2)
    if dtype == np.int32:
        assert out.contents[0] == x.sum()
    else:
        np.testing.assert_allclose(out.contents[0], x.astype(np.float64).sum(), rtol=1e-5, atol=1e-3)


# row_reduce_general_dispatch: rows of <= 64 run row_reduce_small (here one row a thread, the
# output grid from get_2d_grid_dims); longer contiguous rows, at least 32 of them, run
# row_reduce_simple (N_WRITES rows a threadgroup).
@pytest.mark.parametrize("rows,row_size", [(50, 20), (101, 500), (40, 3000)])
def test_mlx_row_reduce_sum(iface, rows, row_size):
    load_mlx(iface, "reduce.metal")
    x = np.random.default_rng(43).standard_normal((rows, row_size)).astype(np.float32)
    out = iface.create_buffer(rows, np.float32)
    xb = iface.array_to_buffer(x)
    if row_size <= 64:
        iface.set_function("row_reduce_small_1_reduce_sumfloat32")
        # RowReduceArgs::encode: row_size, non_row_reductions, shape/strides of the kept axes,
        # ndim, then the (empty, sent as {0}) non-row reduction axes.
        bufs = [xb, out, np.int64(row_size), np.int64(1), np.array([rows], np.int32).tobytes(),
                i64(row_size), np.int32(1), np.array([0], np.int32).tobytes(), i64(0), np.int32(0)]
        iface.run_function(rows, bufs, threadgroup=min(rows, 1024))
    else:
        iface.set_function("row_reduce_simple_sumfloat32")
        tg = min(1024, round_up32(-(-row_size // REDUCE_N_READS)))
        iface.run_function((tg, -(-rows // REDUCE_N_WRITES), 1),
                           [xb, out, np.uint64(row_size), np.int64(rows)], threadgroup=(tg, 1, 1))
    np.testing.assert_allclose(out.contents, x.astype(np.float64).sum(1), rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- affine quantization
# (quantized.cpp: quantize_impl, QuantizedMatmul::eval_gpu, dispatch_qmv, qmv, qmv_quad, qmm)
#
# MLX's affine mode: each group of group_size consecutive values along a row's last axis keeps
# a scale and a bias (in the activation type), w ~ scale * q + bias with q in [0, 2**bits), the
# q packed little end first into uint32 words (pack_factor = 32 / bits of them per word).
# Device choices follow an M1/M2-class GPU (architecture generation 13/14, size 'g'): there
# get_qmv_batch_limit is 14 for these sizes and affine never takes qmv_wide (gen >= 15 only).

QTYPES = {np.float32: "float", np.float16: "float16_t", BF16: "bfloat16_t"}   # get_type_string


def metal_round(x):
    """Metal's round(): halfway cases away from zero (numpy's np.round goes to even)."""
    t = np.trunc(x)
    return t + np.where(np.abs(x - t) >= 0.5, np.sign(x), 0).astype(x.dtype)


def hold(values, dtype):
    """float32 values stored as dtype: (what the kernel gets, their exact float64 values)."""
    if dtype == BF16:
        held = to_bf16(values)
        return held, from_bf16(held).astype(np.float64)
    held = np.asarray(values, np.float32).astype(dtype)
    return held, held.astype(np.float64)


def affine_quantize(w, group_size, bits, dtype):
    """affine_quantize (kernels/quantized.h) in numpy, float32 arithmetic as the kernel does:
    q (uint8, w's shape), scales and biases as stored (dtype), and their float64 values."""
    n_bins = np.float32(2**bits - 1)
    g = w.astype(np.float32).reshape(*w.shape[:-1], -1, group_size)
    w_min, w_max = g.min(-1, keepdims=True), g.max(-1, keepdims=True)
    scale = np.maximum((w_max - w_min) / n_bins, np.float32(1e-7))
    side = np.abs(w_min) > np.abs(w_max)
    scale = np.where(side, scale, -scale)
    edge = np.where(side, w_min, w_max)
    q0 = metal_round(edge / scale)
    at_zero = q0 == 0
    scale = np.where(at_zero, scale, edge / np.where(at_zero, 1, q0))
    bias = np.where(at_zero, np.float32(0), edge)
    q = np.minimum(metal_round((g - bias) / scale), n_bins).astype(np.uint8).reshape(w.shape)
    scales, scales64 = hold(scale[..., 0], dtype)
    biases, biases64 = hold(bias[..., 0], dtype)
    return q, scales, biases, scales64, biases64


def pack(q, bits):
    """q values (last axis) into uint32 words, element i of a word at bits * i."""
    pf = 32 // bits
    parts = q.reshape(*q.shape[:-1], -1, pf).astype(np.uint32) << (bits * np.arange(pf, dtype=np.uint32))
    return np.bitwise_or.reduce(parts, axis=-1)


def unpack(words, bits):
    """pack's inverse: the q values of uint32 words."""
    pf = 32 // bits
    parts = (words[..., None] >> (bits * np.arange(pf, dtype=np.uint32))) & np.uint32((1 << bits) - 1)
    return parts.reshape(*words.shape[:-1], -1)


def dequantized(q, scales64, biases64, group_size):
    g = q.astype(np.float64).reshape(*q.shape[:-1], -1, group_size)
    return (g * scales64[..., None] + biases64[..., None]).reshape(q.shape)


def quantized_weights(r, shape, group_size, bits, dtype):
    """Random weights of `shape`, quantized along the last axis: (packed uint32, scales,
    biases, the float64 weights the kernels should multiply with)."""
    w = r.standard_normal(shape).astype(np.float32)
    q, scales, biases, s64, b64 = affine_quantize(w, group_size, bits, dtype)
    return pack(q, bits), scales, biases, dequantized(q, s64, b64, group_size)


# affine_quantize / affine_dequantize run as quantize_impl dispatches them: dispatch_threads
# over w.size / max(group_size / 32, 1) threads (quantize) or out.size / (8 / bits) threads
# (dequantize), threadgroups of min(maxTotalThreadsPerThreadgroup, nthreads), one row of grid.
@pytest.mark.parametrize("dtype,rows,cols,group_size,bits", [
    (np.float32, 48, 256, 64, 4),     # 24576 values: 12288 threads, last threadgroup partial
    (np.float16, 10, 128, 32, 8),
    (BF16, 6, 128, 64, 4),
])
def test_mlx_affine_quantize_dequantize(iface, dtype, rows, cols, group_size, bits):
    load_mlx(iface, "quantized.metal")
    tname = QTYPES[dtype]
    r = np.random.default_rng(44)
    w, w64 = random_in(r, dtype, (rows, cols))
    q, scales, biases, s64, b64 = affine_quantize(w64.astype(np.float32), group_size, bits, dtype)
    max_tg = iface.maxThreadsPerGroup()

    iface.set_function(f"affine_quantize_{tname}_gs_{group_size}_b_{bits}")
    n_threads = w.size // max(group_size // 32, 1)
    out_q = iface.create_buffer(w.size * bits // 32, np.uint32)
    out_s = new_buffer(iface, w.size // group_size, dtype)
    out_b = new_buffer(iface, w.size // group_size, dtype)
    iface.run_function(n_threads, [to_buffer(iface, w, dtype), out_q, out_s, out_b],
                       threadgroup=min(max_tg, n_threads))
    if iface.backend == "cpu":  # IEEE division: bit for bit
        np.testing.assert_array_equal(out_s.contents.reshape(s64.shape), scales)
        np.testing.assert_array_equal(out_b.contents.reshape(b64.shape), biases)
        np.testing.assert_array_equal(out_q.contents.reshape(rows, -1), pack(q, bits))
    else:  # a GPU's fast-math division is within 2 ulp: a quantum may round the other way
        tol = {np.float32: 1e-6, np.float16: 1e-3}.get(dtype, 1e-2)
        def values(buf, shape):
            v = buf.contents.view(np.uint16) if dtype == BF16 else buf.contents
            return (from_bf16(v) if dtype == BF16 else v).reshape(shape).astype(np.float64)

        got_s, got_b = values(out_s, s64.shape), values(out_b, b64.shape)
        np.testing.assert_allclose(got_s, s64, rtol=tol, atol=0)
        np.testing.assert_allclose(got_b, b64, rtol=tol, atol=tol * np.abs(s64).max())
        got_q = unpack(out_q.contents.reshape(rows, -1), bits)
        assert np.abs(got_q.astype(np.int64) - q.astype(np.int64)).max() <= 1
        assert np.mean(got_q != q) < 0.01

    iface.set_function(f"affine_dequantize_{tname}_gs_{group_size}_b_{bits}")
    n_threads = w.size // (8 // bits)
    out = new_buffer(iface, w.size, dtype)
    iface.run_function(n_threads, [iface.array_to_buffer(pack(q, bits)), to_buffer(iface, scales, dtype),
                                   to_buffer(iface, biases, dtype), out],
                       threadgroup=min(max_tg, n_threads))
    # scale * q + bias in the output type (one or two roundings of it)
    tol = {np.float32: 1e-6, np.float16: 2e-3, BF16: 1.6e-2}[dtype]
    expect = dequantized(q, s64, b64, group_size)
    np.testing.assert_allclose(read_out(out, dtype, (rows, cols)), expect, rtol=tol, atol=tol)


def batch_slots(x_shape, w_shape, s_shape):
    """add_strides_and_shapes: batch ndims, shapes and (row-contiguous) strides of x, w, scales,
    biases, for slots after N (qmv) or M (qmm)."""
    def strides(shape):
        return np.cumprod((list(shape[1:]) + [1])[::-1])[::-1]
    return [np.int32(len(x_shape) - 2), np.array(x_shape, np.int32).tobytes(), i64(*strides(x_shape)),
            np.int32(len(w_shape) - 2), np.array(w_shape, np.int32).tobytes(), i64(*strides(w_shape)),
            i64(*strides(s_shape)), i64(*strides(s_shape))]


# Without a batch the host binds nothing after N / M; this API wants every slot bound, so the
# kernel's unread batch slots get harmless values.
NO_BATCH = [np.int32(0), np.array([1], np.int32).tobytes(), i64(0), np.int32(0),
            np.array([1], np.int32).tobytes(), i64(0), i64(0), i64(0)]


# x (B, M, K) @ w.T with w (N, K) quantized, M below the vector limit: dispatch_qmv. K of 64 or
# 128 takes qmv_quad (grid (M, N / 64, B) of 32 threads); otherwise qmv, "fast" when N % 8 == 0
# and K % (pack_factor * 2 * 32) == 0, grid (M, ceil(N / 8), B) of (32, 2) threads. A batch
# exists (batch_1 variant, grid z) only when w has one too.
@pytest.mark.parametrize("kind,dtype,B,M,N,K,group_size,bits", [
    ("qmv_fast", np.float32, 1, 1, 64, 512, 64, 4),
    ("qmv_fast", np.float16, 2, 3, 40, 768, 64, 8),    # batched; K % 256 for 8 bits
    ("qmv", np.float16, 1, 2, 37, 320, 64, 4),         # last 8-row tile moved back over N
    ("qmv", np.float32, 1, 1, 5, 96, 32, 4),           # N < 8: guarded rows
    ("qmv", BF16, 1, 2, 20, 192, 64, 4),
    ("qmv_quad", np.float16, 1, 2, 128, 128, 64, 4),
])
def test_mlx_affine_qmv(iface, kind, dtype, B, M, N, K, group_size, bits):
    load_mlx(iface, "quantized.metal")
    fast = N % 8 == 0 and K % ((32 // bits) * 2 * 32) == 0
    assert kind == ("qmv_quad" if K in (64, 128) else "qmv_fast" if fast else "qmv")
    r = np.random.default_rng(45)
    lead = (B,) if B > 1 else ()
    wq, scales, biases, w64 = quantized_weights(r, lead + (N, K), group_size, bits, dtype)
    x, x64 = random_in(r, dtype, lead + (M, K))
    name = f"affine_{kind}_{QTYPES[dtype]}_gs_{group_size}_b_{bits}"
    name += f"_d_{K}" if kind == "qmv_quad" else ""
    iface.set_function(name + f"_batch_{int(B > 1)}")
    out = new_buffer(iface, B * M * N, dtype)
    bufs = [iface.array_to_buffer(wq), to_buffer(iface, scales, dtype), to_buffer(iface, biases, dtype),
            to_buffer(iface, x, dtype), out, np.int32(K), np.int32(N)]
    bufs += batch_slots(x.shape, wq.shape, scales.shape) if B > 1 else NO_BATCH
    if kind == "qmv_quad":
        dispatch(iface, (M, -(-N // 64), B), (32, 1, 1), bufs)
    else:
        dispatch(iface, (M, -(-N // 8), B), (32, 2, 1), bufs)
    expect = np.einsum("...mk,...nk->...mn", x64, w64).reshape(B, M, N)
    tol = {np.float32: 1e-4, np.float16: 1e-2, BF16: 1e-2}[dtype]
    np.testing.assert_allclose(read_out(out, dtype, (B, M, N)), expect, rtol=tol,
                               atol=tol * np.abs(expect).max())


# M at or above the vector limit: qmm (bm = bn = 32, threadgroups (32, 2, 2), grid
# (ceil(N / 32), ceil(M / 32), B)). Transposed weights without a batch go through qmm_splitk,
# which falls back to qmm when split_k <= 1 (K / max(group_size, 32) == 1 here); with a batch
# they reach qmm directly. alN_true when N % 32 == 0. Untransposed weights w (K, N) run qmm_n.
@pytest.mark.parametrize("kind,dtype,B,M,N,K,group_size,bits", [
    ("qmm_t", np.float32, 2, 20, 64, 128, 64, 4),     # batched, aligned N
    ("qmm_t", np.float16, 1, 40, 50, 64, 64, 4),      # unaligned N, two row tiles
    ("qmm_t", np.float32, 2, 33, 45, 256, 32, 8),
    ("qmm_n", np.float32, 1, 33, 128, 70, 64, 4),     # K not a multiple of BK, M tile partial
    ("qmm_n", np.float16, 2, 16, 64, 96, 32, 4),
])
def test_mlx_affine_qmm(iface, kind, dtype, B, M, N, K, group_size, bits):
    load_mlx(iface, "quantized.metal")
    r = np.random.default_rng(46)
    lead = (B,) if B > 1 else ()
    transpose = kind == "qmm_t"
    w_shape = (N, K) if transpose else (K, N)
    wq, scales, biases, w64 = quantized_weights(r, lead + w_shape, group_size, bits, dtype)
    x, x64 = random_in(r, dtype, lead + (M, K))
    name = f"affine_{kind}_{QTYPES[dtype]}_gs_{group_size}_b_{bits}"
    if transpose:
        name += f"_alN_{'true' if N % 32 == 0 else 'false'}"
    iface.set_function(name + f"_batch_{int(B > 1)}")
    out = new_buffer(iface, B * M * N, dtype)
    bufs = [iface.array_to_buffer(wq), to_buffer(iface, scales, dtype), to_buffer(iface, biases, dtype),
            to_buffer(iface, x, dtype), out, np.int32(K), np.int32(N), np.int32(M)]
    bufs += batch_slots(x.shape, wq.shape, scales.shape) if B > 1 else NO_BATCH
    dispatch(iface, (-(-N // 32), -(-M // 32), B), (32, 2, 2), bufs)
    spec = "...mk,...nk->...mn" if transpose else "...mk,...kn->...mn"
    expect = np.einsum(spec, x64, w64).reshape(B, M, N)
    # half tiles hold the dequantized weights in half (scale * q + bias rounded to it)
    tol = {np.float32: 1e-4, np.float16: 1e-2, BF16: 1e-2}[dtype]
    np.testing.assert_allclose(read_out(out, dtype, (B, M, N)), expect, rtol=tol,
                               atol=tol * np.abs(expect).max())


# ---------------------------------------------------------------- attention, vector path
# The host code (mlx/backend/metal/scaled_dot_product_attention.cpp: sdpa_vector,
# sdpa_vector_2pass, ScaledDotProductAttention::eval_gpu) is not in the corpus; this follows
# upstream's (the ml-explore/mlx file) together with the kernels' own parameter lists
# (kernels/sdpa_vector.h). Queries of at most 8 tokens take the vector path; q, k, v and the
# output are row-contiguous (B, heads, L, D). The 2-pass kernels run when the device is large
# ('d'/'s') and N >= 1024, or with GQA and N >= 4096; otherwise the 1-pass sdpa_vector, one
# 1024-thread threadgroup per (batch * query head, query token).

def sdpa_reference(q, k, v, scale, mask=None, causal=False, sinks=None):
    """softmax(q k^T * scale [+ float mask]) v in float64, GQA by repeating kv heads; a bool
    mask (or -inf float mask) drops keys; sinks add one logit per query head with no value."""
    hq, hk = q.shape[1], k.shape[1]
    k = np.repeat(k, hq // hk, axis=1)
    v = np.repeat(v, hq // hk, axis=1)
    s = np.einsum("bhqd,bhkd->bhqk", q, k) * scale
    n, ql = k.shape[2], q.shape[2]
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    if causal:
        allowed = np.arange(n)[None, :] <= (n - ql + np.arange(ql))[:, None]
        s = np.where(allowed, s, -np.inf)
    m = s.max(-1, keepdims=True)
    if sinks is not None:
        m = np.maximum(m, sinks[None, :, None, None])
    e = np.exp(s - m)
    denom = e.sum(-1, keepdims=True)
    if sinks is not None:
        denom = denom + np.exp(sinks[None, :, None, None] - m)
    return np.einsum("bhqk,bhkd->bhqd", e, v) / denom


def sdpa_blocks(device, n_simds, N):
    """sdpa_vector_2pass's number of key blocks per device size ('d' large, 's', else)."""
    if device == "s":
        if N > 1024 and n_simds > 4:
            return 128 if N <= 8192 else 256 if N <= 32768 else 512 if N <= 65536 else 1024
        return 64
    if device == "d":
        if n_simds <= 2 and N > 8192:
            return 256
        if n_simds >= 6 and N >= 16384:
            return 512 if N < 65536 else 1024
        return 128
    return 64 if n_simds >= 4 else 32


# mask: None, "bool" (bool_mask, slots 11/12 or 13/14 by type), "float" (additive, -inf drops
# a key), "causal" (do_causal, only for more than one query token). Masks are (B, Hq, qL, N)
# row-contiguous: kv_seq stride 1, q_seq stride N (if qL > 1, else 0), head stride qL * N.
@pytest.mark.parametrize("kind,dtype,D,B,Hq,Hk,qL,N,mask,sinks,device", [
    ("1pass", np.float32, 64, 1, 4, 4, 1, 100, None, False, "g"),
    ("1pass", np.float16, 128, 2, 8, 2, 1, 77, "bool", False, "g"),      # GQA 4
    ("1pass", np.float32, 128, 1, 4, 1, 3, 50, "causal", False, "g"),
    ("1pass", np.float16, 64, 1, 6, 3, 2, 40, "float", True, "g"),
    ("2pass", np.float16, 64, 1, 2, 2, 1, 1030, "bool", False, "d"),     # 128 blocks
    ("2pass", np.float32, 128, 1, 8, 2, 2, 4100, "causal", False, "g"),  # GQA, 64 blocks
    ("2pass", BF16, 64, 2, 4, 4, 1, 1100, None, True, "d"),
    ("2pass_gqa", np.float16, 64, 1, 8, 1, 1, 8200, None, False, "g"),   # G = 8, 8 heads a thread
])
def test_mlx_sdpa_vector(iface, kind, dtype, D, B, Hq, Hk, qL, N, mask, sinks, device):
    load_mlx(iface, "scaled_dot_product_attention.metal")
    r = np.random.default_rng(47)
    gqa = Hq // Hk
    q, q64 = random_in(r, dtype, (B, Hq, qL, D))
    k, k64 = random_in(r, dtype, (B, Hk, N, D))
    v, v64 = random_in(r, dtype, (B, Hk, N, D))
    scale = 1 / np.sqrt(D)
    tname = QTYPES[dtype]
    m_held = m_ref = None
    if mask == "bool":
        m_ref = m_held = r.random((B, Hq, qL, N)) < 0.7
        m_held[..., 0] = m_ref[..., 0] = True                  # no row entirely masked
    elif mask == "float":
        add = r.standard_normal((B, Hq, qL, N)).astype(np.float32)
        add[r.random(add.shape) < 0.3] = -np.inf
        add[..., 0] = 0
        m_held, m_ref = hold(add, dtype)
    sink_held = sink_ref = None
    if sinks:
        # about log(N): the sink then weighs as much as all the keys together
        sink_held, sink_ref = hold((r.standard_normal(Hq) + np.log(N)).astype(np.float32), dtype)
    expect = sdpa_reference(q64, k64, v64, scale, m_ref, mask == "causal", sink_ref)

    has_mask = mask in ("bool", "float")
    consts = {"has_mask": has_mask, "query_transposed": False, "do_causal": mask == "causal",
              "bool_mask": mask == "bool", "float_mask": mask == "float", "has_sinks": sinks}
    # kv head strides: k.strides(1) (k.strides(0) when one kv head); seq strides D
    k_head = N * D
    mask_slots = []
    if has_mask:
        m_buf = iface.array_to_buffer(m_held) if mask == "bool" else to_buffer(iface, m_held, dtype)
        mask_slots = [m_buf, None] if mask == "bool" else [None, m_buf]
        mask_slots += [np.int32(1), np.int32(N if qL > 1 else 0), np.int32(qL * N)]
    out = new_buffer(iface, B * Hq * qL * D, dtype)
    bufs_qkv = [to_buffer(iface, q, dtype), to_buffer(iface, k, dtype), to_buffer(iface, v, dtype)]

    if kind == "1pass":
        iface.set_function(f"sdpa_vector_{tname}_{D}_{D}", constants=consts)
        bufs = bufs_qkv + [out, np.int32(gqa), np.int32(N), np.uint64(k_head), np.uint64(D),
                           np.uint64(k_head), np.uint64(D), np.float32(scale)]
        if has_mask or sinks:
            bufs += mask_slots or [None] * 5
        if sinks:
            bufs += [to_buffer(iface, sink_held, dtype), np.int32(Hq)]
        dispatch(iface, (B * Hq, qL, 1), (1024, 1, 1), bufs)
    else:
        blocks = sdpa_blocks(device, gqa * qL, N)
        inter = new_buffer(iface, B * Hq * qL * blocks * D, dtype)
        sums = iface.create_buffer(B * Hq * qL * blocks, np.float32)
        maxs = iface.create_buffer(B * Hq * qL * blocks, np.float32)
        if kind == "2pass_gqa":
            # no mask, no sinks, one query token, G = 8: function constants unread
            iface.set_function(f"sdpa_vector_2pass_1_gqa_{tname}_{D}_{D}")
        else:
            iface.set_function(f"sdpa_vector_2pass_1_{tname}_{D}_{D}", constants={**consts, "blocks": blocks})
        bufs = bufs_qkv + [inter, sums, maxs, None, np.int32(N), np.uint64(k_head), np.uint64(D),
                           np.uint64(k_head), np.uint64(D), np.float32(scale)]
        if has_mask or sinks:
            bufs += mask_slots or [None] * 5
        if sinks:
            bufs.append(to_buffer(iface, sink_held, dtype))
        dispatch(iface, (Hk, B, blocks), (32, gqa, qL), bufs)
        iface.set_function(f"sdpa_vector_2pass_2_{tname}_{D}")
        dispatch(iface, (B * Hq, qL, 1), (1024, 1, 1), [inter, sums, maxs, out, np.int32(blocks)])

    got = read_out(out, dtype, expect.shape)
    tol = {np.float32: 1e-4, np.float16: 5e-3, BF16: 2e-2}[dtype]
    np.testing.assert_allclose(got, expect, rtol=tol, atol=tol)
