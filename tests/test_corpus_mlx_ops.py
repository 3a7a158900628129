"""MLX's column reductions, rope, sort, random bits and its half/bfloat elementwise kernels
(../shared/corpus/mlx) against numpy, each driven as MLX's host code drives it
(mlx/backend/metal/reduce.cpp, rope.cpp, sort.cpp, binary.cpp, unary.cpp, ternary.cpp, and
RandomBits::eval_gpu, upstream in mlx/backend/metal/primitives.cpp): kernel names chosen by the
host's rules, argument slots, function constants, threadgroups and grids.

The corpus is test data read in place; nothing of it is copied into the project. Grids given to
run_function are in threads: a host's dispatch_threadgroups(groups, tg) is groups * tg, its
dispatch_threads(grid, tg) is grid itself. numpy has no bfloat16: bfloat data is kept as uint16
bit patterns and converted in the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mg
from corpus import (
    dispatch,
    from_bf16,
    load_mlx,
    requires_corpus,
    skip_metal_double,
    to_bf16,
)
from corpus import i64 as i64s
from corpus import mlx_block_dims as block_dims

pytestmark = requires_corpus

MLX_NAMES = {np.float32: "float32", np.float16: "float16", np.int32: "int32"}


@pytest.fixture
def iface(backend):
    # Built here rather than from conftest's `iface`: pytest before 9 does not parametrize a
    # fixture that overrides one of the same name through a parametrized fixture.
    return skip_metal_double(mg.Interface(backend=backend))


def i32s(*values):
    return np.array(values, np.int32).tobytes()


# ---------------------------------------------------------------- bfloat16 as uint16 bits

def typed_buffer(iface, tname, values):
    """A buffer of the type: bfloat buffers (the kernels' bfloat16_t) take uint16 bit patterns."""
    if tname != "bfloat16":
        return iface.array_to_buffer(values)
    buf = iface.create_buffer(values.size, "bfloat")
    buf.contents.view(np.uint16)[:] = values.ravel()
    return buf


def empty_buffer(iface, tname, count):
    return iface.create_buffer(count, "bfloat" if tname == "bfloat16" else np.float16)


# ======================================================= column reduce (reduce.cpp, strided)

# strided_reduce_general_dispatch on a row-contiguous input: get_reduction_plan gives the
# reduced axes as (shape, strides); the last one is the column (reduction_size, reduction_stride),
# the others the non-column reductions; the kept axes with strides >= reduction_stride address
# the outputs (ColReduceArgs). Cases, as (input shape, reduced axes):
#   (R, C) axis 0          -> plan [R]/[C], no kept axes (ndim 0, sent as {0})
#   (B, R, C) axis 1       -> plan [R]/[C], kept [B]/[R*C]
#   (A, B, R, C) axes 0, 2 -> plan [A, R]/[B*R*C, C]: one non-column reduction, NDIMS 2
def col_reduce_plan(shape, axes):
    strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
    plan_shape = [shape[axes[0]]]
    plan_strides = [strides[axes[0]]]
    for prev, a in zip(axes, axes[1:]):
        if a - 1 == prev:
            plan_shape[-1] *= shape[a]
            plan_strides[-1] = strides[a]
        else:
            plan_shape.append(shape[a])
            plan_strides.append(strides[a])
    reduction_size, reduction_stride = plan_shape[-1], plan_strides[-1]
    kept = [(shape[i], strides[i]) for i in range(len(shape)) if i not in axes]
    stride_back = 1
    while kept and stride_back < reduction_stride:      # the contiguous block a column covers
        stride_back *= kept.pop()[0]
    return {"reduction_size": reduction_size, "reduction_stride": reduction_stride,
            "reduce_shape": plan_shape[:-1], "reduce_strides": plan_strides[:-1],
            "non_col": int(np.prod(plan_shape[:-1])), "kept": kept}


def col_reduce_args(p, in_buf, out_buf, with_column=True):
    """ColReduceArgs::encode (slots 2-10) after the host appended the column axis to
    reduce_shape/reduce_strides; empty vectors are sent as {0}."""
    rshape = p["reduce_shape"] + ([p["reduction_size"]] if with_column else [])
    rstrides = p["reduce_strides"] + ([p["reduction_stride"]] if with_column else [])
    kshape = [k[0] for k in p["kept"]] or [0]
    kstrides = [k[1] for k in p["kept"]] or [0]
    return [in_buf, out_buf, np.uint64(p["reduction_size"]), np.int64(p["reduction_stride"]),
            i32s(*kshape), i64s(*kstrides), np.int32(len(p["kept"])),
            i32s(*(rshape or [0])), i64s(*(rstrides or [0])), np.int32(len(rshape)),
            np.uint64(p["non_col"])]


def kernel_ndim(reduce_ndim):          # get_kernel_reduce_ndim
    return 1 if reduce_ndim <= 1 else 2 if reduce_ndim == 2 else 5


@pytest.mark.parametrize("op", ["sum", "max"])
@pytest.mark.parametrize("variant,shape,axes", [
    ("small", (20, 70), (0,)),                   # 20 rows < 32: col_reduce_small, 70 % 4 != 0
    ("small", (3, 4, 5, 37), (0, 2)),            # 15 rows, NDIMS 2, 4 outputs
    ("looped", (3, 100, 70), (1,)),              # 100 rows <= 256: col_reduce_looped
    ("looped", (4, 3, 50, 45), (0, 2)),          # 200 rows, NDIMS 2
    ("2pass", (1000, 70), (0,)),                 # > 256 rows, few outputs: 2pass + looped
    ("2pass", (2, 600, 40), (1,)),               # 2 output rows over 32 blocks
    ("longcolumn", (3000, 10), (0,)),            # stride < 32, >= 1024 rows
])
def test_mlx_col_reduce(iface, op, variant, shape, axes):
    load_mlx(iface, "reduce.metal")
    x = np.random.default_rng(50).standard_normal(shape).astype(np.float32)
    expect = x.sum(axis=axes) if op == "sum" else x.max(axis=axes)
    p = col_reduce_plan(shape, list(axes))
    stride, total = p["reduction_stride"], p["reduction_size"] * p["non_col"]
    out_size = expect.size
    n_out_rows = out_size // stride                      # output_grid_for_col_reduce: (rows, 1)
    # The host's own choice (strided_reduce_general_dispatch) must be the variant this case names.
    chosen = ("small" if total < 32 else "longcolumn" if stride < 32 and total >= 1024
              else "2pass" if total > 256 and out_size // 32 < 1024 else "looped")
    assert chosen == variant
    n = kernel_ndim(len(p["reduce_shape"]) + 1)
    tname = f"reduce_{op}float32"
    xb, out = iface.array_to_buffer(x), iface.create_buffer(out_size, np.float32)
    if variant == "small":
        # strided_reduce_small: threadgroups (ceil(blocks / tx), out rows, 1) of (tx, ty, 1).
        iface.set_function(f"col_reduce_small_{n}_{tname}")
        blocks = -(-stride // 4)
        tx = min(blocks, 32)
        ty = min(8, min(iface.maxThreadsPerGroup() // tx, total))
        dispatch(iface, (-(-blocks // tx), n_out_rows, 1), (tx, ty, 1), col_reduce_args(p, xb, out))
    elif variant == "looped":
        # strided_reduce_looped: BM = BN = 32, 256 threads per 32 columns (dispatch_threads).
        iface.set_function(f"col_reduce_looped_{n}_32_32_{tname}")
        iface.run_function((256 * -(-stride // 32), n_out_rows, 1), col_reduce_args(p, xb, out),
                           threadgroup=(256, 1, 1))
    else:
        # 2pass: 32 outer blocks into an intermediate (32, *out.shape), grid y = rows * 32,
        # out_size (slot 11) = out.size() / reduction_stride. longcolumn: threadgroup
        # (stride, min(32, ceil(rows / outer))), outer = 32 (128 from 32768 rows) along z,
        # slot 11 = out.size(). Both then reduce the intermediate's first axis with
        # col_reduce_looped_1_32_32 (ColReduceArgs(intermediate), reduce_shape {outer}).
        outer = 128 if variant == "longcolumn" and total >= 32768 else 32
        inter = iface.create_buffer(outer * out_size, np.float32)
        args = col_reduce_args(p, xb, inter)
        if variant == "2pass":
            iface.set_function(f"col_reduce_2pass_{n}_32_32_{tname}")
            iface.run_function((256 * -(-stride // 32), n_out_rows * outer, 1),
                               args + [np.uint64(n_out_rows)], threadgroup=(256, 1, 1))
        else:
            iface.set_function(f"col_reduce_longcolumn_{n}_{tname}")
            ty = min(32, -(-total // outer))
            dispatch(iface, (n_out_rows, 1, outer), (stride, ty, 1), args + [np.uint64(out_size)])
        second = {"reduction_size": outer, "reduction_stride": out_size, "reduce_shape": [],
                  "reduce_strides": [], "non_col": 1, "kept": []}
        iface.set_function(f"col_reduce_looped_1_32_32_{tname}")
        iface.run_function(256 * -(-out_size // 32), col_reduce_args(second, inter, out), threadgroup=256)
    got = out.contents.reshape(expect.shape)
    if op == "max":
        np.testing.assert_array_equal(got, expect)
    else:
        np.testing.assert_allclose(got, x.astype(np.float64).sum(axis=axes), rtol=1e-5, atol=1e-4)


# ======================================================================== rope (rope.cpp)

def rope_reference(x, dims, traditional, base, scale, offsets, freqs=None, forward=True):
    """MLX's RoPE on (B, N, T, D): position t + offset[b], frequencies base ** (-i / (dims/2))
    (or 1 / freqs[i]); pairs (2i, 2i+1) when traditional, else (i, i + dims/2)."""
    x = x.astype(np.float64)
    half = dims // 2
    inv = 1.0 / freqs.astype(np.float64) if freqs is not None else base ** (-np.arange(half) / half)
    pos = np.arange(x.shape[2])[None, :] + np.asarray(offsets, np.float64).reshape(-1, 1)   # (B, T)
    theta = scale * pos[:, None, :, None] * inv                          # (B, 1, T, half)
    c, s = np.cos(theta), np.sin(theta)
    if not forward:
        s = -s
    out = x.copy()
    i1 = np.arange(half) * 2 if traditional else np.arange(half)
    i2 = i1 + 1 if traditional else i1 + half
    x1, x2 = x[..., i1], x[..., i2]
    out[..., i1] = x1 * c - x2 * s
    out[..., i2] = x1 * s + x2 * c
    return out


# RoPE::eval_gpu: kernel "rope_" ["single_"] ["freqs_"] type, function constants forward (1),
# traditional (2), head_seq_transpose (3). Slots: 0 in, 1 out, 2 offset (an int32 array),
# 3 scale; general: 4 strides[3], 5 out_strides[3] (matrix, row, element), 6 offset_stride,
# 7 N (heads); single: 4 the row stride; 10 log2(base), or freqs with 11 freq_stride.
# General grid (dims/2, T, B * ceil(N / 4)) threads, single (dims/2, B * N); get_block_dims.
@pytest.mark.parametrize("dtype,traditional,variant", [
    (np.float32, False, "plain"),
    (np.float32, True, "plain"),
    (np.float16, False, "plain"),
    (np.float16, True, "plain"),
    (np.float32, False, "freqs"),
    (np.float16, True, "freqs"),
    (np.float32, False, "partial"),          # dims 32 < D, one offset per batch
    (np.float32, True, "vjp"),               # forward false, dims 48 < D
    (np.float32, False, "transposed"),       # head_seq_transpose, one offset per batch
    (np.float32, False, "single"),           # T == 1: rope_single
    (np.float16, True, "single-freqs"),      # rope_single_freqs
])
def test_mlx_rope(iface, dtype, traditional, variant):
    load_mlx(iface, "rope.metal")
    B, N, T, D = 2, 5, 1 if variant.startswith("single") else 7, 64
    dims = {"partial": 32, "vjp": 48}.get(variant, D)
    forward, transposed = variant != "vjp", variant == "transposed"
    base, scale = 10000.0, 0.75
    r = np.random.default_rng(51)
    x = r.standard_normal((B, N, T, D)).astype(dtype)
    offsets = np.array([3, 11], np.int32) if variant in ("partial", "transposed") else np.array(5, np.int32)
    freqs = (base ** (np.arange(dims // 2) / (dims // 2)) * r.uniform(0.5, 2, dims // 2)).astype(
        np.float32) if variant.endswith("freqs") else None
    single = T == 1 and not transposed and offsets.size == 1
    kname = "rope_" + ("single_" if single else "") + ("freqs_" if freqs is not None else "") + MLX_NAMES[dtype]
    iface.set_function(kname, constants={1: forward, 2: traditional, 3: transposed})
    out = iface.create_buffer(x.size, dtype)
    if dims < D:
        # dims < D: the input is first copied into the output, which the kernel then updates
        # in place (donated: the output is bound as the input too).
        out.contents[:] = x.ravel()
        src = out
        strides = [T * D, D, 1]
    elif transposed:
        # A (B, T, N, D) array seen as (B, N, T, D): strides T*N*D, D, N*D, 1 - the
        # head_seq_transpose path, strides {in.strides[1], in.strides[2], in.strides[3]}.
        src = iface.array_to_buffer(np.ascontiguousarray(x.transpose(0, 2, 1, 3)))
        strides = [D, N * D, 1]
    else:
        src = iface.array_to_buffer(x)
        strides = [T * D, D, 1]
    bufs = [src, out, iface.array_to_buffer(offsets), np.float32(scale)]
    if single:
        bufs += [np.int64(D)] + [None] * 5
        grid = (dims // 2, B * N, 1)
        tg = block_dims(grid[0], grid[1], 1)
    else:
        bufs += [i64s(*strides), i64s(T * D, D, 1), np.int64(1 if offsets.ndim else 0), np.int32(N),
                 None, None]
        grid = (dims // 2, T, B * -(-N // 4))
        tg = block_dims(*grid)
    bufs += [np.float32(np.log2(base))] if freqs is None else [iface.array_to_buffer(freqs), np.int64(1)]
    iface.run_function(grid, bufs, threadgroup=tg)
    expect = rope_reference(x, dims, traditional, base, scale, np.broadcast_to(offsets, (B,)),
                            freqs, forward)
    tol = 1e-4 if dtype == np.float32 else 4e-3
    np.testing.assert_allclose(out.contents.reshape(x.shape).astype(np.float64), expect, rtol=tol, atol=tol)


# ======================================================================== sort (sort.cpp)

def sort_block(n):
    """gpu_merge_sort's (bn, n_blocks) for a sorted axis of n (tn = 4, 4-byte types)."""
    pbn = -(-n // 4)
    bn = 512 if pbn > 256 else 256 if pbn > 128 else 128 if pbn > 64 else 64 if pbn > 32 else 32
    return bn, -(-n // (bn * 4))


def sort_data(dtype, shape, seed):
    r = np.random.default_rng(seed)
    if dtype == np.int32:              # many ties: the merge sort keeps their order (stable)
        return r.integers(-50, 50, shape).astype(np.int32)
    x = r.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[r.choice(x.size, 3, replace=False)] = np.nan   # NaNs sort last (LessThan)
    return x


def check_sorted(got, x, axis, argsort):
    expect = np.argsort(x, axis=axis, kind="stable")
    if argsort:
        np.testing.assert_array_equal(got, expect)
    else:
        np.testing.assert_array_equal(got, np.take_along_axis(x, expect, axis))


# single_block_sort: one threadgroup of bn threads per row, grid (1, n_rows). "c" when the sorted
# axis has the input's smallest or largest stride (slots 5, 6: the smallest stride of the other
# axes), else "nc" (slots 5-8: nc_dim, nc_shape, in and out nc strides).
@pytest.mark.parametrize("dtype,argsort,shape,axis", [
    (np.float32, False, (3, 100), 1),       # bn 32
    (np.float32, True, (2, 1000), 1),       # bn 256
    (np.int32, True, (3, 100), 1),
    (np.int32, False, (50, 6), 0),          # sorted axis has the largest stride: segment stride 1
    (np.float32, True, (2, 60, 3), 1),      # middle axis: the "nc" kernel
])
def test_mlx_sort_single_block(iface, dtype, argsort, shape, axis):
    load_mlx(iface, "sort.metal")
    x = sort_data(dtype, shape, 52)
    n = shape[axis]
    bn, n_blocks = sort_block(n)
    assert n_blocks == 1
    strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
    contiguous = strides[axis] in (min(strides), max(strides))
    tname = MLX_NAMES[dtype]
    otype = (np.uint32, "uint32") if argsort else (dtype, tname)
    iface.set_function(f"{'c' if contiguous else 'nc'}{'arg' if argsort else ''}_block_sort_{tname}_"
                       f"{otype[1]}_bn{bn}_tn4")
    out = iface.create_buffer(x.size, otype[0])
    bufs = [iface.array_to_buffer(x), out, np.int32(n), np.int32(strides[axis]), np.int32(strides[axis])]
    nc_shape = [s for i, s in enumerate(shape) if i != axis]
    nc_str = [s for i, s in enumerate(strides) if i != axis]
    if contiguous:
        seg = min(st for sh, st in zip(nc_shape, nc_str) if sh != 1)
        bufs += [np.int32(seg), np.int32(seg)]
    else:
        bufs += [np.int32(len(nc_shape)), i32s(*nc_shape), i64s(*nc_str), i64s(*nc_str)]
    dispatch(iface, (1, x.size // n, 1), (bn, 1, 1), bufs)
    check_sorted(out.contents.reshape(shape), x, axis, argsort)


# multi_block_sort (rows longer than bn * tn = 2048): mb_block_sort sorts each 2048-element block
# into vals/idxs (grid (n_blocks, n_rows) of bn = 512), then for merge_tiles = 2, 4, ... while
# merge_tiles / 2 < n_blocks: mb_block_partition (one group of min(n_blocks + 1, 1024) threads a
# row) and mb_block_merge (grid (n_blocks, n_rows)), ping-ponging between two buffers. Sort reads
# the values, argsort the indices of the last output (sorting the last axis, the final copy to
# `out` is a plain contiguous copy and left out here).
@pytest.mark.parametrize("dtype,rows,n", [(np.float32, 2, 9000), (np.int32, 3, 5000)])
def test_mlx_sort_multi_block(iface, dtype, rows, n):
    load_mlx(iface, "sort.metal")
    x = sort_data(dtype, (rows, n), 53)
    bn, n_blocks = sort_block(n)
    assert bn == 512 and n_blocks > 1
    suffix = f"mbsort_{MLX_NAMES[dtype]}_uint32_bn{bn}_tn4"
    vals = [iface.create_buffer(x.size, dtype) for _ in range(2)]
    idxs = [iface.create_buffer(x.size, np.uint32) for _ in range(2)]
    partitions = iface.create_buffer(rows * (n_blocks + 1), np.uint32)
    iface.set_function("sort_" + suffix)
    dispatch(iface, (n_blocks, rows, 1), (bn, 1, 1),
             [iface.array_to_buffer(x), vals[0], idxs[0], np.int32(n), np.int32(1), np.int32(1),
              i32s(rows), i64s(n)])
    ping, merge_tiles, n_thr = 0, 2, min(n_blocks + 1, 1024)
    while merge_tiles // 2 < n_blocks:
        src, dst = ping, 1 - ping
        ping = dst
        iface.set_function("partition_" + suffix)
        dispatch(iface, (1, rows, 1), (n_thr, 1, 1), [partitions, vals[src], idxs[src], np.int32(n),
                                                      np.int32(merge_tiles), np.int32(n_blocks)])
        iface.set_function("merge_" + suffix)
        dispatch(iface, (n_blocks, rows, 1), (bn, 1, 1),
                 [partitions, vals[src], idxs[src], vals[dst], idxs[dst], np.int32(n),
                  np.int32(merge_tiles), np.int32(n_blocks)])
        merge_tiles *= 2
    check_sorted(vals[ping].contents.reshape(rows, n), x, 1, False)
    check_sorted(idxs[ping].contents.reshape(rows, n), x, 1, True)


# ================================================================== random bits (random.metal)

THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0, k1, c0, c1):
    """Threefry-2x32 with 20 rounds (Salmon et al., Random123), as random.metal's
    threefry2x32_hash: key schedule (k0, k1, k0 ^ k1 ^ 0x1BD11BDA), a key injection every 4
    rounds. Vectorised over uint32 arrays."""
    k0, k1, c0, c1 = (np.asarray(v, np.uint32) for v in (k0, k1, c0, c1))
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    x, y = c0 + ks[0], c1 + ks[1]
    for i in range(5):
        for r in THREEFRY_ROTATIONS[i % 2]:
            x = x + y
            y = (y << np.uint32(r)) | (y >> np.uint32(32 - r))
            y = y ^ x
        x = x + ks[(i + 1) % 3]
        y = y + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x, y


def test_threefry_reference_known_answers():
    # Random123's known-answer vectors for threefry2x32_20 (also in JAX's random tests), so the
    # numpy oracle below is itself checked.
    for key, count, expect in [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
                               ((0xFFFFFFFF,) * 2, (0xFFFFFFFF,) * 2, (0x1CB996FC, 0xBB002BE7)),
                               ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3),
                                (0xC4923A9C, 0x483DF7A0))]:
        x, y = threefry2x32(np.array([key[0]]), np.array([key[1]]), np.array([count[0]]),
                            np.array([count[1]]))
        assert (int(x[0]), int(y[0])) == expect


def random_bits_reference(keys, bytes_per_key):
    """MLX's random bits for each key: out_per_key = ceil(bytes / 4) 32-bit words, split in
    halves; thread j of grid_y = half + odd hashes the counter (j, j + grid_y) - (j, 0) for the
    odd last one - and writes its two words at j and j + grid_y, little-endian, cut at
    bytes_per_key."""
    words = -(-bytes_per_key // 4)
    half, odd = words // 2, words % 2
    grid_y = half + odd
    j = np.arange(grid_y, dtype=np.uint32)
    drop = (j == half) & bool(odd)
    out = np.zeros((len(keys), words), np.uint32)
    for k, (k0, k1) in enumerate(keys):
        x, y = threefry2x32(np.full_like(j, k0), np.full_like(j, k1), j,
                            np.where(drop, np.uint32(0), j + np.uint32(grid_y)))
        out[k, :grid_y] = x
        out[k, grid_y:] = y[~drop]
    return out.astype("<u4").view(np.uint8)[:, :bytes_per_key]


# RandomBits::eval_gpu: keys (num_keys, 2) uint32; "rbitsc" for row-contiguous keys, else
# "rbits" with ndim, key shape and strides in slots 4-6. Slot 2 odd, slot 3 bytes per key; grid
# (num_keys, half_size + odd) threads in threadgroups of (maxTotalThreadsPerThreadgroup, 1, 1).
@pytest.mark.parametrize("kernel", ["rbitsc", "rbits"])
@pytest.mark.parametrize("bytes_per_key", [
    40,        # 10 words: even
    28,        # 7 words: odd, the last thread hashes (j, 0) and keeps one word
    13,        # 4 words, the last word cut to 1 byte
    10,        # 3 words (odd) and the last word cut to 2 bytes (5 float16 a key)
])
def test_mlx_random_bits(iface, kernel, bytes_per_key):
    load_mlx(iface, "random.metal")
    iface.set_function(kernel)
    num_keys = 3
    keys = np.array([[0, 0], [0, 42], [0xDEADBEEF, 0x12345678]], np.uint32)
    words = -(-bytes_per_key // 4)
    half, odd = words // 2, words % 2
    out = iface.create_buffer(num_keys * bytes_per_key, np.uint8)
    bufs = [None, out, np.bool_(odd), np.uint64(bytes_per_key)]
    if kernel == "rbitsc":
        bufs[0] = iface.array_to_buffer(keys)
    else:
        # keys as a transposed view of a (2, num_keys) array: strides (1, num_keys)
        bufs[0] = iface.array_to_buffer(np.ascontiguousarray(keys.T))
        bufs += [np.int32(2), i32s(num_keys, 2), i64s(1, num_keys)]
    iface.run_function((num_keys, half + odd, 1), bufs, threadgroup=(iface.maxThreadsPerGroup(), 1, 1))
    np.testing.assert_array_equal(out.contents.reshape(num_keys, bytes_per_key),
                                  random_bits_reference(keys, bytes_per_key))


# ============================================== elementwise in float16 and bfloat16

def elementwise_launch(size, itemsize):
    """binary/unary/ternary_op_gpu_inplace for contiguous data: get_work_per_thread is 1 below
    2**16 elements, else 8 / itemsize ("...n_" kernels); ceil(size / n) threads in groups of
    min(1024, threads)."""
    n = 1 if size < 1 << 16 else 8 // itemsize
    threads = -(-size // n)
    return ("n" if n > 1 else ""), threads, min(1024, threads)


def half_data(tname, shape, seed, scale=4.0):
    """Random values of the type: (the array to bind, its float32 values)."""
    x = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
    if tname == "bfloat16":
        bits = to_bf16(x)
        return bits, from_bf16(bits)
    h = x.astype(np.float16)
    return h, h.astype(np.float32)


def as_float32(tname, contents):
    return from_bf16(contents.view(np.uint16)) if tname == "bfloat16" else contents.astype(np.float32)


def round_to(tname, x32):
    """float32 results rounded to the type, as float32 (what a float -> half/bfloat cast gives)."""
    return from_bf16(to_bf16(x32)) if tname == "bfloat16" else x32.astype(np.float16).astype(np.float32)


BINARY_OPS = {"Add": np.add, "Subtract": np.subtract, "Multiply": np.multiply,
              "Divide": np.divide, "Maximum": np.maximum}


# binary_op_gpu_inplace: "vv" (both contiguous), "sv" (a scalar), "vs" (b scalar); "n" suffix
# from 2**16 elements. Slots 0 a, 1 b, 2 out, 3 size. The half and bfloat operators compute in
# float and round once, so numpy's float32 result rounded to the type is exact.
# Scalar operands only with the non-commutative ops (the ones that tell a from b).
@pytest.mark.parametrize("tname", ["float16", "bfloat16"])
@pytest.mark.parametrize("op,kind,size", [
    *[(op, "vv", size) for op in BINARY_OPS for size in (1001, 70_001)],
    ("Subtract", "sv", 999), ("Divide", "vs", 70_003)])
def test_mlx_binary_half_types(iface, tname, op, kind, size):
    load_mlx(iface, "binary.metal")
    a, af = half_data(tname, 1 if kind == "sv" else size, 54)
    b, bf = half_data(tname, 1 if kind == "vs" else size, 55)
    if op == "Divide":
        b = np.where(bf == 0, b.dtype.type(1) if tname == "float16" else to_bf16(np.float32(1)), b)
        bf = as_float32(tname, b)
    n, threads, tg = elementwise_launch(size, 2)
    iface.set_function(f"{kind}{n}_{op}{tname}")
    out = empty_buffer(iface, tname, size)
    iface.run_function(threads, [typed_buffer(iface, tname, a), typed_buffer(iface, tname, b), out,
                                 np.int32(size)], threadgroup=tg)
    with np.errstate(all="ignore"):
        expect = round_to(tname, BINARY_OPS[op](af, bf).astype(np.float32))
    np.testing.assert_array_equal(as_float32(tname, out.contents), expect)


UNARY_OPS = {"Exp": np.exp, "Sin": np.sin, "Abs": np.abs, "Negative": np.negative,
             "Sqrt": np.sqrt, "Tanh": np.tanh}


# unary_op_gpu_inplace: "v_" / "vn_" (from 2**16 elements), name op + in type + out type; slots
# 0 in, 1 out, 2 size. bfloat math runs in float and rounds once: within one bfloat step.
@pytest.mark.parametrize("op", list(UNARY_OPS))
@pytest.mark.parametrize("size", [1001, 70_001])
def test_mlx_unary_bfloat16(iface, op, size):
    load_mlx(iface, "unary.metal")
    x, xf = half_data("bfloat16", size, 56, scale=2.0)
    if op == "Sqrt":
        x = to_bf16(np.abs(xf))
        xf = from_bf16(x)
    n, threads, tg = elementwise_launch(size, 2)
    iface.set_function(f"v{n}_{op}bfloat16bfloat16")
    out = empty_buffer(iface, "bfloat16", size)
    iface.run_function(threads, [typed_buffer(iface, "bfloat16", x), out, np.int32(size)], threadgroup=tg)
    got = from_bf16(out.contents.view(np.uint16)).astype(np.float64)
    expect = UNARY_OPS[op](xf.astype(np.float64))
    if op in ("Abs", "Negative"):
        np.testing.assert_array_equal(got, expect)
    else:
        np.testing.assert_allclose(got, expect, rtol=2.0 ** -8, atol=1e-6)


# ternary_op_gpu_inplace for Select: "v" (all contiguous), "sv" (b scalar), "vs" (c scalar),
# "n" suffix from 2**16 elements (work per thread from b's type); name by b's type. Slots
# 0 condition (bool), 1 b, 2 c, 3 out, 4 size.
@pytest.mark.parametrize("tname", ["float16", "bfloat16"])
@pytest.mark.parametrize("kind,size", [("v", 1001), ("v", 70_001), ("sv", 999), ("vs", 70_003)])
def test_mlx_select_half_types(iface, tname, kind, size):
    load_mlx(iface, "ternary.metal")
    cond = np.random.default_rng(57).random(size) < 0.5
    b, _ = half_data(tname, 1 if kind == "sv" else size, 58)
    c, _ = half_data(tname, 1 if kind == "vs" else size, 59)
    n, threads, tg = elementwise_launch(size, 2)
    iface.set_function(f"{kind}{n}_Select{tname}")
    out = empty_buffer(iface, tname, size)
    iface.run_function(threads, [iface.array_to_buffer(cond), typed_buffer(iface, tname, b),
                                 typed_buffer(iface, tname, c), out, np.int32(size)], threadgroup=tg)
    expect = np.where(cond, np.broadcast_to(b, size), np.broadcast_to(c, size))
    np.testing.assert_array_equal(out.contents.view(np.uint16), expect.view(np.uint16))
