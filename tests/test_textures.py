"""Textures and samplers: texture1d/1d_array/2d/2d_array/3d in kernels, read/write/sample,
every format class in 1, 2 and 4 channels, and the host side (create_texture, contents,
upload/readback/copy_to, samplers, errors). numpy is the oracle: sampling is re-implemented
below, following Metal's (and Vulkan's) rules for nearest and linear filtering at level 0."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import metalgpu as mg


# Metal defines sampling with pixel coordinates (normalized=False) only with clamp_to_edge and
# clamp_to_zero addressing (MTLSamplerDescriptor.normalizedCoordinates; MSL spec, samplers).
PIXEL_ADDRESS_UNDEFINED_ON_METAL = ("repeat", "mirrored_repeat")

# ----------------------------------------------------------------------------- numpy reference

ADDRESS_MODES = ["clamp_to_edge", "repeat", "mirrored_repeat", "clamp_to_zero"]


def _wrap(i, n, mode):
    """Integer texel coordinates through an address mode -> (index, inside)."""
    if mode == "repeat":
        return np.mod(i, n), np.ones(i.shape, bool)
    if mode == "mirrored_repeat":
        t = np.mod(i, 2 * n)
        return np.where(t < n, t, 2 * n - 1 - t), np.ones(i.shape, bool)
    if mode == "clamp_to_zero":
        inside = (i >= 0) & (i < n)
        return np.clip(i, 0, n - 1), inside
    return np.clip(i, 0, n - 1), np.ones(i.shape, bool)


def ref_sample(img, coords, filt, address, normalized):
    """img: texels as float, shape (*spatial reversed, C) e.g. (H, W, C); coords: (N, dims) in
    x, y, z order. Returns (N, 4) like Metal: missing channels 0, alpha 1; clamp_to_zero
    gives (0,0,0,0) for formats with alpha, (0,0,0,1) without."""
    img = np.asarray(img, np.float64)
    dims = img.ndim - 1
    channels = img.shape[-1]
    full = np.zeros(img.shape[:-1] + (4,))
    full[..., 3] = 1.0
    full[..., :channels] = img
    sizes = img.shape[:-1][::-1]  # x, y, z
    border = np.array([0, 0, 0, 0.0 if channels == 4 else 1.0])
    coords = np.asarray(coords, np.float32)
    idx0, idx1, frac, in0, in1 = [], [], [], [], []
    for d in range(dims):
        x = coords[:, d].astype(np.float32)
        if normalized:
            x = x * np.float32(sizes[d])
        if filt == "linear":
            x = x - np.float32(0.5)
        f = np.floor(x)
        i0 = f.astype(np.int64)
        i1 = i0 + 1 if filt == "linear" else i0
        a = (x - f).astype(np.float64) if filt == "linear" else np.zeros(len(x))
        w0, ok0 = _wrap(i0, sizes[d], address)
        w1, ok1 = _wrap(i1, sizes[d], address)
        idx0.append(w0), idx1.append(w1), frac.append(a), in0.append(ok0), in1.append(ok1)
    out = np.zeros((len(coords), 4))
    for corner in range(1 << dims if filt == "linear" else 1):
        weight = np.ones(len(coords))
        inside = np.ones(len(coords), bool)
        index = []
        for d in range(dims):
            hi = (corner >> d) & 1
            index.append(idx1[d] if hi else idx0[d])
            inside &= in1[d] if hi else in0[d]
            weight *= frac[d] if hi else 1.0 - frac[d]
        texel = full[tuple(index[::-1])]
        texel = np.where(inside[:, None], texel, border)
        out += weight[:, None] * texel
    return out


# ----------------------------------------------------------------------------- formats

# format -> (numpy dtype, value class, how kernels see stored values)
FORMATS = {
    "r32float": (np.float32, "f"), "rg32float": (np.float32, "f"), "rgba32float": (np.float32, "f"),
    "r16float": (np.float16, "f"), "rg16float": (np.float16, "f"), "rgba16float": (np.float16, "f"),
    "r8unorm": (np.uint8, "f"), "rg8unorm": (np.uint8, "f"), "rgba8unorm": (np.uint8, "f"),
    "r8snorm": (np.int8, "f"), "rgba8snorm": (np.int8, "f"),
    "r16unorm": (np.uint16, "f"), "rgba16snorm": (np.int16, "f"),
    "r32uint": (np.uint32, "u"), "rg32uint": (np.uint32, "u"), "rgba32uint": (np.uint32, "u"),
    "r32sint": (np.int32, "i"), "rg32sint": (np.int32, "i"), "rgba32sint": (np.int32, "i"),
    "r16uint": (np.uint16, "u"), "rg16sint": (np.int16, "i"), "rgba16uint": (np.uint16, "u"),
    "r8uint": (np.uint8, "u"), "rg8sint": (np.int8, "i"), "rgba8uint": (np.uint8, "u"), "rgba8sint": (np.int8, "i"),
}


def _as_seen(fmt, stored):
    """What a kernel reads from stored texels (before filling missing channels)."""
    v = stored.astype(np.float64)
    if fmt.endswith("8unorm"):
        return v / 255.0
    if fmt.endswith("16unorm"):
        return v / 65535.0
    if fmt.endswith("8snorm"):
        return np.maximum(v / 127.0, -1.0)
    if fmt.endswith("16snorm"):
        return np.maximum(v / 32767.0, -1.0)
    return v


def _channels(fmt):
    return {"r": 1, "rg": 2, "rgba": 4}[fmt[: len(fmt) - len(fmt.lstrip("rgba"))]]


def _random_texels(fmt, shape, rng):
    dtype, _ = FORMATS[fmt]
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(-4, 4, shape).astype(dtype)
    info = np.iinfo(dtype)
    lo = -127 if fmt.endswith("snorm") and dtype == np.int8 else (-32767 if fmt.endswith("snorm") else info.min)
    hi = info.max
    return rng.integers(lo, hi, shape, endpoint=True, dtype=np.int64).astype(dtype)


RW_SOURCE = """#include <metal_stdlib>
using namespace metal;
kernel void rw_f(texture2d<float, access::read> a [[texture(0)]], texture2d<float, access::write> b [[texture(1)]],
                 device float4* out [[buffer(0)]], uint2 g [[thread_position_in_grid]]) {
  float4 v = a.read(g);
  out[g.y * a.get_width() + g.x] = v;
  b.write(v, g);
}
kernel void rw_u(texture2d<uint, access::read> a [[texture(0)]], texture2d<uint, access::write> b [[texture(1)]],
                 device uint4* out [[buffer(0)]], uint2 g [[thread_position_in_grid]]) {
  uint4 v = a.read(g);
  out[g.y * a.get_width() + g.x] = v;
  b.write(v, g);
}
kernel void rw_i(texture2d<int, access::read> a [[texture(0)]], texture2d<int, access::write> b [[texture(1)]],
                 device int4* out [[buffer(0)]], uint2 g [[thread_position_in_grid]]) {
  int4 v = a.read(g);
  out[g.y * a.get_width() + g.x] = v;
  b.write(v, g);
}
kernel void rw_h(texture2d<half, access::read_write> a [[texture(0)]], device float4* out [[buffer(0)]],
                 ushort2 g [[thread_position_in_grid]]) {
  half4 v = a.read(g);
  out[g.y * a.get_width() + g.x] = float4(v);
  a.write(v * half(2), g);
}
"""


@pytest.fixture
def rw(iface):
    iface.load_shader_from_string(RW_SOURCE)
    return iface


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_read_write_every_format(rw, fmt):
    rng = np.random.default_rng(abs(hash(fmt)) % 2**32)
    dtype, cls = FORMATS[fmt]
    w, h, c = 5, 3, _channels(fmt)
    a = rw.create_texture(w, h, format=fmt)
    b = rw.create_texture(w, h, format=fmt)
    assert a.contents.shape == (h, w, c) and a.contents.dtype == dtype
    data = _random_texels(fmt, (h, w, c), rng)
    a.upload(data)
    out = rw.create_buffer(w * h, {"f": "float4", "u": "uint4", "i": "int4"}[cls])
    rw.run_function((w, h), [out], function_name="rw_" + cls, textures=[a, b])
    expected = np.zeros((h, w, 4))
    expected[..., 3] = 1
    expected[..., :c] = _as_seen(fmt, data)
    got = out.contents.reshape(h, w, 4).astype(np.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(b.readback(), data)  # writes convert back exactly


def test_half_texture_read_write_in_place(rw):
    t = rw.create_texture(4, 2, format="rgba16float")
    data = np.linspace(-2, 2, 32, dtype=np.float16).reshape(2, 4, 4)
    t.upload(data)
    out = rw.create_buffer(8, "float4")
    rw.run_function((4, 2), [out], function_name="rw_h", textures=[t])
    np.testing.assert_array_equal(out.contents.reshape(2, 4, 4), data.astype(np.float32))
    np.testing.assert_array_equal(t.contents, data * np.float16(2))


def test_write_converts_floats_to_normalised_and_saturates(iface):
    iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
kernel void fill(texture1d<float, access::write> u [[texture(0)]], texture1d<float, access::write> s [[texture(1)]],
                 texture1d<uint, access::write> i [[texture(2)]], uint x [[thread_position_in_grid]]) {
  float v = float(x) * 0.25f - 0.5f;   // -0.5 .. 1.25
  u.write(float4(v), x);
  s.write(float4(v), x);
  i.write(uint4(x * 100u), x);
}
""")
    u = iface.create_texture(8, texture_type="1d", format="r8unorm")
    s = iface.create_texture(8, texture_type="1d", format="r8snorm")
    i = iface.create_texture(8, texture_type="1d", format="r8uint")
    iface.run_function(8, [], textures=[u, s, i], function_name="fill")
    v = np.arange(8) * 0.25 - 0.5
    np.testing.assert_array_equal(u.contents[:, 0], np.floor(np.clip(v, 0, 1) * 255 + 0.5).astype(np.uint8))
    np.testing.assert_array_equal(s.contents[:, 0], np.round(np.clip(v, -1, 1) * 127).astype(np.int8))
    np.testing.assert_array_equal(i.contents[:, 0], np.minimum(np.arange(8) * 100, 255).astype(np.uint8))


