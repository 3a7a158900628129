"""python -m metalgpu info | demo | build [FILE.metal ...] | --cmake-dir"""

from __future__ import annotations

import argparse
import os
import sys
import time

DEMO_SHADER = """
#include <metal_stdlib>
using namespace metal;
kernel void adder(device int* arr1 [[buffer(0)]], device int* arr2 [[buffer(1)]],
                  device int* arr3 [[buffer(2)]], uint id [[thread_position_in_grid]]) {
    arr3[id] = arr2[id] + arr1[id];
}
"""


def info() -> int:
    """Prints what can run here; exit status 1 (never a traceback) when no backend can."""
    try:
        import metalgpu as mg
    except Exception as e:  # a broken install: say what failed
        print(f"metalgpu cannot be imported: {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    print(f"metalgpu {mg.__version__}")
    status = 0
    try:
        print(f"default backend: {mg._core.default_backend()}")
    except Exception as e:  # no backend runs here (or METALGPU_BACKEND names no backend)
        print(f"default backend: none ({e})")
        status = 1
    try:
        devices = mg.devices()
    except Exception as e:
        print(f"  devices: cannot be listed ({type(e).__name__}: {e})")
        devices = []
    for d in devices:
        print(f"  {d.backend}:{d.index}  {d.name}  memory={d.memory / 2**30:.1f} GiB  "
              f"max_threads_per_threadgroup={d.max_threads_per_threadgroup}  simd_width={d.simd_width}")
    try:
        unavailable = mg._core.unavailable_backends()
    except Exception as e:
        unavailable = [f"(cannot be listed: {type(e).__name__}: {e})"]
    for line in unavailable:
        print(f"  unavailable: {line}")
    return status


def demo() -> int:
    import numpy as np

    import metalgpu as mg

    iface = mg.Interface()
    print(f"backend: {iface.backend} ({iface.device.name})")
    start = time.perf_counter()
    iface.load_shader_from_string(DEMO_SHADER)
    iface.set_function("adder")
    print(f"compiled 'adder' in {1e3 * (time.perf_counter() - start):.1f} ms")
    n = 100_000
    a = iface.array_to_buffer(np.arange(n, dtype=np.int32))
    b = iface.array_to_buffer(np.sqrt(np.arange(n)).astype(np.int32))
    c = iface.create_buffer(n, "int")
    iface.run_function(n, [a, b, c])
    expected = np.arange(n) + np.sqrt(np.arange(n)).astype(np.int32)
    ok = bool(np.array_equal(c.contents, expected))
    print(f"adder over {n} ints: {'correct' if ok else 'WRONG'}; first values {c.contents[:5].tolist()}")
    for buf in (a, b, c):
        buf.release()
    return 0 if ok else 1


NOTHING_TO_BUILD = """\
Nothing needs building: metalgpu's native core was built when it was installed (the original
metalgpu package needed `python -m metalgpu build` to compile its library; this one does not).
Kernels are compiled when first used and cached on disk ($METALGPU_CACHE_DIR).
To compile a shader library ahead of time: python -m metalgpu build FILE.metal [-I DIR] [-D NAME=VALUE]"""


class _Progress:
    """A progress bar on a terminal (tqdm's when installed, else one line redrawn with \\r);
    nothing when stderr is not a terminal, so logs stay clean."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.tty = sys.stderr.isatty()
        self.bar = None
        if self.tty:
            try:
                from tqdm import tqdm  # type: ignore[import]  # optional, and untyped
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, desc=label, unit="kernel", file=sys.stderr)

    def step(self, name: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(name[-40:], refresh=False)
            self.bar.update(1)
        elif self.tty:
            width = 30
            filled = width * self.done // max(self.total, 1)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                             f"{self.done}/{self.total} {name[-40:]:<40}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _define(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    return name, value if eq else "1"  # -D NAME means 1, as for C compilers


def build(files: list[str], include_dirs: list[str], defines: list[str], backend: str | None) -> int:
    """Warms the kernel cache: loads each .metal file and compiles each of its entry points.
    Exit status 1 when a file does not load or a kernel does not compile (each is named)."""
    if not files:
        print(NOTHING_TO_BUILD)
        return 0
    import metalgpu as mg

    iface = mg.Interface(backend=backend)
    status = 0
    for path in files:
        start = time.perf_counter()
        try:
            iface.load_shader(path, include_dirs=include_dirs, defines=dict(map(_define, defines)) or None)
        except (OSError, ValueError, mg.CompileError) as e:
            print(f"{path}: does not load: {e}", file=sys.stderr)
            status = 1
            continue
        names = iface.function_names()
        failed = []
        progress = _Progress(len(names), os.path.basename(path))
        try:
            for name in names:
                try:
                    iface.set_function(name)
                except (ValueError, RuntimeError) as e:  # CompileError is a RuntimeError
                    failed.append((name, e))
                progress.step(name)
        finally:
            progress.close()
        seconds = time.perf_counter() - start
        print(f"{path}: {len(names) - len(failed)} of {len(names)} kernels compiled for {iface.backend} "
              f"in {seconds:.1f} s")
        for name, err in failed:  # not `e`: Python deletes an except clause's name after it
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(f"  {name}: {type(err).__name__}: {first}", file=sys.stderr)
        if failed:
            status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metalgpu")
    parser.add_argument("command", nargs="?", choices=["info", "demo", "build"], default="info")
    parser.add_argument("files", nargs="*", metavar="FILE.metal",
                        help="build: shader files whose kernels to compile into the cache")
    parser.add_argument("-I", "--include-dir", action="append", default=[], dest="include_dirs",
                        help="build: an include folder (repeatable)")
    parser.add_argument("-D", "--define", action="append", default=[], dest="defines",
                        help="build: a preprocessor define NAME or NAME=VALUE (repeatable)")
    parser.add_argument("--backend", default=None, help="build: the backend to compile for (default: the default)")
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the CMake package folder for C++ hosts")
    args = parser.parse_args(argv)
    if args.cmake_dir:
        print(os.path.join(os.path.dirname(__file__), "cpp", "lib", "cmake", "metalgpu"))
        return 0
    if args.files and args.command != "build":
        parser.error(f"{args.command} takes no files")
    if args.command == "build":
        return build(args.files, args.include_dirs, args.defines, args.backend)
    return info() if args.command == "info" else demo()


def run(argv: list[str] | None = None) -> int:
    """main(), quiet when the reader of stdout goes away (`python -m metalgpu info | head -1`)."""
    try:
        status = main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # As Python's documentation advises: point stdout at devnull so the interpreter's own
        # flush at exit does not raise again; the reader chose to stop, which is no failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return status


if __name__ == "__main__":
    sys.exit(run())
