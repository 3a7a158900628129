#!/usr/bin/env python3
"""The public names of our runtime (src/runtime) against Apple's metal_stdlib (issue 11).

Ours are found by the host compiler, not by reading the headers: every identifier in the
runtime's text is probed with a using-declaration (`using metal::X;`) after the runtime, in one
-fsyntax-only compile; those the compiler accepts are declared in that namespace (directly, or
through a using-directive or declaration in it), exactly what `using namespace metal;` gives
user code. Macros come from the preprocessor (-dM). Apple's names are the data file
tests/data/metal_stdlib_names.txt.

Run as a script to print both differences:  python tests/stdlib_names.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
RUNTIME_DIR = REPO_DIR / "src" / "runtime"
REFERENCE = Path(__file__).resolve().parent / "data" / "metal_stdlib_names.txt"

# Internal spellings: the runtime's own prefix and C++'s reserved identifiers.
INTERNAL = re.compile(r"^(mg_|MG_|_)")

CXX_KEYWORDS = {
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break",
    "case", "catch", "char", "char8_t", "char16_t", "char32_t", "class", "compl", "concept",
    "const", "consteval", "constexpr", "constinit", "const_cast", "continue", "co_await",
    "co_return", "co_yield", "decltype", "default", "delete", "do", "double", "dynamic_cast",
    "else", "enum", "explicit", "export", "extern", "false", "float", "for", "friend", "goto",
    "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq",
    "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register",
    "reinterpret_cast", "requires", "return", "short", "signed", "sizeof", "static",
    "static_assert", "static_cast", "struct", "switch", "template", "this", "thread_local",
    "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using",
    "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq", "defined",
}


def runtime_parts() -> list[str]:
    """The runtime headers in prelude order, as CMakeLists.txt lists them (common, then cpu)."""
    text = (REPO_DIR / "CMakeLists.txt").read_text()
    parts: list[str] = []
    for var in ("METALGPU_RUNTIME_PARTS", "METALGPU_RUNTIME_CPU_PARTS"):
        m = re.search(r"set\(" + var + r"\s+([^)]*)\)", text)
        assert m, f"{var} not found in CMakeLists.txt"
        parts += m.group(1).split()
    return parts


def runtime_text() -> str:
    return "".join(f'#line 1 "metal_stdlib/{p}"\n' + (RUNTIME_DIR / p).read_text() + "\n"
                   for p in runtime_parts())


def _identifiers(text: str) -> set[str]:
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.DOTALL)
    text = re.sub(r'"(?:\\.|[^"\\\n])*"', " ", text)
    return set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", text))


def find_cxx() -> str | None:
    cxx = os.environ.get("CXX", "").split()
    for cand in ([cxx[0]] if cxx else []) + ["g++", "clang++", "c++"]:
        if shutil.which(cand):
            return cand
    return None


def _compile(cxx: str, source: str, *flags: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="mg-names-") as tmp:
        path = Path(tmp) / "probe.cpp"
        path.write_text(source)
        return subprocess.run([cxx, "-std=c++17", "-w", *flags, str(path)], capture_output=True,
                              text=True, timeout=300, check=False)


def _is_clang(cxx: str) -> bool:
    return "clang" in subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout


def runtime_macros(cxx: str) -> set[str]:
    """Object- and function-like macros user code sees after the runtime (the compiler's own
    left out): the runtime's own and those of the C headers it includes."""
    def defined(source: str) -> set[str]:
        out = _compile(cxx, source, "-E", "-dM").stdout
        return set(re.findall(r"^#define ([A-Za-z_][A-Za-z0-9_]*)", out, flags=re.MULTILINE))
    return defined(runtime_text()) - defined("")


def own_macros() -> set[str]:
    """The macros a #define of the runtime's own text names (not its system headers')."""
    return set(re.findall(r"^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)", runtime_text(), flags=re.MULTILINE))


