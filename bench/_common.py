"""Shared helpers for metalgpu benchmarks: timing, machine description, result tables.

Every benchmark script builds a list of `Result`s and hands them to `report()`, which prints a
table and writes `<out>/<stem>.md` (markdown, headed by the machine) and `<out>/<stem>.json`
(raw numbers). Benchmarks never assert: a missed target is reported, not raised.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

# ----------------------------------------------------------------------------- timing


@dataclasses.dataclass
class Stats:
    """Timings of one measured callable, in seconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    def quantile(self, q: float) -> float:
        s = sorted(self.samples)
        return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]

    def summary(self) -> dict[str, float]:
        return {
            "n": len(self.samples),
            "median_s": self.median,
            "min_s": self.min,
            "mean_s": self.mean,
            "p10_s": self.quantile(0.10),
            "p90_s": self.quantile(0.90),
        }


# How long OpenBLAS's worker threads keep spinning after a product numpy computed (a check's
# `A @ B`, numpy's own timing) before they sleep: time taken from the next thing measured, on
# a 2-core machine a 1 ms kernel's median nearly doubled. measure() waits that long first.
BLAS_SETTLE_S = 0.2


def measure(fn: Callable[[], Any], repeat: int = 20, warmup: int = 3, min_time: float = 0.0) -> Stats:
    """Times `fn()` one call at a time: `warmup` untimed calls, then at least `repeat` timed ones
    (more while their total is under `min_time` seconds)."""
    time.sleep(BLAS_SETTLE_S)
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    clock = time.perf_counter
    total = 0.0
    while len(samples) < repeat or total < min_time:
        t0 = clock()
        fn()
        dt = clock() - t0
        samples.append(dt)
        total += dt
    return Stats(samples)


