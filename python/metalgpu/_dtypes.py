"""Turning the dtype specs users pass (ctypes types, numpy dtypes, Metal names) into Metal names."""

from __future__ import annotations

import ctypes

import numpy as np


class DTypeError(TypeError, ValueError):
    """An unknown or unsupported dtype. Both a TypeError (as numpy raises) and a ValueError."""


_CTYPES = {
    ctypes.c_bool: "bool",
    ctypes.c_byte: "char",
    ctypes.c_ubyte: "uchar",
    ctypes.c_char: "char",
    ctypes.c_short: "short",
    ctypes.c_ushort: "ushort",
    ctypes.c_int: "int",
    ctypes.c_uint: "uint",
    ctypes.c_long: "long" if ctypes.sizeof(ctypes.c_long) == 8 else "int",
    ctypes.c_ulong: "ulong" if ctypes.sizeof(ctypes.c_ulong) == 8 else "uint",
    ctypes.c_longlong: "long",
    ctypes.c_ulonglong: "ulong",
    ctypes.c_float: "float",
    ctypes.c_double: "double",
    ctypes.c_int8: "char",
    ctypes.c_uint8: "uchar",
    ctypes.c_int16: "short",
    ctypes.c_uint16: "ushort",
    ctypes.c_int32: "int",
    ctypes.c_uint32: "uint",
    ctypes.c_int64: "long",
    ctypes.c_uint64: "ulong",
}

_NUMPY = {
    "b": "bool", "i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int",
    "u4": "uint", "i8": "long", "u8": "ulong", "f2": "half", "f4": "float", "f8": "double",
}

_METAL_SCALARS = {
    "bool", "char", "uchar", "short", "ushort", "int", "uint", "long", "ulong", "half",
    "bfloat", "float", "double",
}
_ALIASES = {"byte": "char", "ubyte": "uchar", "longlong": "long", "ulonglong": "ulong"}
# C and C++ spellings, as the original metalgpu package took them ("int64_t", "uint32_t",
# "unsigned int"): sizes as Metal has them (long is 64 bits).
_C_NAMES = {
    "int8_t": "char", "uint8_t": "uchar", "int16_t": "short", "uint16_t": "ushort", "int32_t": "int",
    "uint32_t": "uint", "int64_t": "long", "uint64_t": "ulong", "signed char": "char",
    "unsigned char": "uchar", "signed short": "short", "unsigned short": "ushort", "short int": "short",
    "unsigned short int": "ushort", "signed": "int", "unsigned": "uint", "signed int": "int",
    "unsigned int": "uint", "long int": "long", "unsigned long": "ulong", "unsigned long int": "ulong",
    "long long": "long", "long long int": "long", "unsigned long long": "ulong",
    "unsigned long long int": "ulong", "size_t": "ulong", "ptrdiff_t": "long", "float32_t": "float",
    "float64_t": "double", "float16_t": "half", "bfloat16_t": "bfloat", "bfloat16": "bfloat",
}


def metal_name(dtype) -> str:
    """The Metal spelling ("int", "float4", ...) of a ctypes type, numpy dtype or name."""
    if isinstance(dtype, str):
        name = " ".join(dtype.split())
        if name in _C_NAMES:
            return _C_NAMES[name]
        base, lanes = name, ""
        if name[-1:] in "234" and name[:-1] in _METAL_SCALARS | set(_ALIASES):
            base, lanes = name[:-1], name[-1]
        base = _ALIASES.get(base, base)
        if base in _METAL_SCALARS:
            return base + lanes
        try:  # numpy spellings: "float32", "int16", "f4" ...
            return _from_numpy(np.dtype(name), dtype)
        except TypeError:
            raise DTypeError(f"unknown dtype {dtype!r}: use a Metal type name such as 'int', "
                             f"'float', 'half', 'float4', a C name such as 'uint32_t', a ctypes type "
                             f"or a numpy dtype") from None
    if isinstance(dtype, type) and dtype in _CTYPES:
        return _CTYPES[dtype]
    if isinstance(dtype, type) and issubclass(dtype, ctypes._SimpleCData):
        raise DTypeError(f"unsupported ctypes type {dtype.__name__}")
    try:
        return _from_numpy(np.dtype(dtype), dtype)
    except TypeError:
        raise DTypeError(f"unsupported dtype {dtype!r}") from None


def _from_numpy(dt: np.dtype, original) -> str:
    key = "b" if dt.kind == "b" else f"{dt.kind}{dt.itemsize}"
    if key not in _NUMPY or dt.fields is not None or dt.subdtype is not None:
        raise DTypeError(f"unsupported dtype {original!r} (numpy {dt})")
    return _NUMPY[key]