def declared_names(cxx: str, scopes=("metal",)) -> dict[str, set[str]]:
    """{scope: names} for each scope and every namespace nested in it ("metal::fast" ...):
    the identifiers of the runtime that a qualified lookup in that scope finds."""
    text = runtime_text()
    macros = runtime_macros(cxx)
    # The preprocessed text too: names made by token pasting (simd_##NAME ...).
    expanded = _compile(cxx, text, "-E", "-P").stdout
    # Internal spellings are not probed: they are allowed, and `__has_builtin` and the like are
    # the compiler's own macros, which a probe cannot name.
    candidates = sorted(n for n in _identifiers(text) | _identifiers(expanded)
                        if n not in CXX_KEYWORDS and n not in macros and not INTERNAL.match(n))
    found: dict[str, set[str]] = {}
    pending = list(scopes)
    while pending:
        batch, pending = pending, []
        # One compile per level of nesting; each probe on a line of its own, so an error names
        # the probe by its line number.
        lines = [text, '#line 1 "probe"']
        probes: list[tuple[str, str]] = []
        for scope in batch:
            for name in candidates:
                probes.append((scope, name))
                lines.append(f"namespace mg_probe {{ using {scope}::{name}; }}")
        limit = "-ferror-limit=0" if _is_clang(cxx) else "-fmax-errors=0"   # every error
        proc = _compile(cxx, "\n".join(lines) + "\n", "-fsyntax-only", limit)
        failed: set[int] = set()
        nested: set[int] = set()
        for m in re.finditer(r"^probe:(\d+):\d+: error: (.*)$", proc.stderr, flags=re.MULTILINE):
            line = int(m.group(1))
            failed.add(line)
            # g++: "using-declaration may not name namespace"; clang: "using declaration
            # cannot refer to a namespace".
            if re.search(r"may not name namespace|cannot refer to a namespace", m.group(2)):
                nested.add(line)
        if proc.returncode != 0 and not failed:
            raise RuntimeError("the runtime does not compile:\n" + proc.stderr[-4000:])
        for i, (scope, name) in enumerate(probes, start=1):
            found.setdefault(scope, set())
            if i in nested:
                pending.append(f"{scope}::{name}")
                found[scope].add(name)
            elif i not in failed:
                found[scope].add(name)
    return found


def public(names: set[str]) -> set[str]:
    """Names none of whose parts (`fast::exp`: fast, exp) is spelled as internal."""
    return {n for n in names if not any(INTERNAL.match(p) for p in n.split("::"))}


def reference() -> dict[str, set[str]]:
    """{header: names} from the data file: `# <header>` lines open a group, other `#` text is
    comment; a nested namespace's name is written `fast::exp`; header `<macros>` holds the
    preprocessor's."""
    out: dict[str, set[str]] = {}
    section = "?"
    for raw in REFERENCE.read_text().splitlines():
        m = re.match(r"#\s*(<[\w]+>)", raw)
        if m:
            section = m.group(1)
            continue
        line = raw.split("#", 1)[0].strip()
        if line:
            out.setdefault(section, set()).add(line.split()[0])
    return out


def reference_names(section_filter=lambda s: s != "<macros>") -> set[str]:
    return set().union(*(v for k, v in reference().items() if section_filter(k)))


def ours(cxx: str) -> tuple[set[str], set[str]]:
    """(names, macros) of our runtime, names qualified below metal (`fast::exp`); macros: those
    the runtime itself defines."""
    names: set[str] = set()
    for scope, found in declared_names(cxx).items():
        prefix = scope[len("metal::"):] + "::" if scope != "metal" else ""
        names |= public({prefix + n for n in found})
    return names, public(runtime_macros(cxx) & own_macros())


def main() -> int:
    cxx = find_cxx()
    if cxx is None:
        print("no host compiler")
        return 77
    names, macros = ours(cxx)
    ref = reference_names()
    ref_macros = reference().get("<macros>", set())
    print(f"ours: {len(names)} names in namespace metal, {len(macros)} macros; "
          f"Apple's (reference file): {len(ref)} names, {len(ref_macros)} macros")
    print("\n== ours, not Apple's:\n" + " ".join(sorted(names - ref)))
    print("\n== Apple's, not ours:\n" + " ".join(sorted(ref - names)))
    print("\n== macros ours, not Apple's:\n" + " ".join(sorted(macros - ref_macros)))
    print("\n== macros Apple's, not ours:\n" + " ".join(sorted(ref_macros - macros)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
