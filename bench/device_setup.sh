#!/usr/bin/env bash
# Builds and installs metalgpu on a lent GPU machine (no network): build tools come as wheels
# carried in .whl/, the compiler toolchain and CUDA are the machine's own.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site
export PATH=/tmp/site/bin:$PATH
python3 -m pip install -q --no-index --no-deps --no-build-isolation . 2>&1 | grep -v "WARNING: Running pip as" || true
python3 -c "import metalgpu as mg; print('metalgpu', mg.__version__, [d.name for d in mg.devices()]); print(mg._core.unavailable_backends())"
