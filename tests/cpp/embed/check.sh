#!/usr/bin/env bash
# Builds and runs main.cpp against the metalgpu package that `python3 -m pip install .` put in
# site-packages (the README's C++ lines), not against the source or build tree.
# Usage: tests/cpp/embed/check.sh [PYTHON]   (default python3)
set -euo pipefail
PYTHON=${1:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
# From a neutral folder, so `-m metalgpu` is the installed package.
CMAKE_DIR=$(cd / && "$PYTHON" -m metalgpu --cmake-dir)
echo "metalgpu_DIR=$CMAKE_DIR"
if [ ! -f "$CMAKE_DIR/metalgpuConfig.cmake" ]; then
  echo "no metalgpuConfig.cmake in $CMAKE_DIR (an editable install has no C++ package)" >&2
  exit 1
fi
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
cmake -S "$HERE" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -Dmetalgpu_DIR="$CMAKE_DIR" >/dev/null
cmake --build "$BUILD" -j 2
METALGPU_CACHE_DIR="$BUILD/cache" "$BUILD/embed"
