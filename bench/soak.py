"""Soak (issue 15): many create/dispatch/release cycles and many distinct shader loads must keep
the process's resident memory, open file descriptors, threads and memory mappings flat.

    python bench/soak.py [--cycles 10000] [--shaders 500] [--out bench/results]

Writes <out>/soak.md/.json: each resource before, after the cycles and after the loads.
tests/test_soak.py runs a shorter version with generous bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_info, machine_lines

import metalgpu as mg

SOURCE = """#include <metal_stdlib>
using namespace metal;
kernel void add(device const float* a [[buffer(0)]], device float* b [[buffer(1)]],
                constant float& k [[buffer(2)]], uint i [[thread_position_in_grid]]) { b[i] = a[i] + k + %d; }
"""


def resources() -> dict[str, int]:
    """RSS (KiB), open file descriptors, threads and memory mappings of this process (Linux /proc)."""
    status = Path("/proc/self/status").read_text()
    rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    threads = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
    return {"rss_kib": rss, "fds": len(os.listdir("/proc/self/fd")), "threads": threads,
            "maps": len(Path("/proc/self/maps").read_text().splitlines())}


def cycles(n: int) -> None:
    """Create an Interface's buffers, dispatch, read back, release - n times."""
    iface = mg.Interface(backend="cpu")
    iface.load_shader_from_string(SOURCE % 0)
    iface.set_function("add")
    for i in range(n):
        a = iface.array_to_buffer(np.full(1024, i, np.float32))
        b = iface.create_buffer(1024, "float")
        iface.run_function(1024, [a, b, np.float32(1)])
        assert b.contents[0] == i + 1
        a.release()
        b.release()


def loads(n: int, start: int = 1) -> None:
    """n distinct shaders (each a compile, or a disk-cache load), each on a new Interface."""
    for k in range(start, start + n):
        iface = mg.Interface(backend="cpu")
        iface.load_shader_from_string(SOURCE % k)
        iface.set_function("add")
        a = iface.array_to_buffer(np.zeros(32, np.float32))
        b = iface.create_buffer(32, "float")
        iface.run_function(32, [a, b, np.float32(0)])
        assert b.contents[0] == k
        del iface, a, b


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=10000)
    ap.add_argument("--shaders", type=int, default=500)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    cycles(100)
    loads(5, start=100000)  # warm-up: the pool's threads, the compiler probe, first mappings
    before = resources()
    cycles(args.cycles)
    after_cycles = resources()
    loads(args.shaders)
    after_loads = resources()
    rows = [("before", before), (f"after {args.cycles} create/dispatch/release cycles", after_cycles),
            (f"after {args.shaders} distinct shader loads", after_loads)]
    md = ["# Soak: resources stay flat (cpu backend)", "", *machine_lines(machine_info()), "",
          "| point | RSS | open fds | threads | memory maps |", "|---|---:|---:|---:|---:|"]
    md += [f"| {name} | {r['rss_kib'] / 1024:.1f} MiB | {r['fds']} | {r['threads']} | {r['maps']} |" for name, r in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.md").write_text("\n".join(md) + "\n")
    (out / "soak.json").write_text(json.dumps({"cycles": args.cycles, "shaders": args.shaders,
                                               "points": {n: r for n, r in rows}}, indent=2) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
