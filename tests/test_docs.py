"""Documentation (issue 14): every method and property has a docstring, and docs/api.md names
every public name of the Python API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import metalgpu as mg
from metalgpu import _core

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"
CLASSES = [mg.Interface, _core.Interface, mg.Buffer, mg.Texture, mg.DeviceInfo, mg.MetalSize, mg.Run, mg.Sampler]
# Made by pybind11 itself, not by our bindings.
PYBIND11_MADE = {"_pybind11_conduit_v1_"}


def _doc_text(obj) -> str:
    """The docstring without pybind11's signature line(s) ("name(self: ...) -> T")."""
    doc = getattr(obj, "fget", None).__doc__ if isinstance(obj, property) and not obj.__doc__ else obj.__doc__
    lines = (doc or "").strip().splitlines()
    if lines and re.match(r"^[\w.]+\(.*\)( -> .*)?$", lines[0]):
        lines = lines[1:]
    return "\n".join(lines).strip()


def _members():
    for cls in CLASSES:
        for name, obj in vars(cls).items():
            if name in PYBIND11_MADE or name in ("__doc__", "__module__", "__dict__", "__weakref__"):
                continue
            # A class bound without a constructor gets pybind11's own __init__ (a slot wrapper).
            if name == "__init__" and type(obj).__name__ != "instancemethod":
                continue
            if isinstance(obj, property) or callable(obj):
                yield f"{cls.__module__}.{cls.__qualname__}.{name}", obj
    for name in dir(_core):
        obj = getattr(_core, name)
        if not name.startswith("__") and callable(obj):
            yield f"metalgpu._core.{name}", obj


@pytest.mark.parametrize("name,obj", list(_members()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_member_has_a_docstring(name, obj):
    assert _doc_text(obj), f"{name} has no docstring"


def _api_names() -> set[str]:
    names = set(mg.__all__) - {"__version__"}
    for cls in CLASSES:
        for klass in cls.__mro__:
            if klass is object:
                continue
            names |= {n for n in vars(klass) if not n.startswith("_")}
    names |= {"operators", "astype", "upload", "readback", "copy_to", "log", "lineno", "function", "file",
              "kernel", "thread_position"}
    return names


def test_api_md_names_every_public_name():
    text = API_MD.read_text()
    missing = sorted(n for n in _api_names() if not re.search(rf"\b{re.escape(n)}\b", text))
    assert not missing, f"docs/api.md does not mention: {missing}"


def test_readme_links_the_api_reference():
    readme = (API_MD.parents[1] / "README.md").read_text()
    assert "docs/api.md" in readme
    assert "design documents" not in readme
