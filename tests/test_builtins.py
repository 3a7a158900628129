"""Built-in kernel arguments: positions, sizes and indices, checked against numpy.

Each kernel stores every built-in it receives into a per-thread record and counts how often
its thread ran. Buffers are sized for the grid rounded UP to whole threadgroups, so a thread
outside the grid (one that should never run) would land in the padding and be seen.
"""

from __future__ import annotations

import numpy as np
import pytest

import metalgpu as mg

BUILTINS = (
    "thread_position_in_grid",
    "thread_position_in_threadgroup",
    "threadgroup_position_in_grid",
    "threads_per_threadgroup",
    "threads_per_grid",
    "threadgroups_per_grid",
)
AXES = "xyz"


def _kernel_source(dims: int, scalar: str) -> str:
    """A kernel that writes its built-ins (as `scalar`, `scalar`2 or `scalar`3) to a record."""
    vec = scalar if dims == 1 else f"{scalar}{dims}"
    name = f"k{dims}_{vec}"
    stride = 6 * dims + 1
    params = [
        "device uint* out [[buffer(0)]]",
        "device uint* count [[buffer(1)]]",
    ]
    if dims >= 2:
        params.append("constant uint& px [[buffer(2)]]")
    if dims >= 3:
        params.append("constant uint& py [[buffer(3)]]")
    short = ["tpig", "tpitg", "tgpig", "tptg", "tpg", "tgpg"]
    for var, attr in zip(short, BUILTINS):
        params.append(f"{vec} {var} [[{attr}]]")
    params.append(f"{scalar} tiitg [[thread_index_in_threadgroup]]")

    def comp(var: str, axis: int) -> str:
        return f"uint({var})" if dims == 1 else f"uint({var}.{AXES[axis]})"

    if dims == 1:
        idx = "uint(tpig)"
    elif dims == 2:
        idx = "uint(tpig.y) * px + uint(tpig.x)"
    else:
        idx = "(uint(tpig.z) * py + uint(tpig.y)) * px + uint(tpig.x)"
    body = [f"    uint idx = {idx};", f"    device uint* r = out + idx * {stride}u;"]
    k = 0
    for var in short:
        for axis in range(dims):
            body.append(f"    r[{k}] = {comp(var, axis)};")
            k += 1
    body.append(f"    r[{k}] = uint(tiitg);")
    body.append("    count[idx] += 1u;")
    sep = ",\n    "
    return f"kernel void {name}(\n    {sep.join(params)})\n{{\n" + "\n".join(body) + "\n}\n"


KERNELS = [(d, s) for d in (1, 2, 3) for s in ("uint", "ushort")]
SOURCE = "#include <metal_stdlib>\nusing namespace metal;\n\n" + "\n".join(
    _kernel_source(d, s) for d, s in KERNELS
)


def _kname(dims: int, scalar: str) -> str:
    return f"k{dims}_{scalar}" if dims == 1 else f"k{dims}_{scalar}{dims}"


@pytest.fixture(scope="module")
def lib(backend):
    iface = mg.Interface(backend=backend)
    iface.load_shader_from_string(SOURCE)
    return iface


def _as3(v) -> tuple[int, int, int]:
    if isinstance(v, mg.MetalSize):
        return (v.width, v.height, v.depth)
    if isinstance(v, int):
        return (v, 1, 1)
    t = tuple(v)
    return t + (1,) * (3 - len(t))


