#!/bin/sh
# Checks that metal::cos/sin/exp/log over float arrays vectorise through glibc's libmvec
# and that metal::sqrt becomes vsqrtps, with the CPU backend's flags.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
CXX=${CXX:-g++}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/vec.cpp" <<EOC
#include "$HERE/../../src/runtime/metal_stdlib.h"
using namespace metal;
void k_cos(const float* in, float* out, int n) { for (int i = 0; i < n; ++i) out[i] = cos(in[i]); }
void k_sin(const float* in, float* out, int n) { for (int i = 0; i < n; ++i) out[i] = sin(in[i]); }
void k_exp(const float* in, float* out, int n) { for (int i = 0; i < n; ++i) out[i] = exp(in[i]); }
void k_log(const float* in, float* out, int n) { for (int i = 0; i < n; ++i) out[i] = log(in[i]); }
void k_sqrt(const float* in, float* out, int n) { for (int i = 0; i < n; ++i) out[i] = sqrt(in[i]); }
EOC
# MG_LIBMVEC=1: what the backend defines when its compiler probe finds libmvec.
$CXX -std=c++17 -O3 -ffast-math -fno-finite-math-only -march=native -nostdinc++ -fPIC -DMG_LIBMVEC=1 ${MG_VEC_FLAGS:-} -S -o "$TMP/vec.s" "$TMP/vec.cpp"
rc=0
for f in cosf sinf expf logf; do
  if grep -Eq "call[[:space:]]+_ZGV[a-zA-Z]+[0-9]+v_$f" "$TMP/vec.s"; then
    echo "ok: $f vectorised ($(grep -Eo "_ZGV[a-zA-Z]+[0-9]+v_$f" "$TMP/vec.s" | sort -u | tr '\n' ' '))"
  else
    echo "MISSING: libmvec call for $f"; rc=1
  fi
done
# Note: under -ffast-math g++ vectorises sqrtf as vrsqrtps + one Newton step by default;
# add -mrecip=!vec-sqrt to the compile flags to get vsqrtps (MG_VEC_FLAGS below).
if grep -Eq "v?r?sqrtps" "$TMP/vec.s"; then echo "ok: sqrt -> $(grep -Eo 'v?r?sqrtps' "$TMP/vec.s" | sort -u | tr '\n' ' ')"
else echo "MISSING: packed sqrt"; rc=1; fi
exit $rc
