"""Background runs as the pages launch them: two at once stay apart, the cap refuses a third, resume, the
freezing-depth experiment's conclusion."""

import time
from pathlib import Path

import pandas as pd
import pytest

from core.finetune import planning
from core.finetune.bundle import load_checkpoint
from core.finetune.config import TrainConfig
from core.runs import experiment, launch
from core.runs import record as runs

TINY = dict(data="demo", demo_per_class=8, demo_size=32, image_size=32, batch_size=8, threads=1)


def wait_done(run_id, timeout=180):
    end = time.time() + timeout
    while time.time() < end:
        if not runs.get(run_id).active:
            return runs.get(run_id)
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {runs.get(run_id).status}")


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_a_cancelled_run():
    run_id = launch.launch(TrainConfig(**TINY, recipe="finetune_full", weights="random", epochs=30), "r")
    end = time.time() + 60  # a whole epoch (and its checkpoint) before the stop
    while time.time() < end and runs.metrics(run_id).query("name == 'val_top1'").empty:
        time.sleep(0.3)
    runs.request_cancel(run_id)
    assert wait_done(run_id).status == "cancelled"
    with pytest.raises(runs.LaunchError, match="still"):
        runs.update(run_id, status="running")
        try:
            launch.resume(run_id)
        finally:
            runs.update(run_id, status="cancelled")
    before = load_checkpoint(runs.folder(runs.get(run_id)))["epoch"]
    val_before = runs.metrics(run_id).query("name == 'val_top1'")
    launch.resume(run_id)
    end = time.time() + 120  # the resumed run must add an epoch past its checkpoint, then stop on request
    while time.time() < end and runs.metrics(run_id).query("name == 'val_top1'")["epoch"].max() < before:
        time.sleep(0.3)
    runs.request_cancel(run_id)
    assert wait_done(run_id).status in ("cancelled", "done")
    val = runs.metrics(run_id).query("name == 'val_top1'")
    assert val["epoch"].max() >= before > val_before["epoch"].max() - 1  # progress past the checkpoint
    assert val["epoch"].is_unique and list(val["epoch"]) == sorted(val["epoch"])  # no epoch counted twice


@pytest.mark.slow
def test_group_lrs_and_estimate():
    cfg = TrainConfig(**TINY, recipe="finetune_full")
    table = planning.group_lrs(cfg, 6)
    assert table["lr"].is_monotonic_increasing and table["trainable"].all()
    est = planning.estimate_epoch(cfg, 40, 10)
    assert (est.device, est.precision, est.extraction_s, est.batch) == ("cpu", "fp32", 0.0, 8)
    assert (
        est.text().startswith("About ")
        and "40 training + 10 validation images, on cpu in fp32, batch 8" in est.text()
    )
    probe = planning.estimate_epoch(TrainConfig(**TINY, recipe="linear_probe"), 40, 10)
    # the probe's backbone runs once over all 50 images; each epoch then trains only the head on cached
    # features
    assert probe.extraction_s > probe.epoch_s and "extract features of 50 images" in probe.text()


def _experiment_frame(test_hits: list[int], n: int = 60) -> pd.DataFrame:
    from core.runs.evaluate import wilson

    rows = []
    for recipe, hits in zip(["linear_probe", "finetune_top", "finetune_full", "scratch"], test_hits):
        lo, hi = wilson(hits, n)
        rows.append(
            {
                "recipe": recipe,
                "val top-1 %": 50.0,
                "test top-1 %": 100 * hits / n,
                "test 95% low": 100 * lo,
                "test 95% high": 100 * hi,
                "test images": n,
                "wall s": 10.0,
            }
        )
    return pd.DataFrame(rows)


def test_wilson_interval_matches_the_closed_form():
    from core.runs.evaluate import wilson

    # 27 of 36: p = 0.75; Wilson 95% = (0.5893, 0.8625) (centre 0.7259, half-width 0.1366)
    lo, hi = wilson(27, 36)
    assert (round(lo, 4), round(hi, 4)) == (0.5893, 0.8625)
    assert wilson(0, 10)[0] == 0.0 and round(wilson(10, 10)[0], 4) == 0.7225 and wilson(0, 0) == (0.0, 1.0)


def test_experiment_conclusion_uses_test_scores_and_their_uncertainty():
    lines = experiment.conclusion(_experiment_frame([30, 36, 38, 55]))
    assert lines[0].startswith("Best on the test split: scratch at 91.7% top-1 (95% interval 81.9–96.4%)")
    assert lines[1].startswith(
        "Negative transfer: scratch (91.7%) beats every pretrained recipe (63.3%). The"
    )
    unsure = experiment.conclusion(_experiment_frame([36, 42, 43, 54]))  # 90.0% vs 71.7%: intervals overlap
    assert "beats every pretrained recipe (71.7%) (within the intervals, so not a firm result)" in " ".join(
        unsure
    )
    close = experiment.conclusion(_experiment_frame([50, 40, 49, 30]))
    assert (
        "Its interval overlaps finetune_top, finetune_full: on 60 test images those cannot be told apart."
        in close
    )
    assert "beats scratch by 33.3 percentage points" in " ".join(close)


@pytest.mark.slow
def test_lr_range_test_returns_a_curve_and_a_suggestion():
    frame, lr = planning.lr_range(TrainConfig(**TINY, recipe="linear_probe"), steps=25)
    assert len(frame) >= 3 and frame["lr"].is_monotonic_increasing and 1e-6 <= lr <= 1


def test_the_top_losses_come_with_the_best_epoch_and_match_scoring_it_again(tmp_path, monkeypatch):
    """Training keeps each epoch's worst misclassified val images, so the Evaluate tab reads them at once;
    they are the images, predictions and losses that scoring the exported weights again gives."""
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    from core.finetune.batches import TOP_LOSSES
    from core.runs import evaluate, session

    cfg = TrainConfig(
        data="demo",
        demo_per_class=8,
        demo_size=32,
        image_size=32,
        epochs=1,
        weights="random",
        model="mobilenetv3_small_100",
        threads=1,
        device="cpu",
    )
    assert session.execute(cfg) == 0
    run = runs.all_runs()[0]
    kept = evaluate.top_losses(run)
    scored = evaluate._scored_top_losses(run, TOP_LOSSES)
    assert kept and len(kept) <= TOP_LOSSES and all(Path(m["path"]).is_file() for m in kept)
    assert [m["loss"] for m in kept] == sorted((m["loss"] for m in kept), reverse=True)  # worst first
    assert {m["path"] for m in kept} == {m["path"] for m in scored}
    by_path = {m["path"]: m for m in scored}
    for m in kept:
        assert m["predicted"] == by_path[m["path"]]["predicted"] != m["true"]
        assert m["loss"] == pytest.approx(by_path[m["path"]]["loss"], rel=1e-3, abs=1e-4)
