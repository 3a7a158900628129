"""Element-wise operations on Buffers: ``sqrt cos sin tan exp log abs``, ``+ - * / **``
(with a Buffer or a number on either side), unary ``-`` and ``abs()``, and ``Buffer.astype``.

They run internal kernels on a private Interface per backend, so the user's loaded shader and
current function are never touched (the original package reloaded the user's shader after
every operator). Results are new Buffers owned by the input buffer's Interface.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._dtypes import metal_name

__all__ = ["sqrt", "cos", "sin", "tan", "exp", "log", "abs"]

_FLOAT_TYPES = {"float", "half", "bfloat", "double"}
_UNARY = {"sqrt": "sqrt", "cos": "cos", "sin": "sin", "tan": "tan", "exp": "exp", "log": "log",
          "abs": "abs"}
_BINARY = {"+": "x + y", "-": "x - y", "*": "x * y", "/": "x / y"}
_INT_TYPES = {"char", "uchar", "short", "ushort", "int", "uint", "long", "ulong"}

_runners: dict[tuple[str, str], Any] = {}


def _runner(backend: str, source: str):
    """An internal Interface with `source` loaded and its kernel `op` set."""
    key = (backend, source)
    iface = _runners.get(key)
    if iface is None:
        iface = _core.Interface(backend)
        iface._load_source(source, "<metalgpu.operators>", (), None)
        iface.set_function("op")
        _runners[key] = iface
    return iface


def _owner(buf) -> Any:
    if not isinstance(buf, _core.Buffer):
        raise TypeError(f"expected a metalgpu.Buffer; got {type(buf).__name__}")
    if buf.released:
        raise ValueError("the buffer was released; it can no longer be used")
    iface = buf.interface
    if iface is None:
        raise ValueError("the buffer's Interface was deleted; it can no longer be used")
    return iface


def _scalar_of(t: str) -> str:
    return t.rstrip("234")


def _kernel(params: str, body: str, helpers: str = "") -> str:
    # `#pragma metalgpu double`: buffers of float64 are ours, not Metal's (which has no double).
    return ("#pragma metalgpu double\n#include <metal_stdlib>\nusing namespace metal;\n" + helpers +
            f"kernel void op({params}, uint i [[thread_position_in_grid]]) {{ {body} }}\n")


def _unary(name: str, buf):
    iface = _owner(buf)
    t = buf.metal_type
    if name != "abs" and _scalar_of(t) not in _FLOAT_TYPES:
        raise TypeError(f"{name}() needs a floating-point buffer; got {t} (use .astype('float'))")
    src = _kernel(f"device const {t}* a [[buffer(0)]], device {t}* out [[buffer(1)]]",
                  f"out[i] = {_UNARY[name]}(a[i]);")
    out = iface.create_buffer(len(buf), t)
    _runner(iface.backend, src).run_function(len(buf), [buf, out])
    return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating, np.bool_))


def _helpers(op: str, t: str) -> str:
    """x ** y for integers (`ipow`): squaring in an unsigned type, so products wrap like numpy's
    where a signed one could overflow (undefined behaviour in C++). Floats (`fpow`): pow(), but
    a negative base to a whole power as numpy gives it (Metal's pow, like CUDA's fast powf, is
    undefined for a negative base)."""
    s = _scalar_of(t)
    if op != "**":
        return ""
    if s not in _INT_TYPES:
        return (f"static inline {t} fpow({t} x, {t} y) {{\n"
                f"  const {t} r = pow(abs(x), y);\n"
                f"  const auto negative_whole = select(x < {t}(0), y == trunc(y), x < {t}(0));\n"
                f"  return select(pow(x, y), select(r, -r, fmod(y, {t}(2)) != {t}(0)), negative_whole);\n}}\n")
    u = "ulong" if s in ("long", "ulong") else "uint"
    return (f"static inline {t} ipow({t} x, {t} y) {{\n  {u} r = 1, b = {u}(x);\n"
            f"  for ({u} e = {u}(y); e != 0; e >>= 1) {{ if (e & 1) r *= b; b *= b; }}\n"
            f"  return {t}(r);\n}}\n")


def _op_expr(op: str, t: str) -> str:
    if op != "**":
        return _BINARY[op]
    return "ipow(x, y)" if _scalar_of(t) in _INT_TYPES else "fpow(x, y)"


def _check_int_exponent(op: str, t: str, exponents) -> None:
    # numpy refuses negative integer powers of integers; a kernel could only return garbage.
    s = _scalar_of(t)
    if op == "**" and s in _INT_TYPES and not s.startswith("u") and (np.asarray(exponents) < 0).any():
        raise ValueError("integers to negative integer powers are not allowed (use .astype('float'))")


def _binary(op: str, a, b, reflected: bool = False):
    """a <op> b, or b <op> a when `reflected` (b a number): a new Buffer of a's dtype."""
    iface = _owner(a)
    t = a.metal_type
    if op == "**" and _scalar_of(t) != t and _scalar_of(t) in _INT_TYPES:
        raise TypeError(f"** on {t} buffers is not supported (integer vectors; use .astype('float{t[-1]}'))")
    if isinstance(b, _core.Buffer):
        _owner(b)
        if len(b) != len(a):
            raise ValueError(f"buffers differ in length: {len(a)} and {len(b)}")
        if b.metal_type != t:
            raise TypeError(f"buffers differ in dtype: {t} and {b.metal_type} (use .astype())")
        if op == "**":
            _check_int_exponent(op, t, b.readback())
        src = _kernel(f"device const {t}* a [[buffer(0)]], device const {t}* b [[buffer(1)]], "
                      f"device {t}* out [[buffer(2)]]",
                      f"const {t} x = a[i]; const {t} y = b[i]; out[i] = {_op_expr(op, t)};", _helpers(op, t))
    elif _is_number(b):  # a vector buffer takes the number in every lane, as numpy broadcasts
        st = _scalar_of(t)
        if st in _INT_TYPES and not isinstance(b, (int, np.integer, np.bool_)):
            # numpy would give floats; an int buffer cannot hold them, and truncating the
            # number first would be a silently different result.
            raise TypeError(f"an {t} buffer and the float {b!r}: convert the buffer first (.astype('float'))")
        if op == "**":
            _check_int_exponent(op, t, a.readback() if reflected else b)
        x, y = (f"{t}(s)", "a[i]") if reflected else ("a[i]", f"{t}(s)")
        src = _kernel(f"device const {t}* a [[buffer(0)]], constant {st}& s [[buffer(1)]], "
                      f"device {t}* out [[buffer(2)]]",
                      f"const {t} x = {x}; const {t} y = {y}; out[i] = {_op_expr(op, t)};", _helpers(op, t))
    else:
        return NotImplemented
    out = iface.create_buffer(len(a), t)
    _runner(iface.backend, src).run_function(len(a), [a, b, out])
    return out


