"""Shared fixtures for the metalgpu test suite.

Every test that runs a kernel takes the ``backend`` fixture (directly or through ``iface`` or
a module-scoped library fixture), so the whole suite runs once per available backend.
``METALGPU_TEST_BACKENDS=cpu,cuda`` restricts the run to those backends; a backend named
there that this machine does not offer fails loudly instead of being skipped silently.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Compiled kernels go to a cache private to this test session (unless the caller chose one):
# the suite then exercises the compile path, and never reads or litters the user's cache.
# Set before importing metalgpu, in case the cache folder is read at import time.
if "METALGPU_CACHE_DIR" not in os.environ:
    _CACHE_DIR = tempfile.mkdtemp(prefix="metalgpu-test-cache-")
    os.environ["METALGPU_CACHE_DIR"] = _CACHE_DIR
    atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)

mg = importlib.import_module("metalgpu")

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
EXAMPLES_DIR = REPO_DIR / "examples"
SHADERS_DIR = TESTS_DIR / "shaders"

AVAILABLE_BACKENDS = sorted({d.backend for d in mg.devices()})


def _selected_backends() -> list[str]:
    requested = os.environ.get("METALGPU_TEST_BACKENDS", "").strip()
    if not requested:
        return AVAILABLE_BACKENDS
    names = [n.strip() for n in requested.split(",") if n.strip()]
    return sorted(set(names))


BACKENDS = _selected_backends()


@pytest.fixture(scope="session", params=BACKENDS, ids=BACKENDS)
def backend(request) -> str:
    name = request.param
    if name not in AVAILABLE_BACKENDS:
        pytest.fail(
            f"METALGPU_TEST_BACKENDS asks for backend {name!r}, but mg.devices() offers only "
            f"{AVAILABLE_BACKENDS}"
        )
    return name


@pytest.fixture
def iface(backend):
    """A fresh Interface on the backend under test (no shader loaded)."""
    return mg.Interface(backend=backend)


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES_DIR


@pytest.fixture(scope="session")
def shaders_dir() -> Path:
    return SHADERS_DIR


@pytest.fixture
def subprocess_env(backend):
    """Environment for a child Python that should run on the backend under test."""
    env = dict(os.environ)
    env["METALGPU_BACKEND"] = backend
    return env
