"""Soak, short (issue 15; bench/soak.py is the long run): create/dispatch/release cycles and
distinct shader loads leave resident memory, file descriptors, threads and memory mappings
flat - generous bounds, so only a leak per cycle or per load fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import AVAILABLE_BACKENDS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
soak = pytest.importorskip("soak")

pytestmark = [pytest.mark.skipif("cpu" not in AVAILABLE_BACKENDS, reason="the cpu backend's resources"),
              pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")]


def test_resources_stay_flat():
    soak.cycles(50)
    soak.loads(3, start=200000)
    before = soak.resources()
    soak.cycles(2000)
    soak.loads(30, start=300000)
    after = soak.resources()
    assert after["fds"] <= before["fds"] + 5, (before, after)
    assert after["threads"] <= before["threads"] + 2, (before, after)
    assert after["maps"] <= before["maps"] + 200, (before, after)   # each live module maps a few
    assert after["rss_kib"] <= before["rss_kib"] + 64 * 1024, (before, after)
