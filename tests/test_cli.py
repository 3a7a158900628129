"""python -m metalgpu: info, demo, --cmake-dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TIMEOUT_S = 600


def _metalgpu(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "metalgpu", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env if env is not None else dict(os.environ),
        check=False,
    )


def test_info_lists_the_cpu_backend():
    proc = _metalgpu("info")
    assert proc.returncode == 0, proc.stderr
    assert "cpu" in proc.stdout


def test_info_lists_every_backend():
    import metalgpu as mg

    proc = _metalgpu("info")
    assert proc.returncode == 0, proc.stderr
    for device in mg.devices():
        assert device.backend in proc.stdout


def test_demo_runs_on_each_backend(subprocess_env):
    proc = _metalgpu("demo", env=subprocess_env)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def test_cmake_dir_is_a_folder():
    proc = _metalgpu("--cmake-dir")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert Path(lines[0]).is_dir()


def test_unknown_command_fails():
    proc = _metalgpu("no-such-command")
    assert proc.returncode != 0