def _expected(grid, tg):
    """numpy model of Metal's dispatchThreads geometry with non-uniform edge threadgroups."""
    g = np.array(grid, dtype=np.int64)
    t = np.array(tg, dtype=np.int64)
    z, y, x = np.meshgrid(*(np.arange(n) for n in grid[::-1]), indexing="ij")
    pos = np.stack([x, y, z], axis=-1)  # (gz, gy, gx, 3)
    tgpig = pos // t
    tpitg = pos % t
    tptg = np.minimum(t, g - tgpig * t)  # edge threadgroups are smaller
    tgpg = np.broadcast_to(-(-g // t), pos.shape)
    tpg = np.broadcast_to(g, pos.shape)
    tiitg = (
        tpitg[..., 0] + tpitg[..., 1] * tptg[..., 0] + tpitg[..., 2] * tptg[..., 0] * tptg[..., 1]
    )
    return [pos, tpitg, tgpig, tptg, tpg, tgpg], tiitg


def _run_and_check(iface, dims, scalar, grid_arg, tg_arg, grid, tg):
    padded = [-(-g // t) * t for g, t in zip(grid, tg)]
    stride = 6 * dims + 1
    cells = int(np.prod(padded))
    out = iface.create_buffer(cells * stride, "uint")
    count = iface.create_buffer(cells, "uint")
    out.contents[:] = 0xFFFFFFFF
    count.contents[:] = 0
    bufs = [out, count] + [padded[0], padded[1]][: dims - 1]
    iface.run_function(grid_arg, bufs, function_name=_kname(dims, scalar), threadgroup=tg_arg)

    px, py, pz = padded
    gx, gy, gz = grid
    cnt = count.contents.reshape(pz, py, px)
    # every in-grid thread ran exactly once, no thread outside the grid ran
    np.testing.assert_array_equal(cnt[:gz, :gy, :gx], 1)
    assert int(cnt.sum()) == gx * gy * gz

    rec = out.contents.reshape(pz, py, px, stride)[:gz, :gy, :gx]
    expected, tiitg = _expected(grid, tg)
    k = 0
    for name, exp in zip(BUILTINS, expected):
        for axis in range(dims):
            np.testing.assert_array_equal(
                rec[..., k], exp[..., axis], err_msg=f"{name}.{AXES[axis]}"
            )
            k += 1
    np.testing.assert_array_equal(rec[..., k], tiitg, err_msg="thread_index_in_threadgroup")


# (dims, scalar type, grid, threadgroup): several grids are NOT multiples of the threadgroup
CASES = [
    (1, "uint", 64, 16),
    (1, "uint", 100, 32),
    (1, "uint", 5, 32),  # a single, partial threadgroup
    (1, "uint", 1000, 256),
    (1, "ushort", 77, 8),
    (1, "ushort", 128, 64),
    (2, "uint", (16, 8), (8, 8)),
    (2, "uint", (10, 7), (4, 4)),
    (2, "uint", (33, 3), (8, 2)),
    (2, "ushort", (13, 5), (4, 2)),
    (3, "uint", (8, 4, 2), (4, 2, 2)),
    (3, "uint", (5, 6, 3), (2, 4, 2)),
    (3, "uint", (9, 1, 5), (4, 1, 2)),
    (3, "ushort", (7, 3, 5), (4, 2, 2)),
]


@pytest.mark.parametrize(
    ("dims", "scalar", "grid", "tg"),
    CASES,
    ids=[f"{_kname(d, s)}-{g}-tg{t}".replace(" ", "") for d, s, g, t in CASES],
)
def test_builtins_match_numpy(lib, dims, scalar, grid, tg):
    _run_and_check(lib, dims, scalar, grid, tg, _as3(grid), _as3(tg))


def _ms(*args):
    """A MetalSize, built at run time (keeps parametrize ids readable)."""
    return ("MetalSize", *args)


GRID_FORMS = [
    (37, 8),
    ((37,), (8,)),
    ((9, 5), (4, 2)),
    ((9, 5, 1), (4, 2, 1)),
    ((4, 3, 2), (2, 2, 2)),
    (_ms(37), _ms(8)),
    (_ms(9, 5), _ms(4, 2, 1)),
    (_ms(4, 3, 2), (2, 2, 2)),
    ((4, 3, 2), _ms(3, 2, 2)),
    ((4, 3, 2), 4),
]


def _materialise(v):
    if isinstance(v, tuple) and v and v[0] == "MetalSize":
        return mg.MetalSize(*v[1:])
    return v


@pytest.mark.parametrize(
    ("grid_arg", "tg_arg"),
    GRID_FORMS,
    ids=[f"{g}-tg{t}".replace(" ", "").replace("'", "") for g, t in GRID_FORMS],
)
def test_grid_and_threadgroup_forms(lib, grid_arg, tg_arg):
    """int, tuple and MetalSize grids/threadgroups all mean the same thing (3-D kernel)."""
    grid_arg, tg_arg = _materialise(grid_arg), _materialise(tg_arg)
    _run_and_check(lib, 3, "uint", grid_arg, tg_arg, _as3(grid_arg), _as3(tg_arg))


@pytest.mark.parametrize("grid", [1, 5, 1000, 4099])
def test_library_chosen_threadgroup_is_consistent(lib, grid):
    """threadgroup=None: whatever size is chosen, the geometry must be self-consistent."""
    limit = lib.device.max_threads_per_threadgroup
    padded = -(-grid // limit) * limit
    out = lib.create_buffer(padded * 7, "uint")
    count = lib.create_buffer(padded, "uint")
    out.contents[:] = 0xFFFFFFFF
    count.contents[:] = 0
    lib.run_function(grid, [out, count], function_name="k1_uint")
    np.testing.assert_array_equal(count.contents[:grid], 1)
    assert int(count.contents.sum()) == grid
    rec = out.contents.reshape(padded, 7)[:grid]
    tg = int(rec[:, 3].max())  # the (uniform) threadgroup width chosen
    assert 1 <= tg <= limit
    expected, tiitg = _expected((grid, 1, 1), (tg, 1, 1))
    for k, exp in enumerate(expected):
        np.testing.assert_array_equal(rec[:, k], exp[0, 0, :, 0], err_msg=BUILTINS[k])
    np.testing.assert_array_equal(rec[:, 6], tiitg[0, 0])


def test_edge_threadgroup_reports_real_size(lib):
    """Grid 70, threadgroup 32: groups of 32, 32 and 6; the last one says 6."""
    out = lib.create_buffer(96 * 7, "uint")
    count = lib.create_buffer(96, "uint")
    out.contents[:] = 0xFFFFFFFF
    count.contents[:] = 0
    lib.run_function(70, [out, count], function_name="k1_uint", threadgroup=32)
    rec = out.contents.reshape(96, 7)
    np.testing.assert_array_equal(rec[:64, 3], 32)
    np.testing.assert_array_equal(rec[64:70, 3], 6)
    np.testing.assert_array_equal(rec[64:70, 6], np.arange(6))  # thread_index_in_threadgroup
    np.testing.assert_array_equal(rec[:70, 5], 3)  # threadgroups_per_grid
    np.testing.assert_array_equal(count.contents[70:], 0)
    np.testing.assert_array_equal(rec[70:], 0xFFFFFFFF)
