"""run_function / run_kernel: grids, bindings (buffers, gaps, values, bytes, structs),
threadgroup memory, Run objects, synchronize, batch, several Interfaces."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import metalgpu as mg

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

struct Params {
    uint n;
    float a;
};

kernel void add_one(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = x[i] + 1.0f;
}

kernel void times_two(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = x[i] * 2.0f;
}

kernel void copy_f(device const float* src [[buffer(0)]], device float* dst [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) {
    dst[i] = src[i];
}

kernel void gap(device float* out [[buffer(0)]], device const float* in [[buffer(2)]],
                uint i [[thread_position_in_grid]]) {
    out[i] = in[i] + 0.5f;
}

kernel void scale_f(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                    constant float& scale [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    out[i] = x[i] * scale;
}

kernel void add_u(device uint* out [[buffer(0)]], constant uint& k [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) {
    out[i] = out[i] + k;
}

kernel void add_i(device int* out [[buffer(0)]], constant int& k [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) {
    out[i] = out[i] + k;
}

kernel void saxpy_p(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                    constant Params& p [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    if (i < p.n) {
        y[i] = p.a * x[i] + y[i];
    }
}

kernel void fill_int(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = int(i) * 3 - 7;
}

kernel void fill_float(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = float(i) * 0.25f;
}

"""

GROUP_SUM_SOURCE = r"""
#include <metal_stdlib>
using namespace metal;
kernel void group_sum(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                      threadgroup float* tmp [[threadgroup(0)]],
                      uint i [[thread_position_in_grid]],
                      uint lid [[thread_position_in_threadgroup]],
                      uint group [[threadgroup_position_in_grid]],
                      uint tgsize [[threads_per_threadgroup]]) {
    tmp[lid] = in[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = tgsize / 2; s > 0; s >>= 1) {
        if (lid < s) {
            tmp[lid] += tmp[lid + s];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (lid == 0) {
        out[group] = tmp[0];
    }
}
"""

OTHER_SOURCE = r"""
#include <metal_stdlib>
using namespace metal;
kernel void add_one(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    x[i] = x[i] - 100.0f;   // same name as in SOURCE, different body
}
"""

PARAMS_DTYPE = np.dtype([("n", "<u4"), ("a", "<f4")])  # Metal layout of struct Params: 8 bytes


@pytest.fixture(scope="module")
def lib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(SOURCE)
    return iface


def _floats(iface, values):
    buf = iface.create_buffer(len(values), "float")
    buf.contents[:] = values
    return buf


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------- buffers


def test_none_leaves_a_slot_empty(lib):
    x = _rng(1).standard_normal(300).astype(np.float32)
    out = lib.create_buffer(300, "float")
    src = _floats(lib, x)
    lib.run_function(300, [out, None, src], function_name="gap")
    np.testing.assert_allclose(out.contents, x + 0.5, rtol=1e-6)


def test_function_name_selects_the_kernel(iface):
    iface.load_shader_from_string(SOURCE)
    iface.set_function("add_one")
    x = np.arange(64, dtype=np.float32)
    buf = _floats(iface, x)
    iface.run_function(64, [buf])  # the set function
    np.testing.assert_array_equal(buf.contents, x + 1)
    iface.run_function(64, [buf], function_name="times_two")
    np.testing.assert_array_equal(buf.contents, (x + 1) * 2)
    iface.run_function(64, [buf], "times_two")  # positional, as in the signature
    np.testing.assert_array_equal(buf.contents, (x + 1) * 4)


# ------------------------------------------------------------------------- values by value


@pytest.mark.parametrize(
    "value",
    [
        2.5,
        np.float32(2.5),
        np.float64(2.5),
        3,
        np.int32(3),
        struct.pack("<f", 2.5),
    ],
    ids=["py-float", "np-float32", "np-float64", "py-int", "np-int32", "bytes"],
)
def test_float_reference_bound_by_value(lib, value):
    x = _rng(2).standard_normal(257).astype(np.float32)
    src = _floats(lib, x)
    out = lib.create_buffer(257, "float")
    lib.run_function(257, [src, out, value], function_name="scale_f")
    expected_scale = 2.5 if isinstance(value, bytes) else float(value)
    np.testing.assert_allclose(out.contents, x * np.float32(expected_scale), rtol=1e-6)


