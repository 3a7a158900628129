"""Front-end fuzzer (issue 15): mutations of real shaders against translate() for both targets
and, now and then, load_shader_from_string on the cpu backend.

    python tests/fuzz_frontend.py --seconds 120 [--seed N] [--corpus DIR ...] [--out DIR]

Every input must end in CompileError, ValueError or TypeError, or translate cleanly; any other
exception, or more than --timeout seconds on one input, fails (exit 1) and the input is saved
under --out as a regression case. A crash (signal) ends the process: the input being tried is
always on disk as <out>/current.metal, so the crash's input survives it.
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import sys
import time
from pathlib import Path

import metalgpu as mg

HERE = Path(__file__).resolve().parent
TOKEN = re.compile(r"\s+|\w+|\S")
KERNEL = re.compile(r"kernel\s+void\s+(\w+)")
ACCEPTED = (mg.CompileError, ValueError, TypeError)


class Hang(Exception):
    pass


def seeds(dirs):
    found = []
    for d in dirs:
        for p in sorted(Path(d).rglob("*.metal")):
            text = p.read_text(errors="replace")
            if 0 < len(text) < 2_000_000:
                found.append(text)
    return found


def mutate(rng, text):
    toks = TOKEN.findall(text)
    words = [i for i, t in enumerate(toks) if not t.isspace()]
    if not words:
        return text + rng.choice(["kernel", "(", "#", "}"])
    kind = rng.randrange(10)
    if kind == 0 and len(toks) > 1:          # delete a run of tokens
        i = rng.choice(words)
        del toks[i:i + rng.randint(1, 8)]
    elif kind == 1:                          # duplicate a run
        i = rng.choice(words)
        toks[i:i] = toks[i:i + rng.randint(1, 8)]
    elif kind == 2 and len(words) > 1:       # swap two tokens
        a, b = rng.sample(words, 2)
        toks[a], toks[b] = toks[b], toks[a]
    elif kind == 3:                          # truncate
        return "".join(toks[: rng.randrange(len(toks) + 1)])
    elif kind == 4:                          # deep nesting
        n = rng.choice([100, 1000, 20000])
        open_, close = rng.choice([("(", ")"), ("{", "}"), ("[", "]"), ("<", ">")])
        toks.insert(rng.choice(words), open_ * n + "x" + close * rng.choice([0, n]))
    elif kind == 5:                          # huge literals
        toks.insert(rng.choice(words), rng.choice(["9" * 400, "0x" + "f" * 300, "1e99999", "1." + "0" * 500 + "1h",
                                                   '"' + "a" * 100000 + '"', "'\\777777'"]))
    elif kind == 6:                          # NUL and other odd characters
        toks.insert(rng.choice(words), rng.choice(["\0", "\x01", "\u00ff", "\ufeff", "\\", "#", "##", "@", "`"]))
    elif kind == 7:                          # preprocessor directives in odd places
        toks.insert(rng.choice(words), "\n" + rng.choice(["#if", "#endif", "#define X X X", "#define F(a) F(a)",
                                                          "#include __FILE__", "#else", "#pragma unroll(", "#line 0"])
                    + "\n")
    elif kind == 8:                          # replace a token by one from elsewhere
        toks[rng.choice(words)] = toks[rng.choice(words)]
    else:                                    # several small edits
        for _ in range(rng.randint(2, 6)):
            toks = TOKEN.findall(mutate(rng, "".join(toks)))
    return "".join(toks)


def on_alarm(signum, frame):
    raise Hang()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--timeout", type=int, default=20)
    ggml = HERE.parent.parent / "shared" / "corpus" / "ggml" / "src" / "ggml-metal"
    ap.add_argument("--corpus", nargs="*", default=[str(HERE / "shaders"), str(HERE.parent / "examples")] +
                    ([str(ggml)] if ggml.is_dir() else []))
    ap.add_argument("--out", default=str(HERE.parent / "build" / "fuzz"))
    ap.add_argument("--compile-every", type=int, default=200, help="also load every Nth input on cpu")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pool = seeds(args.corpus)
    if not pool:
        print("no seed shaders found", file=sys.stderr)
        return 1
    iface = mg.Interface(backend="cpu") if "cpu" in {d.backend for d in mg.devices()} else None
    signal.signal(signal.SIGALRM, on_alarm)
    end = time.monotonic() + args.seconds
    ran = clean = rejected = 0
    failures = []
    current = out / "current.metal"
    while time.monotonic() < end:
        source = mutate(rng, rng.choice(pool))
        names = KERNEL.findall(source) or ["k"]
        function = rng.choice(names)
        current.write_text(source, errors="surrogatepass")
        calls = [(mg.translate, (source, function), {"target": t}) for t in ("cpu", "cuda")]
        if iface is not None and ran % args.compile_every == 0:
            calls.append((iface.load_shader_from_string, (source,), {}))
        for fn, pos, kw in calls:
            ran += 1
            signal.alarm(args.timeout)
            try:
                fn(*pos, **kw)
                clean += 1
            except ACCEPTED:
                rejected += 1
            except Hang:
                failures.append(("hang", source))
            except Exception as e:  # noqa: BLE001 - anything else is the bug being looked for
                failures.append((f"{type(e).__name__}: {e}"[:300], source))
            finally:
                signal.alarm(0)
    current.unlink(missing_ok=True)
    for k, (what, source) in enumerate(failures):
        path = out / f"failure-{seed}-{k}.metal"
        path.write_text(source, errors="surrogatepass")
        print(f"FAILED ({what}): kept as {path}")
    print(f"fuzz seed {seed}: {ran} calls on {len(pool)} seed shaders in {args.seconds:.0f} s - "
          f"{clean} translated, {rejected} rejected with CompileError/ValueError/TypeError, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
