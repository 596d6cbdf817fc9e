"""The lecture notebook's experiment, 'effect of freezing depth', as one background job: linear_probe,
finetune_top, finetune_full and scratch on the same split, one after another, each with the same number
of epochs. Each run picks its epoch on the validation split; a held-out test split, which no choice ever
saw, scores the picked epoch once. ``python -m core.runs.experiment --job ID``."""

from __future__ import annotations

import sys
import time
from typing import Any

import pandas as pd

from core import jobs
from core.finetune.config import RECIPES, TrainConfig
from core.present import fmt
from core.runs import record as runs

KIND = "freezing-depth"
MODULE = "core.runs.experiment"
TEST_FRACTION = 0.2  # of each class, held out for the final score (validation keeps cfg.val_fraction)


def budget(base: TrainConfig | dict[str, Any]) -> str:
    """The experiment's equal budget, in words for the page."""
    epochs = base.epochs if isinstance(base, TrainConfig) else base["epochs"]
    return (
        f"Every recipe trains for the same {epochs} epochs on the same split and seed; each keeps the epoch "
        f"with the best validation top-1, and that epoch is scored once on a held-out test split "
        f"({TEST_FRACTION:.0%} of each class) that no choice saw."
    )


def start(base: TrainConfig) -> jobs.Job:
    running = jobs.latest(KIND)
    if running is not None and running.active:
        raise RuntimeError(f"the freezing-depth experiment #{running.id} is still running")
    return jobs.start(KIND, MODULE, {"config": base.to_dict()}, total=len(RECIPES), what="an experiment")


def run(job_id: int) -> int:
    from core.runs.session import execute

    job = jobs.get(job_id)
    jobs.mark_running(job_id)
    base = job.args["config"]
    made: list[int] = []
    for i, recipe in enumerate(RECIPES):
        if jobs.progress(job_id, i, current=recipe, message=f"training {recipe}"):
            jobs.finish(job_id, "cancelled", message=f"stopped after {i} of {len(RECIPES)} recipes")
            return 0
        cfg = TrainConfig.from_dict(
            {
                **base,
                "recipe": recipe,
                "test_fraction": TEST_FRACTION,
                "weights": "random" if recipe == "scratch" else base["weights"],
            }
        )
        run_id = _create_in_a_free_slot(job_id, i, cfg, f"freezing-depth #{job_id}: {recipe}")
        if run_id is None:
            jobs.finish(job_id, "cancelled", message=f"stopped after {i} of {len(RECIPES)} recipes")
            return 0
        made.append(run_id)
        jobs.progress(job_id, i, current=recipe, message=f"training {recipe} (run {run_id})")
        execute(cfg, run_id)
    jobs.progress(job_id, len(RECIPES), message="done")
    jobs.finish(job_id, "done", message=",".join(map(str, made)))
    return 0


def _create_in_a_free_slot(job_id: int, done: int, cfg: TrainConfig, name: str) -> int | None:
    """The experiment's runs count against the same cap as any other run: wait for a slot (None if
    cancelled)."""
    while True:
        try:
            return runs.create(cfg.to_dict(), name=name, cap=runs.max_runs(), job=job_id)
        except runs.LaunchError:
            if jobs.progress(
                job_id,
                done,
                current=cfg.recipe,
                message=f"waiting for a free run slot (at most {runs.max_runs()} runs at once)",
            ):
                return None
            time.sleep(1.0)


def cancel(job_id: int) -> None:
    """Stops the experiment and the run it is training."""
    jobs.request_cancel(job_id)
    for r in runs.by_job(job_id):
        if r.active:
            runs.request_cancel(r.id)


def results(job: jobs.Job) -> pd.DataFrame:
    """One row per recipe of an experiment: epochs, the picked epoch, val and test top-1 (in %) with their
    ~95% Wilson intervals, and wall time."""
    from core.runs.evaluate import wilson

    rows: list[dict[str, Any]] = []
    for r in runs.by_job(job.id):
        info, test = r.result.get("info", {}), r.result.get("test") or {}
        val_n, best = info.get("val_images", 0), r.result.get("best_top1")
        val_lo, val_hi = wilson(round(best * val_n), val_n) if best is not None and val_n else (None, None)
        test_lo, test_hi = wilson(test["hits"], test["n"]) if test else (None, None)
        rows.append(
            {
                "recipe": r.config.get("recipe"),
                "run": r.id,
                "status": r.status,
                "epochs": r.config.get("epochs"),
                "picked epoch": r.result.get("best_epoch"),
                "val top-1 %": fmt.percent(best),
                "val 95% low": fmt.percent(val_lo),
                "val 95% high": fmt.percent(val_hi),
                "val images": val_n or None,
                "test top-1 %": fmt.percent(test.get("top1")),
                "test 95% low": fmt.percent(test_lo),
                "test 95% high": fmt.percent(test_hi),
                "test images": test.get("n"),
                "wall s": r.result.get("wall_s"),
            }
        )
    return pd.DataFrame(rows) if rows else pd.DataFrame()


def conclusion(frame: pd.DataFrame) -> list[str]:
    """Plain words from the test figures (validation where a run has no test score), with their
    uncertainty; negative transfer is flagged when scratch wins by more than the intervals allow."""
    col = "test top-1 %" if "test top-1 %" in frame and frame["test top-1 %"].notna().any() else "val top-1 %"
    lo_col, hi_col = col.replace("top-1 %", "95% low"), col.replace("top-1 %", "95% high")
    split = col.split()[0]
    done = frame.dropna(subset=[col]) if col in frame else pd.DataFrame()
    if done.empty:
        return ["No finished recipe yet."]
    best = done.loc[done[col].idxmax()]
    lines = [
        f"Best on the {split} split: {best['recipe']} at {best[col]:.1f}% top-1 (95% interval "
        f"{best[lo_col]:.1f}–{best[hi_col]:.1f}%) in {best['wall s']:.0f} s."
    ]
    tied = [
        r["recipe"] for _, r in done.iterrows() if r["recipe"] != best["recipe"] and r[hi_col] >= best[lo_col]
    ]
    if tied:
        lines.append(
            f"Its interval overlaps {', '.join(tied)}: on {int(best[split + ' images'])} {split} images "
            "those cannot be told apart."
        )
    scratch = done[done["recipe"] == "scratch"]
    pretrained = done[done["recipe"] != "scratch"]
    if not scratch.empty and not pretrained.empty:
        s, p = scratch.iloc[0], pretrained.loc[pretrained[col].idxmax()]
        if s[col] > p[col]:
            sure = "" if s[lo_col] > p[hi_col] else " (within the intervals, so not a firm result)"
            lines.append(
                f"Negative transfer: scratch ({s[col]:.1f}%) beats every pretrained recipe ({p[col]:.1f}%)"
                f"{sure}. The pretrained features may not fit this domain; try domain-specific pretraining."
            )
        else:
            sure = "" if p[lo_col] > s[hi_col] else " (within the intervals, so not a firm result)"
            lines.append(
                f"Pretraining helps: the best pretrained recipe beats scratch by "
                f"{p[col] - s[col]:.1f} percentage points{sure}."
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    return jobs.worker_main(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
