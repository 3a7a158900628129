"""Helpers shared by the language-coverage tests (importable: pytest adds tests/ to sys.path)."""

from __future__ import annotations

import numpy as np

import metalgpu as mg


def run_arrays(iface, name, arrays, grid):
    """Runs kernel `name` with numpy arrays copied into buffers (other items bound as given)
    and returns each buffer's contents after the run, shaped like its array (None for values)."""
    bufs = [iface.array_to_buffer(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a
            for a in arrays]
    iface.set_function(name)
    iface.run_function(grid, bufs)
    return [b.contents.copy().reshape(np.shape(a)) if isinstance(b, mg.Buffer) else None
            for a, b in zip(arrays, bufs)]
