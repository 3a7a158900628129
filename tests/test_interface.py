"""Interfaces, devices and backends; loading shaders (files, strings, includes, defines);
functions (names, function constants, pipeline limits)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import metalgpu as mg

SIMPLE_KERNELS = {"iota", "iota_plus"}


def test_version():
    assert isinstance(mg.__version__, str)
    assert re.match(r"^\d+\.\d+", mg.__version__)


def test_devices():
    devices = mg.devices()
    assert isinstance(devices, list)
    assert devices, "at least the cpu backend is always there"
    assert "cpu" in {d.backend for d in devices}
    for d in devices:
        assert isinstance(d, mg.DeviceInfo)
        assert d.backend in ("metal", "cuda", "cpu")
        assert isinstance(d.name, str) and d.name
        assert isinstance(d.index, int) and d.index >= 0
        assert isinstance(d.memory, int) and d.memory > 0
        assert d.max_threads_per_threadgroup >= 256
        assert d.simd_width == 32
    for backend in {d.backend for d in devices}:
        indices = sorted(d.index for d in devices if d.backend == backend)
        assert indices == list(range(len(indices)))


def test_interface_reports_backend_and_device(backend):
    iface = mg.Interface(backend=backend, device=0)
    assert iface.backend == backend
    dev = iface.device
    assert dev.backend == backend
    assert dev.index == 0
    assert isinstance(dev.name, str) and dev.name
    assert dev.memory > 0
    assert dev.max_threads_per_threadgroup >= 256
    assert dev.simd_width == 32
    listed = [d for d in mg.devices() if d.backend == backend and d.index == 0]
    assert len(listed) == 1
    assert listed[0].name == dev.name


def test_backend_from_environment(backend, monkeypatch):
    monkeypatch.setenv("METALGPU_BACKEND", backend)
    assert mg.Interface().backend == backend


def test_default_backend_preference(monkeypatch):
    monkeypatch.delenv("METALGPU_BACKEND", raising=False)
    available = {d.backend for d in mg.devices()}
    best = next(b for b in ("metal", "cuda", "cpu") if b in available)
    assert mg.Interface().backend == best


def test_load_shader_from_file(iface, shaders_dir):
    iface.load_shader(str(shaders_dir / "simple.metal"))
    assert set(iface.function_names()) == SIMPLE_KERNELS
    iface.set_function("iota")
    out = iface.create_buffer(33, "uint")
    iface.run_function(33, [out])
    np.testing.assert_array_equal(out.contents, np.arange(33))


@pytest.mark.parametrize("method", ["load_shader_from_string", "load_shader_from_str"])
def test_load_shader_from_string_and_alias(iface, shaders_dir, method):
    source = (shaders_dir / "simple.metal").read_text()
    getattr(iface, method)(source)
    assert set(iface.function_names()) == SIMPLE_KERNELS
    iface.set_function("iota_plus")
    out = iface.create_buffer(10, "uint")
    iface.run_function(10, [out, 5])
    np.testing.assert_array_equal(out.contents, np.arange(10) + 5)


def test_loading_a_new_shader_replaces_the_library(iface, shaders_dir, examples_dir):
    iface.load_shader(str(shaders_dir / "simple.metal"))
    iface.load_shader(str(examples_dir / "shader.metal"))
    assert list(iface.function_names()) == ["adder"]


@pytest.mark.parametrize("n_value", [4, 7])
def test_include_dirs_and_defines(iface, shaders_dir, n_value):
    iface.load_shader(
        str(shaders_dir / "with_defines.metal"),
        include_dirs=[str(shaders_dir / "inc")],
        defines={"N": n_value},
    )
    assert list(iface.function_names()) == ["use_defines"]
    iface.set_function("use_defines")
    out = iface.create_buffer(20, "int")
    iface.run_function(20, [out])
    i = np.arange(20)
    np.testing.assert_array_equal(out.contents, i * n_value + 1000 + 2 * i)


def test_include_dirs_with_string_source(iface, shaders_dir):
    source = (shaders_dir / "with_defines.metal").read_text()
    source = source.replace('#include "local_helper.h"\n', "#define LOCAL_OFFSET 1000\n")
    iface.load_shader_from_string(source, include_dirs=[str(shaders_dir / "inc")], defines={"N": 3})
    iface.set_function("use_defines")
    out = iface.create_buffer(8, "int")
    iface.run_function(8, [out])
    np.testing.assert_array_equal(out.contents, np.arange(8) * 5 + 1000)


@pytest.mark.parametrize(
    ("constants", "expected"),
    [
        ({0: 1, 1: 2.5}, lambda x: x * 2.5),
        ({"MODE": 2, "SCALE": 0.5}, lambda x: x + 0.5),
    ],
    ids=["by-index", "by-name"],
)
def test_function_constants(iface, shaders_dir, constants, expected):
    iface.load_shader(str(shaders_dir / "function_constants.metal"))
    iface.set_function("fc", constants=constants)
    x = np.arange(16, dtype=np.float32)
    buf = iface.array_to_buffer(x)
    iface.run_function(16, [buf])
    np.testing.assert_array_equal(buf.contents, expected(x))


def test_function_constants_switch_pipelines(iface, shaders_dir):
    iface.load_shader(str(shaders_dir / "function_constants.metal"))
    x = np.arange(8, dtype=np.float32)
    buf = iface.array_to_buffer(x)
    iface.set_function("fc", constants={0: 1, 1: 3.0})
    iface.run_function(8, [buf])
    iface.set_function("fc", constants={0: 0, 1: 3.0})
    iface.run_function(8, [buf])
    np.testing.assert_array_equal(buf.contents, x * 3 + 3)


def test_pipeline_limits(iface, shaders_dir):
    iface.load_shader(str(shaders_dir / "simple.metal"))
    iface.set_function("iota")
    width = iface.threadExecutionWidth()
    limit = iface.maxThreadsPerGroup()
    assert isinstance(width, int) and width == 32
    assert isinstance(limit, int) and limit >= 256
    assert limit <= iface.device.max_threads_per_threadgroup
    out = iface.create_buffer(limit * 2, "uint")
    iface.run_function(limit * 2, [out], threadgroup=limit)  # the reported limit is usable
    np.testing.assert_array_equal(out.contents, np.arange(limit * 2))
