"""Runs compared like a tracker (W&B's runs table, TensorBoard's HParams): what each run was configured
with, what it scored, a two-run diff, and the default overlay. Frames only; the page draws them."""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from core.finetune.data import source_name
from core.runs.record import Run, empty_reason

# what differed between runs: (column, how to read it from a run); numbers are floats so a blank is NaN ("—")
CONFIG_COLUMNS = (
    "dataset",
    "data sha256",
    "images",
    "weights",
    "recipe",
    "backbone",
    "head LR",
    "lowest LR",
    "layer decay",
    "epochs",
    "image px",
    "batch",
    "augment",
    "schedule",
    "seed",
)
METRIC_COLUMNS = (
    "best val top-1 %",
    "val loss at best",
    "test top-1 %",
    "test 95% low",
    "test 95% high",
    "exported epoch",
    "epochs done",
    "wall s",
)
NUMBER_COLUMNS = (
    "images",
    "head LR",
    "lowest LR",
    "layer decay",
    "epochs",
    "image px",
    "batch",
    "seed",
    *METRIC_COLUMNS,
)


def _info(run: Run) -> dict[str, Any]:
    return run.result.get("info") or {}


def _lowest_lr(run: Run) -> float | None:
    """The smallest LR any trained group gets (discriminative LRs: the stem's); None before the run
    started."""
    lrs = [g["lr"] for g in _info(run).get("groups", ()) if g.get("trainable") and g.get("lr")]
    return min(lrs) if lrs else None


def row(run: Run, val_loss: dict[tuple[int, int], float] | None = None) -> dict[str, Any]:
    """One run's configuration and final metrics (``val_loss``: ``runs.epoch_values("val_loss")``)."""
    c, data = run.config, _info(run).get("dataset") or {}
    best, scored = run.result.get("best_top1"), run.result.get("test") or {}
    test, interval = scored.get("top1"), scored.get("wilson_95") or (None, None)
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status_word,
        "tags": ", ".join(run.tag_list),
        "dataset": data.get("name") or source_name(c),
        "data sha256": (data.get("sha256") or "")[:12],
        "images": data.get("images"),
        "weights": c.get("weights"),
        "recipe": c.get("recipe"),
        "backbone": c.get("model"),
        "head LR": c.get("lr"),
        "lowest LR": _lowest_lr(run),
        "layer decay": c.get("layer_decay") if c.get("recipe") == "finetune_full" else None,
        "epochs": c.get("epochs"),
        "image px": c.get("image_size"),
        "batch": c.get("batch_size"),
        "augment": c.get("augment"),
        "schedule": c.get("schedule"),
        "seed": c.get("seed"),
        "best val top-1 %": None if best is None else 100 * best,
        "val loss at best": (val_loss or {}).get((run.id, (run.result.get("best_epoch") or 0) - 1)),
        "test top-1 %": None if test is None else 100 * test,
        "test 95% low": None if interval[0] is None else 100 * interval[0],
        "test 95% high": None if interval[1] is None else 100 * interval[1],
        "exported epoch": run.result.get("best_epoch") or None,
        "epochs done": run.result.get("epochs_done"),
        "wall s": run.result.get("wall_s"),
        "device": run.device,
        "note": empty_reason(run) or ("no test split" if not c.get("test_fraction") else ""),
        "error": run.error,
    }


def frame(all_runs: Sequence[Run], val_loss: dict[tuple[int, int], float] | None = None) -> pd.DataFrame:
    """The runs table: numbers as floats (an empty cell is NaN, shown "—"), text with "—" for blanks."""
    rows = [row(r, val_loss) for r in all_runs]
    cols = ["id", "name", "status", "tags", *CONFIG_COLUMNS, *METRIC_COLUMNS, "device", "note", "error"]
    out = pd.DataFrame(rows, columns=cols)
    out[list(NUMBER_COLUMNS)] = out[list(NUMBER_COLUMNS)].astype(float)
    text = [c for c in cols if c not in NUMBER_COLUMNS and c != "id"]
    out[text] = out[text].astype(object).where(out[text].notna() & (out[text] != ""), "—").astype(str)
    return out


def default_overlay(all_runs: Sequence[Run], k: int = 3) -> list[int]:
    """The runs a comparison opens with: the best finished runs by val top-1 (a tie: the newer run), never
    a failed one; while nothing has finished, the newest runs that have curves."""
    done = [r for r in all_runs if r.status == "done" and r.result.get("best_top1") is not None]
    if done:
        return [r.id for r in sorted(done, key=lambda r: (r.result["best_top1"], r.id), reverse=True)[:k]]
    return [r.id for r in sorted(all_runs, key=lambda r: r.id, reverse=True) if r.status != "failed"][:k]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def diff(table: pd.DataFrame, a: int, b: int, only_changes: bool = False) -> pd.DataFrame:
    """Two runs side by side, field by field (configuration, then final metrics), with whether each
    differs."""
    ra, rb = table.set_index("id").loc[a], table.set_index("id").loc[b]
    fields = ["name", "status", *CONFIG_COLUMNS, *METRIC_COLUMNS, "device"]
    rows = [
        {
            "field": f,
            "kind": "metric" if f in METRIC_COLUMNS else "config",
            f"#{a}": _cell(ra[f]),
            f"#{b}": _cell(rb[f]),
            "differs": not _same(ra[f], rb[f]),
        }
        for f in fields
    ]
    out = pd.DataFrame(rows)
    return out[out["differs"]] if only_changes else out


def _cell(value: Any) -> str:
    """A diff cell as text (the two columns mix numbers and words): 0.001 stays 0.001, NaN is "—"."""
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.4g}"
    return str(value)


def hyper_parameters(table: pd.DataFrame) -> pd.DataFrame:
    """The finished runs' hyper-parameters against their best top-1, for the parallel-coordinates view."""
    done = table[table["best val top-1 %"].notna()]
    return done[
        [
            "id",
            "name",
            "recipe",
            "backbone",
            "head LR",
            "epochs",
            "image px",
            "batch",
            "augment",
            "best val top-1 %",
        ]
    ].reset_index(drop=True)
