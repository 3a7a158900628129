"""metalgpu: run Metal Shading Language compute kernels on Metal, NVIDIA GPUs and any CPU.

Buffers are shared with numpy without copies: ``buf.contents`` is a numpy view of the memory
the kernels see.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import numpy as np


def _nvrtc_dirs() -> None:
    """Tell the core where the NVRTC wheels (`pip install metalgpu[cuda]`) keep libnvrtc."""
    import glob
    import importlib.util

    if os.environ.get("METALGPU_NVRTC_DIRS"):
        return
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    found = []
    for root in spec.submodule_search_locations:
        for lib in sorted(glob.glob(os.path.join(root, "*", "lib", "libnvrtc.so*")), reverse=True):
            folder = os.path.dirname(lib)
            if folder not in found:
                found.append(folder)
    if found:
        os.environ["METALGPU_NVRTC_DIRS"] = os.pathsep.join(found)


_nvrtc_dirs()

from ._compiler import use_ziglang_if_no_compiler  # noqa: E402

use_ziglang_if_no_compiler()

from . import _core, _transfers, operators  # noqa: E402, F401 - _transfers installs Buffer.upload ...
from ._core import Buffer, CompileError, DeviceInfo, KernelFault, MetalSize, Run, Sampler, Texture  # noqa: E402
from ._dtypes import DTypeError, metal_name  # noqa: E402

# The original metalgpu package's top-level operators: mg.sqrt(buf) ...
from .operators import abs, cos, exp, log, sin, sqrt, tan  # noqa: E402, A004

__version__: str = _core.__version__

__all__ = [
    "Buffer", "CompileError", "DeviceInfo", "DTypeError", "Interface", "KernelFault", "MetalSize", "Run",
    "Sampler", "ShaderNotFoundError", "Texture", "devices", "run_kernel", "translate", "__version__",
    "abs", "cos", "exp", "log", "sin", "sqrt", "tan",
]


class ShaderNotFoundError(FileNotFoundError, ValueError):
    """A shader file that does not exist (both a FileNotFoundError and a ValueError)."""


def _looks_like_a_name(text: str) -> bool:
    """True for a file or kernel name ("matmul", "good.metal", "shaders/k.metal") given where
    MSL source was expected: one word, without the characters every kernel's source has."""
    t = text.strip()
    if not t or any(c.isspace() for c in t) or t.startswith(("//", "/*")):
        return False
    return not any(c in t for c in '{};()#<>"[]')


def devices() -> list[DeviceInfo]:
    """Every usable device, all backends, in the default order (metal > cuda > cpu)."""
    return list(_core.devices())


def translate(source: str, function: str, target: str = "cpu", constants: dict | None = None) -> str:
    """The C++ (target="cpu") or CUDA C++ (target="cuda") generated for `function`."""
    return _core.translate(source, function, target, constants)


