#!/usr/bin/env bash
# Second GPU session (after the first one's results): CUDA tests, the latency agreement on CUDA, and the
# fine-tune throughput figure. Writes JSON and logs to $OUT.
set -u
export PYTHONUNBUFFERED=1 ARCHSCOPE_DATA_DIR=$(mktemp -d)
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD
python3 -m pytest -q -p no:cacheprovider tests/gpu 2>&1 | tail -5 > "$OUT/pytest_gpu.txt"
cd benchmarks
python3 -W ignore finetune_gpu.py --device cuda > "$OUT/finetune_gpu.json" 2>"$OUT/err_ft.txt"
python3 -W ignore latency_agreement.py --device cuda > "$OUT/latency_agreement_cuda.json" 2>"$OUT/err_la.txt"
cat "$OUT/pytest_gpu.txt"; tail -3 "$OUT"/err_*.txt
