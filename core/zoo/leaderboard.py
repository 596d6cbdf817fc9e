"""One leaderboard of every backbone measured on this device: published top-1, batch-1 latency at one
thread and at every core, best throughput, MACs and params, filterable by a latency budget (timm's
results tables, with this machine's own latency columns)."""

from __future__ import annotations

import os
from dataclasses import replace

import pandas as pd
import torch

from core.jobs import store
from core.measure.settings import Setting
from core.zoo import measure
from core.zoo.catalog import default_accuracy

COLUMNS = [
    "model",
    "resolution (px)",
    "top-1 % (timm)",
    "latency ms, 1 thread",
    "latency ms, all threads",
    "best images/s",
    "GMACs",
    "params (M)",
    "offline fine-tune",
    "within budget",
]


def all_threads() -> int:
    """'All threads': every core of this machine."""
    return os.cpu_count() or 1


def _latency(setting: Setting, threads: int) -> pd.DataFrame:
    """Batch-1 latency per (model, resolution) at ``threads``, the latest measurement of each."""
    rows = store.list_measurements(
        measure.KIND,
        device=setting.device,
        precision=setting.precision,
        memory_format=setting.memory_format,
        threads=threads,
        torch_version=torch.__version__,
    )
    frame = pd.DataFrame(
        rows,
        columns=["model", "resolution", "latency_ms", "measured_at", "default_resolution", "params", "macs"],
    )
    return (
        frame.dropna(subset=["latency_ms"])
        .sort_values("measured_at")
        .drop_duplicates(["model", "resolution"], keep="last")
    )


def frame(setting: Setting, budget_ms: float | None = None) -> pd.DataFrame:
    """Every model measured on this device and precision, at its default input size where it was measured
    there (else the size it was measured at), one row each, best published top-1 first. ``within
    budget``: the one-thread latency meets ``budget_ms`` (None: no budget, every row True)."""
    from core.finetune.weights import OFFLINE_ARCH

    one = _latency(setting, 1)
    many = _latency(setting, all_threads())
    both = pd.concat([one, many]).sort_values("measured_at")
    if both.empty:
        return pd.DataFrame(columns=COLUMNS)
    both = both.assign(default=both["resolution"] == both["default_resolution"])
    picked = both.sort_values(["default", "measured_at"]).drop_duplicates("model", keep="last")
    out = picked[["model", "resolution", "params", "macs"]].copy()
    for name, part in (("latency ms, 1 thread", one), ("latency ms, all threads", many)):
        out = out.merge(
            part[["model", "resolution", "latency_ms"]].rename(columns={"latency_ms": name}),
            on=["model", "resolution"],
            how="left",
        )
    best = {}
    for sw in measure.sweeps(setting):
        ips = max((r["images_per_s"] for r in sw["rows"]), default=None)
        if ips is not None:
            best[(sw["model"], sw["resolution"])] = max(ips, best.get((sw["model"], sw["resolution"]), 0.0))
    out["best images/s"] = [best.get((m, r)) for m, r in zip(out["model"], out["resolution"])]
    acc = default_accuracy()[["model", "top1"]]
    out = out.merge(acc, on="model", how="left")
    out = out.assign(
        **{
            "resolution (px)": out["resolution"].astype(int),
            "top-1 % (timm)": out["top1"],
            "GMACs": out["macs"] / 1e9,
            "params (M)": out["params"] / 1e6,
            "offline fine-tune": out["model"] == OFFLINE_ARCH,
        }
    )
    lat = out["latency ms, 1 thread"]
    out["within budget"] = True if budget_ms is None else lat.le(budget_ms) & lat.notna()
    out = out.sort_values("top-1 % (timm)", ascending=False, na_position="last")
    num = [
        "top-1 % (timm)",
        "latency ms, 1 thread",
        "latency ms, all threads",
        "best images/s",
        "GMACs",
        "params (M)",
    ]
    out[num] = out[num].astype(float)
    return out[COLUMNS].reset_index(drop=True)


def missing(board: pd.DataFrame) -> dict[int, list[str]]:
    """Models on the board without a latency at one thread or at all threads: {threads: models}."""
    out: dict[int, list[str]] = {}
    for threads, col in ((1, "latency ms, 1 thread"), (all_threads(), "latency ms, all threads")):
        names = list(board.loc[board[col].isna(), "model"])
        if names:
            out.setdefault(threads, []).extend(n for n in names if n not in out.get(threads, []))
    return out


def at_threads(setting: Setting, threads: int) -> Setting:
    return replace(setting, threads=threads)
