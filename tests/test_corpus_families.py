"""Kernel families of the real Metal libraries (ggml and MLX, in ../shared/corpus) against numpy.

Each kernel is driven exactly as its library's host code drives it: ggml's argument structs
(their layout read from ggml-metal-impl.h), function constants, threadgroup counts and sizes
and threadgroup memory (ggml-metal-ops.cpp, ggml-metal-device.cpp); MLX's kernel names, grids,
threadgroups and arguments (mlx/backend/metal/*.cpp). The corpora are test data read in place;
nothing of theirs is copied into the project.

Grids given to run_function are in threads: a host's dispatch_threadgroups(n, tg) is the grid
n * tg with threadgroup tg.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from conftest import REPO_DIR

CORPUS = REPO_DIR.parent / "shared" / "corpus"
GGML_SRC = CORPUS / "ggml" / "src"
GGML_METAL = GGML_SRC / "ggml-metal" / "ggml-metal.metal"
GGML_IMPL = GGML_SRC / "ggml-metal" / "ggml-metal-impl.h"
MLX_ROOT = CORPUS / "mlx"
MLX_KERNELS = MLX_ROOT / "mlx" / "backend" / "metal" / "kernels"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not here")


@pytest.fixture
def iface(iface):
    # Off a Mac the metal backend is the test double, which compiles a whole large library at
    # load: minutes for ggml; the libraries' numbers are checked on cpu and cuda there.
    if iface.backend == "metal" and sys.platform != "darwin":
        pytest.skip("the Metal test double compiles whole libraries at load")
    return iface


@pytest.fixture
def no_cuda_check(monkeypatch):
    # The CUDA translation of MLX does not compile yet (complex.h's static_asserts need
    # constexpr half arithmetic, which the CUDA half class lacks): checked on cpu only for now.
    monkeypatch.delenv("METALGPU_CHECK_CUDA", raising=False)


def dispatch(iface, groups, tg, buffers, smem=None):
    """A host's dispatchThreadgroups(groups, tg): the grid in threads is groups * tg."""
    groups = tuple(groups) + (1,) * (3 - len(groups))
    tg = tuple(tg) + (1,) * (3 - len(tg))
    grid = tuple(int(g) * int(t) for g, t in zip(groups, tg))
    tgmem = None
    if smem:
        tgmem = smem if isinstance(smem, dict) else {0: int(smem)}
    iface.run_function(grid, buffers, threadgroup=tuple(int(t) for t in tg), threadgroup_memory=tgmem)


def rng(seed=0):
    return np.random.default_rng(seed)


# ====================================================================================== ggml

_C_TYPES = {"int32_t": "i4", "uint32_t": "u4", "int64_t": "i8", "uint64_t": "u8", "size_t": "u8",
            "int16_t": "i2", "uint16_t": "u2", "int": "i4", "float": "f4", "bool": "?",
            "uint8_t": "u1", "int8_t": "i1"}


def _ggml_kargs_dtypes():
    """numpy dtypes with the C layout of the `ggml_metal_kargs_*` structs of ggml-metal-impl.h."""
    text = re.sub(r"//[^\n]*", "", GGML_IMPL.read_text())
    out = {}
    for body, name in re.findall(r"typedef\s+struct\s*\{([^{}]*)\}\s*ggml_metal_kargs_(\w+)\s*;", text):
        fields = []
        for ctype, fname, count in re.findall(r"(\w+)\s+(\w+)\s*(?:\[(\d+)\])?\s*;", body):
            fields.append((fname, _C_TYPES[ctype], (int(count),)) if count else (fname, _C_TYPES[ctype]))
        out[name] = np.dtype(fields, align=True)
    return out


_KARGS = _ggml_kargs_dtypes() if GGML_IMPL.is_file() else {}


def kargs(name, **values):
    """The bytes of a `ggml_metal_kargs_<name>` with the given fields (the rest zero)."""
    a = np.zeros((), _KARGS[name])
    for k, v in values.items():
        a[k] = v
    return a.tobytes()


