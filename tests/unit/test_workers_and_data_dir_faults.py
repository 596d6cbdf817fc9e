"""Faults a worker and the data directory meet: a paused worker is alive, one run has one worker, bad
configs never reach the store, a diverging loss fails the run in words, and faults of the data directory
(full, gone, read-only, opened by many at once) stop cleanly."""

import errno
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core import config as core_config
from core.config import DataDirError
from core.finetune import bundle
from core.jobs import lifecycle, store
from core.runs import record as runs
from core.runs import session
from core.runs.cli import train as main
from tests.helpers import read_only_mount

TINY = [
    "--data",
    "demo",
    "--demo-per-class",
    "6",
    "--demo-size",
    "32",
    "--image-size",
    "32",
    "--epochs",
    "1",
    "--weights",
    "random",
    "--model",
    "mobilenetv3_small_100",
    "--quiet",
]


def run_count() -> int:
    with store.connect() as conn:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


# 3. liveness by the process, not only the clock
# --------------------------------------------------------------------


@pytest.mark.slow
def test_a_paused_worker_past_the_startup_deadline_is_alive(sleeper, monkeypatch):
    run_id = runs.create({}, "paused")
    runs.update(run_id, **lifecycle.owner(sleeper.pid))
    os.kill(sleeper.pid, signal.SIGSTOP)  # paused, as a swapped or overloaded machine pauses it
    monkeypatch.setattr(lifecycle, "STARTUP_DEADLINE_S", 0.0)
    try:
        assert runs.get(run_id).status == "queued"  # silent for longer than the rule, but alive: not dead
        with pytest.raises(runs.LaunchError, match="still queued"):
            runs.requeue(run_id)
        runs.update(run_id, status="failed")  # even a row marked failed by hand cannot be resumed...
        monkeypatch.setattr(runs, "EXIT_GRACE_S", 0.5)
        with pytest.raises(runs.LaunchError, match=rf"worker process \(pid {sleeper.pid}\) is still alive"):
            runs.requeue(run_id)  # ...while its worker lives: no second worker
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)
    sleeper.kill()
    sleeper.wait()
    monkeypatch.setattr(lifecycle, "STARTUP_DEADLINE_S", 60.0)
    runs.requeue(run_id)  # gone: now it may be resumed
    assert runs.get(run_id).status == "queued"
    runs.update(run_id, status="cancelled")  # hold no launch slot for the tests after this one


@pytest.mark.slow
def test_a_recycled_pid_is_not_the_worker(sleeper):
    run_id = runs.create({}, "recycled")
    runs.update(run_id, status="running", pid=sleeper.pid, pid_start=lifecycle.process_start(sleeper.pid) - 1)
    run = runs.get(run_id)  # that pid now belongs to a process that started later
    assert run.status == "failed" and "ended without reporting" in run.error


@pytest.mark.slow
def test_two_workers_on_one_run_folder_are_impossible(tmp_path):
    run_id = runs.create({}, "locked")
    folder = runs.folder(run_id)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from pathlib import Path
