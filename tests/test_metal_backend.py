"""Metal-specific behaviour of the metal backend (src/backends/metal/metal_backend.mm).

Runs wherever the metal backend is available: on a Mac against Apple's Metal, and on Linux in
the METALGPU_METAL_TEST_DOUBLE build, where the Metal API is a TEST DOUBLE running on the CPU
backend (the double proves our Objective-C++ drives the API as documented, not that Apple's
driver agrees). Tests that read the double's own counters skip on real Metal.
"""

from __future__ import annotations

import ctypes
import gc
import os
import subprocess
import sys

import numpy as np
import pytest

import metalgpu as mg

pytestmark = pytest.mark.skipif(
    not any(d.backend == "metal" for d in mg.devices()), reason="the metal backend is not available here"
)

IS_DOUBLE = any(d.backend == "metal" and "TEST DOUBLE" in d.name for d in mg.devices())

ADD = """
#include <metal_stdlib>
using namespace metal;
kernel void add(device const float* a [[buffer(0)]], device float* out [[buffer(1)]],
                constant float& k [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    out[i] = a[i] + k;
}
kernel void twice(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = out[i] * 2.0f;
}
"""

CONSTANTS = """
#include <metal_stdlib>
using namespace metal;
constant int scale [[function_constant(0)]];
constant float offset [[function_constant(1)]];
kernel void affine(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = float(i) * float(scale) + offset;
}
"""


def _double_counter(name: str) -> int:
    """One of the Metal test double's counters (mg_metal_double_<name>)."""
    fn = getattr(ctypes.CDLL(mg._core.__file__), f"mg_metal_double_{name}")
    fn.restype = ctypes.c_long
    return int(fn())


def _double_live_objects() -> int:
    return _double_counter("live_objects")


@pytest.fixture
def metal():
    return mg.Interface(backend="metal")


def test_device_listed_first_and_default_order():
    devs = mg.devices()
    assert devs[0].backend == "metal"
    d = next(d for d in devs if d.backend == "metal")
    assert d.max_threads_per_threadgroup >= 32 and d.simd_width == 32
    assert d.memory > 0


def test_shared_buffer_aliases_metal_memory(metal):
    metal.load_shader_from_string(ADD)
    metal.set_function("add")
    a = metal.array_to_buffer(np.arange(1000, dtype=np.float32))
    out = metal.create_buffer(1000, "float")
    view = out.contents
    metal.run_function(1000, [a, out, 1.5])
    # The kernel wrote the memory numpy already looks at: no copy in between.
    np.testing.assert_allclose(view, np.arange(1000, dtype=np.float32) + 1.5)


def test_gpu_time_is_positive(metal):
    metal.load_shader_from_string(ADD)
    metal.set_function("add")
    a = metal.array_to_buffer(np.ones(4096, dtype=np.float32))
    out = metal.create_buffer(4096, "float")
    run = metal.run_function(4096, [a, out, 0.0])
    assert run.done
    assert run.gpu_time > 0


def test_async_run_waits_and_host_access_waits(metal):
    metal.load_shader_from_string(ADD)
    metal.set_function("twice")
    out = metal.array_to_buffer(np.full(2048, 3.0, dtype=np.float32))
    run = metal.run_function(2048, [out], wait_for_completion=False)
    # Reading the buffer waits for the command buffer that writes it.
    np.testing.assert_allclose(out.readback(), 6.0)
    run.wait()
    assert run.done and run.gpu_time > 0


def test_batch_then_synchronize(metal):
    metal.load_shader_from_string(ADD)
    metal.set_function("twice")
    out = metal.array_to_buffer(np.ones(512, dtype=np.float32))
    with metal.batch():
        for _ in range(5):
            metal.run_function(512, [out])
    np.testing.assert_allclose(out.contents, 32.0)


def test_private_buffers_use_blit_transfers(metal):
    metal.load_shader_from_string(ADD)
    metal.set_function("add")
    src = metal.create_buffer(1001, "float", storage="private")  # not a multiple of 4 bytes * 4
    src.upload(np.arange(1001, dtype=np.float32))
    out = metal.create_buffer(1001, "float", storage="private")
    metal.run_function(1001, [src, out, 2.0])
    with pytest.raises(ValueError):
        out.contents
    np.testing.assert_allclose(out.readback(), np.arange(1001, dtype=np.float32) + 2.0)
    shared = metal.create_buffer(1001, "float")
    out.copy_to(shared)
    np.testing.assert_allclose(shared.contents, np.arange(1001, dtype=np.float32) + 2.0)
    # Sizes that are not multiples of 4 bytes (blits on macOS need multiples of 4).
    odd = metal.create_buffer(7, "uchar", storage="private")
    odd.upload(np.arange(7, dtype=np.uint8))
    np.testing.assert_array_equal(odd.readback(), np.arange(7, dtype=np.uint8))
    other = metal.create_buffer(7, "uchar", storage="private")
    odd.copy_to(other)
    np.testing.assert_array_equal(other.readback(), np.arange(7, dtype=np.uint8))


