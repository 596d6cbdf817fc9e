#!/usr/bin/env bash
# One prepared GPU session: CUDA tests, then every benchmark that has a CUDA figure. Writes logs to $OUT.
# Usage on the device machine: bash benchmarks/gpu_session.sh   (carry .whl for fvcore and its needs)
set -u
export PYTHONUNBUFFERED=1 ARCHSCOPE_DATA_DIR=$(mktemp -d)
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)" | tee "$OUT/versions.txt"
python3 -m pytest -q -p no:cacheprovider tests/gpu 2>&1 | tail -15 | tee "$OUT/pytest-gpu.txt"
cd benchmarks
python3 -W ignore block_profile_time.py --device cuda --skip-page > "$OUT/block_profile_time_cuda.json" 2>"$OUT/err1.txt"
python3 -W ignore latency_agreement.py --device cuda > "$OUT/latency_agreement_cuda.json" 2>"$OUT/err2.txt"
python3 -W ignore flop_vs_latency.py --device cuda > "$OUT/flop_vs_latency_cuda_fp32.json" 2>>"$OUT/err2.txt"
python3 -W ignore flop_vs_latency.py --device cuda --precision bf16 --batch 32 > "$OUT/flop_vs_latency_cuda_bf16_b32.json" 2>>"$OUT/err2.txt"
python3 -W ignore backbones_gpu.py --device cuda > "$OUT/backbones_gpu.json" 2>"$OUT/err3.txt"
if [ -f finetune_gpu.py ]; then python3 -W ignore finetune_gpu.py --device cuda > "$OUT/finetune_gpu.json" 2>"$OUT/err4.txt"; fi
ls -la "$OUT"