def ne_nb(shape, itemsize, blck=1, strides=None):
    """ggml's ne[4] and nb[4] of a tensor that numpy holds as (ne3, ne2, ne1, ne0)."""
    shape = (1,) * (4 - len(shape)) + tuple(shape)
    ne = list(reversed(shape))
    if strides is not None:
        strides = (0,) * (4 - len(strides)) + tuple(strides)
        nb = list(reversed(strides))
        return ne, nb
    nb = [itemsize, itemsize * ne[0] // blck]
    nb.append(nb[1] * ne[1])
    nb.append(nb[2] * ne[2])
    return ne, nb


def tensor_args(prefix, shape, itemsize, blck=1, strides=None):
    """{prefix}e0..3 / {prefix}b0..3 fields for a kargs struct (prefix "n0" gives ne00, nb00...)."""
    ne, nb = ne_nb(shape, itemsize, blck, strides)
    p = prefix[:-1] if prefix.endswith("_") else prefix
    out = {}
    for i in range(4):
        out[f"ne{p}{i}"] = ne[i]
        out[f"nb{p}{i}"] = nb[i]
    return out


def src0(shape, itemsize, blck=1, strides=None):
    ne, nb = ne_nb(shape, itemsize, blck, strides)
    return {**{f"ne0{i}": ne[i] for i in range(4)}, **{f"nb0{i}": nb[i] for i in range(4)}}


def src1(shape, itemsize, blck=1, strides=None):
    ne, nb = ne_nb(shape, itemsize, blck, strides)
    return {**{f"ne1{i}": ne[i] for i in range(4)}, **{f"nb1{i}": nb[i] for i in range(4)}}


def dst(shape, itemsize):
    ne, nb = ne_nb(shape, itemsize)
    return {**{f"ne{i}": ne[i] for i in range(4)}, **{f"nb{i}": nb[i] for i in range(4)}}


def only(fields, dtype_name):
    """Keep the fields the struct has (ggml structs carry subsets of ne/nb)."""
    names = _KARGS[dtype_name].names
    return {k: v for k, v in fields.items() if k in names}


def load_ggml(iface):
    iface.load_shader(str(GGML_METAL), include_dirs=[str(GGML_SRC), str(GGML_SRC / "ggml-metal")])


def max_tptg(iface):
    return iface.maxThreadsPerGroup()


# ggml-metal-impl.h function-constant bases
FC_FLASH_ATTN_EXT = 300
FC_FLASH_ATTN_EXT_VEC = 400
FC_FLASH_ATTN_EXT_VEC_REDUCE = 500
FC_MUL_MV = 600
FC_MUL_MM = 700
FC_ROPE = 800
FC_BIN = 1300
FC_SUM_ROWS = 1400

# ---------------------------------------------------------------- quantization (ggml-common.h)

QK = 32
Q4_0 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])   # block_q4_0: 18 bytes
Q8_0 = np.dtype([("d", "<f2"), ("qs", "i1", (32,))])   # block_q8_0: 34 bytes


