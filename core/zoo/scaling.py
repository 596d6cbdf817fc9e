"""EfficientNet compound scaling: d = α^φ, w = β^φ, r = γ^φ with α·β²·γ² ≈ 2, built for real with timm."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
        return self.alpha**self.phi

    @property
    def width(self) -> float:
        return self.beta**self.phi

    @property
    def resolution_multiplier(self) -> float:
        return self.gamma**self.phi

    @property
    def resolution(self) -> float:
        return BASE_RESOLUTION * self.resolution_multiplier

    @property
    def constraint(self) -> float:
        """α·β²·γ²: how much one step of φ multiplies compute (the paper targets ≈ 2)."""
        return self.alpha * self.beta**2 * self.gamma**2

    @property
    def predicted_cost_ratio(self) -> float:
        """FLOPs grow with d·w²·r² = (α·β²·γ²)^φ ≈ 2^φ."""
        return self.constraint**self.phi


def build_scaled(width: float, depth: float):  # -> nn.Module
    """EfficientNet-B0's architecture through timm's generator with these multipliers (random weights)."""
    from timm.models.efficientnet import _gen_efficientnet

    return _gen_efficientnet(
        "efficientnet_b0", channel_multiplier=width, depth_multiplier=depth, pretrained=False
    ).eval()


def measure_scaled(
    width: float,
    depth: float,
    resolution: int,
    device: str = "cpu",
    dtype: str = "fp32",
    memory_format: str = "contiguous",
    threads: int | None = None,
    time_it: bool = True,
) -> dict[str, float]:
    """Params, MACs and batch-1 latency of the scaled network at ``resolution``."""
    model = build_scaled(width, depth)
    if not time_it:
        import torch

        macs = fvcore_macs(model, (torch.randn(1, 3, resolution, resolution),)).total
        return {
            "params": sum(p.numel() for p in model.parameters()),
            "macs": macs,
            "latency_ms": float("nan"),
        }
    prof = profile_module(
        model,
        (1, 3, resolution, resolution),
        device=device,
        dtype=dtype,
        memory_format=memory_format,
        threads=threads,
        min_iters=5,
        warmup=2,
        min_time_s=0.2,
    )
    return {"params": prof.params, "macs": prof.macs, "latency_ms": prof.latency_ms or float("nan")}


SCALED = "scaled-count"  # store kind of one scaled network's params and MACs (device-independent)


def _scaled_key(width: float, depth: float, resolution: int) -> tuple[str, dict[str, Any]]:
    """The store key and meta of one scaled network's count (``core.zoo.measure``'s keys, kind ``SCALED``)."""
    from core.zoo.measure import COUNTED, setting_key, setting_meta

    name = f"efficientnet_b0 w{width:.4f} d{depth:.4f}"
    return setting_key(name, resolution, 1, COUNTED, SCALED), setting_meta(name, resolution, 1, COUNTED)


def scaled_count(width: float, depth: float, resolution: int, compute: bool = True) -> dict[str, Any] | None:
    """Params and MACs of B0 scaled by (width, depth) at ``resolution``, kept in the store; with
    ``compute=False`` only what is kept (None when it was never counted)."""
    from core.jobs import store

    key, meta = _scaled_key(width, depth, resolution)
    try:
        if (hit := store.get_measurement(key)) is not None:
            return hit
    except store.StoreError:
        key = ""
    if not compute:
        return None
    m = measure_scaled(width, depth, resolution, time_it=False)
    payload = {"params": m["params"], "macs": m["macs"]}
    if key:
        try:
            store.put_measurement(key, SCALED, meta, payload)
        except store.StoreError:
            pass
    return payload


def plan(phis: list[float], alpha: float, beta: float, gamma: float) -> list[tuple[float, float, float, int]]:
    """The networks a scaling table needs, φ = 0 (the base) first: (φ, width, depth, resolution)."""
    out = []
    for phi in [0.0, *[p for p in phis if p != 0.0]]:
        sc = Scaling(phi, alpha, beta, gamma)
        out.append((phi, sc.width, sc.depth, int(round(sc.resolution))))
    return out


def predicted_vs_measured(
    phis: list[float], alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA, compute: bool = True
) -> pd.DataFrame:
    """For each φ: the predicted cost ratio against B0 and the measured MAC ratio of the built network.
    With ``compute=False`` the counts come only from the store: a φ not counted yet has empty measured
    cells (the page shows the prediction at once while a background job counts, see ``start``)."""
    rows = []
    base = None
    for phi, width, depth, res in plan(phis, alpha, beta, gamma):
        sc = Scaling(phi, alpha, beta, gamma)
        m = scaled_count(width, depth, res, compute)
        base = base if base is not None else m
        ratio = m["macs"] / base["macs"] if m is not None and base is not None else None
        rows.append(
            {
                "phi": phi,
                "depth x": sc.depth,
                "width x": sc.width,
                "resolution": res,
                "predicted cost ratio": sc.predicted_cost_ratio,
                "measured MAC ratio": ratio,
                "params": m["params"] if m else None,
                "MACs": m["macs"] if m else None,
            }
        )
    frame = pd.DataFrame(rows)
    frame[["measured MAC ratio", "params", "MACs"]] = frame[["measured MAC ratio", "params", "MACs"]].astype(
        float
    )
    return frame


def official_points(compute: bool = True) -> pd.DataFrame:
    """timm's EfficientNet B0-B7 counted at their own resolutions, with the φ that their resolution implies
    (224 · γ^φ = resolution, so φ = log(resolution / 224) / log γ); with ``compute=False`` only those
    counted."""
    from core.zoo.lecture import EFFICIENTNET_OFFICIAL
    from core.zoo.measure import count, counted

    rows = []
    get = count if compute else counted
    base = get("efficientnet_b0", BASE_RESOLUTION)
    for _, r in EFFICIENTNET_OFFICIAL.iterrows():
        c = get(r["timm"], int(r["resolution"]))
        if c is None or base is None:
            continue
        rows.append(
            {
                "model": r["model"],
                "width": r["width"],
                "depth": r["depth"],
                "resolution": r["resolution"],
                "params (M)": c["params"] / 1e6,
                "GMACs": c["macs"] / 1e9,
                "MAC ratio": c["macs"] / base["macs"],
                "phi (fit)": math.log(r["resolution"] / BASE_RESOLUTION) / math.log(GAMMA),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["model", "width", "depth", "resolution", "params (M)", "GMACs", "MAC ratio", "phi (fit)"],
    )


KIND = "compound-scaling"
MODULE = "core.zoo.scaling"


def missing(table: pd.DataFrame, official: pd.DataFrame) -> int:
    """How many networks of a table and of the official B0-B7 (both read with ``compute=False``) are not
    counted yet: derived from what the page already read, never read again."""
    from core.zoo.lecture import EFFICIENTNET_OFFICIAL

    return int(table["MACs"].isna().sum()) + len(EFFICIENTNET_OFFICIAL) - len(official)


def start(phis: list[float], alpha: float, beta: float, gamma: float) -> Any:
    """Counts the table's networks, then the official B0-B7, in a background process (a server never builds
    B7 at 600 px itself: that took 89 s and 4 GB in the page)."""
    from core import jobs

    running = jobs.latest(KIND)
    if running is not None and running.active:
        return running
    from core.zoo.lecture import EFFICIENTNET_OFFICIAL

    args = {"phis": list(phis), "alpha": alpha, "beta": beta, "gamma": gamma}
    return jobs.start(
        KIND,
        MODULE,
        args,
        total=len(plan(phis, alpha, beta, gamma)) + 1 + len(EFFICIENTNET_OFFICIAL),
        what="a compound-scaling count",
    )


def run(job_id: int) -> int:
    """The job: counts only (no timing, no wall time kept), so it gives way to loading pages
    (``core.jobs.yielding``); its final message says how long it waited for them."""
    from core import jobs
    from core.jobs.yielding import give_way
    from core.zoo.lecture import EFFICIENTNET_OFFICIAL
    from core.zoo.measure import count

    job = jobs.get(job_id)
    a = job.args
    jobs.mark_running(job_id)
    done = 0
    work = [
        (
            f"φ = {phi:g}",
            f"counting the φ = {phi:g} network ({res} px)",
            lambda w=width, d=depth, r=res: scaled_count(w, d, r),
        )
        for phi, width, depth, res in plan(a["phis"], a["alpha"], a["beta"], a["gamma"])
    ]
    work += [
        (name, f"counting {name} at {int(res)} px", lambda n=name, r=int(res): count(n, r))
        for name, res in zip(
            ["efficientnet_b0", *EFFICIENTNET_OFFICIAL["timm"]],
            [BASE_RESOLUTION, *EFFICIENTNET_OFFICIAL["resolution"]],
        )
    ]
    with give_way() as way:
        for current, message, counting in work:
            if jobs.progress(job_id, done, current=current, message=message):
                jobs.finish(job_id, "cancelled", message=f"stopped after {done} networks")
                return 0
            way()  # before building it too, not only inside its forwards
            counting()
            done += 1
    gave = (
        f"; it gave way to loading pages {way.pauses} time(s), {way.paused_s:.1f} s in all"
        if way.pauses
        else ""
    )
    jobs.progress(job_id, done, message="done")
    jobs.finish(job_id, "done", message=f"{done} networks counted{gave}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from core import jobs

    return jobs.worker_main(run, argv, __doc__ or "")


if __name__ == "__main__":
    import sys

    sys.exit(main())
