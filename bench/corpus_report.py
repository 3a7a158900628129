"""Real Metal libraries (../shared/corpus: ggml and MLX) on the cpu backend: per .metal file,
whether it loads with its own build's include folders and defines - with
METALGPU_CHECK_LIBRARY=all, so loading runs the host compiler's full semantic check of every
entry point (each kernel instantiated) - how many entry points it has, and, for a sample of them
(all with --sample 0), whether each compiles to machine code (set_function); with --cuda,
whether each CUDA translation compiles with NVRTC. Writes bench/results/corpus.md.

    python bench/corpus_report.py                 # loads + 2 kernels a file
    python bench/corpus_report.py --sample 0      # every entry point (hours on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from pathlib import Path

import metalgpu as mg

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
GGML_SRC = CORPUS / "ggml" / "src"
MLX_ROOT = CORPUS / "mlx"


def libraries():
    ggml_inc = [str(GGML_SRC), str(GGML_SRC / "ggml-metal")]
    ggml = GGML_SRC / "ggml-metal" / "ggml-metal.metal"
    yield "ggml", "ggml-metal.metal", ggml, ggml_inc, None
    yield "ggml", "ggml-metal.metal (GGML_METAL_HAS_BF16=1)", ggml, ggml_inc, {"GGML_METAL_HAS_BF16": 1}
    kernels = MLX_ROOT / "mlx" / "backend" / "metal" / "kernels"
    for f in sorted(kernels.rglob("*.metal")):
        yield "mlx", str(f.relative_to(kernels)), f, [str(MLX_ROOT)], None


def first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:200].replace("|", "\\|") if str(e) else type(e).__name__


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=2, help="kernels compiled per file (0 = all)")
    ap.add_argument("--cuda", action="store_true", help="also NVRTC-compile each CUDA translation")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ["METALGPU_CHECK_LIBRARY"] = "all"
    os.environ.pop("METALGPU_CHECK_CUDA", None)
    rng = random.Random(args.seed)
    rows, failures = [], []
    totals = {"entry": 0, "tried": 0, "ok": 0, "cuda": 0}
    for lib, name, path, inc, defines in libraries():
        iface = mg.Interface("cpu")
        t0 = time.perf_counter()
        try:
            iface.load_shader(str(path), include_dirs=inc, defines=defines)
        except Exception as e:  # noqa: BLE001 - the report records every kind of failure
            rows.append(f"| {lib} | {name} | - | no: {first_line(e)} | | | | |")
            continue
        load_s = time.perf_counter() - t0
        names = iface.function_names()
        cuda = ""
        if args.cuda:
            # Every entry point's CUDA translation, checked by NVRTC (--fdevice-syntax-only) for
            # sm_80 and sm_90 in one call per architecture.
            os.environ["METALGPU_CHECK_CUDA"] = "80,90"
            try:
                mg.Interface("cpu").load_shader(str(path), include_dirs=inc, defines=defines)
                cuda = "yes"
                totals["cuda"] += len(names)
            except Exception as e:  # noqa: BLE001
                cuda = "no: " + first_line(e)
                failures.append(f"| {lib} | {name} | (CUDA translation, whole file) | {first_line(e)} |")
            finally:
                os.environ.pop("METALGPU_CHECK_CUDA", None)
        pick = names if args.sample == 0 else rng.sample(names, min(args.sample, len(names)))
        ok = 0
        for k in pick:
            try:
                iface.set_function(k)
                ok += 1
            except Exception as e:  # noqa: BLE001
                failures.append(f"| {lib} | {name} | `{k}` | {first_line(e)} |")
        totals["entry"] += len(names)
        totals["tried"] += len(pick)
        totals["ok"] += ok
        rows.append(f"| {lib} | {name} | {len(names)} | yes ({load_s:.2f} s) | {cuda or '-'} | {len(pick)} | {ok} |")
    out = REPO / "bench" / "results" / "corpus.md"
    with out.open("w") as f:
        f.write("# Real Metal libraries on the cpu backend\n\n")
        f.write(f"Machine: {platform.node()} ({platform.machine()}, {os.cpu_count()} cores), "
                f"{platform.platform()}; compiler: `{os.environ.get('CXX', 'default')}`; "
                f"CUDA check: {'sm_80, sm_90' if args.cuda else 'off'}; "
                f"sample: {'all' if args.sample == 0 else f'{args.sample} a file, seed {args.seed}'}.\n\n")
        f.write(f"Entry points in the files that load: {totals['entry']} - each instantiated and "
                f"checked by the host compiler at load (METALGPU_CHECK_LIBRARY=all); compiled to "
                f"machine code: {totals['ok']} of {totals['tried']} sampled.\n\n")
        if args.cuda:
            f.write(f"Entry points whose CUDA translation NVRTC accepts (sm_80 and sm_90, whole files): "
                    f"{totals['cuda']} of {totals['entry']} ({100.0 * totals['cuda'] / max(1, totals['entry']):.1f}%).\n\n")
        f.write("| library | file | entry points | loads, every entry point checked (cpu) | CUDA (NVRTC) | "
                "compiled (tried) | compiled (ok) |\n")
        f.write("|---|---|---:|---|---|---:|---:|\n")
        f.write("\n".join(rows) + "\n\n## Failures\n\n| library | file | kernel | reason |\n|---|---|---|---|\n")
        f.write("\n".join(failures) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
