"""Time-left estimates: the closed forms of core.jobs.estimates, the checkpoints a job logs, and a job
whose steps are unequal estimated from the kind's own history in the store."""

import json
import time

import pytest

from core import jobs
from core.jobs import estimates as est
from core.present.fmt import duration


def test_the_rate_estimate_counts_down_between_steps():
    marks = [[1, 10.0], [2, 20.0]]  # 10 s a step, 2 of 5 done at 20 s
    assert est.remaining(2, 5, marks, 20.0) == est.Estimate(30.0, "rate")
    assert est.remaining(2, 5, marks, 26.0).seconds == pytest.approx(24.0)  # 6 s into step 3
    assert est.remaining(2, 5, marks, 80.0).seconds == est.FLOOR_S  # running over: never negative
    quick = [[1, 0.1], [2, 0.2]]  # 0.1 s a step: 0.3 s left, not a floor of 1 s
    assert est.remaining(2, 5, quick, 0.2).seconds == pytest.approx(0.3)
    assert est.remaining(2, 5, quick, 9.0).seconds == pytest.approx(
        0.3
    )  # over, but never above its projection
    assert est.remaining(0, 5, [], 3.0) == est.Estimate(None, "")  # nothing known: "estimating…"


def test_the_rate_starts_after_the_first_step_and_only_for_alike_steps():
    # the first step took 9 s (building, loading), then 1 s a step: 4 of 10 done at 12 s -> 6 s left, not 18
    marks = [[1, 9.0], [4, 12.0]]
    assert est.remaining(4, 10, marks, 12.0) == est.Estimate(6.0, "rate")
    assert est.remaining(1, 10, [[1, 9.0]], 9.0) == est.Estimate(None, "")  # one step: no rate yet
    # a deployment's runtimes are unlike steps: no rate, only its kind's history
    assert est.remaining(4, 10, marks, 12.0, alike=False) == est.Estimate(None, "")
    past = {"marks": [[1, 1.0], [4, 4.0], [10, 40.0]], "seconds": 40.0}
    assert est.remaining(4, 10, [[1, 1.0], [4, 4.0]], 4.0, past, alike=False) == est.Estimate(36.0, "history")
    assert {"deploy", "export-run", "compound-scaling"} <= est.UNLIKE_STEPS


def test_history_models_unequal_steps_and_scales_by_this_jobs_pace():
    # a past job of 4 steps: three quick ones (1 s each), then a slow one (27 s): 30 s in all
    past = {"marks": [[1, 1.0], [2, 2.0], [3, 3.0], [4, 30.0]], "seconds": 30.0}
    # this job is twice as slow so far: step 2 reached at 4 s -> (30 - 2) x 2 = 56 s left
    assert est.remaining(2, 4, [[1, 2.0], [2, 4.0]], 4.0, past) == est.Estimate(56.0, "history")
    # the rate alone would say 2 s a step -> 4 s left, 14x too soon
    assert est.remaining(2, 4, [[1, 2.0], [2, 4.0]], 4.0).seconds == pytest.approx(4.0)
    # before the first step, the past job's whole duration
    assert est.remaining(0, 4, [], 0.0, past) == est.Estimate(30.0, "history")
    # the scale is clamped to 1/3..3
    assert est.remaining(1, 4, [[1, 100.0]], 100.0, past).seconds == pytest.approx((30 - 1) * 3)
    assert est.at_step([[2, 4.0], [4, 8.0]], 3) == pytest.approx(6.0) and est.at_step([[2, 4.0]], 1) == 2.0


def test_checkpoints_and_ratios():
    logged = 0
    hits = []
    for d in range(1, 9):
        if est.checkpoint_due(d - 1, d, 8, logged):
            hits.append(d)
            logged += 1
    assert hits == [1, 2, 4, 6]  # first step, 25%, 50%, 75% of 8
    assert not est.checkpoint_due(7, 8, 8, 4)  # the end itself is no estimate
    r = est.ratios([{"elapsed_s": 10.0, "eta_s": 20.0}, {"elapsed_s": 5.0, "eta_s": None}], seconds=40.0)
    assert len(r) == 1 and r[0]["actual_s"] == 30.0 and r[0]["ratio"] == 1.5


