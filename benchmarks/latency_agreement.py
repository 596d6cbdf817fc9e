"""Figure 2 of the foundation issue: profile_module's median latency against an independent timing loop
written like timm's benchmark.py (warm-up steps, then timed steps with perf_counter, CUDA synchronised),
in the same run, for three blocks and resnet50 at batch 1. Rounds alternate between the two timers."""

from __future__ import annotations

import statistics
import time

import torch
import torchvision
from _common import emit, environment, parser

from core.blocks import create_block
from core.measure.profiling import autocast_for, profile_module


def timm_style_median_ms(
    model: torch.nn.Module,
    shape: tuple[int, ...],
    device: str,
    precision: str,
    warm: int = 10,
    steps: int = 50,
) -> float:
    """Independent loop: eval, preallocated input, warm-up, per-step perf_counter around a synchronised
    call."""
    dev = torch.device(device)
    model = model.eval().to(dev)
    example = torch.randn(shape, device=dev)

    def now() -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter()

    with torch.inference_mode(), autocast_for(dev, precision):
        for _ in range(warm):
            model(example)
        deltas = []
        for _ in range(steps):
            t0 = now()
            model(example)
            deltas.append((now() - t0) * 1e3)
    return statistics.median(deltas)


CASES = {
    "conv 3x3 256->256 @14": (lambda: create_block("conv"), (1, 256, 14, 14)),
    "resnet_bottleneck 256 @56": (lambda: create_block("resnet_bottleneck"), (1, 256, 56, 56)),
    "mbconv 40 k5 @28": (lambda: create_block("mbconv"), (1, 40, 28, 28)),
    "resnet50 @224": (lambda: torchvision.models.resnet50(), (1, 3, 224, 224)),
}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    result = {"env": environment(args), "target": "within ±10%", "cases": {}}
    for name, (build, shape) in CASES.items():
        model = build()
        ours, theirs = [], []
        for _ in range(args.rounds):
            prof = profile_module(model, shape, device=args.device, dtype=args.precision, min_time_s=0.5)
            ours.append(prof.latency_ms)
            theirs.append(timm_style_median_ms(model, shape, args.device, args.precision))
        a, b = statistics.median(ours), statistics.median(theirs)
        result["cases"][name] = {
            "profile_module_median_ms": round(a, 4),
            "timm_style_median_ms": round(b, 4),
            "difference_pct": round(100 * (a - b) / b, 2),
            "rounds_profile_module_ms": [round(x, 4) for x in ours],
            "rounds_timm_style_ms": [round(x, 4) for x in theirs],
        }
    result["max_abs_difference_pct"] = max(abs(c["difference_pct"]) for c in result["cases"].values())
    emit(result)


if __name__ == "__main__":
    main()
