"""Libraries with many kernels compile each kernel on first use, yet report errors at load."""

from __future__ import annotations

import numpy as np
import pytest

import metalgpu as mg

KERNELS = 24  # above the whole-library threshold (16)


def _source(broken: int | None = None) -> str:
    parts = ["#include <metal_stdlib>\nusing namespace metal;\n"]
    for k in range(KERNELS):
        body = "out[i] = a[i] * T(%d) + T(1);" % (k + 1)
        if k == broken:
            body = "out[i] = undeclared_name;"
        parts.append(
            f"template <typename T> kernel void scale{k}(device const T* a [[buffer(0)]], "
            f"device T* out [[buffer(1)]], uint i [[thread_position_in_grid]]) {{ {body} }}\n"
            f'template [[host_name("scale{k}_float")]] kernel void scale{k}<float>'
            f"(device const float*, device float*, uint);\n"
        )
    return "".join(parts)


@pytest.fixture(scope="module")
def big(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(_source())
    return iface


def test_all_kernels_are_listed(big):
    assert big.function_names() == sorted(f"scale{k}_float" for k in range(KERNELS))


@pytest.mark.parametrize("k", [0, 7, KERNELS - 1])
def test_kernels_compile_on_use_and_run(big, k):
    x = np.arange(64, dtype=np.float32)
    a, out = big.array_to_buffer(x), big.create_buffer(64, "float")
    big.set_function(f"scale{k}_float")
    big.run_function(64, [a, out])
    np.testing.assert_allclose(out.contents, x * (k + 1) + 1)


def test_function_name_on_a_large_library(big):
    x = np.ones(8, dtype=np.float32)
    a, out = big.array_to_buffer(x), big.create_buffer(8, "float")
    big.run_function(8, [a, out], function_name="scale3_float")
    np.testing.assert_allclose(out.contents, np.full(8, 5.0))


def test_errors_still_surface_at_load(iface):
    with pytest.raises(mg.CompileError) as info:
        iface.load_shader_from_string(_source(broken=11))
    assert info.value.lineno is not None
    assert "undeclared_name" in str(info.value) or "undeclared_name" in info.value.log
