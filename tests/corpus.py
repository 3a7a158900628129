"""What the real-library tests (tests/test_corpus*.py) share: where ../shared/corpus is, how a
library's host dispatches and loads, and numpy's missing bfloat16.

The corpora are test data read in place; nothing of theirs is copied into the project.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import REPO_DIR

CORPUS = REPO_DIR.parent / "shared" / "corpus"
GGML_SRC = CORPUS / "ggml" / "src"
MLX_ROOT = CORPUS / "mlx"
MLX_KERNELS = MLX_ROOT / "mlx" / "backend" / "metal" / "kernels"

requires_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not here")


def skip_metal_double(iface):
    """Off a Mac the metal backend is the test double, which compiles a whole large library at
    load (minutes for ggml); the libraries' numbers are checked on cpu and cuda there."""
    if iface.backend == "metal" and sys.platform != "darwin":
        pytest.skip("the Metal test double compiles whole libraries at load")
    return iface


def load_mlx(iface, name):
    """One MLX .metal file, with the include folder MLX's own build uses."""
    iface.load_shader(str(MLX_KERNELS / name), include_dirs=[str(MLX_ROOT)])


def dispatch(iface, groups, tg, buffers, smem=None):
    """A host's dispatchThreadgroups(groups, tg): the grid in threads is groups * tg. `smem`:
    what the host gave setThreadgroupMemoryLength (bytes of slot 0, or {slot: bytes})."""
    groups = tuple(groups) + (1,) * (3 - len(groups))
    tg = tuple(tg) + (1,) * (3 - len(tg))
    grid = tuple(int(g) * int(t) for g, t in zip(groups, tg))
    tgmem = None
    if smem is not None:      # the host called setThreadgroupMemoryLength (0 bytes included)
        tgmem = smem if isinstance(smem, dict) else {0: int(smem)}
    iface.run_function(grid, buffers, threadgroup=tuple(int(t) for t in tg), threadgroup_memory=tgmem)


def i64(*values):
    return np.array(values, np.int64).tobytes()


def mlx_block_dims(dim0, dim1, dim2, pow2=10):
    """MLX's get_block_dims (utils.cpp): a power-of-two threadgroup of up to 2**pow2 threads
    spread over the three grid dimensions, none larger than its dimension."""
    pows, total, dims = [0, 0, 0], 0, [dim0, dim1, dim2]
    while True:
        before = total
        for i in range(3):
            if dims[i] >= 1 << (pows[i] + 1):
                pows[i] += 1
                total += 1
            if total == pow2:
                break
        if total == before or total == pow2:
            break
    return tuple(1 << p for p in pows)


# numpy has no bfloat16: bfloat data is kept as its uint16 bit pattern (the high half of a
# float32), rounded to nearest even as Metal's float -> bfloat conversion does.
def to_bf16(x):
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(bits):
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)
