"""DistributedDataParallel that cannot hang: 2 gloo processes under torchrun, each on a fresh data
directory (no decoded cache, no demo set yet). Cancel, early stop and the time budget end both ranks;
the result equals one process on the same data."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.runs import record as runs

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--data",
    "demo",
    "--demo-per-class",
    "10",
    "--demo-size",
    "32",
    "--image-size",
    "32",
    "--threads",
    "1",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.fixture()
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    return tmp_path


def start(*args: str, nproc: int = 2) -> subprocess.Popen:
    torchrun = str(Path(sys.executable).parent / "torchrun")  # the torchrun of this interpreter (.venv)
    cmd = (
        [torchrun, "--standalone", f"--nproc_per_node={nproc}", "-m", "core.runs", "train"]
        if nproc > 1
        else [sys.executable, "-m", "core.runs", "train"]
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [*cmd, *TINY, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def only_run() -> runs.Run:
    (run,) = runs.all_runs()
    return run


@pytest.mark.slow
def test_cancel_mid_epoch_stops_both_ranks_within_10_s(fresh):
    proc = start("--recipe", "scratch", "--weights", "random", "--batch-size", "2", "--epochs", "50")
    end = time.time() + 180
    while time.time() < end and not (runs.all_runs() and not runs.metrics(only_run().id).empty):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    runs.request_cancel(only_run().id)
    t = time.time()
    finish(proc, timeout=30)
    run = only_run()
    # the stop is decided on rank 0 and broadcast, so both ranks take it; rank 0 records it within 10 s (0.2 s
    # here,
    # also beside 3 busy loops); the processes then exit within finish()'s 30 s (2-4 s here; 21 s once under
    # the
    # whole suite's load, which a 10 s bound on the exit failed)
    assert run.finished - t < 10
    assert (
        run.status == "cancelled"
        and "stopped by request" in run.result["note"]
        and run.result["info"]["world"] == 2
    )


@pytest.mark.slow
def test_early_stopping_ends_both_ranks(fresh):
    finish(
        start(
            "--recipe",
            "finetune_full",
            "--weights",
            "random",
            "--lr",
            "1e-9",
            "--batch-size",
            "8",
            "--early-stopping",
            "1",
            "--epochs",
            "30",
        )
    )
    run = only_run()
    assert run.status == "done" and "early stopping" in run.result["note"] and run.result["epochs_done"] < 30


@pytest.mark.slow
def test_time_budget_ends_both_ranks(fresh):
    finish(
        start(
            "--recipe",
            "scratch",
            "--weights",
            "random",
            "--batch-size",
            "2",
            "--epochs",
            "200",
            "--time-budget-s",
            "4",
        )
    )
    run = only_run()
    assert (
        run.status == "done"
        and "time budget of 4 s" in run.result["note"]
        and run.result["epochs_done"] < 200
    )


@pytest.mark.slow
def test_two_ranks_equal_one_process_on_the_same_data(fresh):
    """Linear probe, no augmentation: 2 ranks x batch 8 see the same 16 images per step as 1 process x
    batch 16, and DDP averages their gradients, so the curves agree to float error."""
    common = ("--recipe", "linear_probe", "--weights", "random", "--augment", "none", "--epochs", "3")
    finish(start(*common, "--batch-size", "8", "--name", "ddp"))
    finish(start(*common, "--batch-size", "16", "--name", "single", nproc=1))
    by_name = {r.name: r for r in runs.all_runs()}
    ddp, single = (
        runs.metrics(by_name[n].id).query("name == 'val_loss'")["value"].tolist() for n in ("ddp", "single")
    )
    assert len(ddp) == len(single) == 3
    assert max(abs(a - b) for a, b in zip(ddp, single)) < 1e-4, (ddp, single)
    assert (
        by_name["ddp"].result["info"]["steps_per_epoch"]
        == by_name["single"].result["info"]["steps_per_epoch"]
        == 3
    )
