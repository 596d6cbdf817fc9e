"""Background runs as the pages launch them: two at once stay apart, the cap refuses a third, resume, the
freezing-depth experiment's conclusion."""
import time

import pandas as pd
import pytest

from core.finetune import experiment, launch, planning, runs
from core.finetune.config import TrainConfig

TINY = dict(data="demo", demo_per_class=8, demo_size=32, image_size=32, batch_size=8, threads=1)


def wait_done(run_id, timeout=180):
    end = time.time() + timeout
    while time.time() < end:
        if not runs.get(run_id).active:
            return runs.get(run_id)
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {runs.get(run_id).status}")


def test_two_runs_at_once_keep_their_metrics_apart(monkeypatch):
    monkeypatch.setenv(runs.MAX_RUNS_ENV, "2")
    a = launch.launch(TrainConfig(**TINY, recipe="linear_probe", epochs=3), "a")
    b = launch.launch(TrainConfig(**TINY, recipe="linear_probe", epochs=2, seed=1), "b")
    with pytest.raises(runs.LaunchError, match="cap is 2"):
        launch.launch(TrainConfig(**TINY, epochs=1), "c")
    ra, rb = wait_done(a), wait_done(b)
    assert ra.status == rb.status == "done"
    va = runs.metrics(a).query("name == 'val_top1'")
    vb = runs.metrics(b).query("name == 'val_top1'")
    assert list(va["epoch"]) == [0, 1, 2] and list(vb["epoch"]) == [0, 1]
    assert runs.progress(ra).fraction == 1.0
    curves = runs.curves(a)
    assert {"loss", "lr", "val_top1"} <= set(curves.columns)


def test_resume_a_cancelled_run():
    run_id = launch.launch(TrainConfig(**TINY, recipe="finetune_full", weights="random", epochs=30), "r")
    end = time.time() + 60
    while time.time() < end and runs.metrics(run_id).empty:
        time.sleep(0.3)
    runs.request_cancel(run_id)
    assert wait_done(run_id).status == "cancelled"
    with pytest.raises(runs.LaunchError, match="still"):
        runs.update(run_id, status="running")
        try:
            launch.resume(run_id)
        finally:
            runs.update(run_id, status="cancelled")
    launch.resume(run_id)
    time.sleep(2)
    runs.request_cancel(run_id)
    assert wait_done(run_id).status in ("cancelled", "done")


def test_group_lrs_and_estimate():
    cfg = TrainConfig(**TINY, recipe="finetune_full")
    table = planning.group_lrs(cfg, 6)
    assert table["lr"].is_monotonic_increasing and table["trainable"].all()
    assert planning.estimate_epoch_s(cfg, 40) > 0


def test_experiment_conclusion_flags_negative_transfer():
    frame = pd.DataFrame({"recipe": ["linear_probe", "finetune_top", "finetune_full", "scratch"],
                          "best val top-1": [0.6, 0.7, 0.72, 0.9], "wall s": [5, 20, 30, 30]})
    lines = experiment.conclusion(frame)
    assert lines[0].startswith("Best: scratch at 90.0%") and any("Negative transfer" in line for line in lines)
    frame["best val top-1"] = [0.95, 0.9, 0.97, 0.4]
    assert "beats scratch by 57.0 percentage points" in " ".join(experiment.conclusion(frame))


def test_lr_range_test_returns_a_curve_and_a_suggestion():
    frame, lr = planning.lr_range(TrainConfig(**TINY, recipe="linear_probe"), steps=25)
    assert len(frame) >= 3 and frame["lr"].is_monotonic_increasing and 1e-6 <= lr <= 1