def quantize_q4_0(x):
    """Rows of x (last axis a multiple of 32) as block_q4_0s, and what they dequantize to."""
    b = x.reshape(-1, QK).astype(np.float32)
    idx = np.argmax(np.abs(b), axis=1)
    mx = b[np.arange(len(b)), idx]
    d = mx / -8
    inv = np.where(d != 0, 1 / np.where(d != 0, d, 1), 0)
    q = np.clip(np.trunc(b * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    blocks = np.zeros(len(b), Q4_0)
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q[:, :16] | (q[:, 16:] << 4)
    deq = (q.astype(np.float32) - 8) * blocks["d"].astype(np.float32)[:, None]
    return blocks.reshape(x.shape[:-1] + (x.shape[-1] // QK,)), deq.reshape(x.shape)


def quantize_q8_0(x):
    b = x.reshape(-1, QK).astype(np.float32)
    amax = np.abs(b).max(axis=1)
    d = amax / 127
    inv = np.where(d != 0, 1 / np.where(d != 0, d, 1), 0)
    q = np.round(b * inv[:, None]).astype(np.int8)
    blocks = np.zeros(len(b), Q8_0)
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q
    deq = q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return blocks.reshape(x.shape[:-1] + (x.shape[-1] // QK,)), deq.reshape(x.shape)


def raw(iface, a):
    """A buffer holding the bytes of any numpy array (structured blocks included)."""
    return iface.array_to_buffer(np.frombuffer(np.ascontiguousarray(a).tobytes(), np.uint8))


# ---------------------------------------------------------------- ggml: add / mul (bin)

BIN_OPS = {"add": (0, np.add), "sub": (1, np.subtract), "mul": (2, np.multiply), "div": (3, np.divide)}


def run_ggml_bin(iface, op, a, bs, tname):
    """ggml_metal_op_bin: c = a op b[0] op b[1] ... (n_fuse = len(bs); the b's share one buffer,
    at offsets o1[i])."""
    op_num = BIN_OPS[op][0]
    b = bs[0]
    n_fuse = len(bs)
    is_c4 = a.shape[-1] % 4 == 0 and b.shape[-1] % 4 == 0
    is_cb = a.shape[-1] != b.shape[-1]
    nrows_b = int(np.prod(b.shape[:-1]))
    is_rb = nrows_b == 1 and a.size < 65536
    base = f"kernel_bin_fuse_{tname}_{tname}_{tname}" + ("_4" if is_c4 else "")
    iface.set_function(base, constants={FC_BIN + 0: op_num, FC_BIN + 1: n_fuse,
                                        FC_BIN + 2: is_rb, FC_BIN + 3: is_cb})
    isz = a.itemsize
    fields = {**src0(a.shape, isz), **src1(b.shape, isz), **dst(a.shape, isz), "offs": 0}
    fields["o1"] = [i * b.nbytes for i in range(n_fuse)] + [0] * (8 - n_fuse)
    ne00, ne10, ne0 = fields["ne00"], fields["ne10"], fields["ne0"]
    if is_c4:
        fields["ne00"], fields["ne10"], fields["ne0"] = ne00 // 4, ne10 // 4, ne0 // 4
    args = kargs("bin", **fields)
    out = iface.create_buffer(a.size, a.dtype)
    bufs = [args, iface.array_to_buffer(a), iface.array_to_buffer(np.concatenate([x.ravel() for x in bs])), out]
    if is_rb:
        nrows = a.size // a.shape[-1]
        dispatch(iface, (fields["ne0"], nrows, 1), (1, 1, 1), bufs)
    else:
        nth_max = min(256, max_tptg(iface))
        nth = 1
        while 2 * nth < fields["ne0"] and nth < nth_max:
            nth *= 2
        ne = ne_nb(a.shape, isz)[0]
        dispatch(iface, (ne[1], ne[2], ne[3]), (nth, 1, 1), bufs)
    return out.contents.reshape(a.shape)


@pytest.mark.parametrize("op,ashape,bshape,n_fuse,dtype", [
    ("add", (3, 5, 64), (3, 5, 64), 1, np.float32),     # same shape, float4 kernel
    ("mul", (2, 6, 64), (1, 1, 64), 1, np.float32),     # one row of b: the row-broadcast path
    ("add", (4, 7, 10), (1, 7, 10), 3, np.float32),     # three adds fused, b broadcast over ne2
    ("mul", (3, 9, 12), (1, 9, 3), 1, np.float32),      # b's rows shorter: column broadcast
    ("div", (2, 5, 20), (2, 1, 20), 1, np.float16),     # half, b broadcast over rows
])
def test_ggml_bin(iface, op, ashape, bshape, n_fuse, dtype):
    load_ggml(iface)
    r = rng(10)
    a = r.standard_normal(ashape).astype(dtype)
    bs = [(r.standard_normal(bshape) + (3 if op == "div" else 0)).astype(dtype) for _ in range(n_fuse)]
    got = run_ggml_bin(iface, op, a, bs, "f32" if dtype == np.float32 else "f16")
    fn = BIN_OPS[op][1]
    expect = a.astype(np.float32)
    for b in bs:
        reps = [x // y for x, y in zip(ashape, bshape)]
        expect = fn(expect, np.tile(b.astype(np.float32), reps))
    tol = 1e-6 if dtype == np.float32 else 4e-3
    np.testing.assert_allclose(got.astype(np.float32), expect, rtol=tol, atol=tol)


# ---------------------------------------------------------------- ggml: soft_max

@pytest.mark.parametrize("ne00,mask,max_bias", [(64, "f16", 0.0), (37, "f32", 0.0), (32, "f16", 8.0), (50, None, 0.0)])
def test_ggml_soft_max(iface, ne00, mask, max_bias):
    load_ggml(iface)
    r = rng(11)
    ne01, ne02, ne03 = 5, 4, 1                         # rows, heads
    x = r.standard_normal((ne03, ne02, ne01, ne00)).astype(np.float32)
    scale = 0.7
    m = None
    if mask:
        m = r.standard_normal((1, 1, ne01, ne00)).astype(np.float32)
        m[:, :, :, ::7] = -np.inf
        m = m.astype(np.float16 if mask == "f16" else np.float32)
    tsrc1 = mask or "f32"
    name = f"kernel_soft_max_{tsrc1}" + ("_4" if ne00 % 4 == 0 else "")
    iface.set_function(name)
    n_head = ne02
    n_head_log2 = 1 << int(np.floor(np.log2(n_head)))
    m0 = np.float32(2.0) ** (-max_bias / n_head_log2)
    m1 = np.float32(2.0) ** (-(max_bias / 2) / n_head_log2)
    mshape = m.shape if m is not None else x.shape
    fields = {**src0(x.shape, 4), **src1(mshape, m.itemsize if m is not None else 4), **dst(x.shape, 4),
              "scale": scale, "max_bias": max_bias, "m0": m0, "m1": m1, "n_head_log2": n_head_log2}
    args = kargs("soft_max", **only(fields, "soft_max"))
    nth = 32
    lim = ne00 // 4 if ne00 % 4 == 0 else ne00
    while nth < lim and nth * ne01 * ne02 * ne03 < 256:
        nth *= 2
    xb = iface.array_to_buffer(x)
    out = iface.create_buffer(x.size, np.float32)
    mb = iface.array_to_buffer(m) if m is not None else xb   # absent: src0 bound again
    dispatch(iface, (ne01, ne02, ne03), (nth, 1, 1), [args, xb, mb, xb, out], smem=32 * 4)
    logits = x.astype(np.float64) * scale
    if m is not None:
        slope = np.ones(ne02)
        if max_bias > 0:
            h = np.arange(ne02)
            slope = np.where(h < n_head_log2, float(m0) ** (h + 1), float(m1) ** (2 * (h - n_head_log2) + 1))
        logits = logits + slope[None, :, None, None] * m.astype(np.float64)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(out.contents.reshape(x.shape), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- ggml: norm, rms_norm

@pytest.mark.parametrize("kind,ne00,n_fuse", [("rms_norm", 128, 1), ("rms_norm", 50, 3), ("norm", 96, 1), ("norm", 33, 2)])
def test_ggml_norm(iface, kind, ne00, n_fuse):
    load_ggml(iface)
    r = rng(12)
    shape = (2, 3, ne00)
    x = (r.standard_normal(shape) * 3 + 1).astype(np.float32)
    eps = 1e-5
    w = r.standard_normal((1, 1, ne00)).astype(np.float32)      # the fused mul's src1 (one row)
    bias = r.standard_normal((3, ne00)).astype(np.float32)      # the fused add's src1 (3 rows)
    suffix = "_4" if ne00 % 4 == 0 else ""
    name = {1: f"kernel_{kind}_f32", 2: f"kernel_{kind}_mul_f32", 3: f"kernel_{kind}_mul_add_f32"}[n_fuse] + suffix
    iface.set_function(name)
    ne, nb = ne_nb(shape, 4)
    ne00_t = ne00 // 4 if ne00 % 4 == 0 else ne00
    nef = [[ne[1]] + [0, 0], [ne[2]] + [0, 0], [ne[3]] + [0, 0]]
    nbf = [[nb[1]] + [0, 0], [nb[2]] + [0, 0], [nb[3]] + [0, 0]]
    for j, f in enumerate([w, bias][: n_fuse - 1]):
        fne, fnb = ne_nb(f.shape, 4)
        for k in range(3):
            nef[k][j + 1], nbf[k][j + 1] = fne[k + 1], fnb[k + 1]
    args = kargs("norm", ne00=ne00, ne00_t=ne00_t, nb1=nb[1], nb2=nb[2], nb3=nb[3], eps=eps,
                 nef1=nef[0], nef2=nef[1], nef3=nef[2], nbf1=nbf[0], nbf2=nbf[1], nbf3=nbf[2])
    mx = max_tptg(iface)
    nth = 32
    while nth < ne00_t and nth < mx:
        nth *= 2
    nth = min(nth, mx, (ne00_t + 31) // 32 * 32)
    xb = iface.array_to_buffer(x)
    fb = [iface.array_to_buffer(w) if n_fuse > 1 else xb, iface.array_to_buffer(bias) if n_fuse > 2 else xb]
    out = iface.create_buffer(x.size, np.float32)
    dispatch(iface, (ne[1], ne[2], ne[3]), (nth, 1, 1), [args, xb, fb[0], fb[1], out], smem=32 * 4)
    xd = x.astype(np.float64)
    if kind == "norm":
        xd = xd - xd.mean(-1, keepdims=True)
    expect = xd / np.sqrt((xd * xd).mean(-1, keepdims=True) + eps)
    if n_fuse > 1:
        expect = expect * w
    if n_fuse > 2:
        expect = expect + bias
    np.testing.assert_allclose(out.contents.reshape(shape), expect, rtol=2e-5, atol=2e-5)


# ---------------------------------------------------------------- ggml: rope (norm mode)

@pytest.mark.parametrize("dtype,n_dims", [(np.float32, 64), (np.float16, 32)])
def test_ggml_rope_norm(iface, dtype, n_dims):
    load_ggml(iface)
    r = rng(13)
    head_dim, n_head, n_tok = 64, 3, 5
    x = r.standard_normal((1, n_tok, n_head, head_dim)).astype(dtype)   # ne = (64, 3, 5, 1)
    pos = np.array([0, 3, 7, 100, 1234], np.int32)
    freq_base, freq_scale, attn_factor = 10000.0, 1.0, 1.0
    tname = "f32" if dtype == np.float32 else "f16"
    iface.set_function(f"kernel_rope_norm_{tname}", constants={FC_ROPE + 0: False, FC_ROPE + 1: False})
    isz = x.itemsize
    fields = {**src0(x.shape, isz), **dst(x.shape, isz), "n_past": 0, "n_dims": n_dims, "n_offs": 0,
              "n_ctx_orig": 4096, "freq_base": freq_base, "freq_scale": freq_scale, "ext_factor": 0.0,
              "attn_factor": attn_factor, "beta_fast": 32.0, "beta_slow": 1.0, "src2": False, "inplace": False}
    args = kargs("rope", **only(fields, "rope"))
    nth = min(1024, head_dim)
    xb = iface.array_to_buffer(x)
    out = iface.create_buffer(x.size, dtype)
    dispatch(iface, (n_head, n_tok, 1), (nth, 1, 1), [args, xb, iface.array_to_buffer(pos), xb, out])
    xd = x.astype(np.float64)[0]                                   # (tok, head, dim)
    i = np.arange(0, n_dims, 2)
    theta = pos[:, None].astype(np.float64) * freq_base ** (-i / n_dims)[None, :]   # (tok, n_dims/2)
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    expect = xd.copy()
    x0, x1 = xd[..., 0:n_dims:2], xd[..., 1:n_dims:2]
    expect[..., 0:n_dims:2] = x0 * c - x1 * s
    expect[..., 1:n_dims:2] = x0 * s + x1 * c
    tol = 2e-4 if dtype == np.float32 else 4e-3
    np.testing.assert_allclose(out.contents.reshape(x.shape)[0].astype(np.float64), expect, rtol=tol, atol=tol)


# ---------------------------------------------------------------- ggml: get_rows

@pytest.mark.parametrize("tname", ["f32", "f16", "q4_0", "q8_0"])
def test_ggml_get_rows(iface, tname):
    load_ggml(iface)
    r = rng(14)
    ne00, ne01 = 128, 10
    table = r.standard_normal((ne01, ne00)).astype(np.float32)
    blck = 1
    if tname == "f32":
        data, expect_rows, isz = table, table, 4
    elif tname == "f16":
        data = table.astype(np.float16)
        expect_rows, isz = data.astype(np.float32), 2
    else:
        data, expect_rows = (quantize_q4_0 if tname == "q4_0" else quantize_q8_0)(table)
        isz, blck = data.dtype.itemsize, QK
    ids = np.array([[3, 0, 9, 3, 7]], np.int32)                   # ne10 = 5, ne11 = 1
    iface.set_function(f"kernel_get_rows_{tname}")
    _, nb0 = ne_nb((ne01, ne00), isz, blck)
    _, nb1 = ne_nb(ids.shape, 4)
    ne, nb = ne_nb((1, ids.shape[1], ne00), 4)
    quant = blck > 1
    ne00t = ne00 // 16 if quant else ne00
    args = kargs("get_rows", ne00t=ne00t, ne00=ne00, nb01=nb0[1], nb02=nb0[2], nb03=nb0[3],
                 ne10=ids.shape[1], nb10=nb1[0], nb11=nb1[1], nb12=nb1[2], nb1=nb[1], nb2=nb[2], nb3=nb[3])
    nth = min(ne00t, max_tptg(iface))
    nw0 = (ne00t + nth - 1) // nth
    out = iface.create_buffer(ids.size * ne00, np.float32)
    dispatch(iface, (nw0 * ids.shape[1], 1, 1), (nth, 1, 1), [args, raw(iface, data), iface.array_to_buffer(ids), out])
    np.testing.assert_array_equal(out.contents.reshape(-1, ne00), expect_rows[ids[0]])


# ---------------------------------------------------------------- ggml: cpy f32 -> f16

@pytest.mark.parametrize("transposed", [False, True])
def test_ggml_cpy_f32_f16(iface, transposed):
    load_ggml(iface)
    r = rng(15)
    base = r.standard_normal((3, 24, 20)).astype(np.float32)
    view = base.transpose(0, 2, 1) if transposed else base          # a non-contiguous src0
    iface.set_function("kernel_cpy_f32_f16")
    ne0, nb0 = ne_nb(view.shape, 4, strides=view.strides)
    ned, nbd = ne_nb(view.shape, 2)
    ne00, ne01, ne02, ne03 = ne0
    nk0 = ne00
    nth = min(nk0 * ne01, 256)
    nrptg = 1
    if nth > nk0:
        nrptg = (nth + nk0 - 1) // nk0
        nth = nk0
        if nrptg * nth > 256:
            nrptg -= 1
    nth = min(nth, nk0)
    args = kargs("cpy", nk0=nk0, **{f"ne0{i}": ne0[i] for i in range(4)}, **{f"nb0{i}": nb0[i] for i in range(4)},
                 **{f"ne{i}": ned[i] for i in range(4)}, **{f"nb{i}": nbd[i] for i in range(4)})
    nw0 = (nk0 + nth - 1) // nth if nrptg == 1 else 1
    out = iface.create_buffer(view.size, np.float16)
    dispatch(iface, ((nw0 * (ne01 + nrptg - 1)) // nrptg, ne02, ne03), (nth, nrptg, 1),
             [args, iface.array_to_buffer(base), out])
    np.testing.assert_array_equal(out.contents.reshape(view.shape), view.astype(np.float16))


# ---------------------------------------------------------------- ggml: sum_rows / mean

@pytest.mark.parametrize("ne00,op", [(200, 10), (37, 10), (64, 11)])
def test_ggml_sum_rows(iface, ne00, op):
    load_ggml(iface)
    r = rng(16)
    shape = (2, 3, ne00)
    x = r.standard_normal(shape).astype(np.float32)
    is_c4 = ne00 % 4 == 0
    iface.set_function("kernel_sum_rows_f32_f32" + ("_4" if is_c4 else ""), constants={FC_SUM_ROWS: op})
    dshape = (2, 3, 1)
    fields = {**src0(shape, 4), **dst(dshape, 4)}
    if is_c4:
        fields["ne00"] //= 4
        fields["ne0"] = max(fields["ne0"] // 4, 0)
    args = kargs("sum_rows", **fields)
    mx = max_tptg(iface)
    nth = 32
    while nth < fields["ne00"] and nth < mx:
        nth *= 2
    nth = min(nth, mx, fields["ne00"])
    out = iface.create_buffer(6, np.float32)
    smem = 32 * 4 * (4 if is_c4 else 1)
    dispatch(iface, (3, 2, 1), (nth, 1, 1), [args, iface.array_to_buffer(x), out], smem=smem)
    expect = x.astype(np.float64).sum(-1) / (ne00 if op == 11 else 1)
    np.testing.assert_allclose(out.contents.reshape(2, 3), expect, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- ggml: argsort

def run_ggml_argsort(iface, x, order):
    ne01 = x.shape[0]
    ne00 = x.shape[1]
    ne, nb = ne_nb(x.shape, 4)
    iface.set_function(f"kernel_argsort_f32_i32_{order}")
    mx = max_tptg(iface)
    nth = 1
    while nth < ne00 and 2 * nth <= mx:
        nth *= 2
    npr = (ne00 + nth - 1) // nth
    smem = (nth * 4 + 15) // 16 * 16
    # ggml puts tmp right after dst in its buffer; two buffers bind the same way
    bdst, btmp = iface.create_buffer(x.size, np.int32), iface.create_buffer(x.size, np.int32)
    if int(np.ceil(np.log(npr) / np.log(2))) % 2 == 1:
        bdst, btmp = btmp, bdst
    common = {**{f"ne0{i}": ne[i] for i in range(4)}, **{f"nb0{i}": nb[i] for i in range(4)},
              **{f"ne{i}": ne[i] for i in range(4)}}
    xb = iface.array_to_buffer(x)
    dispatch(iface, (npr * ne01, 1, 1), (nth, 1, 1), [kargs("argsort", **common, top_k=nth), xb, bdst], smem=smem)
    length = nth
    if length < ne00:
        iface.set_function(f"kernel_argsort_merge_f32_i32_{order}")
    while length < ne00:
        nm = (ne00 + 2 * length - 1) // (2 * length)
        nthm = min(512, max_tptg(iface))
        dispatch(iface, (nm * ne01, 1, 1), (nthm, 1, 1),
                 [kargs("argsort_merge", **common, top_k=ne00, len=length), xb, bdst, btmp])
        bdst, btmp = btmp, bdst
        length <<= 1
    return bdst.contents.reshape(x.shape)


@pytest.mark.parametrize("ne00,order", [(100, "asc"), (16, "desc"), (2500, "asc")])
def test_ggml_argsort(iface, ne00, order):
    load_ggml(iface)
    r = rng(17)
    x = r.permutation(3 * ne00).reshape(3, ne00).astype(np.float32)    # distinct values
    got = run_ggml_argsort(iface, x, order)
    expect = np.argsort(x if order == "asc" else -x, axis=1, kind="stable")
    np.testing.assert_array_equal(got, expect)
