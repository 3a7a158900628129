export METALGPU_NVRTC_DIRS=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib PYTHONUNBUFFERED=1
mkdir -p ../shared && cp -r .corpus ../shared/corpus
python3 -m pip install -q --no-build-isolation --no-deps . -Cbuild-dir=/tmp/b > $OUT/build.txt 2>&1; echo build rc=$?
METALGPU_TEST_BACKENDS=cuda timeout 200 python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_debug_mode_cuda.py tests/test_corpus_mlx_linalg.py tests/test_cooperative.py > $OUT/pytest_focus.txt 2>&1; grep -E "^(FAILED|ERROR)|passed|failed" $OUT/pytest_focus.txt | tail -15
timeout 200 python3 bench/bench_debug.py --backend cuda --out $OUT 2>&1 | tail -12
