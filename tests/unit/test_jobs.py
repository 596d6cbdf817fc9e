"""Background measurement jobs: progress, cancel, and a killed worker never left 'running'."""

import os
import signal
import time

import pytest

from core import jobs
from core.measure.settings import Setting
from core.zoo import worker as measure_worker
from core.zoo.measure import results_frame

SETTING = Setting("cpu", "fp32", "contiguous", 1)


def wait(job_id: int, timeout: float = 120) -> jobs.Job:
    end = time.time() + timeout
    while time.time() < end:
        job = jobs.get(job_id)
        if not job.active:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {jobs.get(job_id).status} after {timeout} s")


@pytest.mark.slow
def test_worker_measures_and_reports_bad_names():
    job = measure_worker.start(
        ["mobilenetv3_small_100", "no_such_net", "resnet18"], SETTING, resolution=64, refresh=True
    )
    done = wait(job.id)
    assert done.status == "done" and done.done == done.total == 4  # 3 counted, then the timing step
    assert "no_such_net: unknown model" in done.message
    frame = results_frame(SETTING)
    rows = frame[(frame["resolution"] == 64) & frame["model"].isin(["mobilenetv3_small_100", "resnet18"])]
    # the two good models were timed together, interleaved, in one group of at least 9 rounds
    groups = [g["models"] for g in rows["timed_with"]]
    assert groups == [["mobilenetv3_small_100", "resnet18"]] * 2 and (rows["iters"] >= 9).all()
    assert set(rows["timing"]) <= {
        "interleaved with 1 other(s), %d rounds" % r["rounds"] for r in rows["timed_with"]
    } | {"interleaved with 1 other(s), %d rounds (machine busy)" % r["rounds"] for r in rows["timed_with"]}


@pytest.mark.slow
def test_cancel_is_honoured_between_models():
    job = measure_worker.start(["resnet18"] * 6, SETTING, resolution=64, refresh=True)
    jobs.request_cancel(job.id)
    done = wait(job.id)
    assert done.status == "cancelled" and done.done < 6


@pytest.mark.slow
def test_killed_worker_ends_as_failed():
    job = measure_worker.start(["resnet50"] * 50, SETTING, resolution=224, refresh=True)
    end = time.time() + 60
    while jobs.get(job.id).status != "running" and time.time() < end:
        time.sleep(0.2)
    os.kill(jobs.get(job.id).pid, signal.SIGKILL)
    time.sleep(3)
    job = jobs.get(job.id)
    assert job.status == "failed" and "ended without reporting" in job.error


@pytest.mark.slow
def test_one_measurement_job_at_a_time():
    job = measure_worker.start(["resnet18"] * 3, SETTING, resolution=64, refresh=True)
    assert job.id in [j.id for j in jobs.active_jobs()]  # whatever its kind
    try:
        measure_worker.start(["resnet18"], SETTING)
    except RuntimeError as err:
        assert "already running" in str(err)
    else:
        raise AssertionError("a second job was accepted while one was running")
    finally:
        jobs.request_cancel(job.id)
        wait(job.id)


def test_run_rename_tag_and_delete_removes_its_files(tmp_path):
    from core.runs import record as runs

    run_id = runs.create({"recipe": "linear_probe", "model": "efficientnet_lite0"}, name="first")
    path = runs.folder(runs.get(run_id))
    (path / "export").mkdir()
    (path / "export" / "model.safetensors").write_bytes(b"x" * 10)
    runs.update(run_id, status="done", result={"best_top1": 0.875})
    runs.rename(run_id, "  my   probe ")
    assert runs.set_tags(run_id, "baseline, lite0 ,baseline,") == ["baseline", "lite0"]
    run = runs.get(run_id)
    assert (run.name, run.tag_list) == ("my probe", ["baseline", "lite0"])
    assert run.label() == f"my probe · linear_probe · efficientnet_lite0 · 87.5% · #{run_id}"
    with pytest.raises(ValueError, match="cannot be empty"):
        runs.rename(run_id, "   ")
    active = runs.create({}, name="busy")
    runs.update(active, status="running", pid=os.getpid())
    with pytest.raises(runs.LaunchError, match="still running: stop it first"):
        runs.delete(active)
    runs.update(active, status="cancelled")
    assert runs.delete(run_id) == path and not path.exists()
    with pytest.raises(KeyError):
        runs.get(run_id)
    assert runs.metrics(run_id).empty


def test_data_usage_and_clean_up_leave_runs_alone(tmp_path):
    from core.config import data_dir
    from core.data import usage

    root = data_dir()
    for name, size in (
        ("uploads/a.zip", 3000),
        ("datasets/a-1/x/1.png", 500),
        ("cache/k.npy", 700),
        ("runs/99/checkpoint.pt", 2000),
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"0" * size)
    before = usage.usage()
    assert before["uploads"] >= 3000 and before["runs"] >= 2000
    with pytest.raises(RuntimeError, match="active"):
        usage.clean(["uploads"], busy=True)
    with pytest.raises(ValueError, match="only uploads, datasets, cache"):
        usage.clean(["runs"], busy=False)
    freed = usage.clean(["uploads", "cache"], busy=False)
    assert freed == {"uploads": before["uploads"], "cache": before["cache"]}
    after = usage.usage()
    assert after["uploads"] == after["cache"] == 0 and after["runs"] == before["runs"]
    assert after["datasets"] == before["datasets"] and (root / "runs/99/checkpoint.pt").exists()