def _negate(buf):
    """-buf: a new buffer (unsigned integers wrap as in numpy)."""
    iface = _owner(buf)
    t = buf.metal_type
    s = _scalar_of(t)
    if s == "bool":
        raise TypeError("the - operator is not supported on a bool buffer (numpy refuses it too)")
    if s in _INT_TYPES:  # in the unsigned type: -INT_MIN would overflow (undefined in C++)
        u = "ulong" if s in ("long", "ulong") else "uint"
        lanes = t[len(s):]
        body = f"out[i] = {t}({u}{lanes}(0) - {u}{lanes}(a[i]));"
    else:
        body = "out[i] = -a[i];"
    src = _kernel(f"device const {t}* a [[buffer(0)]], device {t}* out [[buffer(1)]]", body)
    out = iface.create_buffer(len(buf), t)
    _runner(iface.backend, src).run_function(len(buf), [buf, out])
    return out


def astype(buf, dtype):
    """A new buffer with every element converted to `dtype` (a real conversion, not a reinterpretation)."""
    iface = _owner(buf)
    t, u = buf.metal_type, metal_name(dtype)
    if t[-1:] in "234" and t[-1] != u[-1]:
        raise ValueError(f"cannot convert {t} to {u}: the lane counts differ")
    src = _kernel(f"device const {t}* a [[buffer(0)]], device {u}* out [[buffer(1)]]",
                  f"out[i] = static_cast<{u}>(a[i]);")
    out = iface.create_buffer(len(buf), u)
    _runner(iface.backend, src).run_function(len(buf), [buf, out])
    return out


def sqrt(buf):
    """Element-wise square root into a new buffer."""
    return _unary("sqrt", buf)


def cos(buf):
    """Element-wise cosine into a new buffer."""
    return _unary("cos", buf)


def sin(buf):
    """Element-wise sine into a new buffer."""
    return _unary("sin", buf)


def tan(buf):
    """Element-wise tangent into a new buffer."""
    return _unary("tan", buf)


def exp(buf):
    """Element-wise e**x into a new buffer."""
    return _unary("exp", buf)


def log(buf):
    """Element-wise natural logarithm into a new buffer."""
    return _unary("log", buf)


def abs(buf):  # noqa: A001 - the metalgpu package's name
    """Element-wise absolute value into a new buffer."""
    return _unary("abs", buf)


def _operator(op: str, reflected: bool):
    """Buffer.__add__ ... as methods of exactly (self, other), as the stubs declare them."""
    def method(self, other):
        return _binary(op, self, other, reflected)
    method.__doc__ = (f"other {op} self" if reflected else f"self {op} other") + \
        ", element by element, into a new Buffer of self's dtype (other: a Buffer of the same length and " \
        "dtype, or a number)."
    return method


def _astype_method(self, dtype):
    """A new buffer with every element converted to `dtype` (a real conversion, not a reinterpretation)."""
    return astype(self, dtype)


_UFUNC_OPERATORS = {np.add: "+", np.subtract: "-", np.multiply: "*", np.true_divide: "/", np.power: "**"}


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """numpy's hook: `np.float32(2) * buf` (a numpy number on the left) gives a Buffer, as
    `2 * buf` does; every other ufunc call (`np.sqrt(buf)`, an array operand, `out=`) is numpy's
    own on the buffers' contents, as it was before numpy asked us."""
    if method == "__call__" and not kwargs and len(inputs) == 2 and ufunc in _UFUNC_OPERATORS:
        a, b = inputs
        if isinstance(b, _core.Buffer) and _is_number(a) and not isinstance(a, _core.Buffer):
            return _binary(_UFUNC_OPERATORS[ufunc], b, a, reflected=True)
        if isinstance(a, _core.Buffer) and _is_number(b):
            return _binary(_UFUNC_OPERATORS[ufunc], a, b)

    def plain(x):
        return np.asarray(x) if isinstance(x, _core.Buffer) else x

    inputs = tuple(plain(x) for x in inputs)
    if "out" in kwargs:
        kwargs["out"] = tuple(plain(x) for x in kwargs["out"])
    return getattr(ufunc, method)(*inputs, **kwargs)


def _install() -> None:
    B = _core.Buffer
    for name, op in (("add", "+"), ("sub", "-"), ("mul", "*"), ("truediv", "/"), ("pow", "**")):
        setattr(B, f"__{name}__", _operator(op, False))
        setattr(B, f"__r{name}__", _operator(op, True))
    B.__array_ufunc__ = _array_ufunc
    B.__neg__ = _negate
    B.__abs__ = abs
    B.astype = _astype_method


_install()