# ----------------------------------------------------------------------------- dimensions

DIMS_SOURCE = """#include <metal_stdlib>
using namespace metal;
kernel void copy1d(texture1d<float, access::read> a [[texture(0)]], texture1d<float, access::write> b [[texture(1)]],
                   uint x [[thread_position_in_grid]]) {
  b.write(a.read(x) + 1.0f, x);
}
kernel void copy1da(texture1d_array<float, access::read> a [[texture(0)]],
                    texture1d_array<float, access::write> b [[texture(1)]], uint2 g [[thread_position_in_grid]]) {
  b.write(a.read(g.x, g.y) + 1.0f, g.x, g.y);
}
kernel void copy2da(texture2d_array<uint, access::read> a [[texture(0)]],
                    texture2d_array<uint, access::write> b [[texture(1)]], uint3 g [[thread_position_in_grid]]) {
  b.write(a.read(g.xy, g.z) + 1u, g.xy, g.z);
}
kernel void copy3d(texture3d<int, access::read> a [[texture(0)]], texture3d<int, access::write> b [[texture(1)]],
                   uint3 g [[thread_position_in_grid]]) {
  b.write(a.read(g) * 3, g);
}
kernel void sizes(texture1d<float> t1 [[texture(0)]], texture2d<float> t2 [[texture(1)]],
                  texture3d<float> t3 [[texture(2)]], texture2d_array<float> t4 [[texture(3)]],
                  texture1d_array<float> t5 [[texture(4)]], device uint* out [[buffer(0)]]) {
  out[0] = t1.get_width();
  out[1] = t2.get_width(); out[2] = t2.get_height();
  out[3] = t3.get_width(); out[4] = t3.get_height(); out[5] = t3.get_depth();
  out[6] = t4.get_width(); out[7] = t4.get_height(); out[8] = t4.get_array_size();
  out[9] = t5.get_width(); out[10] = t5.get_array_size();
  out[11] = t2.get_num_mip_levels();
}
"""


