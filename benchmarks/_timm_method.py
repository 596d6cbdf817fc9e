"""timm's benchmark.py method, reimplemented (the script ships in timm's repository, not its wheel):
eval(), model and input in the memory format, AMP autocast, 10 warm-up steps, timed steps with
perf_counter around a CUDA-synchronised forward; reports the mean step time and images/s."""
from __future__ import annotations

import time

import torch
from torch import nn

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def timm_benchmark(model: nn.Module, batch: int, resolution: int, device: str, precision: str = "fp32",
                   channels_last: bool = False, warm: int = 10, steps: int = 40) -> dict[str, float]:
    dev = torch.device(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.eval().to(dev, memory_format=fmt)
    x = torch.randn(batch, 3, resolution, resolution, device=dev).contiguous(memory_format=fmt)
    amp = DTYPES[precision]

    def sync_time() -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter()

    with torch.inference_mode(), torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
        for _ in range(warm):
            model(x)
        total = 0.0
        for _ in range(steps):
            t0 = sync_time()
            model(x)
            total += sync_time() - t0
    step_ms = total / steps * 1e3
    return {"step_ms": step_ms, "images_per_s": batch / (step_ms / 1e3)}