def test_buffer_bound_to_a_constant_reference(lib):
    """Metal allows a buffer where the kernel declares `constant float&`: element 0 is read."""
    x = np.arange(10, dtype=np.float32)
    src = _floats(lib, x)
    out = lib.create_buffer(10, "float")
    scale = _floats(lib, [1.5])
    lib.run_function(10, [src, out, scale], function_name="scale_f")
    np.testing.assert_allclose(out.contents, x * 1.5)


@pytest.mark.parametrize(
    "value",
    [7, np.uint32(7), np.int64(7), np.uint8(7), np.uint16(7), struct.pack("<I", 7)],
    ids=["py-int", "np-uint32", "np-int64", "np-uint8", "np-uint16", "bytes"],
)
def test_uint_reference_bound_by_value(lib, value):
    out = lib.create_buffer(50, "uint")
    out.contents[:] = np.arange(50, dtype=np.uint32)
    lib.run_function(50, [out, value], function_name="add_u")
    np.testing.assert_array_equal(out.contents, np.arange(50) + 7)


@pytest.mark.parametrize(
    "value",
    [-5, np.int16(-5), np.int32(-5), np.int64(-5)],
    ids=["py-int", "np-int16", "np-int32", "np-int64"],
)
def test_int_reference_bound_by_value(lib, value):
    out = lib.create_buffer(50, "int")
    out.contents[:] = np.arange(50, dtype=np.int32)
    lib.run_function(50, [out, value], function_name="add_i")
    np.testing.assert_array_equal(out.contents, np.arange(50) - 5)


def test_largest_uint_value_is_accepted(lib):
    out = lib.create_buffer(4, "uint")
    out.contents[:] = 0
    lib.run_function(4, [out, 2**32 - 1], function_name="add_u")
    np.testing.assert_array_equal(out.contents, 2**32 - 1)


@pytest.mark.parametrize("form", ["bytes", "numpy-structured-scalar"])
def test_struct_bound_by_value(lib, form):
    n, a = 70, 1.75
    if form == "bytes":
        params = struct.pack("If", n, a)
    else:
        params = np.array((n, a), dtype=PARAMS_DTYPE)[()]
        assert isinstance(params, np.void)
    rng = _rng(3)
    x = rng.standard_normal(100).astype(np.float32)
    y0 = rng.standard_normal(100).astype(np.float32)
    xb, yb = _floats(lib, x), _floats(lib, y0)
    lib.run_function(100, [xb, yb, params], function_name="saxpy_p")
    expected = y0.copy()
    expected[:n] = np.float32(a) * x[:n] + y0[:n]
    np.testing.assert_allclose(yb.contents, expected, rtol=1e-5, atol=1e-6)


def test_python_value_bound_to_a_device_pointer(lib):
    """setBytes semantics: a value may sit where the kernel declares `device int*`; it is
    converted to the declared type like any value (so a float is refused for int)."""
    run = lib.run_function(1, [4], function_name="fill_int")
    run.wait()
    assert run.done
    with pytest.raises(TypeError, match="fill_int"):
        lib.run_function(1, [4.0], function_name="fill_int")


def test_uchar_buffer_binds_to_any_pointer(lib):
    raw = lib.create_buffer(4 * 40, "uchar")
    lib.run_function(40, [raw], function_name="fill_int")
    np.testing.assert_array_equal(raw.contents.view(np.int32), np.arange(40) * 3 - 7)
    lib.run_function(40, [raw], function_name="fill_float")
    np.testing.assert_array_equal(raw.contents.view(np.float32), np.arange(40) * 0.25)


# ---------------------------------------------------------------------- threadgroup memory


