export METALGPU_NVRTC_DIRS=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib PYTHONUNBUFFERED=1
mkdir -p ../shared && cp -r .corpus ../shared/corpus
python3 -m pip install -q --no-build-isolation --no-deps . -Cbuild-dir=/tmp/b > $OUT/build.txt 2>&1; echo build rc=$?
timeout 100 python3 gpu_diag3.py 2>&1 | tee $OUT/diag3.txt | tail -40