from core.runs import record as runs
lock = runs.hold_worker_lock({run_id}, Path({str(folder)!r}))
print("held", flush=True)
time.sleep(60)
""",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runs.RunBusy, match=rf"run {run_id} already has a worker \(pid {holder.pid}\)"):
            runs.hold_worker_lock(run_id, folder)
        before = runs.get(run_id)
        assert (
            session.execute(
                session.TrainConfig(
                    data="demo",
                    demo_per_class=6,
                    demo_size=32,
                    image_size=32,
                    epochs=1,
                    weights="random",
                    model="mobilenetv3_small_100",
                ),
                run_id,
            )
            == 2
        )
        assert runs.get(run_id).status == before.status == "queued"  # the row is the other worker's
        assert runs.worker_alive(runs.get(run_id))
    finally:
        holder.kill()
        holder.wait()
    assert not runs.worker_alive(runs.get(run_id))  # the kernel dropped the lock with the process
    runs.update(run_id, status="cancelled")


# 4. config validation before any work or any run row
# ---------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--lr", "nan"], "lr must be a number from 1e-12 to 10, not nan"),
        (["--lr", "inf"], "lr must be a number from 1e-12 to 10, not inf"),
        (["--lr", "1e6"], "lr must be a number"),
        (["--weight-decay", "-1"], "weight decay must be a number from 0 to 1"),
        (["--layer-decay", "nan"], "layer decay must be a number"),
        (["--warmup-epochs", "50"], "warmup epochs must be a number from 0 to 1"),
        (["--early-stopping", "-3"], "early stopping must be a number"),
        (["--threads", "100000"], "threads must be a number from 0 to"),
        (["--model", "no_such_net"], "unknown model 'no_such_net'"),
        (
            ["--device", f"cuda:{torch.cuda.device_count()}"],
            "there is no CUDA device 'cuda:",
        ),  # one past the last
    ],
)
def test_a_bad_config_is_one_line_exit_2_and_nothing_in_the_store(flags, words, capsys):
    before = run_count()
    assert main([*TINY, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err
    assert run_count() == before


def test_a_loss_that_diverges_fails_the_run_in_words(monkeypatch, capsys):
    from core.finetune import trainer

    real = trainer.F.cross_entropy
    monkeypatch.setattr(trainer.F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    assert main([*TINY, "--name", "diverges"]) == 2
    run = next(r for r in runs.all_runs() if r.name == "diverges")
    assert run.status == "failed"
    assert (
        run.error == "the loss diverged at step 1 (it became nan); lower the learning rate (it was 0.001 for "
        "the head)"
    )


# 5. faults of the data directory
# ----------------------------------------------------------------------------------


def test_disk_full_during_a_checkpoint_leaves_no_tmp_and_fails_the_run(monkeypatch):
    def full(payload, path):
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bundle.torch, "save", full)
    assert main([*TINY, "--name", "disk full"]) == 1
    run = next(r for r in runs.all_runs() if r.name == "disk full")
    assert run.status == "failed" and run.error.startswith("disk full: disk full while writing ")
    assert "resume the run" in run.error
    assert not list(runs.folder(run).glob("*.tmp"))


def test_disk_full_during_the_export_leaves_no_partial_folder(tmp_path, monkeypatch):
    def full(state, path):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bundle, "save_file", full)
    with pytest.raises(OSError, match="disk full while writing export"):
        bundle.export(tmp_path, torch.nn.Linear(2, 2), "x", ("a", "b"), 32, (0.5,), (0.5,))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_data_directory_deleted_while_running_is_not_made_again(tmp_path, monkeypatch):
    where = tmp_path / "data"
    monkeypatch.setenv(core_config.ENV_VAR, str(where))
    runs.create({}, "before")
    shutil.rmtree(where)
    with pytest.raises(DataDirError, match=f"the data directory {where} was moved or deleted"):
        runs.all_runs()
    where.mkdir()  # a new, empty folder at the same path is not it either
    with pytest.raises(DataDirError, match="was replaced by another folder"):
        store.connect().__enter__()
    assert list(where.iterdir()) == []  # nothing was written into it


@pytest.mark.slow
def test_a_worker_stops_when_its_data_directory_is_moved(tmp_path):
    where = tmp_path / "data"
    env = {**os.environ, core_config.ENV_VAR: str(where)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.runs",
            "train",
            *TINY[:-3],
            "--epochs",
            "200",
            "--model",
            "mobilenetv3_small_100",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    end = time.time() + 120
    while time.time() < end and not list((where / "runs").glob("*/checkpoint.pt")):
        time.sleep(0.3)
    os.rename(where, tmp_path / "moved")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert f"the data directory {where} was moved or deleted" in err
    assert not where.exists()  # no empty store was made at the old path


def _open_fresh(path: str, out) -> None:
    try:
        with store.connect(Path(path)) as conn:
            conn.execute("SELECT COUNT(*) FROM runs").fetchone()
        out.put("ok")
    except Exception as err:  # noqa: BLE001
        out.put(repr(err))


@pytest.mark.slow
def test_a_fresh_store_opened_by_many_processes_at_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    results = []
    for round_ in range(6):
        path = tmp_path / f"s{round_}.sqlite"
        out = ctx.Queue()
        procs = [ctx.Process(target=_open_fresh, args=(str(path), out)) for _ in range(8)]
        for p in procs:
            p.start()
        results += [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join()
    assert results == ["ok"] * 48
    with sqlite3.connect(tmp_path / "s0.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION


def _open_at_barrier(paths: list[str], barrier, out) -> None:
    """One forked opener: for each fresh store, wait until all four are ready, then open it at the same
    instant."""
    for path in paths:
        barrier.wait(timeout=60)
        _open_fresh(path, out)


@pytest.mark.slow
def test_a_thousand_forked_opens_of_fresh_stores_all_succeed(tmp_path):
    """Four forked processes released together by a barrier open each of 250 fresh stores: 1,000 opens in a
    row, every one of them 'ok' (switching a new file to WAL used to fail at once with 'database is
    locked')."""
    ctx = multiprocessing.get_context("fork")
    paths = [str(tmp_path / f"fresh{i}.sqlite") for i in range(250)]
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_open_at_barrier, args=(paths, barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in range(4 * len(paths))]
    for p in procs:
        p.join(timeout=60)
    failures = [r for r in results if r != "ok"]
    assert len(results) == 1000 and failures == [], (len(failures), failures[:3])


@pytest.fixture
def read_only_dir(tmp_path, monkeypatch):
    """A data directory with a week's runs, then mounted read-only (a bind mount: root ignores file modes)."""
    source, mount = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    mount.mkdir()
    monkeypatch.setenv(core_config.ENV_VAR, str(source))
    for name in ("first", "second"):
        rid = runs.create({"recipe": "linear_probe"}, name)
        runs.update(rid, status="done", result={"best_top1": 0.5})
        runs.log_metrics(rid, 0, 1, "val", {"val_top1": 0.5})
    with read_only_mount(source, mount):
        monkeypatch.setenv(core_config.ENV_VAR, str(mount))
        yield mount


def test_a_read_only_data_directory_still_shows_its_runs(read_only_dir):
    assert store.read_only()
    assert sorted(r.name for r in runs.all_runs()) == ["first", "second"]
    assert len(runs.metrics(runs.all_runs()[0].id)) == 1
    with pytest.raises(store.StoreError, match="read-only"):
        runs.create({}, "new")