@pytest.mark.parametrize("tg", [32, 64, 256])
def test_threadgroup_memory(backend, tg):
    lib = mg.Interface(backend=backend)
    lib.load_shader_from_string(GROUP_SUM_SOURCE)
    n = 1024
    x = _rng(4).integers(-50, 50, n).astype(np.float32)  # integers: exact float sums
    src = _floats(lib, x)
    out = lib.create_buffer(n // tg, "float")
    lib.run_function(
        n, [src, out], function_name="group_sum", threadgroup=tg, threadgroup_memory={0: tg * 4}
    )
    np.testing.assert_array_equal(out.contents, x.reshape(-1, tg).sum(axis=1))


# -------------------------------------------------------------------- Run, sync and batches


def test_run_object_when_not_waiting(lib):
    buf = lib.create_buffer(1000, "int")
    run = lib.run_function(1000, [buf], function_name="fill_int", wait_for_completion=False)
    run.wait()
    assert run.done is True
    assert isinstance(run.gpu_time, float)
    assert run.gpu_time >= 0.0
    np.testing.assert_array_equal(buf.contents, np.arange(1000) * 3 - 7)
    run.wait()  # waiting again is harmless
    assert run.done


def test_run_object_when_waiting(lib):
    buf = lib.create_buffer(100, "float")
    run = lib.run_function(100, [buf], function_name="fill_float")
    assert run.done
    assert isinstance(run.gpu_time, float) and run.gpu_time >= 0.0
    np.testing.assert_array_equal(buf.contents, np.arange(100) * 0.25)


def test_synchronize_completes_queued_work(lib):
    x = np.arange(500, dtype=np.float32)
    a = _floats(lib, x)
    b = _floats(lib, x)
    c = lib.create_buffer(500, "int")
    runs = [
        lib.run_function(500, [a], function_name="add_one", wait_for_completion=False),
        lib.run_function(500, [b], function_name="times_two", wait_for_completion=False),
        lib.run_function(500, [c], function_name="fill_int", wait_for_completion=False),
    ]
    lib.synchronize()
    assert all(r.done for r in runs)
    np.testing.assert_array_equal(a.contents, x + 1)
    np.testing.assert_array_equal(b.contents, x * 2)
    np.testing.assert_array_equal(c.contents, np.arange(500) * 3 - 7)
    lib.synchronize()  # nothing queued: a no-op


def test_batch_of_independent_dispatches(lib):
    x = np.arange(300, dtype=np.float32)
    a, b = _floats(lib, x), _floats(lib, x)
    c = lib.create_buffer(300, "float")
    with lib.batch():
        r1 = lib.run_function(300, [a], function_name="add_one")
        r2 = lib.run_function(300, [b], function_name="times_two")
        r3 = lib.run_function(300, [c], function_name="fill_float")
    for r in (r1, r2, r3):
        r.wait()
        assert r.done
    np.testing.assert_array_equal(a.contents, x + 1)
    np.testing.assert_array_equal(b.contents, x * 2)
    np.testing.assert_array_equal(c.contents, np.arange(300) * 0.25)


def test_batch_keeps_dispatch_order(lib):
    """Dispatches in a batch run in order, like a serial Metal compute encoder."""
    x = np.arange(128, dtype=np.float32)
    a = _floats(lib, x)
    b = lib.create_buffer(128, "float")
    with lib.batch():
        lib.run_function(128, [a], function_name="add_one")
        lib.run_function(128, [a], function_name="times_two")
        lib.run_function(128, [a, b], function_name="copy_f")
        lib.run_function(128, [b], function_name="add_one")
    np.testing.assert_array_equal(a.contents, (x + 1) * 2)
    np.testing.assert_array_equal(b.contents, (x + 1) * 2 + 1)


def test_several_interfaces_each_with_its_own_shader(backend):
    first = mg.Interface(backend=backend)
    second = mg.Interface(backend=backend)
    first.load_shader_from_string(SOURCE)
    second.load_shader_from_string(OTHER_SOURCE)
    first.set_function("add_one")
    second.set_function("add_one")
    x = np.arange(32, dtype=np.float32)
    a, b = _floats(first, x), _floats(second, x)
    first.run_function(32, [a])
    second.run_function(32, [b])
    first.run_function(32, [a])
    np.testing.assert_array_equal(a.contents, x + 2)
    np.testing.assert_array_equal(b.contents, x - 100)
    assert sorted(first.function_names()) != sorted(second.function_names())


# -------------------------------------------------------------------------------- MetalSize


def test_metal_size_fields():
    s = mg.MetalSize(5)
    assert (s.width, s.height, s.depth) == (5, 1, 1)
    s = mg.MetalSize(4, 3, 2)
    assert (s.width, s.height, s.depth) == (4, 3, 2)
    s = mg.MetalSize(width=7, height=2)
    assert (s.width, s.height, s.depth) == (7, 2, 1)


# ------------------------------------------------------------------------------- run_kernel


@pytest.mark.parametrize(("m", "n", "k"), [(48, 40, 32), (32, 32, 32), (512, 512, 512)])
def test_run_kernel_matmul(backend, examples_dir, m, n, k):
    rng = _rng(5)
    a = rng.uniform(-1, 1, (m, n)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, k)).astype(np.float32)
    path = str((examples_dir / "matmul.metal").resolve())
    out = mg.run_kernel(path, "matmul", [a, b, n], (m, k), (m, k, 1), (16, 16, 1), backend=backend)
    assert isinstance(out, np.ndarray)
    assert out.shape == (m, k)
    assert out.dtype == np.float32
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-3)


