"""timm's benchmark.py method, reimplemented (the script ships in timm's repository, not its wheel):
eval(), model and input in the memory format, AMP autocast, 10 warm-up steps, timed steps with
perf_counter around a CUDA-synchronised forward. timm reports the mean step time; the samples go through
the project's one summary (LatencyStats), so the median is reported beside that mean."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.measure.settings import autocast_dtype  # noqa: E402
from core.measure.timing import LatencyStats


def timm_benchmark(
    model: nn.Module,
    batch: int,
    resolution: int,
    device: str,
    precision: str = "fp32",
    channels_last: bool = False,
    warm: int = 10,
    steps: int = 40,
) -> dict[str, float]:
    dev = torch.device(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.eval().to(dev, memory_format=fmt)
    x = torch.randn(batch, 3, resolution, resolution, device=dev).contiguous(memory_format=fmt)
    amp = autocast_dtype(precision)

    def sync_time() -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter()

    with torch.inference_mode(), torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
        for _ in range(warm):
            model(x)
        samples = []
        for _ in range(steps):
            t0 = sync_time()
            model(x)
            samples.append((sync_time() - t0) * 1e3)
    stats = LatencyStats.from_samples(samples, warm, "perf_counter around a synchronised forward (timm)")
    return {
        "step_ms": stats.mean_ms,
        "median_ms": stats.median_ms,
        "images_per_s": batch / (stats.mean_ms / 1e3),
    }
