"""A bare PyTorch training loop (no trainer): the reference the trainer's throughput is compared to."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import timm
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.measure.settings import autocast_dtype  # noqa: E402


def bare_loop_images_per_s(
    model_name: str,
    batch: int,
    size: int,
    device: str,
    steps: int = 20,
    warm: int = 3,
    precision: str = "fp32",
    channels_last: bool = False,
    n_classes: int = 6,
) -> float:
    """Images/s of model(x) -> CE -> backward -> AdamW step on a preallocated, already-normalised batch."""
    dev = torch.device(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = (
        timm.create_model(model_name, pretrained=False, num_classes=n_classes)
        .to(dev, memory_format=fmt)
        .train()
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, n_classes, (batch,), device=dev)
    dtype = autocast_dtype(precision)

    def step() -> None:
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warm):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return batch * steps / (time.perf_counter() - t)