class Interface(_core.Interface):
    """One device, its loaded shader library, current function, and buffers.

    ``backend=None`` takes ``$METALGPU_BACKEND``, else the first of metal > cuda > cpu.
    """

    def load_shader(self, path: str | os.PathLike, *, include_dirs=(), defines: dict | None = None) -> None:
        """Compiles the .metal file at `path`; raises CompileError on shader errors."""
        path = os.fspath(path)
        try:
            # Bytes, not text: a .metal file may hold bytes that are not UTF-8 (a Latin-1 comment),
            # which Apple's compiler accepts; the translator reads them as they are.
            with open(path, "rb") as f:
                source = f.read()
        except FileNotFoundError:
            raise ShaderNotFoundError(2, f"shader file not found: {path!r}", path) from None
        except IsADirectoryError:
            raise ShaderNotFoundError(21, f"shader path is a directory: {path!r}", path) from None
        self._load_source(source, path, include_dirs, defines)

    def load_shader_from_string(self, source: str, *, include_dirs=(), defines: dict | None = None) -> None:
        """Compiles MSL source text; includes resolve against the working directory and include_dirs."""
        if not isinstance(source, str):
            raise TypeError(f"source must be a str; got {type(source).__name__}")
        if _looks_like_a_name(source):
            raise ValueError(f"load_shader_from_string: {source.strip()!r} looks like a file or kernel name, not MSL "
                             f"source: use load_shader(path) for a .metal file")
        self._load_source(source, "<string>", include_dirs, defines)

    load_shader_from_str = load_shader_from_string

    def create_buffer(self, count: int, dtype: Any = "float", *, storage: str = "shared") -> Buffer:
        """A zero-filled buffer of `count` elements of `dtype` (ctypes type, numpy dtype or Metal name)."""
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise TypeError(f"count must be an int; got {type(count).__name__}")
        return self._create_buffer(int(count), metal_name(dtype), storage)

    def array_to_buffer(self, array: Any, *, storage: str = "shared") -> Buffer:
        """A new buffer holding a copy of `array` (list or numpy array; n-d arrays are flattened)."""
        arr = np.asarray(array)
        if not isinstance(array, np.ndarray):
            # Python numbers become Metal's default types: float and (when it fits) int.
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            elif arr.dtype == np.int64 and arr.size and -2**31 <= arr.min() and arr.max() < 2**31:
                arr = arr.astype(np.int32)
        if arr.size == 0:
            raise ValueError("array_to_buffer: the array is empty")
        if arr.dtype.fields is not None:
            # Structured records (Metal structs): raw bytes, presented with the record dtype.
            buf = self._create_buffer(arr.nbytes, "uchar", storage)
            buf._set_view_dtype(arr.dtype)
            buf.upload(arr.reshape(-1))
            return buf
        buf = self.create_buffer(arr.size, arr.dtype, storage=storage)
        buf.upload(arr.reshape(-1))
        return buf

    def wrap(self, array: np.ndarray) -> Buffer:
        """A Buffer over `array`'s own memory, without a copy (cpu and metal backends; the array
        must be C-contiguous and writable, and on metal start on a page boundary and hold a whole
        number of pages). The Buffer keeps the array alive."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"wrap() takes a numpy array; got {type(array).__name__}")
        return self._wrap(array.reshape(-1) if array.ndim != 1 else array, metal_name(array.dtype))

    def run_function(self, grid, buffers, function_name=None, wait_for_completion=True, *, threadgroup=None,
                     threadgroup_memory=None, textures=None, samplers=None) -> Run:
        """Dispatches the current function (or `function_name`) over `grid` threads with
        `buffers` bound to [[buffer(0)]], [[buffer(1)]], ...; waits unless
        wait_for_completion=False. Returns a Run."""
        # Python matches the keywords: pybind11 takes about a microsecond longer for them.
        return self._run(grid, buffers, function_name, wait_for_completion, threadgroup, threadgroup_memory,
                         textures, samplers)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Dispatches inside the block are encoded together and submitted at its end."""
        self._begin_batch()
        try:
            yield
        finally:
            self._end_batch()


def run_kernel(source_or_path: str | os.PathLike, function: str, inputs: list, out_shape, grid,
               threadgroup=None, out_dtype: Any = "float32", backend: str | None = None,
               *, kernel_dir: str | os.PathLike | None = None) -> np.ndarray:
    """One call: compile, bind ``inputs`` at buffer(1)..., run, return buffer(0) as an array.

    numpy arrays become buffers; ints and floats bind by value as the declared parameter type.
    ``source_or_path`` is MSL source, a .metal path, or a kernel name found in ``kernel_dir``.
    """
    iface = _interface_for(backend)
    text = os.fspath(source_or_path)
    if kernel_dir is not None and not text.endswith(".metal") and "\n" not in text:
        text = os.path.join(os.fspath(kernel_dir), text + ".metal")
    if text.endswith(".metal") or os.path.exists(text):
        iface.load_shader(text)
    elif _looks_like_a_name(text):
        raise ValueError(f"run_kernel: {text!r} looks like a file or kernel name, but no such file exists: pass "
                         f"kernel_dir= (the folder holding {text}.metal), a path to the .metal file, or MSL source")
    else:
        iface.load_shader_from_string(text)
    iface.set_function(function)
    shape = (out_shape,) if isinstance(out_shape, (int, np.integer)) else tuple(out_shape)
    count = int(np.prod(shape))
    out = iface.create_buffer(count, out_dtype)
    bound: list = [out]
    for item in inputs:
        if isinstance(item, np.ndarray):
            bound.append(iface.array_to_buffer(np.ascontiguousarray(item)))
        elif isinstance(item, (list, tuple)):
            bound.append(iface.array_to_buffer(np.asarray(item)))
        else:
            bound.append(item)
    iface.run_function(grid, bound, threadgroup=threadgroup)
    result = out.readback().reshape(shape + out.contents.shape[1:])
    for b in bound:
        if isinstance(b, Buffer):
            b.release()
    return result


_interfaces: dict = {}


def _interface_for(backend: str | None) -> Interface:
    key = backend or _core.default_backend()
    if key not in _interfaces:
        _interfaces[key] = Interface(backend=key)
    return _interfaces[key]
