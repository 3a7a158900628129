"""mg.translate: the generated code for a kernel, as text."""

from __future__ import annotations

from pathlib import Path

import pytest

import metalgpu as mg

# the README shader, verbatim
ADDER = (Path(__file__).resolve().parents[1] / "examples" / "shader.metal").read_text()

TWO_KERNELS = """#include <metal_stdlib>
using namespace metal;
kernel void first_kernel(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = 1.0f;
}
kernel void second_kernel(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = 2.0f;
}
"""

FUNCTION_CONSTANTS = """#include <metal_stdlib>
using namespace metal;
constant int MODE [[function_constant(0)]];
kernel void fc(device int* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = MODE;
}
"""


def test_translate_to_cpu():
    code = mg.translate(ADDER, "adder", target="cpu")
    assert isinstance(code, str)
    assert "adder" in code
    assert len(code.strip()) > 0


def test_translate_default_target_is_cpu():
    code = mg.translate(ADDER, "adder")
    assert isinstance(code, str) and "adder" in code


def test_translate_picks_one_of_several_kernels():
    code = mg.translate(TWO_KERNELS, "second_kernel", target="cpu")
    assert "second_kernel" in code


def test_translate_with_function_constants():
    code = mg.translate(FUNCTION_CONSTANTS, "fc", target="cpu", constants={0: 3})
    assert isinstance(code, str) and "fc" in code


def test_translate_constants_not_a_dict_raises():
    # A list used to be ignored silently (the constants were never applied).
    with pytest.raises(TypeError, match=r"\[translate\] constants must be a dict"):
        mg.translate(FUNCTION_CONSTANTS, "fc", target="cpu", constants=[(0, 3)])


@pytest.mark.skipif(
    "cuda" not in {d.backend for d in mg.devices()}, reason="the cuda backend is not available here"
)
def test_translate_to_cuda():
    code = mg.translate(ADDER, "adder", target="cuda")
    assert isinstance(code, str) and "adder" in code


@pytest.mark.parametrize("name", ["nope", "", "Adder"])
def test_translate_unknown_function(name):
    with pytest.raises(ValueError):
        mg.translate(ADDER, name, target="cpu")


def test_translate_unknown_target():
    with pytest.raises(ValueError):
        mg.translate(ADDER, "adder", target="fpga")


def test_translate_syntax_error_is_a_compile_error_or_passes_through():
    """Translation may not type-check bodies; if it does notice, it says CompileError."""
    broken = ADDER.replace("arr2[id] + arr1[id]", "arr2[id] + ")
    try:
        code = mg.translate(broken, "adder", target="cpu")
    except mg.CompileError as err:
        assert err.lineno == 4
    else:
        assert "adder" in code
