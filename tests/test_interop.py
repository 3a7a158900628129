"""Zero-copy interop: DLPack, __array_interface__, __cuda_array_interface__, Interface.wrap."""

from __future__ import annotations

import gc
import importlib.util
import mmap

import numpy as np
import pytest

import metalgpu as mg

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;
kernel void add_one(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] += 1.0f; }
"""


@pytest.fixture
def lib(iface):
    iface.load_shader_from_string(SOURCE)
    iface.set_function("add_one")
    return iface


def _host_visible(buf) -> bool:
    return buf.__dlpack_device__()[0] == 1  # kDLCPU


def test_dlpack_device_names_the_backend(lib):
    buf = lib.create_buffer(8, "float")
    kind, index = buf.__dlpack_device__()
    assert kind == (2 if lib.backend == "cuda" else 1)
    assert index == lib.device.index


def test_numpy_from_dlpack_shares_memory(lib):
    buf = lib.array_to_buffer(np.arange(16, dtype=np.float32))
    if not _host_visible(buf):
        pytest.skip("device memory: numpy cannot import it")
    view = np.from_dlpack(buf)
    assert np.shares_memory(view, buf.contents)
    lib.run_function(16, [buf])
    np.testing.assert_array_equal(view, np.arange(16) + 1)


def test_dlpack_view_outlives_release(lib):
    buf = lib.array_to_buffer(np.arange(8, dtype=np.float32))
    if not _host_visible(buf):
        pytest.skip("device memory: numpy cannot import it")
    view = np.from_dlpack(buf)
    buf.release()
    gc.collect()
    np.testing.assert_array_equal(view, np.arange(8))  # memory stays alive with the view


def test_dlpack_vectors_and_dtypes(lib):
    for dtype, np_dtype, shape in (("float4", np.float32, (5, 4)), ("int", np.int32, (5,)),
                                   ("half", np.float16, (5,)), ("uchar", np.uint8, (5,))):
        buf = lib.create_buffer(5, dtype)
        if not _host_visible(buf):
            pytest.skip("device memory")
        arr = np.from_dlpack(buf)
        assert arr.dtype == np_dtype and arr.shape == shape


def test_array_interface(lib):
    buf = lib.array_to_buffer(np.arange(6, dtype=np.int32))
    if lib.backend == "cuda":
        pass  # shared buffers are host-visible on cuda too (the pinned mirror)
    arr = np.asarray(buf)
    assert np.shares_memory(arr, buf.contents)
    info = buf.__array_interface__
    assert info["typestr"] == "<i4" and info["shape"] == (6,) and info["version"] == 3


def test_array_interface_keeps_memory_alive(lib):
    buf = lib.array_to_buffer(np.arange(6, dtype=np.float32))
    arr = np.array(memoryview(buf), copy=False)
    buf.release()
    gc.collect()
    np.testing.assert_array_equal(arr, np.arange(6))


def _page_aligned(count: int, dtype) -> np.ndarray:
    """A numpy array of `count` items starting on a page boundary (Metal's rule for wrap)."""
    nbytes = count * np.dtype(dtype).itemsize
    raw = np.zeros(nbytes + mmap.PAGESIZE, dtype=np.uint8)
    start = (-raw.ctypes.data) % mmap.PAGESIZE
    return raw[start:start + nbytes].view(dtype)


def test_wrap_without_copy(iface):
    if iface.backend == "cuda":
        with pytest.raises(ValueError, match="array_to_buffer"):
            iface.wrap(np.zeros(4, dtype=np.float32))
        return
    iface.load_shader_from_string(SOURCE)
    iface.set_function("add_one")
    count = 2 * mmap.PAGESIZE // 4  # whole pages, as Metal requires
    data = _page_aligned(count, np.float32)
    data[:] = np.arange(count)
    buf = iface.wrap(data)
    assert np.shares_memory(buf.contents, data)
    iface.run_function(count, [buf])
    np.testing.assert_array_equal(data, np.arange(count) + 1)


def test_wrap_on_metal_needs_whole_pages(iface):
    if iface.backend != "metal":
        pytest.skip("Metal's page rule")
    with pytest.raises(ValueError, match="page"):
        iface.wrap(_page_aligned(100, np.float32))  # aligned, but not a whole page
    with pytest.raises(ValueError, match="page"):
        iface.wrap(_page_aligned(mmap.PAGESIZE // 4 + 1, np.float32)[1:])  # a page, but not aligned


def test_wrap_keeps_the_array_alive(iface):
    if iface.backend == "cuda":
        pytest.skip("wrap needs host-addressable memory")
    data = _page_aligned(mmap.PAGESIZE // 4, np.float32)
    data[:] = 3.0
    buf = iface.wrap(data)
    del data  # nothing else holds the array now
    gc.collect()
    np.testing.assert_array_equal(buf.contents, 3.0)


def test_wrap_refuses_what_it_cannot_alias(iface):
    if iface.backend == "cuda":
        pytest.skip("wrap needs host-addressable memory")
    with pytest.raises(ValueError, match="contiguous"):
        iface.wrap(np.zeros((4, 4), dtype=np.float32)[:, 1])
    ro = np.zeros(4, dtype=np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        iface.wrap(ro)
    with pytest.raises(TypeError):
        iface.wrap([1, 2, 3])


def test_cuda_array_interface(lib):
    buf = lib.create_buffer(8, "float")
    if lib.backend != "cuda":
        assert not hasattr(buf, "__cuda_array_interface__")
        return
    cai = buf.__cuda_array_interface__
    assert cai["shape"] == (8,) and cai["typestr"] == "<f4" and cai["version"] == 3
    assert isinstance(cai["data"][0], int) and cai["data"][0] != 0


@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy is not installed")
def test_cupy_shares_device_memory(lib):
    if lib.backend != "cuda":
        pytest.skip("cuda buffers only")
    import cupy as cp

    buf = lib.array_to_buffer(np.arange(64, dtype=np.float32))
    d = cp.asarray(buf)  # through __cuda_array_interface__, no copy
    d *= 2  # CuPy writes the device copy
    cp.cuda.runtime.deviceSynchronize()
    lib.run_function(64, [buf])
    np.testing.assert_array_equal(buf.readback(), np.arange(64) * 2 + 1)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_torch_from_dlpack(lib):
    import torch

    buf = lib.array_to_buffer(np.arange(16, dtype=np.float32))
    t = torch.from_dlpack(buf)
    assert t.device.type == ("cuda" if lib.backend == "cuda" else "cpu")
    assert t.cpu().numpy().tolist() == list(range(16))
