"""EfficientNet compound scaling: d = α^φ, w = β^φ, r = γ^φ with α·β²·γ² ≈ 2, built for real with timm."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from core.measure.counting import fvcore_macs
from core.measure.profiling import profile_module

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # the paper's grid-search result, as the lecture quotes it
BASE_RESOLUTION = 224


@dataclass(frozen=True)
class Scaling:
    """Predicted multipliers for one φ."""

    phi: float
    alpha: float
    beta: float
    gamma: float

    @property
    def depth(self) -> float:
        return self.alpha ** self.phi

    @property
    def width(self) -> float:
        return self.beta ** self.phi

    @property
    def resolution_multiplier(self) -> float:
        return self.gamma ** self.phi

    @property
    def resolution(self) -> float:
        return BASE_RESOLUTION * self.resolution_multiplier

    @property
    def constraint(self) -> float:
        """α·β²·γ²: how much one step of φ multiplies compute (the paper targets ≈ 2)."""
        return self.alpha * self.beta ** 2 * self.gamma ** 2

    @property
    def predicted_cost_ratio(self) -> float:
        """FLOPs grow with d·w²·r² = (α·β²·γ²)^φ ≈ 2^φ."""
        return self.constraint ** self.phi


def build_scaled(width: float, depth: float):  # -> nn.Module
    """EfficientNet-B0's architecture through timm's generator with these multipliers (random weights)."""
    from timm.models.efficientnet import _gen_efficientnet
    return _gen_efficientnet("efficientnet_b0", channel_multiplier=width, depth_multiplier=depth,
                             pretrained=False).eval()


def measure_scaled(width: float, depth: float, resolution: int, device: str = "cpu", dtype: str = "fp32",
                   memory_format: str = "contiguous", threads: int | None = None,
                   time_it: bool = True) -> dict[str, float]:
    """Params, MACs and batch-1 latency of the scaled network at ``resolution``."""
    model = build_scaled(width, depth)
    if not time_it:
        import torch
        macs = fvcore_macs(model, (torch.randn(1, 3, resolution, resolution),)).total
        return {"params": sum(p.numel() for p in model.parameters()), "macs": macs, "latency_ms": float("nan")}
    prof = profile_module(model, (1, 3, resolution, resolution), device=device, dtype=dtype,
                          memory_format=memory_format, threads=threads, min_iters=5, warmup=2, min_time_s=0.2)
    return {"params": prof.params, "macs": prof.macs, "latency_ms": prof.latency_ms or float("nan")}


def predicted_vs_measured(phis: list[float], alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
                          time_it: bool = False, **kw: str) -> pd.DataFrame:
    """For each φ: the predicted cost ratio against B0 and the measured MAC ratio of the built network."""
    rows = []
    base = None
    for phi in [0.0, *[p for p in phis if p != 0.0]]:
        s = Scaling(phi, alpha, beta, gamma)
        res = int(round(s.resolution))
        m = measure_scaled(s.width, s.depth, res, time_it=time_it, **kw)
        base = base or m
        rows.append({"phi": phi, "depth x": s.depth, "width x": s.width, "resolution": res,
                     "predicted cost ratio": s.predicted_cost_ratio, "measured MAC ratio": m["macs"] / base["macs"],
                     "params": m["params"], "MACs": m["macs"], "latency ms": m["latency_ms"]})
    return pd.DataFrame(rows)


def official_points() -> pd.DataFrame:
    """timm's EfficientNet B0-B7 counted at their own resolutions, with the φ that their resolution implies
    (224 · γ^φ = resolution, so φ = log(resolution / 224) / log γ)."""
    from core.present.lecture import EFFICIENTNET_OFFICIAL
    from core.zoo.measure import count
    rows = []
    base = count("efficientnet_b0", BASE_RESOLUTION)["macs"]
    for _, r in EFFICIENTNET_OFFICIAL.iterrows():
        c = count(r["timm"], int(r["resolution"]))
        rows.append({"model": r["model"], "width": r["width"], "depth": r["depth"], "resolution": r["resolution"],
                     "params (M)": c["params"] / 1e6, "GMACs": c["macs"] / 1e9, "MAC ratio": c["macs"] / base,
                     "phi (fit)": math.log(r["resolution"] / BASE_RESOLUTION) / math.log(GAMMA)})
    return pd.DataFrame(rows)
