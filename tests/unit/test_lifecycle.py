"""One lifecycle for background work: a worker killed at once ends failed and frees its slot, the cap holds
under concurrent launches, the freezing-depth experiment counts against the cap, finished workers are
reaped."""

import os
import signal
import time
from pathlib import Path

import pytest

from core import jobs
from core.finetune.config import TrainConfig
from core.jobs import lifecycle
from core.measure.settings import Setting
from core.runs import experiment, launch
from core.runs import record as runs
from core.zoo import worker as measure_worker
from tests.helpers import at_once

TINY = dict(data="demo", demo_per_class=6, demo_size=32, image_size=32, batch_size=8, threads=1)


def until(pred, timeout: float = 60.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_a_worker_killed_within_its_first_moments_ends_failed_and_frees_its_slot(monkeypatch):
    monkeypatch.setenv(runs.MAX_RUNS_ENV, "2")
    killed = []
    for _ in range(2):
        run_id = launch.launch(TrainConfig(**TINY, epochs=50), "killed at once")
        os.kill(runs.get(run_id).pid, signal.SIGKILL)  # well before it could report 'running'
        killed.append(run_id)
    assert until(lambda: all(runs.get(r).status == "failed" for r in killed), timeout=10)
    assert all("ended without reporting" in runs.get(r).error for r in killed)
    third = launch.launch(TrainConfig(**TINY, epochs=50), "the cap is free again")  # once: refused for ever
    runs.request_cancel(third)
    assert until(lambda: not runs.get(third).active, timeout=120)


def test_a_queued_row_whose_worker_never_reports_fails_after_the_deadline(monkeypatch):
    run_id = runs.create({}, "never started")
    assert runs.get(run_id).status == "queued"
    monkeypatch.setattr(lifecycle, "STARTUP_DEADLINE_S", 0.0)
    run = runs.get(run_id)
    assert run.status == "failed" and "never reported within 0 s" in run.error


def test_two_launches_at_once_against_a_cap_of_one_start_exactly_one():
    for r in runs.active_runs():
        runs.update(r.id, status="cancelled")
    made, refused = at_once(lambda: runs.create({"epochs": 1}, "race", cap=1), 4, (runs.LaunchError,))
    assert len(made) == 1 and len(refused) == 3
    runs.update(made[0], status="cancelled")


@pytest.mark.slow
def test_the_freezing_depth_experiment_waits_for_a_free_slot(monkeypatch):
    monkeypatch.setenv(runs.MAX_RUNS_ENV, "1")
    for r in runs.active_runs():
        runs.update(r.id, status="cancelled")
    holder = runs.create({}, "holds the only slot")
    runs.update(holder, status="running", pid=os.getpid())  # alive: this test process
    before = {r.id for r in runs.all_runs()}
    job = experiment.start(TrainConfig(**TINY, epochs=1, device="cpu"))
    assert until(lambda: "waiting for a free run slot" in jobs.get(job.id).message, timeout=60)
    assert {r.id for r in runs.all_runs()} == before  # nothing started past the cap
    runs.update(holder, status="done")
    assert until(lambda: len({r.id for r in runs.all_runs()} - before) >= 1, timeout=60)
    jobs.request_cancel(job.id)
    assert until(lambda: not jobs.get(job.id).active, timeout=240)


@pytest.mark.slow
def test_a_finished_worker_is_reaped_not_left_a_zombie():
    job = measure_worker.start(["no_such_net"], Setting("cpu", "fp32", "contiguous", 1))
    pid = job.pid
    assert until(lambda: not jobs.get(job.id).active, timeout=120)
    assert until(lambda: not Path(f"/proc/{pid}").exists(), timeout=10), (
        Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    )


@pytest.mark.slow
def test_a_background_worker_runs_below_the_servers_cpu_priority(tmp_path):
    log = tmp_path / "nice.log"
    pid = lifecycle.spawn(["-c", "import os; print('nice', os.nice(0), os.getpid())"], log)
    assert until(lambda: not Path(f"/proc/{pid}").exists(), timeout=30)
    word, niceness, own_pid = log.read_text().split()
    assert (int(niceness), int(own_pid)) == (
        os.nice(0) + lifecycle.WORKER_NICE,
        pid,
    )  # the pid is the worker's


@pytest.mark.parametrize("status", ["queued", "running"])
def test_the_liveness_rule_is_the_same_for_every_active_state(status):
    assert jobs.dead_reason(status, 2**22 + 12345, time.time())  # no such pid
    assert not jobs.dead_reason(status, os.getpid(), time.time())
    assert not jobs.dead_reason("done", 2**22 + 12345, 0.0)


@pytest.mark.slow
def test_a_resume_is_refused_at_the_cap_like_a_new_run(monkeypatch):
    monkeypatch.setenv(runs.MAX_RUNS_ENV, "1")
    for r in runs.active_runs():
        runs.update(r.id, status="cancelled")
    stopped = runs.create({}, "stopped earlier")
    runs.update(stopped, status="cancelled")
    holder = runs.create({}, "holds the only slot")
    runs.update(holder, status="running", pid=os.getpid())
    with pytest.raises(runs.LaunchError, match="the cap is 1"):
        launch.resume(stopped)
    assert runs.get(stopped).status == "cancelled"  # nothing queued, nothing spawned
    runs.update(holder, status="done")
    runs.requeue(stopped, cap=1)
    assert runs.get(stopped).status == "queued" and runs.get(stopped).pid is None
    runs.update(stopped, status="cancelled")


def test_a_store_file_replaced_under_the_same_path_gets_its_schema_again(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    assert runs.create({}, "first") == 1
    (tmp_path / "archscope.sqlite").unlink()  # moved aside while the server runs
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"archscope.sqlite{suffix}").unlink(missing_ok=True)
    assert runs.create({}, "in a fresh store") == 1 and runs.all_runs()[0].name == "in a fresh store"


def test_a_store_from_before_the_job_link_is_migrated(tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    with sqlite3.connect(tmp_path / "archscope.sqlite") as old:  # the runs table as 145f700 made it
        old.execute(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, config TEXT NOT NULL, "
            "status TEXT NOT NULL, pid INTEGER, device TEXT DEFAULT '', run_dir TEXT DEFAULT '', "
            "created REAL NOT NULL, started REAL, updated REAL, finished REAL, error TEXT DEFAULT '', "
            "result TEXT DEFAULT '{}', cancel INTEGER DEFAULT 0)"
        )
        old.execute("INSERT INTO runs (name, config, status, created) VALUES ('old run', '{}', 'done', 0)")
    new = runs.create({}, "made by a job", job=7)
    assert [r.name for r in runs.by_job(7)] == ["made by a job"] and runs.get(1).job is None and new == 2
