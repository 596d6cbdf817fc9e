"""Background measurement jobs: progress, cancel, and a killed worker never left 'running'."""
import os
import signal
import time

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


def test_worker_measures_and_reports_bad_names():
    job = measure_worker.start(["mobilenetv3_small_100", "no_such_net", "resnet18"], SETTING, resolution=64,
                               refresh=True)
    done = wait(job.id)
    assert done.status == "done" and done.done == done.total == 4          # 3 counted, then the timing step
    assert "no_such_net: unknown model" in done.message
    frame = results_frame(SETTING)
    rows = frame[(frame["resolution"] == 64) & frame["model"].isin(["mobilenetv3_small_100", "resnet18"])]
    # the two good models were timed together, interleaved, in one group of at least 9 rounds
    groups = [g["models"] for g in rows["timed_with"]]
    assert groups == [["mobilenetv3_small_100", "resnet18"]] * 2 and (rows["iters"] >= 9).all()
    assert set(rows["timing"]) <= {"interleaved with 1 other(s), %d rounds" % r["rounds"] for r in rows["timed_with"]} | \
        {"interleaved with 1 other(s), %d rounds (machine busy)" % r["rounds"] for r in rows["timed_with"]}


def test_cancel_is_honoured_between_models():
    job = measure_worker.start(["resnet18"] * 6, SETTING, resolution=64, refresh=True)
    jobs.request_cancel(job.id)
    done = wait(job.id)
    assert done.status == "cancelled" and done.done < 6


def test_killed_worker_ends_as_failed():
    job = measure_worker.start(["resnet50"] * 50, SETTING, resolution=224, refresh=True)
    end = time.time() + 60
    while jobs.get(job.id).status != "running" and time.time() < end:
        time.sleep(0.2)
    os.kill(jobs.get(job.id).pid, signal.SIGKILL)
    time.sleep(3)
    job = jobs.get(job.id)
    assert job.status == "failed" and "ended without reporting" in job.error


def test_one_measurement_job_at_a_time():
    job = measure_worker.start(["resnet18"] * 3, SETTING, resolution=64, refresh=True)
    try:
        measure_worker.start(["resnet18"], SETTING)
    except RuntimeError as err:
        assert "already running" in str(err)
    else:
        raise AssertionError("a second job was accepted while one was running")
    finally:
        jobs.request_cancel(job.id)
        wait(job.id)
