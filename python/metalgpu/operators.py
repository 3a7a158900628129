"""Element-wise operations on Buffers: ``sqrt cos sin tan exp log abs``, ``+ - * /`` and
``Buffer.astype``.

They run internal kernels on a private Interface per backend, so the user's loaded shader and
current function are never touched (the original package reloaded the user's shader after
every operator). Results are new Buffers owned by the input buffer's Interface.
"""

from __future__ import annotations

from typing import Any

from . import _core
from ._dtypes import metal_name

__all__ = ["sqrt", "cos", "sin", "tan", "exp", "log", "abs"]

_FLOAT_TYPES = {"float", "half", "bfloat", "double"}
_UNARY = {"sqrt": "sqrt", "cos": "cos", "sin": "sin", "tan": "tan", "exp": "exp", "log": "log",
          "abs": "abs"}
_BINARY = {"+": "a[i] + b[i]", "-": "a[i] - b[i]", "*": "a[i] * b[i]", "/": "a[i] / b[i]"}

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


def _kernel(params: str, body: str) -> str:
    # `#pragma metalgpu double`: buffers of float64 are ours, not Metal's (which has no double).
    return ("#pragma metalgpu double\n#include <metal_stdlib>\nusing namespace metal;\n"
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


def _binary(op: str, a, b):
    iface = _owner(a)
    t = a.metal_type
    if isinstance(b, _core.Buffer):
        _owner(b)
        if len(b) != len(a):
            raise ValueError(f"buffers differ in length: {len(a)} and {len(b)}")
        if b.metal_type != t:
            raise TypeError(f"buffers differ in dtype: {t} and {b.metal_type} (use .astype())")
        src = _kernel(f"device const {t}* a [[buffer(0)]], device const {t}* b [[buffer(1)]], "
                      f"device {t}* out [[buffer(2)]]", f"out[i] = {_BINARY[op]};")
    elif isinstance(b, (int, float)) and _scalar_of(t) == t:
        src = _kernel(f"device const {t}* a [[buffer(0)]], constant {t}& s [[buffer(1)]], "
                      f"device {t}* out [[buffer(2)]]", f"out[i] = {_BINARY[op].replace('b[i]', 's')};")
    else:
        return NotImplemented
    out = iface.create_buffer(len(a), t)
    _runner(iface.backend, src).run_function(len(a), [a, b, out])
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


def _install() -> None:
    B = _core.Buffer
    B.__add__ = lambda a, b: _binary("+", a, b)
    B.__sub__ = lambda a, b: _binary("-", a, b)
    B.__mul__ = lambda a, b: _binary("*", a, b)
    B.__truediv__ = lambda a, b: _binary("/", a, b)
    B.astype = astype


_install()
