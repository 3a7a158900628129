#!/usr/bin/env bash
# On a lent GPU machine (see bench/device_setup.sh for the build): the suite on cuda, the cpu
# suite with that machine's own compiler ($CXX there is a wrapper adding C++ include folders),
# and the real-library benchmark on cuda. Logs go to $OUT (or ./device-logs).
#   bash bench/device_check.sh cuda|cpu|bench|kernels|matrices|corpus|debug
# corpus: the real-library tests on cuda and, at the same time, on cpu with $CXX (and debug mode).
# The corpus (../shared/corpus) does not travel with the checkout: carry a copy as .corpus.
set -uo pipefail
OUT=${OUT:-device-logs}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .corpus ] && [ ! -d ../shared/corpus ]; then mkdir -p ../shared && cp -r .corpus ../shared/corpus; fi
python3 -c "import metalgpu" 2>/dev/null || python3 -m pip install -q --no-build-isolation --no-deps . 2>&1 | grep -v "Running pip as"
case "${1:-cuda}" in
  cuda)
    METALGPU_TEST_BACKENDS=cuda python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest_cuda_h200.txt" | tail -25 ;;
  cpu)
    echo "CXX=${CXX:-unset}: $(${CXX:-c++} --version | head -1)" | tee "$OUT/pytest_cpu_device_compiler.txt"
    METALGPU_TEST_BACKENDS=cpu python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tee -a "$OUT/pytest_cpu_device_compiler.txt" | tail -25 ;;
  corpus)
    echo "CXX=${CXX:-unset}: $(${CXX:-c++} --version | head -1)" > "$OUT/pytest_corpus_cpu_device_compiler.txt"
    (METALGPU_TEST_BACKENDS=cuda timeout 540 python3 -m pytest -q -p no:cacheprovider -p no:benchmark -n 8 \
       tests/test_corpus.py tests/test_corpus_families.py tests/test_corpus_mlx_linalg.py tests/test_corpus_mlx_ops.py \
       -k "not loads and not tensor_api" > "$OUT/pytest_corpus_cuda_h200.txt" 2>&1) &
    (METALGPU_TEST_BACKENDS=cpu timeout 540 python3 -m pytest -q -p no:cacheprovider -p no:benchmark -n 6 \
       tests/test_corpus.py tests/test_corpus_families.py tests/test_corpus_mlx_linalg.py tests/test_corpus_mlx_ops.py \
       tests/test_debug_mode.py >> "$OUT/pytest_corpus_cpu_device_compiler.txt" 2>&1) &
    wait
    tail -8 "$OUT/pytest_corpus_cuda_h200.txt" "$OUT/pytest_corpus_cpu_device_compiler.txt" ;;
  bench)
    python3 bench/bench_libraries.py --backend cuda --out "$OUT" 2>&1 | tail -20 ;;
  debug)  # issue 12: debug mode on cuda - its tests, then its cost beside normal mode
    METALGPU_TEST_BACKENDS=cuda python3 -m pytest -q -p no:cacheprovider tests/test_debug_mode_cuda.py 2>&1 | tail -3
    python3 bench/bench_debug.py --backend cuda --out "$OUT" 2>&1 | tail -12 ;;
  kernels)  # issue 16: simdgroup matrices on tensor cores, kernels beside PyTorch
    python3 bench/bench_cuda_kernels.py --out "$OUT" 2>&1 | tail -30 ;;
  matrices)  # issue 16 first: the tests that drive simdgroup matrices on cuda, then the kernels bench
    METALGPU_TEST_BACKENDS=cuda timeout 240 python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_cooperative.py \
      tests/test_cuda_translation.py tests/test_work_item_loops.py tests/test_stdlib_fidelity.py \
      tests/test_corpus_mlx_linalg.py tests/test_corpus_families.py > "$OUT/pytest_cuda_matrices.txt" 2>&1
    grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest_cuda_matrices.txt" | head -30
    timeout 240 python3 bench/bench_cuda_kernels.py --out "$OUT" > "$OUT/bench_cuda_kernels.txt" 2>&1
    tail -25 "$OUT/bench_cuda_kernels.txt" ;;
esac
