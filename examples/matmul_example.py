"""One-call form: mg.run_kernel binds buffer(0) as the output, the rest in order."""

from pathlib import Path

import numpy as np

import metalgpu as mg

M, N, K = 48, 40, 32
rng = np.random.default_rng(0)
A = rng.uniform(-1, 1, (M, N)).astype(np.float32)
B = rng.uniform(-1, 1, (N, K)).astype(np.float32)
shader = str(Path(__file__).resolve().parent / "matmul.metal")
out = mg.run_kernel(shader, "matmul", [A, B, N], (M, K), (M, K, 1), (16, 16, 1))
assert np.allclose(out, A @ B, rtol=1e-4, atol=1e-4)
print("matmul ok:", out.shape)