@pytest.fixture
def dims(iface):
    iface.load_shader_from_string(DIMS_SOURCE)
    return iface


def test_texture1d(dims):
    a = dims.create_texture(7, texture_type="1d", format="rg32float")
    b = dims.create_texture(7, texture_type="1d", format="rg32float")
    assert a.texture_type == "1d" and a.contents.shape == (7, 2)
    data = np.arange(14, dtype=np.float32).reshape(7, 2)
    a.upload(data)
    dims.run_function(7, [], function_name="copy1d", textures=[a, b])
    np.testing.assert_array_equal(b.contents, data + 1)


def test_texture1d_array(dims):
    a = dims.create_texture(6, format="r32float", texture_type="1d_array", array_length=3)
    b = dims.create_texture(6, format="r32float", texture_type="1d_array", array_length=3)
    assert a.texture_type == "1d_array" and a.contents.shape == (3, 6, 1)
    data = np.arange(18, dtype=np.float32).reshape(3, 6, 1)
    a.upload(data)
    dims.run_function((6, 3), [], function_name="copy1da", textures=[a, b])
    np.testing.assert_array_equal(b.contents, data + 1)


def test_texture2d_array(dims):
    a = dims.create_texture(5, 4, format="rgba32uint", array_length=3)
    b = dims.create_texture(5, 4, format="rgba32uint", array_length=3)
    assert a.texture_type == "2d_array" and a.contents.shape == (3, 4, 5, 4)
    data = np.arange(3 * 4 * 5 * 4, dtype=np.uint32).reshape(3, 4, 5, 4)
    a.upload(data)
    dims.run_function((5, 4, 3), [], function_name="copy2da", textures=[a, b])
    np.testing.assert_array_equal(b.contents, data + 1)


