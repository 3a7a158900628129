"""Habits new users bring: the original metalgpu package's (operators, top-level functions, C
dtype names, numpy integers, `python -m metalgpu build`), compushady's transfers (bytes at an
offset, readback into an array, buffer <-> texture copies), and the errors that point at the fix.
numpy is the oracle."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest

import metalgpu as mg
from metalgpu import __main__ as cli

TIMEOUT_S = 600

ADD_ONE = """#include <metal_stdlib>
using namespace metal;
kernel void add_one(device float* a [[buffer(0)]], uint i [[thread_position_in_grid]]) { a[i] += 1.0f; }
kernel void fill_index(device uint* out [[buffer(0)]], uint2 g [[thread_position_in_grid]],
                       uint2 size [[threads_per_grid]]) { out[g.y * size.x + g.x] = g.y * size.x + g.x; }
kernel void group_sum(device const float* src [[buffer(0)]], device float* out [[buffer(1)]],
                      threadgroup float* scratch [[threadgroup(0)]], uint i [[thread_position_in_grid]],
                      uint t [[thread_position_in_threadgroup]], uint n [[threads_per_threadgroup]],
                      uint g [[threadgroup_position_in_grid]]) {
    scratch[t] = src[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (t == 0) { float s = 0; for (uint k = 0; k < n; ++k) s += scratch[k]; out[g] = s; }
}
"""


# ------------------------------------------------------------------ operators (must-hold 4)

FLOATS = np.array([0.5, 1.0, 2.0, 3.5, -1.25, 4.0, -0.75, 8.0], np.float32)
INTS = np.array([-7, -1, 0, 1, 2, 3, 5, 100], np.int32)


@pytest.mark.parametrize(
    ("expr", "oracle"),
    [
        (lambda b: 2 * b, lambda x: 2 * x),
        (lambda b: b * 2, lambda x: x * 2),
        (lambda b: 2 + b, lambda x: 2 + x),
        (lambda b: 10 - b, lambda x: 10 - x),
        (lambda b: 3 / b, lambda x: 3 / x),
        (lambda b: -b, lambda x: -x),
        (lambda b: abs(b), lambda x: abs(x)),
        (lambda b: b ** 2, lambda x: x ** 2),
        (lambda b: abs(b) ** 0.5, lambda x: abs(x) ** 0.5),
        (lambda b: 2 ** b, lambda x: np.float32(2) ** x),
        (lambda b: b ** b.__abs__(), lambda x: x ** abs(x)),
        (lambda b: b + np.float32(1.5), lambda x: x + np.float32(1.5)),
    ],
    ids=["rmul", "mul", "radd", "rsub", "rdiv", "neg", "abs", "pow2", "pow-half", "rpow", "pow-buffer",
         "numpy-scalar"],
)
def test_float_operators_match_numpy(iface, expr, oracle):
    buf = iface.array_to_buffer(FLOATS)
    out = expr(buf)
    assert isinstance(out, mg.Buffer) and out.dtype == np.float32
    with np.errstate(invalid="ignore"):
        want = oracle(FLOATS).astype(np.float32)
    np.testing.assert_allclose(out.readback(), want, rtol=2e-6, equal_nan=True)
    np.testing.assert_array_equal(buf.contents, FLOATS)  # the operand is untouched


@pytest.mark.parametrize(
    ("expr", "oracle"),
    [
        (lambda b: 3 * b, lambda x: 3 * x),
        (lambda b: 1 - b, lambda x: 1 - x),
        (lambda b: -b, lambda x: -x),
        (lambda b: abs(b), lambda x: np.abs(x)),
        (lambda b: b ** 3, lambda x: x ** 3),
        (lambda b: b ** 0, lambda x: x ** 0),
        (lambda b: b + np.int64(5), lambda x: x + 5),
    ],
    ids=["rmul", "rsub", "neg", "abs", "pow3", "pow0", "numpy-int"],
)
def test_int_operators_match_numpy(iface, expr, oracle):
    buf = iface.array_to_buffer(INTS)
    out = expr(buf)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.readback(), oracle(INTS).astype(np.int32))


@pytest.mark.parametrize(
    ("expr", "oracle"),
    [
        (lambda b: np.float32(2) * b, lambda x: 2 * x),
        (lambda b: np.float64(0.5) + b, lambda x: 0.5 + x),
        (lambda b: np.int64(3) - b, lambda x: 3 - x),
        (lambda b: np.float32(1) / b, lambda x: 1 / x),
        (lambda b: np.float32(2) ** b, lambda x: np.float32(2) ** x),
    ],
    ids=["mul", "add", "sub", "div", "pow"],
)
def test_numpy_number_on_the_left_gives_a_buffer(iface, expr, oracle):
    buf = iface.array_to_buffer(FLOATS)
    out = expr(buf)
    assert isinstance(out, mg.Buffer) and out.dtype == np.float32
    np.testing.assert_allclose(out.readback(), oracle(FLOATS).astype(np.float32), rtol=2e-6)


def test_numpy_ufuncs_on_buffers_stay_numpy(iface):
    buf = iface.array_to_buffer(FLOATS)
    got = np.sqrt(abs(buf))  # a ufunc of numpy's: an array, as before
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, np.sqrt(np.abs(FLOATS)), rtol=1e-6)
    both = np.arange(8, dtype=np.float32) * buf  # an array operand: numpy's element-wise product
    assert isinstance(both, np.ndarray)
    np.testing.assert_array_equal(both, np.arange(8, dtype=np.float32) * FLOATS)
    out = np.empty(8, np.float32)
    np.add(buf, 1, out=out)
    np.testing.assert_array_equal(out, FLOATS + 1)
    np.multiply(buf, 2, out=buf)  # out= a Buffer: numpy writes its contents
    np.testing.assert_array_equal(buf.contents, FLOATS * 2)


def test_integer_powers_wrap_like_numpy(iface):
    x = np.array([0, 1, 5, 30, 31, 40], np.int32)
    out = 2 ** iface.array_to_buffer(x)
    np.testing.assert_array_equal(out.readback(), np.int32(2) ** x)  # 2**31, 2**40 wrap
    big = np.array([3, 7, -9], np.int64)
    np.testing.assert_array_equal((iface.array_to_buffer(big) ** 25).readback(), big ** 25)


def test_unsigned_negation_wraps_like_numpy(iface):
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        x = np.array([0, 1, 2, np.iinfo(dtype).max], dtype)
        np.testing.assert_array_equal((-iface.array_to_buffer(x)).readback(), -x)
    x = np.array([np.iinfo(np.int32).min, -5, 5], np.int32)
    np.testing.assert_array_equal((-iface.array_to_buffer(x)).readback(), -x)  # INT_MIN wraps


def test_vector_buffers_negate(iface):
    buf = iface.create_buffer(3, "float4")
    buf.contents[:] = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal((-buf).readback(), -np.arange(12, dtype=np.float32).reshape(3, 4))


def test_vector_buffers_with_numbers(iface):
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    buf = iface.create_buffer(3, "float4")
    buf.upload(x)
    np.testing.assert_allclose((2 * buf).readback(), 2 * x)
    np.testing.assert_allclose((1 / buf).readback(), 1 / x, rtol=1e-6)
    np.testing.assert_allclose((buf ** 2).readback(), x ** 2, rtol=1e-6)
    ints = iface.create_buffer(2, "int2")
    ints.upload([[1, -2], [3, 4]])
    np.testing.assert_array_equal((10 - ints).readback(), [[9, 12], [7, 6]])
    with pytest.raises(TypeError, match="int2"):
        ints ** 2


def test_unsigned_powers(iface):
    x = np.array([0, 1, 3, 255], np.uint8)
    np.testing.assert_array_equal((iface.array_to_buffer(x) ** 3).readback(), x ** 3)  # wraps at 8 bits
    u = np.array([2, 3, 4], np.uint32)
    np.testing.assert_array_equal((3 ** iface.array_to_buffer(u)).readback(), np.uint32(3) ** u)


def test_operator_misuse_is_refused(iface):
    ints = iface.array_to_buffer(INTS)
    with pytest.raises(TypeError, match="astype"):
        ints * 2.5  # numpy would give floats; an int buffer cannot hold them
    with pytest.raises(ValueError, match="negative integer powers"):
        ints ** -1
    with pytest.raises(ValueError, match="negative integer powers"):
        2 ** ints
    with pytest.raises(TypeError, match="bool"):
        -iface.array_to_buffer(np.array([True, False]))
    with pytest.raises(TypeError):
        "2" * ints


@pytest.mark.parametrize("name", ["sqrt", "cos", "sin", "tan", "exp", "log", "abs"])
def test_top_level_functions_like_the_original(iface, name):
    x = np.array([0.25, 0.5, 1.0, 1.5], np.float32)
    out = getattr(mg, name)(iface.array_to_buffer(x))
    np.testing.assert_allclose(out.readback(), getattr(np, name)(x), rtol=1e-5)
    assert getattr(mg, name) is getattr(mg.operators, name)


# ------------------------------------------------------------------------ dtype strings

@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("int64_t", np.int64), ("uint64_t", np.uint64), ("int32_t", np.int32), ("uint32_t", np.uint32),
        ("int16_t", np.int16), ("uint16_t", np.uint16), ("int8_t", np.int8), ("uint8_t", np.uint8),
        ("unsigned int", np.uint32), ("unsigned  int", np.uint32), ("unsigned", np.uint32),
        ("unsigned short", np.uint16), ("unsigned char", np.uint8), ("signed char", np.int8),
        ("unsigned long", np.uint64), ("long long", np.int64), ("unsigned long long", np.uint64),
        ("size_t", np.uint64), ("float", np.float32), ("half", np.float16), ("int", np.int32),
        ("double", np.float64), ("uint", np.uint32), ("long", np.int64),
    ],
)
def test_c_dtype_names(iface, name, dtype):
    buf = iface.create_buffer(4, name)
    assert buf.dtype == np.dtype(dtype)
    assert iface.array_to_buffer(np.arange(4)).astype(name).dtype == np.dtype(dtype)


def test_c_dtype_name_in_run_kernel(backend):
    src = """#include <metal_stdlib>
using namespace metal;
kernel void twice(device uint* out [[buffer(0)]], device const uint* a [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) { out[i] = a[i] * 2u; }
"""
    out = mg.run_kernel(src, "twice", [np.arange(6, dtype=np.uint32)], 6, 6, out_dtype="uint32_t", backend=backend)
    assert out.dtype == np.uint32
    np.testing.assert_array_equal(out, np.arange(6) * 2)


def test_unknown_c_name_says_what_is_accepted(iface):
    with pytest.raises(mg.DTypeError, match="uint32_t"):
        iface.create_buffer(4, "unsigned banana")


# --------------------------------------------------------------------- numpy integers

@pytest.fixture
def lib(iface):
    iface.load_shader_from_string(ADD_ONE)
    return iface


def test_numpy_integers_as_grid_and_threadgroup(lib):
    buf = lib.create_buffer(np.int64(8), "float")
    lib.run_function(np.int64(8), [buf], function_name="add_one", threadgroup=np.int32(4))
    lib.run_function((np.int64(8),), [buf], function_name="add_one", threadgroup=(np.uint16(2),))
    lib.run_function(mg.MetalSize(np.int64(8), np.int8(1)), [buf], function_name="add_one")
    np.testing.assert_array_equal(buf.contents, np.full(8, 3.0))
    out = lib.create_buffer(12, "uint")
    lib.run_function((np.int64(4), np.int32(3)), [out], function_name="fill_index",
                     threadgroup=(np.int64(2), np.int64(3)))
    np.testing.assert_array_equal(out.contents, np.arange(12))


def test_numpy_integers_as_threadgroup_memory_and_texture_sizes(lib):
    src = lib.array_to_buffer(np.arange(8, dtype=np.float32))
    out = lib.create_buffer(2, "float")
    lib.run_function(8, [src, out], function_name="group_sum", threadgroup=np.int64(4),
                     threadgroup_memory={np.int64(0): np.int64(16)})
    np.testing.assert_array_equal(out.contents, [6.0, 22.0])
    tex = lib.create_texture(np.int64(3), np.int32(2), format="r32float")
    assert tex.shape == (2, 3, 1)


def test_numpy_bools_and_floats_are_not_sizes(lib):
    buf = lib.create_buffer(4, "float")
    with pytest.raises(TypeError, match="grid"):
        lib.run_function(np.float64(4), [buf], function_name="add_one")
    with pytest.raises(TypeError, match="grid"):
        lib.run_function((np.bool_(True),), [buf], function_name="add_one")
    with pytest.raises(TypeError, match="width"):
        lib.create_texture(np.float32(2), 2)


# ---------------------------------------------------------- compushady transfers (5)

def test_upload_bytes_of_any_size_at_an_offset(iface):
    buf = iface.create_buffer(4, "uchar")
    buf.upload(b"\xff\x00\x00\xff")
    np.testing.assert_array_equal(buf.contents, [255, 0, 0, 255])
    floats = iface.create_buffer(4, "float")
    floats.upload(np.float32(1.5).tobytes(), offset=8)
    floats.upload(bytearray(np.float32(-2).tobytes()))
    floats.upload(memoryview(np.array([7.0], np.float32)), offset=12)  # raw bytes, any format
    np.testing.assert_array_equal(floats.contents, [-2.0, 0.0, 1.5, 7.0])
    floats.upload(b"")  # nothing to write
    with pytest.raises(ValueError, match="do not fit"):
        floats.upload(bytes(17))
    with pytest.raises(ValueError, match="do not fit"):
        floats.upload(bytes(4), offset=13)
    with pytest.raises(ValueError, match="offset"):
        floats.upload(bytes(4), offset=-4)
    with pytest.raises(TypeError, match="offset"):
        floats.upload(bytes(4), offset=1.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        floats.upload(memoryview(np.zeros(8, np.float32))[::2])
    with pytest.raises(TypeError, match="copy_to"):
        floats.upload(iface.create_buffer(4, "float"))


def test_upload_to_private_storage_at_an_offset(iface):
    buf = iface.create_buffer(6, "int", storage="private")
    buf.upload(np.arange(6, dtype=np.int32))
    buf.upload(np.array([-1, -2], np.int32), offset=8)  # elements 2 and 3
    np.testing.assert_array_equal(buf.readback(), [0, 1, -1, -2, 4, 5])


def test_upload_arrays_and_lists_convert_by_value(iface):
    uints = iface.create_buffer(3, "uint32_t")
    uints.upload([1, 2, 3])  # Python ints: numpy would call them int64
    np.testing.assert_array_equal(uints.contents, [1, 2, 3])
    uints.upload(np.array([4, 5, 6], np.int64))
    np.testing.assert_array_equal(uints.contents, [4, 5, 6])
    with pytest.raises(ValueError, match="uint32"):
        uints.upload([1, -2, 3])
    with pytest.raises(TypeError, match="uint32"):
        uints.upload([1.5, 2.0, 3.0])
    with pytest.raises(ValueError, match="offset="):
        uints.upload([1, 2])
    uints.upload([9], offset=4)
    np.testing.assert_array_equal(uints.contents, [4, 9, 6])
    halves = iface.create_buffer(2, "half")
    halves.upload([0.5, 1.25])
    np.testing.assert_array_equal(halves.contents, np.array([0.5, 1.25], np.float16))


def test_upload_three_lane_vectors(iface):
    buf = iface.create_buffer(2, "float3")
    buf.upload(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(buf.readback(), np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match="multiple of 3"):
        buf.upload(np.arange(5, dtype=np.float32))


def test_readback_into_a_given_array(iface):
    buf = iface.array_to_buffer(np.arange(8, dtype=np.float32))
    out = np.zeros(8, np.float32)
    assert buf.readback(out=out) is out
    np.testing.assert_array_equal(out, np.arange(8))
    part = np.zeros(3, np.float32)
    buf.readback(out=part, offset=16)
    np.testing.assert_array_equal(part, [4, 5, 6])
    raw = bytearray(8)
    buf.readback(out=raw)
    assert bytes(raw) == np.arange(2, dtype=np.float32).tobytes()
    with pytest.raises(TypeError, match="float32"):
        buf.readback(out=np.zeros(8, np.float64))
    with pytest.raises(ValueError, match="do not fit"):
        buf.readback(out=np.zeros(9, np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        buf.readback(out=np.zeros(16, np.float32)[::2])
    with pytest.raises(ValueError, match="out="):
        buf.readback(offset=4)
    with pytest.raises(TypeError, match="writable"):
        buf.readback(out=b"12345678")


@pytest.mark.parametrize("storage", ["shared", "private"])
def test_copy_between_buffers_and_textures(iface, storage):
    tex = iface.create_texture(3, 2, format="rgba8unorm", storage=storage)
    texels = np.arange(24, dtype=np.uint8)
    src = iface.array_to_buffer(np.concatenate([texels, [99, 99]]).astype(np.uint8))  # larger is fine
    src.copy_to(tex)
    np.testing.assert_array_equal(tex.readback(), texels.reshape(2, 3, 4))
    back = iface.create_buffer(6, "uint", storage=storage)  # another dtype: raw bytes
    tex.copy_to(back)
    np.testing.assert_array_equal(back.readback(), texels.view(np.uint32))
    with pytest.raises(ValueError, match="24"):
        iface.create_buffer(5, "uint").copy_to(tex)
    with pytest.raises(ValueError, match="24"):
        tex.copy_to(iface.create_buffer(5, "uint"))
    with pytest.raises(TypeError, match="readback"):
        src.copy_to(np.zeros(26, np.uint8))
    with pytest.raises(TypeError, match="Texture or a Buffer"):
        tex.copy_to("elsewhere")


def test_a_kernel_sees_texels_copied_from_a_buffer(iface):
    iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
kernel void read_tex(texture2d<float, access::read> t [[texture(0)]], device float* out [[buffer(0)]],
                     uint2 g [[thread_position_in_grid]]) { out[g.y * 2 + g.x] = t.read(g).r; }
""")
    tex = iface.create_texture(2, 2, format="r32float")
    iface.array_to_buffer(np.array([1, 2, 3, 4], np.float32)).copy_to(tex)
    out = iface.create_buffer(4, "float")
    iface.run_function((2, 2), [out], function_name="read_tex", textures=[tex])
    np.testing.assert_array_equal(out.contents, [1, 2, 3, 4])


def test_texture_bytes_upload_and_readback_into(iface):
    tex = iface.create_texture(2, 1, format="rgba8uint")
    tex.upload(b"\x01\x02\x03\x04")  # the first texel only
    tex.upload(bytearray(b"\x05\x06\x07\x08"), offset=4)
    np.testing.assert_array_equal(tex.readback().ravel(), np.arange(1, 9))
    out = np.zeros((1, 2, 4), np.uint8)
    np.testing.assert_array_equal(tex.readback(out=out).ravel(), np.arange(1, 9))
    tex.upload([[[0, 0, 0, 0], [1, 1, 1, 1]]])  # a nested list: converted by value
    np.testing.assert_array_equal(tex.readback().ravel(), [0] * 4 + [1] * 4)
    with pytest.raises(ValueError, match="do not fit"):
        tex.upload(bytes(9))
    with pytest.raises(TypeError, match="uint8"):
        tex.readback(out=np.zeros((1, 2, 4), np.float32))


# --------------------------------------------------------------- errors that point (6)

def test_a_name_given_as_source(iface, tmp_path):
    with pytest.raises(ValueError, match="load_shader"):
        iface.load_shader_from_string("good.metal")
    with pytest.raises(ValueError, match="file or kernel name"):
        iface.load_shader_from_string("  matmul\n")
    with pytest.raises(ValueError, match="kernel_dir="):
        mg.run_kernel("matmul", "matmul", [], 4, 4, backend=iface.backend)
    (tmp_path / "matmul.metal").write_text(ADD_ONE.replace("add_one", "matmul"))
    out = mg.run_kernel("matmul", "matmul", [], 4, 4, backend=iface.backend, kernel_dir=tmp_path)
    np.testing.assert_array_equal(out, np.ones(4))
    with pytest.raises(mg.CompileError):  # source that is not a name still reaches the compiler
        iface.load_shader_from_string("kernel void broken(")


@pytest.mark.parametrize("item", [np.zeros(4, np.float32), [1.0, 2.0]], ids=["ndarray", "list"])
def test_an_array_in_the_buffer_list(lib, item):
    with pytest.raises(TypeError, match=r"buffers\[0\].*array_to_buffer"):
        lib.run_function(4, [item], function_name="add_one")


# ------------------------------------------------------------------ command line, dump

def _cli(*args: str, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "metalgpu", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env if env is not None else dict(os.environ), check=False, **kw)


def test_build_without_files_says_nothing_needs_building():
    proc = _cli("build")
    assert proc.returncode == 0, proc.stderr
    assert "Nothing needs building" in proc.stdout


def test_build_compiles_every_kernel_into_the_cache(subprocess_env, tmp_path):
    shader = tmp_path / "lib.metal"
    shader.write_text(ADD_ONE)
    env = dict(subprocess_env, METALGPU_CACHE_DIR=str(tmp_path / "cache"))
    proc = _cli("build", str(shader), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "3 of 3 kernels compiled" in proc.stdout
    assert "[#" not in proc.stderr  # no progress bar without a terminal
    if subprocess_env["METALGPU_BACKEND"] == "cpu":
        assert any(p.suffix == ".so" for p in (tmp_path / "cache").iterdir())


def test_build_reports_what_fails(subprocess_env, tmp_path):
    shader = tmp_path / "bad.metal"
    shader.write_text("kernel void oops(device float* a [[buffer(0)]]) { a[0] = undefined_name; }\n")
    proc = _cli("build", str(shader), "-D", "X=1", "-I", str(tmp_path), env=subprocess_env)
    assert proc.returncode == 1
    assert "bad.metal" in proc.stderr
    proc = _cli("build", str(tmp_path / "missing.metal"), env=subprocess_env)
    assert proc.returncode == 1 and "missing.metal" in proc.stderr
    proc = _cli("info", "extra.metal")
    assert proc.returncode == 2 and "takes no files" in proc.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # our own bar, as without tqdm installed
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = cli._Progress(2, "lib.metal")
    bar.step("first")
    bar.step("second")
    bar.close()
    assert "2/2" in term.getvalue() and "#" * 30 in term.getvalue()
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    bar = cli._Progress(2, "lib.metal")
    bar.step("first")
    bar.close()
    assert pipe.getvalue() == ""


def test_info_survives_a_closed_pipe():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written (`| head -0`)
    try:
        proc = subprocess.run([sys.executable, "-m", "metalgpu", "info"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=TIMEOUT_S, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 0


def test_dump_creates_its_folder(subprocess_env, tmp_path):
    dump = tmp_path / "not" / "there" / "yet"
    env = dict(subprocess_env, METALGPU_DUMP=str(dump), METALGPU_CACHE_DIR=str(tmp_path / "cache"))
    code = ("import metalgpu as mg, numpy as np; i = mg.Interface(); i.load_shader_from_string("
            f"{ADD_ONE!r}); i.set_function('add_one'); b = i.array_to_buffer(np.zeros(4, np.float32)); "
            "i.run_function(4, [b]); assert (b.contents == 1).all()")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr
    if subprocess_env["METALGPU_BACKEND"] in ("cpu", "cuda"):
        assert any(dump.iterdir())
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env["METALGPU_DUMP"] = str(blocker / "sub")  # cannot be made: said once, and kernels still run
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr
    if subprocess_env["METALGPU_BACKEND"] in ("cpu", "cuda"):
        assert proc.stderr.count("METALGPU_DUMP") == 1, proc.stderr
