#!/usr/bin/env bash
# The cpu backend's test suites on AArch64, from an x86-64 Debian 12 machine (issue 12): metalgpu
# cross-compiled with g++-aarch64-linux-gnu, run by Debian's arm64 Python under qemu-user, with
# kernels compiled at run time by the cross compilers (g++ 12; clang++ --target=aarch64-linux-gnu).
# Not part of .ci/run (about 15 minutes more on 2 cores); its log is kept in
# bench/results/pytest_cpu_aarch64_qemu.txt.
#
#   bash tests/cross/aarch64_qemu.sh [pytest arguments]    (root or sudo; needs the network)
#
# Debian's arm64 python3.11 is unpacked into a private root, not installed: it would replace the
# host's python3. numpy, pytest and pybind11 (for the build) come from PyPI's wheels.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${AARCH64_WORK:-$REPO/build/aarch64}
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq g++-aarch64-linux-gnu qemu-user clang >/dev/null

ROOT=$WORK/root
if [ ! -x "$ROOT/usr/bin/python3.11" ]; then
  mkdir -p "$WORK/debs" "$ROOT"
  PKGS=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
           --no-replaces --no-enhances python3.11-minimal:arm64 libpython3.11-stdlib:arm64 \
           libpython3.11-dev:arm64 libstdc++6:arm64 2>/dev/null |
         grep -v '^ ' | grep ':arm64$' | grep -v -e '^dpkg:' -e '^install-info:' -e '^tar:' | sort -u)
  (cd "$WORK/debs" && apt-get download -qq $PKGS)
  for deb in "$WORK"/debs/*.deb; do dpkg -x "$deb" "$ROOT"; done
fi
SITE=$WORK/site
if [ ! -d "$SITE/numpy" ]; then
  mkdir -p "$WORK/wheels" "$SITE"
  python3 -m pip download -q -d "$WORK/wheels" --platform manylinux_2_28_aarch64 --python-version 3.11 \
    --only-binary=:all: numpy pytest pybind11
  for w in "$WORK"/wheels/*.whl; do python3 -m zipfile -e "$w" "$SITE"; done
fi

# Python's headers for arm64 (pyconfig.h is per architecture), then the cross build (CXX is
# for the kernels: the build uses the toolchain file's compiler).
PYINC=$WORK/pyinc/python3.11
mkdir -p "$PYINC"
cp -r "$ROOT"/usr/include/python3.11/. "$PYINC"/
cp "$ROOT"/usr/include/aarch64-linux-gnu/python3.11/pyconfig.h "$PYINC"/pyconfig.h
cat > "$WORK/toolchain.cmake" <<'TOOLCHAIN'
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
TOOLCHAIN
env -u CXX cmake -S "$REPO" -B "$WORK/build" -DCMAKE_TOOLCHAIN_FILE="$WORK/toolchain.cmake" -DCMAKE_BUILD_TYPE=Release \
  -DMETALGPU_BUILD_PYTHON=ON -Dpybind11_DIR="$SITE/pybind11/share/cmake/pybind11" \
  -DPython_EXECUTABLE="$(command -v python3)" -DPython_INCLUDE_DIR="$PYINC" >/dev/null
env -u CXX cmake --build "$WORK/build" -j "$(nproc)" --target _core metalgpu_nvrtc_helper
PKG=$WORK/pkg/metalgpu
rm -rf "$PKG" && mkdir -p "$PKG"
cp "$REPO"/python/metalgpu/*.py "$REPO"/python/metalgpu/*.pyi "$PKG"/
cp "$WORK"/build/_core.*.so "$PKG"/_core.so   # (named for the host's ABI tag; any CPython loads _core.so)
cp "$WORK"/build/metalgpu-nvrtc "$PKG"/

# The compilers the kernels meet: cross compilers under the names metalgpu looks for.
BIN=$WORK/bin
mkdir -p "$BIN"
ln -sf "$(command -v aarch64-linux-gnu-g++)" "$BIN/c++"
ln -sf "$(command -v aarch64-linux-gnu-g++)" "$BIN/g++"
ln -sf "$(command -v aarch64-linux-gnu-gcc)" "$BIN/gcc"
# (The host's clang by its full path: these wrappers come first on PATH.)
printf '#!/bin/sh\nexec %s --target=aarch64-linux-gnu "$@"\n' "$(command -v clang++)" > "$BIN/clang++"
printf '#!/bin/sh\nexec %s --target=aarch64-linux-gnu "$@"\n' "$(command -v clang)" > "$BIN/clang"
chmod +x "$BIN/clang++" "$BIN/clang"
# The interpreter names itself as sys.executable (qemu's -0), so the tests' subprocesses run the
# same way.
PY=$WORK/python3
cat > "$PY" <<LAUNCHER
#!/bin/sh
exec env PATH="$BIN:\$PATH" qemu-aarch64 -L "$ROOT" -0 "$PY" -E PYTHONPATH="$WORK/pkg:$SITE" "$ROOT/usr/bin/python3.11" "\$@"
LAUNCHER
chmod +x "$PY"

"$PY" -c 'import platform, metalgpu; print(platform.machine(), metalgpu.devices())'
cd "$REPO"
TESTS=(tests/test_language_*.py tests/test_cooperative.py tests/test_work_item_loops.py tests/test_textures.py
       tests/test_debug_mode.py tests/test_host_compiler.py)
status=0
for fibers in 0 1; do
  echo "== aarch64 (qemu-user), CXX=${CXX:-c++ (aarch64-linux-gnu-g++)}, METALGPU_CPU_FIBERS=$fibers"
  METALGPU_CPU_FIBERS=$fibers "$PY" -m pytest -p no:cacheprovider -q "${TESTS[@]}" "$@" || status=1
done
exit $status
