export METALGPU_NVRTC_DIRS=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib PYTHONUNBUFFERED=1
mkdir -p ../shared && cp -r .corpus ../shared/corpus
python3 -m pip install -q --no-build-isolation --no-deps . -Cbuild-dir=/tmp/b > $OUT/build.txt 2>&1; echo build rc=$?
timeout 150 python3 bench/bench_debug.py --backend cuda --out $OUT 2>&1 | tail -14
METALGPU_TEST_BACKENDS=cuda timeout 300 python3 -m pytest -q -p no:cacheprovider -n 8 tests > $OUT/pytest_cuda.txt 2>&1; grep -E "^(FAILED|ERROR)|passed|failed" $OUT/pytest_cuda.txt | tail -15
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_nvrtc_isolation.py -k hang -x 2>&1 | tail -30 > $OUT/nvrtc_hang.txt
timeout 200 python3 bench/bench_cuda_kernels.py --quick --out $OUT > $OUT/bench_kernels.txt 2>&1; tail -25 $OUT/bench_kernels.txt
