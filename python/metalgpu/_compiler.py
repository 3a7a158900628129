"""The cpu backend's compiler on a machine that has none: the `ziglang` wheel (clang with its
own C library headers; `pip install metalgpu[cpu]`).

Used only when $CXX is unset and no c++, g++ or clang++ is on PATH. Measured on a 2-core
x86-64 machine (bench/results/ziglang.md): correct results, a 101 MB wheel (411 MB installed),
about 2 minutes for the very first compile (zig builds its C runtime once, then caches it) and
about 1.2 s cold for a small kernel after that, but math-heavy kernels run about 10x slower than
with g++ (no vectorised libm). So it is a fallback, never preferred over a system compiler.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path


def _cache_dir() -> Path:
    configured = os.environ.get("METALGPU_CACHE_DIR")
    if configured and configured != "0":
        return Path(configured)
    if configured == "0":
        return Path(tempfile.gettempdir()) / f"metalgpu-{os.getuid()}"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "metalgpu"


def use_ziglang_if_no_compiler() -> None:
    """Points $CXX at a `python -m ziglang c++` wrapper when there is no other compiler."""
    if os.environ.get("CXX") or any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        return
    if importlib.util.find_spec("ziglang") is None:
        return
    folder = _cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        wrapper = folder / "zig-c++"
        text = f'#!/bin/sh\nexec "{sys.executable}" -m ziglang c++ "$@"\n'
        if not wrapper.exists() or wrapper.read_text() != text:
            temp = folder / f".zig-c++.{os.getpid()}"
            temp.write_text(text)
            temp.chmod(0o755)
            os.replace(temp, wrapper)
    except OSError:
        return  # the cpu backend then reports that it has no compiler, as before
    os.environ["CXX"] = str(wrapper)