def test_private_buffer_starts_zeroed(metal):
    buf = metal.create_buffer(100, "int", storage="private")
    np.testing.assert_array_equal(buf.readback(), np.zeros(100, dtype=np.int32))


def test_function_constants_by_index_and_name(metal):
    metal.load_shader_from_string(CONSTANTS)
    out = metal.create_buffer(16, "float")
    metal.set_function("affine", constants={0: 3, 1: 0.5})
    metal.run_function(16, [out])
    np.testing.assert_allclose(out.contents, np.arange(16) * 3 + 0.5)
    metal.set_function("affine", constants={"scale": -2, "offset": 1.0})
    metal.run_function(16, [out])
    np.testing.assert_allclose(out.contents, np.arange(16) * -2 + 1.0)


def test_compile_error_names_file_and_line(metal, tmp_path):
    path = tmp_path / "broken.metal"
    path.write_text(
        "#include <metal_stdlib>\nusing namespace metal;\n"
        "kernel void k(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n"
        "    o[i] = undefined_name;\n}\n"
    )
    with pytest.raises(mg.CompileError) as info:
        metal.load_shader(str(path))
    assert "broken.metal" in str(info.value)
    assert info.value.lineno == 4


def test_include_dirs_and_defines_reach_metal(metal, tmp_path):
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "helper.h").write_text("inline float helper(float x) { return x * FACTOR; }\n")
    metal.load_shader_from_string(
        '#include <metal_stdlib>\n#include "helper.h"\nusing namespace metal;\n'
        "kernel void k(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) "
        "{ o[i] = helper(float(i)); }\n",
        include_dirs=[str(tmp_path / "inc")],
        defines={"FACTOR": "4.0f"},
    )
    metal.set_function("k")
    out = metal.create_buffer(8, "float")
    metal.run_function(8, [out])
    np.testing.assert_allclose(out.contents, np.arange(8) * 4.0)


def test_non_uniform_edge_threadgroups(metal):
    metal.load_shader_from_string(
        "#include <metal_stdlib>\nusing namespace metal;\n"
        "kernel void k(device uint* o [[buffer(0)]], uint i [[thread_position_in_grid]],\n"
        "              uint tpg [[threads_per_threadgroup]]) { o[i] = tpg; }\n"
    )
    metal.set_function("k")
    out = metal.create_buffer(100, "uint")
    metal.run_function(100, [out], threadgroup=64)
    expected = np.array([64] * 64 + [36] * 36, dtype=np.uint32)
    np.testing.assert_array_equal(out.contents, expected)


@pytest.mark.skipif(not IS_DOUBLE, reason="reads the Metal test double's counters")
def test_double_pipeline_cache_and_no_leaks():
    gc.collect()
    before = _double_live_objects()
    iface = mg.Interface(backend="metal")
    iface.load_shader_from_string(ADD)
    a = iface.array_to_buffer(np.ones(64, dtype=np.float32))
    out = iface.create_buffer(64, "float")

    def work(times):
        for _ in range(times):
            iface.set_function("add")
            iface.run_function(64, [a, out, 1.0])
            iface.run_function(64, [out], function_name="twice", wait_for_completion=False)
        iface.synchronize()

    work(1)
    after_first = _double_live_objects()
    work(5)
    # Same (library, function, constants): no new pipelines, functions or libraries, and every
    # command buffer, encoder and autoreleased object of those dispatches is gone.
    assert _double_live_objects() == after_first
    np.testing.assert_allclose(out.contents, 4.0)
    del a, out, iface
    gc.collect()
    assert _double_live_objects() == before


