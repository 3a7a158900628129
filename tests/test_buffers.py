"""Buffers: dtypes, zero-copy views, the buffer protocol, lifetime, transfers, operators."""

from __future__ import annotations

import ctypes
import gc

import numpy as np
import pytest

import metalgpu as mg

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

kernel void affine(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = x[i] * 2.0f + 1.0f;
}

kernel void copy_scaled(device const float* src [[buffer(0)]], device float* dst [[buffer(1)]],
                        uint i [[thread_position_in_grid]]) {
    dst[i] = src[i] * 3.0f;
}
"""


@pytest.fixture(scope="module")
def lib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(SOURCE)
    return iface


# ----------------------------------------------------------------------------------- dtypes

# (aliases such as c_int32 are the same classes as these on common platforms)
CTYPES = list(
    dict.fromkeys(
        [
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_float,
            ctypes.c_double,
            ctypes.c_short,
            ctypes.c_ushort,
            ctypes.c_byte,
            ctypes.c_ubyte,
            ctypes.c_bool,
            ctypes.c_long,
            ctypes.c_ulong,
            ctypes.c_longlong,
            ctypes.c_ulonglong,
            ctypes.c_int8,
            ctypes.c_uint16,
            ctypes.c_int32,
            ctypes.c_int64,
            ctypes.c_uint64,
        ]
    )
)


@pytest.mark.parametrize("ctype", CTYPES, ids=[c.__name__ for c in CTYPES])
def test_create_buffer_from_ctypes(iface, ctype):
    buf = iface.create_buffer(10, ctype)
    expected = np.dtype(ctype)
    assert isinstance(buf.dtype, np.dtype)
    assert buf.dtype == expected
    assert buf.contents.dtype == expected
    assert buf.contents.shape == (10,)
    assert buf.nbytes == 10 * expected.itemsize


STRING_DTYPES = {
    "int": np.int32,
    "uint": np.uint32,
    "short": np.int16,
    "ushort": np.uint16,
    "char": np.int8,
    "uchar": np.uint8,
    "long": np.int64,
    "ulong": np.uint64,
    "float": np.float32,
    "half": np.float16,
    "double": np.float64,
    "bool": np.bool_,
    "longlong": np.int64,
    "ulonglong": np.uint64,
    "byte": np.int8,
    "ubyte": np.uint8,
}


@pytest.mark.parametrize(("name", "expected"), sorted(STRING_DTYPES.items()))
def test_create_buffer_from_type_names(iface, name, expected):
    buf = iface.create_buffer(7, name)
    assert isinstance(buf.dtype, np.dtype)
    assert buf.dtype == np.dtype(expected)
    assert buf.contents.dtype == np.dtype(expected)
    assert buf.contents.shape == (7,)
    assert buf.nbytes == 7 * np.dtype(expected).itemsize


@pytest.mark.parametrize(
    "dtype",
    [np.float32, np.dtype("int16"), np.dtype(np.uint8), np.float64, np.dtype("<i4")],
    ids=["np.float32", "dtype-int16", "dtype-uint8", "np.float64", "dtype-<i4"],
)
def test_create_buffer_from_numpy_dtypes(iface, dtype):
    buf = iface.create_buffer(12, dtype)
    assert buf.dtype == np.dtype(dtype)
    assert buf.contents.dtype == np.dtype(dtype)
    assert buf.nbytes == 12 * np.dtype(dtype).itemsize


@pytest.mark.parametrize(
    ("name", "scalar", "width"),
    [
        ("float4", np.float32, 4),
        ("float2", np.float32, 2),
        ("int2", np.int32, 2),
        ("int4", np.int32, 4),
        ("uint2", np.uint32, 2),
        ("uint4", np.uint32, 4),
    ],
)
def test_create_buffer_of_vectors(iface, name, scalar, width):
    buf = iface.create_buffer(9, name)
    assert buf.count == 9 == len(buf)
    assert buf.contents.shape == (9, width)
    assert buf.contents.dtype == np.dtype(scalar)
    assert buf.nbytes == 9 * width * np.dtype(scalar).itemsize
    buf.contents[:] = np.arange(9 * width).reshape(9, width)
    assert buf.contents[8, width - 1] == 9 * width - 1


def test_count_len_nbytes_interface(iface):
    buf = iface.create_buffer(123, "double")
    assert buf.count == 123
    assert len(buf) == 123
    assert buf.nbytes == 123 * 8
    assert isinstance(buf.interface, mg.Interface)
    assert buf.interface.backend == iface.backend


# ------------------------------------------------------------------------ zero-copy .contents


def test_contents_aliases_the_buffer(lib):
    buf = lib.create_buffer(1000, "float")
    a = buf.contents
    assert isinstance(a, np.ndarray)
    assert a.flags.writeable
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    a[:] = x
    lib.run_function(1000, [buf], function_name="affine")
    np.testing.assert_allclose(a, x * 2 + 1, rtol=1e-6)  # the kernel's writes, seen through `a`
    np.testing.assert_array_equal(buf.contents, a)
    assert np.shares_memory(buf.contents, buf.contents)
    assert np.shares_memory(a, buf.contents)


def test_output_view_taken_before_dispatch_sees_kernel_writes(lib):
    src = lib.create_buffer(64, "float")
    dst = lib.create_buffer(64, "float")
    src_view, dst_view = src.contents, dst.contents
    src_view[:] = np.arange(64)
    dst_view[:] = -1
    lib.run_function(64, [src, dst], function_name="copy_scaled")
    np.testing.assert_array_equal(dst_view, np.arange(64) * 3)
    # a second round through the same views
    src_view[:] = 1
    lib.run_function(64, [src, dst], function_name="copy_scaled")
    np.testing.assert_array_equal(dst_view, 3)


def test_memoryview_sees_the_same_memory(lib):
    buf = lib.create_buffer(16, "float")
    mv = memoryview(buf)
    assert mv.nbytes == buf.nbytes
    assert not mv.readonly
    data = np.linspace(-1, 1, 16, dtype=np.float32)
    mv.cast("B")[:] = data.tobytes()
    np.testing.assert_array_equal(buf.contents, data)
    buf.contents[3] = 42.0
    assert np.frombuffer(mv.cast("B"), dtype=np.float32)[3] == 42.0
    lib.run_function(16, [buf], function_name="affine")
    np.testing.assert_array_equal(np.frombuffer(mv.cast("B"), dtype=np.float32), buf.contents)


# --------------------------------------------------------------------------------- lifetime


def test_release_then_contents_raises_but_old_view_stays_valid(iface):
    buf = iface.create_buffer(256, "int")
    view = buf.contents
    view[:] = np.arange(256)
    mv = memoryview(buf)
    buf.release()
    with pytest.raises(ValueError):
        _ = buf.contents
    buf.release()  # idempotent
    gc.collect()
    np.testing.assert_array_equal(view, np.arange(256))  # memory is kept alive by the view
    assert np.frombuffer(mv.cast("B"), dtype=np.int32)[255] == 255
    view[0] = 7  # still writable memory, not freed
    assert view[0] == 7


def test_deleting_the_interface_invalidates_buffers_but_not_views(backend):
    local = mg.Interface(backend=backend)
    local.load_shader_from_string(SOURCE)
    buf = local.create_buffer(100, "float")
    view = buf.contents
    view[:] = np.arange(100)
    local.run_function(100, [buf], function_name="affine")
    del local
    gc.collect()
    with pytest.raises(ValueError):
        _ = buf.contents
    np.testing.assert_array_equal(view, np.arange(100) * 2 + 1)
    view[:] = 0  # the memory is still there and writable
    assert int(view.sum()) == 0


def test_release_every_buffer_of_many(iface):
    bufs = [iface.create_buffer(1000, "float") for _ in range(50)]
    views = [b.contents for b in bufs]
    for i, v in enumerate(views):
        v[:] = i
    for b in bufs:
        b.release()
    del bufs
    gc.collect()
    assert [int(v[999]) for v in views] == list(range(50))


# ------------------------------------------------------------------------- array_to_buffer


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint8, np.int16, np.uint32])
def test_array_to_buffer_keeps_dtype_and_copies(iface, dtype):
    src = (np.arange(40) % 17).astype(dtype)
    buf = iface.array_to_buffer(src)
    assert buf.dtype == np.dtype(dtype)
    assert buf.count == 40
    np.testing.assert_array_equal(buf.contents, src)
    assert not np.shares_memory(buf.contents, src)
    src[:] = 0  # changing the source afterwards leaves the buffer alone
    np.testing.assert_array_equal(buf.contents, (np.arange(40) % 17).astype(dtype))
    buf.contents[0] = 5  # and writing the buffer leaves the source alone
    assert src[0] == 0


def test_array_to_buffer_flattens_nd(iface):
    src = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    buf = iface.array_to_buffer(src)
    assert buf.count == 24
    assert buf.contents.shape == (24,)
    np.testing.assert_array_equal(buf.contents, src.ravel())


def test_array_to_buffer_non_contiguous(iface):
    base = np.arange(40, dtype=np.int32).reshape(8, 5)
    src = base[:, ::2].T  # non-contiguous view
    buf = iface.array_to_buffer(src)
    np.testing.assert_array_equal(buf.contents, src.ravel())


def test_array_to_buffer_from_lists(iface):
    ints = iface.array_to_buffer([1, 2, 3, 40])
    np.testing.assert_array_equal(ints.contents, [1, 2, 3, 40])
    floats = iface.array_to_buffer([0.5, -1.25, 3.0])
    np.testing.assert_allclose(floats.contents, [0.5, -1.25, 3.0])
    assert floats.contents.dtype.kind == "f"


def test_array_to_buffer_usable_by_kernels(lib):
    x = np.random.default_rng(1).standard_normal(500).astype(np.float32)
    buf = lib.array_to_buffer(x)
    lib.run_function(500, [buf], function_name="affine")
    np.testing.assert_allclose(buf.contents, x * 2 + 1, rtol=1e-6)
    np.testing.assert_allclose(x, np.random.default_rng(1).standard_normal(500).astype(np.float32))


# ------------------------------------------------------------------- explicit transfers


def test_upload_and_readback(lib):
    buf = lib.create_buffer(100, "float")
    data = np.random.default_rng(2).standard_normal(100).astype(np.float32)
    buf.upload(data)
    np.testing.assert_array_equal(buf.contents, data)
    lib.run_function(100, [buf], function_name="affine")
    back = buf.readback()
    assert isinstance(back, np.ndarray)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, data * 2 + 1, rtol=1e-6)
    back[:] = 0  # a copy: the buffer is unchanged
    np.testing.assert_allclose(buf.contents, data * 2 + 1, rtol=1e-6)


def test_copy_to(lib):
    a = lib.array_to_buffer(np.arange(64, dtype=np.float32))
    b = lib.create_buffer(64, "float")
    a.copy_to(b)
    np.testing.assert_array_equal(b.contents, np.arange(64))
    lib.run_function(64, [b], function_name="affine")
    np.testing.assert_array_equal(a.contents, np.arange(64))  # independent memory
    np.testing.assert_array_equal(b.contents, np.arange(64) * 2 + 1)


def test_private_storage_works_or_is_not_implemented(lib):
    try:
        buf = lib.create_buffer(32, "float", storage="private")
    except NotImplementedError:
        return
    assert buf.count == 32
    assert buf.nbytes == 128
    data = np.arange(32, dtype=np.float32)
    buf.upload(data)
    lib.run_function(32, [buf], function_name="affine")
    np.testing.assert_array_equal(buf.readback(), data * 2 + 1)
    buf.release()


def test_unknown_storage_mode_is_rejected(iface):
    with pytest.raises(ValueError):
        iface.create_buffer(4, "float", storage="managed-by-elves")


# -------------------------------------------------------------------------------- operators

UNARY_OPS = {
    "sqrt": np.sqrt,
    "cos": np.cos,
    "sin": np.sin,
    "tan": np.tan,
    "exp": np.exp,
    "log": np.log,
    "abs": np.abs,
}


@pytest.mark.parametrize("name", sorted(UNARY_OPS))
def test_operator_functions(iface, name):
    rng = np.random.default_rng(3)
    if name in ("sqrt", "log"):
        x = rng.uniform(0.1, 10.0, 200).astype(np.float32)
    elif name == "tan":
        x = rng.uniform(-1.2, 1.2, 200).astype(np.float32)
    else:
        x = rng.uniform(-4.0, 4.0, 200).astype(np.float32)
    src = iface.array_to_buffer(x)
    out = getattr(mg.operators, name)(src)
    assert isinstance(out, type(src))
    assert out.count == 200
    np.testing.assert_allclose(out.contents, UNARY_OPS[name](x), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(src.contents, x)  # input untouched


@pytest.mark.parametrize(
    ("symbol", "fn"),
    [("+", np.add), ("-", np.subtract), ("*", np.multiply), ("/", np.divide)],
    ids=["add", "sub", "mul", "div"],
)
def test_buffer_arithmetic(iface, symbol, fn):
    rng = np.random.default_rng(4)
    x = rng.uniform(-5, 5, 300).astype(np.float32)
    y = rng.uniform(0.5, 5, 300).astype(np.float32)
    a, b = iface.array_to_buffer(x), iface.array_to_buffer(y)
    out = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b}[symbol]()
    assert isinstance(out, type(a))
    np.testing.assert_allclose(out.contents, fn(x, y), rtol=1e-5, atol=1e-6)


def test_astype(iface):
    x = np.array([0.0, 1.9, 2.5, 100.25, 7.0], dtype=np.float32)
    buf = iface.array_to_buffer(x)
    as_int = buf.astype("int")
    assert as_int.dtype == np.int32
    np.testing.assert_array_equal(as_int.contents, [0, 1, 2, 100, 7])
    as_double = buf.astype(np.float64)
    assert as_double.dtype == np.float64
    np.testing.assert_array_equal(as_double.contents, x.astype(np.float64))
