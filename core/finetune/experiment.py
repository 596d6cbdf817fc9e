"""The lecture notebook's experiment, 'effect of freezing depth', as one background job:
linear_probe, finetune_top, finetune_full and scratch on the same split, one after another.
``python -m core.finetune.experiment --job ID``."""
from __future__ import annotations

import sys
import time
from typing import Any

import pandas as pd

from core import jobs
from core.finetune import runs
from core.finetune.config import RECIPES, TrainConfig

KIND = "freezing-depth"
MODULE = "core.finetune.experiment"


def start(base: TrainConfig) -> jobs.Job:
    running = jobs.latest(KIND)
    if running is not None and running.active:
        raise RuntimeError(f"the freezing-depth experiment #{running.id} is still running")
    return jobs.start(KIND, MODULE, {"config": base.to_dict()}, total=len(RECIPES))


def run(job_id: int) -> int:
    from core.finetune.session import execute
    job = jobs.get(job_id)
    jobs.mark_running(job_id)
    base = job.args["config"]
    made: list[int] = []
    for i, recipe in enumerate(RECIPES):
        if jobs.progress(job_id, i, current=recipe, message=f"training {recipe}"):
            jobs.finish(job_id, "cancelled", message=f"stopped after {i} of {len(RECIPES)} recipes")
            return 0
        # the probe's epochs cost milliseconds on cached features, so it gets ten times as many
        epochs = max(20, base["epochs"] * 10) if recipe == "linear_probe" else base["epochs"]
        cfg = TrainConfig.from_dict({**base, "recipe": recipe, "epochs": epochs,
                                     "weights": "random" if recipe == "scratch" else base["weights"]})
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
    """The experiment's runs count against the same cap as any other run: wait for a slot (None if cancelled)."""
    while True:
        try:
            return runs.create(cfg.to_dict(), name=name, cap=runs.max_runs(), job=job_id)
        except runs.LaunchError:
            if jobs.progress(job_id, done, current=cfg.recipe,
                             message=f"waiting for a free run slot (at most {runs.max_runs()} runs at once)"):
                return None
            time.sleep(1.0)


def cancel(job_id: int) -> None:
    """Stops the experiment and the run it is training."""
    jobs.request_cancel(job_id)
    for r in runs.by_job(job_id):
        if r.active:
            runs.request_cancel(r.id)


def results(job: jobs.Job) -> pd.DataFrame:
    """One row per recipe of an experiment: best val top-1 and wall time."""
    rows: list[dict[str, Any]] = [{"recipe": r.config.get("recipe"), "run": r.id, "status": r.status,
                                   "best val top-1": r.result.get("best_top1"), "wall s": r.result.get("wall_s")}
                                  for r in runs.by_job(job.id)]
    return pd.DataFrame(rows) if rows else pd.DataFrame()


def conclusion(frame: pd.DataFrame) -> list[str]:
    """Plain words from the numbers; negative transfer is flagged when scratch wins."""
    done = frame.dropna(subset=["best val top-1"])
    if done.empty:
        return ["No finished recipe yet."]
    best = done.loc[done["best val top-1"].idxmax()]
    lines = [f"Best: {best['recipe']} at {best['best val top-1']:.1%} val top-1 in {best['wall s']:.0f} s."]
    fastest = done.loc[done["wall s"].idxmin()]
    if fastest["recipe"] != best["recipe"]:
        lines.append(f"Fastest: {fastest['recipe']} ({fastest['wall s']:.0f} s, {fastest['best val top-1']:.1%}).")
    scratch = done[done["recipe"] == "scratch"]
    pretrained = done[done["recipe"] != "scratch"]
    if not scratch.empty and not pretrained.empty:
        s, p = scratch["best val top-1"].iloc[0], pretrained["best val top-1"].max()
        if s > p:
            lines.append(f"Negative transfer: scratch ({s:.1%}) beats every pretrained recipe ({p:.1%}). The "
                         "pretrained features do not fit this domain; try domain-specific pretraining.")
        else:
            lines.append(f"Pretraining helps: the best pretrained recipe beats scratch by {(p - s) * 100:.1f} percentage points.")
    return lines


def main(argv: list[str] | None = None) -> int:
    return jobs.worker_main(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
