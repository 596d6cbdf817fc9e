"""LR schedules (cosine with warm-up, one-cycle, constant) and an LR range test."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
import torch


def make_scheduler(
    opt: torch.optim.Optimizer, kind: str, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step schedule; every param group keeps its own (discriminative) base LR."""
    total_steps = max(total_steps, 1)
    if kind == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=total_steps, pct_start=0.3
        )
    if kind == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)

    def cosine(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(opt, cosine)


def lr_range_test(
    step_fn: Callable[[float], float],
    start: float = 1e-6,
    end: float = 1.0,
    steps: int = 60,
    smooth: float = 0.9,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, float]:
    """Runs ``step_fn(lr) -> loss`` for exponentially growing LRs; stops when the loss explodes.
    ``on_step(i, n)`` hears of each step (a progress bar).

    Suggests the LR of the steepest fall of the smoothed loss (fastai's 'steep' point)."""
    lrs = np.geomspace(start, end, steps)
    rows, avg, best = [], 0.0, math.inf
    for i, lr in enumerate(lrs):
        loss = step_fn(float(lr))
        if on_step is not None:
            on_step(i + 1, steps)
        avg = smooth * avg + (1 - smooth) * loss
        smoothed = avg / (1 - smooth ** (i + 1))
        rows.append({"lr": float(lr), "loss": loss, "smoothed loss": smoothed})
        best = min(best, smoothed)
        if not math.isfinite(loss) or smoothed > 4 * best:
            break
    frame = pd.DataFrame(rows)
    if len(frame) < 3:
        return frame, float(frame["lr"].iloc[0])
    grads = np.gradient(frame["smoothed loss"].to_numpy(), np.log(frame["lr"].to_numpy()))
    return frame, float(frame["lr"].iloc[int(np.argmin(grads[:-1]))])