def test_run_kernel_from_source_text(backend, examples_dir):
    m, n, k = 16, 8, 24
    rng = _rng(6)
    a = rng.uniform(-1, 1, (m, n)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, k)).astype(np.float32)
    source = (examples_dir / "matmul.metal").read_text()
    out = mg.run_kernel(source, "matmul", [a, b, n], (m, k), (m, k, 1), (8, 8, 1), backend=backend)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_run_kernel_out_dtype(backend):
    out = mg.run_kernel(SOURCE, "fill_int", [], (4, 5), 20, 4, out_dtype="int32", backend=backend)
    assert out.dtype == np.int32
    assert out.shape == (4, 5)
    np.testing.assert_array_equal(out, (np.arange(20) * 3 - 7).reshape(4, 5))


def test_run_kernel_kernel_dir_form(backend, tmp_path):
    """PyMetal style: run_kernel("name", ..., kernel_dir=folder) loads folder/name.metal."""
    (tmp_path / "twice.metal").write_text(
        "#include <metal_stdlib>\nusing namespace metal;\n"
        "kernel void twice(device float* out [[buffer(0)]], device const float* x [[buffer(1)]],\n"
        "                  constant float& k [[buffer(2)]], uint i [[thread_position_in_grid]]) {\n"
        "    out[i] = x[i] * k;\n}\n")
    x = np.arange(12, dtype=np.float32)
    out = mg.run_kernel("twice", "twice", [x, 2.0], (3, 4), 12, 4, backend=backend, kernel_dir=tmp_path)
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(out, (x * 2).reshape(3, 4))
    with pytest.raises(FileNotFoundError):
        mg.run_kernel("missing", "twice", [x], 12, 12, backend=backend, kernel_dir=tmp_path)


def test_function_name_uses_the_current_constants(iface):
    """run_function(function_name=...) keeps the kernels it has built, for the constants of the
    last set_function: new constants build new pipelines."""
    iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
constant int k [[function_constant(0)]];
kernel void once(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) { out[i] = k; }
kernel void twice(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) { out[i] = 2 * k; }
""")
    out = iface.create_buffer(4, "int")
    for value in (1, 5, 1):
        iface.set_function("once", constants={0: value})
        for _ in range(2):
            iface.run_function(4, [out], function_name="twice")
            assert list(out.contents) == [2 * value] * 4
            iface.run_function(4, [out])
            assert list(out.contents) == [value] * 4
