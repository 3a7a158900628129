"""Explicit transfers of Buffers and Textures: ``upload``, ``readback`` and ``copy_to``.

The core moves raw bytes (``_write``, ``_read_into``, ``_readback``, ``_copy_to``); this module
turns what users pass into those bytes. Two habits are served: numpy's (arrays converted to the
buffer's dtype, with values checked rather than wrapped) and compushady's (bytes-like data of any
size at a byte offset, readback into a given array, copies between buffers and textures).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from . import _core

_BYTES_LIKE = (bytes, bytearray, memoryview)


def _offset(offset: Any, where: str) -> int:
    try:
        n = operator.index(offset)
    except TypeError:
        raise TypeError(f"[{where}] offset must be an int (bytes); got {type(offset).__name__}") from None
    if isinstance(offset, bool) or n < 0:
        raise ValueError(f"[{where}] offset must be a non-negative int (bytes); got {offset!r}")
    return n


def _raw(data, where: str):
    """bytes-like data as bytes to write: a memoryview of any format counts its bytes."""
    if not isinstance(data, memoryview):
        return data
    if not data.c_contiguous:
        raise ValueError(f"[{where}] the memoryview must be C-contiguous (bytes(view) makes a copy)")
    return data.cast("B")


def _convert(data: Any, dtype: np.dtype, where: str, what: str) -> np.ndarray:
    """`data` as an array of `dtype`: numpy's same_kind casts, and integers of another
    signedness or width when every value fits (as a list of Python ints does). Else TypeError
    (or ValueError for values out of range) naming the target dtype."""
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError, OverflowError) as e:
        raise TypeError(f"[{where}] cannot read the data as an array for {what} of dtype {dtype}: {e}") from None
    if dtype.fields is not None:  # structured records: numpy's own field-by-field conversion
        try:
            return arr.astype(dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(f"[{where}] cannot convert {arr.dtype} data to {what}'s record dtype {dtype}: {e}") from None
    if arr.dtype == dtype:
        return arr
    if arr.dtype.kind in "biu" and dtype.kind in "iu":
        if arr.size and arr.dtype.kind != "b":
            lo, hi = arr.min(), arr.max()
            info = np.iinfo(dtype)
            if lo < info.min or hi > info.max:
                raise ValueError(f"[{where}] values {lo}..{hi} do not fit {what}'s dtype {dtype} "
                                 f"({info.min}..{info.max})")
        return arr.astype(dtype)
    if np.can_cast(arr.dtype, dtype, casting="same_kind"):
        return arr.astype(dtype)
    raise TypeError(f"[{where}] cannot store {arr.dtype} data in {what} of dtype {dtype} without losing "
                    f"values; convert it first (data.astype(np.{dtype.name}))")


def _lanes(buf) -> tuple[int, int]:
    """Lanes per element as the user writes them, and as stored (3-lane vectors take 4)."""
    t = buf.metal_type
    lanes = int(t[-1]) if t[-1] in "234" and buf.dtype.fields is None else 1
    return lanes, 4 if lanes == 3 else lanes


def buffer_upload(self, data: Any, offset: int | None = None) -> None:
    """Copies `data` into the buffer.

    numpy arrays and lists are converted to the buffer's dtype (numpy's same_kind casts;
    integers of another width or signedness when every value fits) and must hold the buffer's
    element count, unless `offset` (bytes) is given: then they are written from there and may
    be shorter. bytes, bytearray and memoryview are copied as raw bytes, any length that fits,
    at byte `offset` (default 0).
    """
    where = "Buffer.upload"
    start = 0 if offset is None else _offset(offset, where)
    if isinstance(data, _BYTES_LIKE):
        self._write(_raw(data, where), start)
        return
    if isinstance(data, (_core.Buffer, _core.Texture)):
        raise TypeError(f"[{where}] data is a {type(data).__name__}: copy device objects with other.copy_to(buf)")
    dtype = self.dtype
    arr = _convert(data, dtype, where, "the buffer")
    lanes, stored = _lanes(self)
    if arr.size % lanes:
        raise ValueError(f"[{where}] got {arr.size} values; a {self.metal_type} buffer takes a multiple of {lanes}")
    count = arr.size // lanes
    # Structured buffers are bytes presented as records: count them in records.
    holds = self.nbytes // dtype.itemsize if dtype.fields is not None else len(self)
    if offset is None and count != holds:
        raise ValueError(f"[{where}] got {arr.size} elements; the buffer holds {holds * lanes} "
                         f"(pass offset= in bytes to write a part, or bytes for raw data)")
    arr = arr.reshape(count, lanes) if lanes > 1 else arr.reshape(-1)
    if stored != lanes:  # float3 and the like are stored with a fourth, padding lane
        padded = np.zeros((count, stored), dtype)
        padded[:, :lanes] = arr
        arr = padded
    self._write(np.ascontiguousarray(arr), start)


def buffer_readback(self, out: Any = None, offset: int = 0):
    """A copy of the buffer as a new numpy array; or, given `out`, fills `out` from byte `offset`
    and returns it. `out` is a C-contiguous writable numpy array of the buffer's dtype (3-lane
    vectors as stored: 4 lanes), or a bytearray/memoryview (raw bytes)."""
    return _readback(self, out, offset, "Buffer.readback", "the buffer")


def texture_upload(self, data: Any, offset: int | None = None) -> None:
    """Copies `data` into the texture: arrays and lists converted to its dtype (as Buffer.upload)
    with one value per channel of every texel, unless `offset` (bytes) is given; bytes-like data
    raw, any length that fits, at byte `offset` (default 0)."""
    where = "Texture.upload"
    start = 0 if offset is None else _offset(offset, where)
    if isinstance(data, _BYTES_LIKE):
        self._write(_raw(data, where), start)
        return
    if isinstance(data, (_core.Buffer, _core.Texture)):
        raise TypeError(f"[{where}] data is a {type(data).__name__}: copy device objects with other.copy_to(tex)")
    arr = _convert(data, self.dtype, where, "the texture")
    want = int(np.prod(self.shape))
    if offset is None and arr.size != want:
        raise ValueError(f"[{where}] got {arr.size} elements; the texture holds {want} (shape {self.shape})")
    self._write(np.ascontiguousarray(arr.reshape(-1)), start)


def texture_readback(self, out: Any = None, offset: int = 0):
    """A copy of the texels as a new numpy array; or, given `out` (a C-contiguous writable numpy
    array of the texture's dtype, or a bytearray/memoryview), fills it from byte `offset`."""
    return _readback(self, out, offset, "Texture.readback", "the texture")


def _readback(self, out: Any, offset: Any, where: str, what: str):
    start = _offset(offset, where)
    if out is None:
        if start:
            raise ValueError(f"[{where}] offset= needs out= (the array to fill)")
        return self._readback()
    if isinstance(out, np.ndarray):
        if out.dtype != self.dtype:
            raise TypeError(f"[{where}] out has dtype {out.dtype}; {what} has dtype {self.dtype}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(f"[{where}] out must be a C-contiguous, writable array")
    self._read_into(out, start)
    return out


def copy_to(self, other) -> None:
    """Copies into `other`: a Buffer (same count and dtype) or a Texture (same type, size and
    format), or between the two kinds, raw bytes (texels packed row by row), the buffer holding
    at least the texture's nbytes."""
    self._copy_to(other)


def _install() -> None:
    B, T = _core.Buffer, _core.Texture
    # The stubs declare these as methods of the classes; mypy refuses assigning to a method.
    B.upload, B.readback, B.copy_to = buffer_upload, buffer_readback, copy_to  # type: ignore[method-assign]
    T.upload, T.readback, T.copy_to = texture_upload, texture_readback, copy_to  # type: ignore[method-assign]


_install()