def test_texture3d(dims):
    a = dims.create_texture(4, 3, 5, format="r32sint")
    b = dims.create_texture(4, 3, 5, format="r32sint")
    assert a.texture_type == "3d" and a.contents.shape == (5, 3, 4, 1)
    data = (np.arange(60, dtype=np.int32) - 30).reshape(5, 3, 4, 1)
    a.upload(data)
    dims.run_function((4, 3, 5), [], function_name="copy3d", textures=[a, b])
    np.testing.assert_array_equal(b.contents, data * 3)


def test_get_sizes(dims):
    t1 = dims.create_texture(9, texture_type="1d")
    t2 = dims.create_texture(7, 5)
    t3 = dims.create_texture(3, 4, 6)
    t4 = dims.create_texture(2, 8, array_length=5)
    t5 = dims.create_texture(11, texture_type="1d_array", array_length=2)
    out = dims.create_buffer(12, "uint")
    dims.run_function(1, [out], function_name="sizes", textures=[t1, t2, t3, t4, t5])
    assert list(out.contents) == [9, 7, 5, 3, 4, 6, 2, 8, 5, 11, 2, 1]


def test_row_of_a_2d_texture_as_texture1d(dims):
    """cpu and cuda read a height-1 2D texture through a texture1d parameter (the same texels);
    Metal binds texture objects by type, so there it is a TypeError that says what to create."""
    a = dims.create_texture(5, format="rg32float")  # 2d, height 1
    b = dims.create_texture(5, texture_type="1d", format="rg32float")
    a.upload(np.arange(10, dtype=np.float32).reshape(1, 5, 2))
    if dims.backend == "metal":
        with pytest.raises(TypeError, match='texture_type="1d"'):
            dims.run_function(5, [], function_name="copy1d", textures=[a, b])
        return
    dims.run_function(5, [], function_name="copy1d", textures=[a, b])
    np.testing.assert_array_equal(b.contents, np.arange(10, dtype=np.float32).reshape(5, 2) + 1)


def test_texture_parameters_without_attributes_take_next_index(iface):
    iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
