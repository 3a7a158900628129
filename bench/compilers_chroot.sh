#!/usr/bin/env bash
# The cpu backend's suites with g++ versions this machine's Debian does not ship (issue 12):
# a minimal chroot of another Debian release from Debian's mirror (debootstrap), metalgpu built
# inside it with that release's Python, then the compiler suites and the corpus per compiler.
# Needs root, debootstrap and ../shared beside the checkout. Prints one summary line per run.
#   sudo bash bench/compilers_chroot.sh trixie "13 14"      # g++ 13 and 14 (Debian 13)
#   sudo bash bench/compilers_chroot.sh bullseye "10"       # g++ 10 (Debian 11)
set -euo pipefail
RELEASE=${1:?release (trixie, bullseye...)}
VERSIONS=${2:?g++ versions, e.g. "13 14"}
ROOT=/opt/metalgpu-$RELEASE
WORK=$(cd "$(dirname "$0")/../.." && pwd)   # the folder holding the checkout and shared/
REPO=$(cd "$(dirname "$0")/.." && pwd)
REL_REPO=${REPO#"$WORK"/}
if [ ! -x "$ROOT/usr/bin/python3" ]; then
  pkgs="python3,python3-venv,python3-dev,ca-certificates"
  for v in $VERSIONS; do pkgs="$pkgs,g++-$v"; done
  debootstrap --variant=minbase --include="$pkgs" "$RELEASE" "$ROOT" http://deb.debian.org/debian >/dev/null
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$ROOT/work"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
mountpoint -q "$ROOT/work" || mount --bind "$WORK" "$ROOT/work"
trap 'umount "$ROOT/work" "$ROOT/dev" "$ROOT/proc" 2>/dev/null || true' EXIT
first=${VERSIONS%% *}
chroot "$ROOT" env -u PIP_FIND_LINKS PIP_CERT=/etc/ssl/certs/ca-certificates.crt CXX="g++-$first" CC="gcc-$first" \
  /bin/bash -c "set -e; [ -x /venv/bin/python ] || python3 -m venv /venv
    /venv/bin/pip install -q scikit-build-core pybind11 cmake ninja numpy pytest pytest-xdist
    cd /work/$REL_REPO && /venv/bin/pip install -q --no-build-isolation . -Cbuild-dir=build/chroot-$RELEASE"
SUITES="tests/test_language_*.py tests/test_cooperative.py tests/test_work_item_loops.py tests/test_textures.py"
SUITES="$SUITES tests/test_debug_mode.py tests/test_host_compiler.py tests/test_corpus.py tests/test_corpus_families.py"
SUITES="$SUITES tests/test_corpus_mlx_linalg.py tests/test_corpus_mlx_ops.py"
for v in $VERSIONS; do
  chroot "$ROOT" /bin/bash -c "cd /work/$REL_REPO && echo \"== CXX=g++-$v: \$(g++-$v --version | head -1) ($RELEASE chroot)\" &&
    CXX=g++-$v METALGPU_CPU_FIBERS=0 /venv/bin/python -m pytest -q -p no:cacheprovider -n 2 $SUITES 2>&1 |
    grep -E '^(FAILED|ERROR)|passed|failed' | cut -c1-160 || true"
done
