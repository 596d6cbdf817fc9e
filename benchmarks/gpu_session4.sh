#!/usr/bin/env bash
# Fourth GPU session: the block, compare-mode and backbone figures again, after the two timing fixes
# (contexts entered once outside timed calls; malloc thresholds pinned).
set -u
export PYTHONUNBUFFERED=1 ARCHSCOPE_DATA_DIR=$(mktemp -d)
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD
cd benchmarks
python3 -W ignore backbones_gpu.py --device cuda > "$OUT/backbones_gpu.json" 2>"$OUT/err_bb.txt"
python3 -W ignore flop_vs_latency.py --device cuda > "$OUT/flop_vs_latency_cuda_fp32.json" 2>"$OUT/err_fvl.txt"
python3 -W ignore flop_vs_latency.py --device cuda --precision bf16 --batch 32 > "$OUT/flop_vs_latency_cuda_bf16_b32.json" 2>>"$OUT/err_fvl.txt"
python3 -W ignore block_profile_time.py --device cuda --skip-page > "$OUT/block_profile_time_cuda.json" 2>"$OUT/err_bpt.txt"
tail -n 2 "$OUT"/err_bb.txt; ls -la "$OUT"