kernel void k(texture2d<float, access::read> a, texture2d<float, access::write> b, sampler s,
              device float* unused, uint2 g [[thread_position_in_grid]]) {
  b.write(a.read(g) + a.sample(s, float2(0.5f)).x * 0.0f, g);
}
""")
    a = iface.create_texture(2, 2, format="r32float")
    b = iface.create_texture(2, 2, format="r32float")
    a.upload(np.array([1, 2, 3, 4], np.float32))
    iface.run_function((2, 2), [iface.create_buffer(1)], textures=[a, b], samplers=[iface.create_sampler()],
                       function_name="k")
    np.testing.assert_array_equal(b.contents.ravel(), [1, 2, 3, 4])


# ----------------------------------------------------------------------------- sampling

SAMPLE_ARG_SOURCE = """#include <metal_stdlib>
using namespace metal;
kernel void sample2d(texture2d<float> t [[texture(0)]], sampler s [[sampler(0)]],
                     const device float2* uv [[buffer(0)]], device float4* out [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) {
  out[i] = t.sample(s, uv[i]);
}
kernel void sample1d(texture1d<float> t [[texture(0)]], sampler s [[sampler(0)]],
                     const device float* uv [[buffer(0)]], device float4* out [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) {
  out[i] = t.sample(s, uv[i]);
}
kernel void sample3d(texture3d<float> t [[texture(0)]], sampler s [[sampler(0)]],
                     const device packed_float3* uv [[buffer(0)]], device float4* out [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) {
  out[i] = t.sample(s, float3(uv[i]));
}
kernel void sample2da(texture2d_array<float> t [[texture(0)]], sampler s [[sampler(0)]],
                      const device float2* uv [[buffer(0)]], device float4* out [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
  out[i] = t.sample(s, uv[i], i % 3);
}
"""


def _coords(rng, n, dims, size, normalized):
    if normalized:
        return rng.uniform(-1.6, 2.6, (n, dims)).astype(np.float32)
    return (rng.uniform(-1.6, 2.6, (n, dims)) * np.array(size[:dims])).astype(np.float32)


@pytest.fixture
def sampling(iface):
    iface.load_shader_from_string(SAMPLE_ARG_SOURCE)
    return iface


@pytest.mark.parametrize("normalized", [True, False], ids=["normalized", "pixel"])
@pytest.mark.parametrize("address", ADDRESS_MODES)
@pytest.mark.parametrize("filt", ["nearest", "linear"])
def test_sample2d_with_sampler_argument(sampling, filt, address, normalized):
    rng = np.random.default_rng(7)
    w, h = 5, 4
    img = rng.uniform(0, 1, (h, w, 4)).astype(np.float32)
    tex = sampling.create_texture(w, h, format="rgba32float")
    tex.upload(img)
    uv = _coords(rng, 512, 2, (w, h), normalized)
    out = sampling.create_buffer(len(uv), "float4")
    s = sampling.create_sampler(filter=filt, address=address, normalized=normalized)
    args = dict(function_name="sample2d", textures=[tex], samplers=[s])
    if sampling.backend == "metal" and not normalized and address in PIXEL_ADDRESS_UNDEFINED_ON_METAL:
        with pytest.raises(ValueError, match="pixel coordinates"):
            sampling.run_function(len(uv), [sampling.array_to_buffer(uv), out], **args)
        return
    sampling.run_function(len(uv), [sampling.array_to_buffer(uv), out], **args)
    np.testing.assert_allclose(out.contents, ref_sample(img, uv, filt, address, normalized), atol=2e-5)


@pytest.mark.parametrize("fmt", ["r32float", "rg16float", "rgba8unorm", "r8unorm"])
@pytest.mark.parametrize("address", ["clamp_to_zero", "repeat"])
def test_sample_formats_and_missing_channels(sampling, fmt, address):
    rng = np.random.default_rng(3)
    w, h, c = 6, 3, _channels(fmt)
    dtype = FORMATS[fmt][0]
    data = _random_texels(fmt, (h, w, c), rng) if "unorm" in fmt else rng.uniform(0, 1, (h, w, c)).astype(dtype)
    tex = sampling.create_texture(w, h, format=fmt)
    tex.upload(data)
    seen = _as_seen(fmt, tex.readback())
    uv = _coords(rng, 300, 2, (w, h), True)
    out = sampling.create_buffer(len(uv), "float4")
    s = sampling.create_sampler(filter="linear", address=address)
    sampling.run_function(len(uv), [sampling.array_to_buffer(uv), out], function_name="sample2d",
                          textures=[tex], samplers=[s])
    np.testing.assert_allclose(out.contents, ref_sample(seen, uv, "linear", address, True), atol=2e-3)


@pytest.mark.parametrize("address", ADDRESS_MODES)
@pytest.mark.parametrize("filt", ["nearest", "linear"])
def test_sample1d_and_3d(sampling, filt, address):
    rng = np.random.default_rng(11)
    t1 = sampling.create_texture(7, texture_type="1d", format="rg32float")
    img1 = rng.uniform(0, 1, (7, 2)).astype(np.float32)
    t1.upload(img1)
    uv1 = _coords(rng, 200, 1, (7,), True)
    out = sampling.create_buffer(len(uv1), "float4")
    s = sampling.create_sampler(filter=filt, address=address)
    sampling.run_function(len(uv1), [sampling.array_to_buffer(uv1[:, 0]), out], function_name="sample1d",
                          textures=[t1], samplers=[s])
    np.testing.assert_allclose(out.contents, ref_sample(img1, uv1, filt, address, True), atol=2e-5)

    t3 = sampling.create_texture(4, 3, 5, format="rgba32float")
    img3 = rng.uniform(0, 1, (5, 3, 4, 4)).astype(np.float32)
    t3.upload(img3)
    uv3 = _coords(rng, 300, 3, (4, 3, 5), True)
    out3 = sampling.create_buffer(len(uv3), "float4")
    sampling.run_function(len(uv3), [_packed3(sampling, uv3), out3],
                          function_name="sample3d", textures=[t3], samplers=[s])
    np.testing.assert_allclose(out3.contents, ref_sample(img3, uv3, filt, address, True), atol=2e-5)


def _packed3(iface, uv3):
    buf = iface.create_buffer(uv3.size, "float")
    buf.upload(uv3.ravel())
    return buf


def test_sample2d_array_uses_the_layer(sampling):
    rng = np.random.default_rng(5)
    tex = sampling.create_texture(4, 4, format="rgba32float", array_length=3)
    img = rng.uniform(0, 1, (3, 4, 4, 4)).astype(np.float32)
    tex.upload(img)
    uv = _coords(rng, 90, 2, (4, 4), True)
    out = sampling.create_buffer(len(uv), "float4")
    s = sampling.create_sampler(filter="linear", address="mirrored_repeat")
    sampling.run_function(len(uv), [sampling.array_to_buffer(uv), out], function_name="sample2da",
                          textures=[tex], samplers=[s])
    expected = np.empty((len(uv), 4))
    for layer in range(3):
        rows = np.arange(len(uv)) % 3 == layer
        expected[rows] = ref_sample(img[layer], uv[rows], "linear", "mirrored_repeat", True)
    np.testing.assert_allclose(out.contents, expected, atol=2e-5)


@pytest.mark.parametrize("scope", ["program", "kernel"])
@pytest.mark.parametrize("address", ADDRESS_MODES)
@pytest.mark.parametrize("filt", ["nearest", "linear"])
@pytest.mark.parametrize("normalized", [True, False], ids=["normalized", "pixel"])
def test_constexpr_sampler(iface, scope, filt, address, normalized):
    if iface.backend == "metal" and not normalized and address in PIXEL_ADDRESS_UNDEFINED_ON_METAL:
        pytest.skip("undefined in Metal: pixel coordinates need clamp_to_edge or clamp_to_zero")
    decl = (f"constexpr sampler s(coord::{'normalized' if normalized else 'pixel'}, "
            f"address::{address}, filter::{filt});")
    src = ("#include <metal_stdlib>\nusing namespace metal;\n" + (decl if scope == "program" else "") + """
kernel void k(texture2d<float, access::sample> t [[texture(0)]], const device float2* uv [[buffer(0)]],
              device float4* out [[buffer(1)]], uint i [[thread_position_in_grid]]) {
  """ + (decl if scope == "kernel" else "") + """
  out[i] = t.sample(s, uv[i]);
}
""")
    iface.load_shader_from_string(src)
    iface.set_function("k")
    rng = np.random.default_rng(2)
    w, h = 3, 5
    img = rng.uniform(0, 1, (h, w, 2)).astype(np.float32)
    tex = iface.create_texture(w, h, format="rg32float")
    tex.upload(img)
    uv = _coords(rng, 256, 2, (w, h), normalized)
    out = iface.create_buffer(len(uv), "float4")
    iface.run_function(len(uv), [iface.array_to_buffer(uv), out], textures=[tex])
    np.testing.assert_allclose(out.contents, ref_sample(img, uv, filt, address, normalized), atol=2e-5)


def test_constexpr_sampler_per_axis_options(iface):
    iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
constant constexpr sampler s(s_address::repeat, t_address::clamp_to_edge, mag_filter::linear,
                             min_filter::linear, mip_filter::none, coord::normalized);
kernel void k(texture2d<float> t [[texture(0)]], const device float2* uv [[buffer(0)]],
              device float4* out [[buffer(1)]], uint i [[thread_position_in_grid]]) {
  constexpr sampler d;  // defaults: normalised, clamp_to_edge, nearest
  out[i] = t.sample(s, uv[i]) + 0.0f * t.sample(d, uv[i]);
}
""")
    iface.set_function("k")
    rng = np.random.default_rng(9)
    img = rng.uniform(0, 1, (4, 4, 1)).astype(np.float32)
    tex = iface.create_texture(4, 4, format="r32float")
    tex.upload(img)
    uv = _coords(rng, 200, 2, (4, 4), True)
    out = iface.create_buffer(len(uv), "float4")
    iface.run_function(len(uv), [iface.array_to_buffer(uv), out], textures=[tex])
    # s repeats, t clamps: build the reference from two single-axis references.
    x_rep = ref_sample(img, uv, "linear", "repeat", True)
    y_clamp = ref_sample(img, uv, "linear", "clamp_to_edge", True)
    inside_t = (uv[:, 1] * 4 >= 0.5) & (uv[:, 1] * 4 <= 3.5)
    inside_s = (uv[:, 0] * 4 >= 0.5) & (uv[:, 0] * 4 <= 3.5)
    got = out.contents
    np.testing.assert_allclose(got[inside_t], x_rep[inside_t], atol=2e-5)
    np.testing.assert_allclose(got[inside_s], y_clamp[inside_s], atol=2e-5)


# ----------------------------------------------------------------------------- host side

def test_contents_shapes_and_dtypes(iface):
    assert iface.create_texture(4, 3, format="rgba8unorm").contents.dtype == np.uint8
    assert iface.create_texture(4, 3, format="rg16float").contents.dtype == np.float16
    assert iface.create_texture(4, 3, format="r32sint").contents.dtype == np.int32
    assert iface.create_texture(4, 3, format="rgba8snorm").contents.dtype == np.int8
    t = iface.create_texture(4, 3, 2, format="rg32uint")
    assert (t.width, t.height, t.depth, t.format) == (4, 3, 2, "rg32uint")
    assert t.contents.shape == (2, 3, 4, 2) and t.contents.dtype == np.uint32
    assert t.nbytes == 4 * 3 * 2 * 8
    assert not t.contents.any()  # zero-filled
    assert "rgba8unorm" in mg._core.texture_formats


def test_contents_is_a_live_view(iface):
    iface.load_shader_from_string(RW_SOURCE)
    a = iface.create_texture(3, 2, format="r32float")
    b = iface.create_texture(3, 2, format="r32float")
    view = a.contents
    view[...] = 5.0
    out = iface.create_buffer(6, "float4")
    iface.run_function((3, 2), [out], function_name="rw_f", textures=[a, b])
    bview = b.contents
    assert (bview == 5.0).all()
    view[0, 0, 0] = 7.0
    iface.run_function((3, 2), [out], function_name="rw_f", textures=[a, b])
    assert bview[0, 0, 0] == 7.0


def test_upload_readback_copy_to(iface):
    a = iface.create_texture(4, 2, format="rgba16float")
    data = np.arange(32, dtype=np.float16).reshape(2, 4, 4)
    a.upload(data)
    np.testing.assert_array_equal(a.readback(), data)
    b = iface.create_texture(4, 2, format="rgba16float", storage="private")
    a.copy_to(b)
    np.testing.assert_array_equal(b.readback(), data)
    with pytest.raises(ValueError, match="private"):
        b.contents
    with pytest.raises(ValueError):
        a.copy_to(iface.create_texture(4, 2, format="rgba32float"))
    with pytest.raises(ValueError):
        a.upload(np.zeros(5, np.float16))
    with pytest.raises(TypeError):
        iface.create_texture(2, 2, format="rgba8unorm").upload(np.zeros((2, 2, 4), np.float32))


def test_sampler_objects(iface):
    s = iface.create_sampler(filter="linear", address="repeat", normalized=False)
    assert (s.filter, s.address, s.normalized) == ("linear", "repeat", False)
    assert s == mg.Sampler(filter="linear", address="repeat", normalized=False)
    with pytest.raises(ValueError, match="filter"):
        iface.create_sampler(filter="cubic")
    with pytest.raises(ValueError, match="address"):
        iface.create_sampler(address="wrap")


# ----------------------------------------------------------------------------- errors

ERR_SOURCE = """#include <metal_stdlib>
using namespace metal;
kernel void k(texture2d<float, access::read> src [[texture(0)]], texture2d<uint, access::write> dst [[texture(1)]],
              sampler smp [[sampler(0)]], uint2 g [[thread_position_in_grid]]) {
  dst.write(uint4(src.sample(smp, float2(0.5f)) + src.read(g)), g);
}
"""


@pytest.fixture
def err(iface):
    iface.load_shader_from_string(ERR_SOURCE)
    iface.set_function("k")
    a = iface.create_texture(2, 2, format="rgba32float")
    b = iface.create_texture(2, 2, format="rgba32uint")
    return iface, a, b, iface.create_sampler()


def test_bound_correctly_runs(err):
    iface, a, b, s = err
    a.upload(np.full((2, 2, 4), 2.0, np.float32))
    iface.run_function((2, 2), [], textures=[a, b], samplers=[s])
    assert (b.contents == 4).all()


def test_unbound_texture_names_the_parameter(err):
    iface, a, b, s = err
    with pytest.raises(ValueError, match="dst"):
        iface.run_function((2, 2), [], textures=[a], samplers=[s])
    with pytest.raises(ValueError, match="src"):
        iface.run_function((2, 2), [], textures=[None, b], samplers=[s])


def test_unbound_sampler_names_the_parameter(err):
    iface, a, b, s = err
    with pytest.raises(ValueError, match="smp"):
        iface.run_function((2, 2), [], textures=[a, b])


def test_wrong_kinds_are_type_errors(err):
    iface, a, b, s = err
    buf = iface.create_buffer(16, "float")
    with pytest.raises(TypeError, match="textures\\[0\\]"):
        iface.run_function((2, 2), [], textures=[buf, b], samplers=[s])
    with pytest.raises(TypeError, match="samplers\\[0\\]"):
        iface.run_function((2, 2), [], textures=[a, b], samplers=[a])
    with pytest.raises(TypeError):
        iface.run_function((2, 2), [], textures=a, samplers=[s])


def test_element_type_and_texture_type_mismatch(err):
    iface, a, b, s = err
    unorm = iface.create_texture(2, 2, format="rgba8unorm")
    with pytest.raises(TypeError, match="rgba8unorm"):  # texture2d<uint> on a unorm texture
        iface.run_function((2, 2), [], textures=[a, unorm], samplers=[s])
    with pytest.raises(TypeError):  # texture2d<float> on a uint texture
        iface.run_function((2, 2), [], textures=[b, b], samplers=[s])
    with pytest.raises(TypeError, match="texture3d"):
        iface.run_function((2, 2), [], textures=[iface.create_texture(2, 2, 2), b], samplers=[s])


def test_bad_format_and_sizes(iface):
    with pytest.raises(ValueError, match="rgba8unorm"):  # the message lists the known formats
        iface.create_texture(4, 4, format="rgb8unorm")
    with pytest.raises(ValueError):
        iface.create_texture(0, 4)
    with pytest.raises(TypeError):
        iface.create_texture(4.0, 4)
    with pytest.raises(ValueError):
        iface.create_texture(4, 4, texture_type="cube")


def test_released_texture(err):
    iface, a, b, s = err
    view = a.contents
    a.release()
    assert a.released
    view[...] = 1.0  # a view taken earlier keeps the memory alive
    with pytest.raises(ValueError, match="released"):
        a.contents
    with pytest.raises(ValueError, match="released"):
        a.readback()
    with pytest.raises(ValueError, match="released"):
        iface.run_function((2, 2), [], textures=[a, b], samplers=[s])


def test_texture_outlives_its_interface(backend):
    iface = mg.Interface(backend=backend)
    t = iface.create_texture(2, 2, format="r32float")
    view = t.contents
    del iface
    gc.collect()
    view[...] = 3.0
    assert (view == 3.0).all()
    with pytest.raises(ValueError, match="Interface"):
        t.readback()


def test_unsupported_texture_kinds_are_compile_errors(iface):
    with pytest.raises(mg.CompileError, match="depth2d"):
        iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
kernel void k(depth2d<float> d [[texture(0)]], device float* o [[buffer(0)]]) { o[0] = 0; }
""")
    with pytest.raises(mg.CompileError, match="texturecube"):
        iface.load_shader_from_string("""#include <metal_stdlib>
using namespace metal;
kernel void k(texturecube<float> d [[texture(0)]], device float* o [[buffer(0)]]) { o[0] = 0; }
""")


def test_create_texture_defaults_follow_the_api(iface):
    """API.md: create_texture(width, height=1, depth=1, format="rgba32float") is a 2d texture."""
    tex = iface.create_texture(16)
    assert tex.contents.shape == (1, 16, 4)
    assert tex.contents.dtype == np.float32
    tex3 = iface.create_texture(4, 3, 2, "r32float")
    assert tex3.contents.shape == (2, 3, 4, 1)