def run_child(code: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> dict[str, Any]:
    """Runs `python -c code` in a fresh process (so no in-memory cache of this process hides
    what is measured); the child prints one JSON object as its last stdout line."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- machine


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else "?"
    except Exception:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    keep = [x for x in ("sse4_2", "avx", "avx2", "fma", "avx512f") if x in flags]
                    return " ".join(keep)
    except OSError:
        pass
    return ""


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"') + f" (kernel {platform.release()})"
    except OSError:
        pass
    return platform.platform()


def cpu_busy(interval: float = 0.5) -> float | None:
    """Fraction of all cores busy (any process) over `interval` seconds, from /proc/stat."""
    def snap():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle
    try:
        t0, i0 = snap()
        time.sleep(interval)
        t1, i1 = snap()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


class LoadMonitor:
    """How busy the machine's other processes were while a benchmark ran: total busy CPU time
    (from /proc/stat) minus this process's and its waited-for children's, as a fraction of
    all cores. On a shared machine, a high value means the numbers are unreliable."""

    def __init__(self) -> None:
        self._start = self._snap()

    @staticmethod
    def _snap():
        try:
            with open("/proc/stat") as f:
                vals = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return sum(vals) / hz, idle / hz, own

    def others_busy(self) -> float | None:
        end = self._snap()
        if not end or not self._start:
            return None
        total = end[0] - self._start[0]
        busy = total - (end[1] - self._start[1])
        own = end[2] - self._start[2]
        return max(0.0, (busy - own) / total) if total > 0 else None


def wait_for_idle(max_wait: float, threshold: float = 0.2) -> float | None:
    """Waits (up to `max_wait` seconds) until under `threshold` of the CPU is busy; returns the
    last busy fraction seen."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy is not None and busy > threshold and time.monotonic() < deadline:
        print(f"  machine busy ({busy:.0%}), waiting...", flush=True)
        time.sleep(5)
        busy = cpu_busy()
    return busy


def _git_state() -> str:
    root = Path(__file__).resolve().parent.parent
    head = _first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    try:
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        dirty = ""
    return head + (" (with uncommitted changes)" if dirty else "")


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": os.cpu_count(),
        "os": _os_name(),
        "python": platform.python_version(),
        "compiler": _first_line([os.environ.get("CXX", "g++"), "--version"]),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    try:
        import numpy

        info["numpy"] = numpy.__version__
    except ImportError:
        info["numpy"] = "-"
    try:
        import metalgpu

        info["metalgpu"] = getattr(metalgpu, "__version__", "?")
    except ImportError:
        info["metalgpu"] = "-"
    try:
        info["loadavg_at_start"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    busy = cpu_busy()
    if busy is not None:
        info["cpu_busy_at_start"] = round(busy, 3)
    info["git"] = _git_state()
    env = {k: v for k, v in os.environ.items() if k.startswith("METALGPU_") or k in ("CXX", "OMP_NUM_THREADS")}
    if env:
        info["env"] = env
    return info


def machine_lines(info: dict[str, Any]) -> list[str]:
    lines = [
        f"- CPU: {info['cpu']} ({info['cores']} cores; {info.get('cpu_flags', '')})",
        f"- OS: {info['os']}",
        f"- Python {info['python']}, numpy {info['numpy']}, metalgpu {info['metalgpu']}",
        f"- Compiler: {info['compiler']}",
        f"- Date: {info['date']}; git {info.get('git', '?')}",
    ]
    load, busy = info.get("loadavg_at_start"), info.get("cpu_busy_at_start")
    if load is not None or busy is not None:
        warn = busy is not None and busy > 0.25
        lines.append(f"- Load before the run: loadavg {load}, CPU busy {'?' if busy is None else f'{busy:.0%}'}" +
                     (" - **the machine was busy: numbers are unreliable**" if warn else ""))
    if info.get("others_busy_during_run") is not None:
        ob = info["others_busy_during_run"]
        lines.append(f"- Other processes used {ob:.0%} of the CPU during the run" +
                     (" - **numbers are unreliable**" if ob > 0.15 else ""))
    if info.get("env"):
        lines.append("- Environment: " + ", ".join(f"`{k}={v}`" for k, v in sorted(info["env"].items())))
    return lines


# ----------------------------------------------------------------------------- results


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


@dataclasses.dataclass
class Result:
    """One row. Times are seconds; `ratio` is reference / metalgpu (> 1: metalgpu is faster)."""

    name: str
    metalgpu: float | None
    reference: float | None = None
    reference_name: str = ""
    target: str = "-"
    met: bool | None = None  # None: no target
    note: str = ""
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.metalgpu and self.reference:
            return self.reference / self.metalgpu
        return None

    def cells(self) -> list[str]:
        ref = fmt_time(self.reference)
        if self.reference is not None and self.reference_name:
            ref += f" ({self.reference_name})"
        ratio = f"{self.ratio:.2f}x" if self.ratio is not None else "-"
        met = "-" if self.met is None else ("yes" if self.met else "**NO**")
        return [self.name, fmt_time(self.metalgpu), ref, ratio, self.target, met]

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ratio"] = self.ratio
        return d


HEADER = ["benchmark", "metalgpu", "reference", "ratio", "target", "met?"]


def markdown_table(results: Iterable[Result]) -> str:
    rows = [HEADER, ["---"] * len(HEADER)] + [r.cells() for r in results]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows)


def text_table(results: Iterable[Result]) -> str:
    rows = [HEADER] + [[c.replace("**", "") for c in r.cells()] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    out = []
    for k, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def report(results: list[Result], out_dir: str | Path, stem: str, title: str,
           machine: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
           notes: Iterable[str] = ()) -> tuple[Path, Path]:
    """Prints the table and writes `<out_dir>/<stem>.md` and `<out_dir>/<stem>.json`."""
    machine = machine or machine_info()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print()
    print(text_table(results))
    notes = [n for n in notes if n]
    for r in results:
        if r.note:
            notes.append(f"{r.name}: {r.note}")
    md = [f"# {title}", "", *machine_lines(machine), ""]
    if config:
        md += ["Run: " + ", ".join(f"{k}={v}" for k, v in config.items()), ""]
    md += [markdown_table(results), ""]
    if notes:
        md += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    md_path = out / f"{stem}.md"
    md_path.write_text("\n".join(md))
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps({"title": title, "machine": machine, "config": config or {},
                                     "results": [r.to_json() for r in results]}, indent=2) + "\n")
    print(f"\nwrote {md_path} and {json_path}")
    return md_path, json_path
