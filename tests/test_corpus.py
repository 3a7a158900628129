"""Real Metal libraries (ggml and MLX, in ../shared/corpus): they load with the include folders
and defines their own builds use, and their kernels compute what numpy computes when driven
the way each library's host code drives them (argument structs, function constants, grids).

The corpora are test data read in place; nothing of theirs is copied into the project.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import BACKENDS, REPO_DIR, mg

CORPUS = REPO_DIR.parent / "shared" / "corpus"
GGML_SRC = CORPUS / "ggml" / "src"
GGML_METAL = GGML_SRC / "ggml-metal" / "ggml-metal.metal"
MLX_ROOT = CORPUS / "mlx"
MLX_KERNELS = MLX_ROOT / "mlx" / "backend" / "metal" / "kernels"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not here")

MLX_FILES = sorted(MLX_KERNELS.rglob("*.metal")) if MLX_KERNELS.is_dir() else []
# Apple's MetalPerformancePrimitives (the M5 tensor API): a clear CompileError instead.
MLX_NAX = [f for f in MLX_FILES if f.stem.endswith("_nax")]
MLX_PLAIN = [f for f in MLX_FILES if f not in MLX_NAX]


def _ids(files):
    return [str(f.relative_to(MLX_KERNELS)) for f in files]


@pytest.fixture(scope="module")
def cpu():
    if "cpu" not in BACKENDS:
        pytest.skip("the cpu backend is not among METALGPU_TEST_BACKENDS")
    return mg.Interface("cpu")


@pytest.fixture
def iface(backend):
    # Off a Mac the metal backend is the test double, which compiles a whole large library at
    # load: minutes for ggml; the libraries' numbers are checked on cpu and cuda there. (Built
    # here rather than from conftest's `iface`: pytest before 9 does not parametrize a fixture
    # that overrides one of the same name through a parametrized fixture.)
    if backend == "metal" and sys.platform != "darwin":
        pytest.skip("the Metal test double compiles whole libraries at load")
    return mg.Interface(backend=backend)


@pytest.fixture
def check_every_entry_point(monkeypatch):
    # Instantiate every entry point at load (g++'s semantic check of each kernel), not one per
    # kernel definition as load_shader does by default.
    monkeypatch.setenv("METALGPU_CHECK_LIBRARY", "all")


def load_ggml(iface, bf16=False):
    defines = {"GGML_METAL_HAS_BF16": 1} if bf16 else None
    iface.load_shader(str(GGML_METAL), include_dirs=[str(GGML_SRC), str(GGML_SRC / "ggml-metal")],
                      defines=defines)


def test_ggml_loads(cpu, check_every_entry_point):
    load_ggml(cpu)
    names = cpu.function_names()
    assert len(names) >= 600
    assert "kernel_unary_f32_f32" in names


def test_ggml_loads_with_bfloat(cpu, check_every_entry_point):
    load_ggml(cpu, bf16=True)
    assert len(cpu.function_names()) >= 680


@pytest.mark.parametrize("path", MLX_PLAIN, ids=_ids(MLX_PLAIN))
def test_mlx_file_loads(cpu, check_every_entry_point, path):
    cpu.load_shader(str(path), include_dirs=[str(MLX_ROOT)])
    assert cpu.function_names()


@pytest.mark.parametrize("path", MLX_NAX, ids=_ids(MLX_NAX))
def test_mlx_tensor_api_files_say_what_is_missing(cpu, path):
    with pytest.raises(mg.CompileError, match="MetalPerformancePrimitives.*not available on this backend"):
        cpu.load_shader(str(path), include_dirs=[str(MLX_ROOT)])


# ---------------------------------------------------------------- ggml, driven as ggml drives it

FC_UNARY = 1200  # ggml-metal-impl.h
OP_UNARY = {"silu": 106, "relu": 101, "tanh": 100, "abs": 109, "sqr": 13, "scale": 10}
KARGS_UNARY = np.dtype([("ne00", "i4"), ("ne01", "i4"), ("ne02", "i4"), ("ne03", "i4"),
                        ("nb00", "u8"), ("nb01", "u8"), ("nb02", "u8"), ("nb03", "u8"),
                        ("ne0", "i4"), ("ne1", "i4"), ("ne2", "i4"), ("ne3", "i4"),
                        ("nb0", "u8"), ("nb1", "u8"), ("nb2", "u8"), ("nb3", "u8"),
                        ("slope", "f4"), ("scale", "f4"), ("bias", "f4"), ("val", "f4"),
                        ("min", "f4"), ("max", "f4")])


@pytest.mark.parametrize("op", ["silu", "relu", "tanh", "abs", "sqr", "scale"])
def test_ggml_unary_contiguous(iface, op):
    load_ggml(iface)
    iface.set_function("kernel_unary_f32_f32", constants={FC_UNARY: OP_UNARY[op], FC_UNARY + 1: True})
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1000).astype(np.float32)
    args = np.zeros((), KARGS_UNARY)
    n = x.size
    args["ne00"] = args["ne0"] = n
    args["ne01"] = args["ne02"] = args["ne03"] = args["ne1"] = args["ne2"] = args["ne3"] = 1
    args["scale"], args["bias"] = 2.5, -1.0
    src, dst = iface.array_to_buffer(x), iface.create_buffer(n, "float")
    # Contiguous: one element per threadgroup (ggml-metal-ops.cpp dispatches n groups).
    iface.run_function(n, [args.tobytes(), src, dst], threadgroup=1)
    expect = {"silu": x / (1 + np.exp(-x)), "relu": np.maximum(x, 0), "tanh": np.tanh(x),
              "abs": np.abs(x), "sqr": x * x, "scale": 2.5 * x - 1.0}[op]
    np.testing.assert_allclose(dst.contents, expect, rtol=2e-5, atol=2e-6)


# ---------------------------------------------------------------- MLX, driven as MLX drives it


# unary.cpp: contiguous input runs "vn_" (WorkPerThread<T>::n = 8 / sizeof(T) elements a
# thread, utils.h) or "v_" (one), on a grid of ceil(size / n) threads.
@pytest.mark.parametrize("kind", ["v", "vn"])
@pytest.mark.parametrize("dtype,tname", [(np.float32, "float32"), (np.float16, "float16")])
@pytest.mark.parametrize("op,fn", [("Exp", np.exp), ("Abs", np.abs), ("Sin", np.sin)])
def test_mlx_unary_contiguous(iface, kind, dtype, tname, op, fn):
    iface.load_shader(str(MLX_KERNELS / "unary.metal"), include_dirs=[str(MLX_ROOT)])
    iface.set_function(f"{kind}_{op}{tname}{tname}")
    x = np.linspace(-3, 3, 1001).astype(dtype)
    per_thread = 8 // x.itemsize if kind == "vn" else 1
    src, dst = iface.array_to_buffer(x), iface.create_buffer(x.size, x.dtype)
    iface.run_function(-(-x.size // per_thread), [src, dst, np.uint32(x.size)])
    tol = 1e-6 if dtype == np.float32 else 2e-3
    np.testing.assert_allclose(dst.contents.astype(np.float64), fn(x.astype(np.float64)), rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["vv", "vvn"])
@pytest.mark.parametrize("dtype,tname", [(np.float32, "float32"), (np.int32, "int32")])
@pytest.mark.parametrize("op,fn", [("Add", np.add), ("Multiply", np.multiply), ("Maximum", np.maximum)])
def test_mlx_binary_contiguous(iface, kind, dtype, tname, op, fn):
    iface.load_shader(str(MLX_KERNELS / "binary.metal"), include_dirs=[str(MLX_ROOT)])
    iface.set_function(f"{kind}_{op}{tname}")
    rng = np.random.default_rng(2)
    a = (rng.standard_normal(777) * 50).astype(dtype)
    b = (rng.standard_normal(777) * 50).astype(dtype)
    per_thread = 8 // a.itemsize if kind == "vvn" else 1
    bufs = [iface.array_to_buffer(a), iface.array_to_buffer(b), iface.create_buffer(a.size, a.dtype)]
    iface.run_function(-(-a.size // per_thread), bufs + [np.uint32(a.size)])
    np.testing.assert_array_equal(bufs[2].contents, fn(a, b))


# arg_reduce.metal: one threadgroup per output row (grid = (threadgroup, rows)), the axis read
# in N_READS-wide steps, reduced by simd_shuffle_down and threadgroup memory. shape and strides
# exclude the reduced axis (the kernel's own comment).
@pytest.mark.parametrize("op,fn", [("argmax", np.argmax), ("argmin", np.argmin)])
@pytest.mark.parametrize("tg", [32, 256])
def test_mlx_arg_reduce_rows(iface, op, fn, tg):
    iface.load_shader(str(MLX_KERNELS / "arg_reduce.metal"), include_dirs=[str(MLX_ROOT)])
    iface.set_function(f"{op}_float32")
    rows, axis = 5, 1000
    x = np.random.default_rng(7).standard_normal((rows, axis)).astype(np.float32)
    out = iface.create_buffer(rows, "uint")
    shape, in_strides, out_strides = (np.array([rows], np.int32), np.array([axis], np.int64),
                                      np.array([1], np.int64))
    iface.run_function((tg, rows), [iface.array_to_buffer(x), out, iface.array_to_buffer(shape),
                                    iface.array_to_buffer(in_strides), iface.array_to_buffer(out_strides),
                                    np.uint64(1), np.int64(1), np.uint64(axis)], threadgroup=(tg, 1, 1))
    np.testing.assert_array_equal(out.contents, fn(x, axis=1))


# copy.metal: contiguous copies with a cast ("v_copy", one element a thread; copy.cpp).
@pytest.mark.parametrize("src,dst,sname,dname", [
    (np.float32, np.float16, "float32", "float16"), (np.int32, np.float32, "int32", "float32"),
    (np.float16, np.float32, "float16", "float32")])
def test_mlx_copy_contiguous_with_cast(iface, src, dst, sname, dname):
    iface.load_shader(str(MLX_KERNELS / "copy.metal"), include_dirs=[str(MLX_ROOT)])
    iface.set_function(f"v_copy{sname}{dname}")
    x = (np.random.default_rng(8).standard_normal(999) * 100).astype(src)
    out = iface.create_buffer(x.size, dst)
    iface.run_function(x.size, [iface.array_to_buffer(x), out, np.uint32(x.size)])
    np.testing.assert_array_equal(out.contents, x.astype(dst))