@pytest.mark.skipif(not IS_DOUBLE, reason="switches a setting of the Metal test double")
def test_double_uniform_dispatch_fallback():
    # A device without non-uniform threadgroups: the backend must use dispatchThreadgroups.
    code = (
        "import metalgpu as mg, numpy as np\n"
        "i = mg.Interface(backend='metal')\n"
        "i.load_shader_from_string('#include <metal_stdlib>\\nusing namespace metal;\\n"
        "kernel void k(device uint* o [[buffer(0)]], uint i [[thread_position_in_grid]]) { o[i] = 1; }\\n')\n"
        "i.set_function('k')\n"
        "o = i.create_buffer(128, 'uint')\n"
        "i.run_function(128, [o], threadgroup=32)\n"
        "assert (o.contents == 1).all()\n"
        "print('ok')\n"
    )
    env = dict(os.environ, METALGPU_METAL_DOUBLE_UNIFORM_ONLY="1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


# ----------------------------------------------------------------------------- textures

TEXTURES = """
#include <metal_stdlib>
using namespace metal;
kernel void scale(texture2d<float, access::read> a [[texture(0)]], texture2d<float, access::write> b [[texture(1)]],
                  uint2 g [[thread_position_in_grid]]) {
    b.write(a.read(g) * 2.0f, g);
}
kernel void bump(texture2d<float, access::read_write> t [[texture(0)]], uint2 g [[thread_position_in_grid]]) {
    t.write(t.read(g) + 1.0f, g);
}
kernel void smp(texture2d<float> t [[texture(0)]], sampler s [[sampler(0)]], device float4* out [[buffer(0)]],
                uint i [[thread_position_in_grid]]) {
    out[i] = t.sample(s, float2(0.5f));
}
"""


def _double_texture_copies() -> int:
    return _double_counter("texture_copies")


def test_private_textures_in_kernels(metal):
    metal.load_shader_from_string(TEXTURES)
    data = np.arange(24, dtype=np.float32).reshape(3, 4, 2)
    a = metal.create_texture(4, 3, format="rg32float", storage="private")
    b = metal.create_texture(4, 3, format="rg32float", storage="private")
    a.upload(data)
    metal.run_function((4, 3), [], function_name="scale", textures=[a, b])
    np.testing.assert_array_equal(b.readback(), data * 2)
    shared = metal.create_texture(4, 3, format="rg32float")
    b.copy_to(shared)
    np.testing.assert_array_equal(shared.contents, data * 2)
    metal.run_function((4, 3), [], function_name="bump", textures=[shared], wait_for_completion=False)
    np.testing.assert_array_equal(shared.contents, data * 2 + 1)  # .contents waits for the run


@pytest.mark.skipif(not IS_DOUBLE, reason="reads the Metal test double's counters")
def test_texture_mirrors_are_copied_only_when_needed(metal):
    metal.load_shader_from_string(TEXTURES)
    a = metal.create_texture(4, 3, format="r32float")
    b = metal.create_texture(4, 3, format="r32float")
    a.upload(np.ones((3, 4, 1), np.float32))
    start = _double_texture_copies()
    metal.run_function((4, 3), [], function_name="scale", textures=[a, b])
    assert _double_texture_copies() - start == 2  # both mirrors in (a written, b's zeros)
    start = _double_texture_copies()
    for _ in range(4):  # a chain on the GPU: nothing moves
        metal.run_function((4, 3), [], function_name="bump", textures=[b])
    assert _double_texture_copies() == start
    np.testing.assert_array_equal(b.readback(), np.full((3, 4, 1), 6.0, np.float32))
    assert _double_texture_copies() - start == 1  # one copy out, when the host asked
    view = b.contents  # a live view: the host may write any time, and must see kernel writes
    start = _double_texture_copies()
    metal.run_function((4, 3), [], function_name="bump", textures=[b])
    assert _double_texture_copies() - start == 2
    assert (view == 7.0).all()


@pytest.mark.skipif(not IS_DOUBLE, reason="reads the Metal test double's counters")
def test_textures_and_samplers_do_not_leak():
    gc.collect()
    before = _double_live_objects()
    iface = mg.Interface(backend="metal")
    iface.load_shader_from_string(TEXTURES)
    t = iface.create_texture(2, 2, format="rgba32float")
    t.upload(np.full((2, 2, 4), 3.0, np.float32))
    p = iface.create_texture(2, 2, format="rgba32float", storage="private")
    t.copy_to(p)
    out = iface.create_buffer(4, "float4")
    for address in ("repeat", "clamp_to_zero", "repeat"):
        iface.run_function(4, [out], function_name="smp", textures=[p],
                           samplers=[iface.create_sampler(filter="linear", address=address)])
    np.testing.assert_array_equal(out.contents, 3.0)
    del t, p, out, iface
    gc.collect()
    assert _double_live_objects() == before