def test_a_job_logs_its_estimates_and_uses_its_kinds_history(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    from core.jobs.store import connect

    def fake_job(step_seconds, total=4):
        with connect() as conn:
            job_id = conn.execute(
                "INSERT INTO jobs (kind, args, status, total, created) VALUES "
                "('test-kind', '{}', 'queued', ?, ?)",
                (total, time.time()),
            ).lastrowid
        jobs.mark_running(job_id)
        start = time.time() - sum(step_seconds)  # pretend the steps took these times
        with connect() as conn:
            conn.execute("UPDATE jobs SET started = ? WHERE id = ?", (start, job_id))
        t = start
        for i, s in enumerate(step_seconds, 1):
            t += s
            monkeypatch.setattr(time, "time", lambda t=t: t)
            jobs.progress(job_id, i)
        monkeypatch.undo()
        monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
        return job_id

    first = fake_job([1.0, 1.0, 1.0, 27.0])
    job = jobs.get(first)
    assert json.loads(job.marks) == [[1, 1.0], [2, 2.0], [3, 3.0], [4, 30.0]]
    logged = job.logged_estimates()
    assert [e["done"] for e in logged] == [1, 2, 3] and [e["source"] for e in logged] == ["", "rate", "rate"]
    assert logged[0]["eta_s"] is None  # at the first step nothing is known: "estimating…"
    assert logged[1]["eta_s"] == pytest.approx(2.0) and logged[1]["elapsed_s"] == pytest.approx(2.0)
    with connect() as conn:
        conn.execute("UPDATE jobs SET status = 'done', finished = started + 30 WHERE id = ?", (first,))
    second = fake_job([1.0, 1.0])  # the same kind and size, half done: history is used
    job = jobs.get(second)
    assert job.logged_estimates()[-1]["source"] == "history"
    assert job.logged_estimates()[-1]["eta_s"] == pytest.approx(28.0, abs=0.01)
    assert job.eta_s(now=job.started + 2.0) == pytest.approx(28.0, abs=0.01)


def test_durations_read_as_words_never_zero():
    assert duration(None) == "estimating…" and duration(float("nan")) == "estimating…"
    assert (
        duration(0.0004) == "0.4 ms" and duration(0.00001) == "under 0.1 ms" and duration(0.0123) == "12.3 ms"
    )
    assert duration(33.4) == "33.4 s" and duration(600) == "10.0 min"


def test_a_fine_tunes_tail_after_its_last_step_comes_from_the_runs_before(tmp_path, monkeypatch):
    """What follows a run's last training step (its last validation pass, best weights, bundle) is
    invisible to a rate of steps: the median of it over the last finished runs is added to the rate
    estimate."""
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    from core.runs import record as runs

    assert runs.end_tail_s() == 0.0  # nothing finished yet
    for tail in (2.0, 4.0, 9.0):
        run_id = runs.create({"model": "m", "recipe": "linear_probe"})
        runs.log_metrics(run_id, 0, 1, "train", {"loss": 1.0})
        with runs.connect() as conn:
            last = conn.execute("SELECT MAX(time) FROM metrics WHERE run = ?", (run_id,)).fetchone()[0]
            conn.execute("UPDATE metrics SET time = 100.0 WHERE run = ?", (run_id,))
        runs.update(run_id, status="done", finished=100.0 + tail)
        assert last > 0
    assert runs.end_tail_s() == 4.0  # the median of 2, 4 and 9 s
    assert est.remaining(2, 4, [[1, 1.0], [2, 2.0]], 2.0, tail_s=4.0) == est.Estimate(
        6.0, "rate"
    )  # 2 steps + 4 s
