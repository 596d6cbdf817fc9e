"""Background jobs: start a subprocess, track its progress in the store, cancel it, detect a dead one."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.config import data_dir
from core.errors import first_line
from core.jobs.estimates import UNLIKE_STEPS, checkpoint_due, remaining
from core.jobs.store import connect

ROOT = Path(__file__).resolve().parents[2]
ACTIVE = ("queued", "running")
STARTUP_DEADLINE_S = 60.0  # a worker that has not reported by then never will
WORKER_NICE = 10  # background workers run this many nice steps below the server (pages stay quick)


@dataclass(frozen=True)
class Job:
    """One row of the jobs table."""

    id: int
    kind: str
    args: dict[str, Any]
    status: str
    pid: int | None
    done: int
    total: int
    current: str
    message: str
    error: str
    cancel: bool
    created: float
    started: float | None
    updated: float | None
    finished: float | None
    pid_start: int | None = None  # the worker's process start time (see ``process_start``)
    marks: str = ""  # JSON [[done, elapsed s], ...]: when each step was reached
    estimates: str = ""  # JSON: the time-left estimates logged at its checkpoints (core.jobs.estimates)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left, from this kind's own history in the store or the progress so far; None while
        nothing is known ("estimating…")."""
        if not self.active or not self.started:
            return None
        with connect() as conn:
            past = history(conn, self.kind, self.total, self.id)
        return remaining(
            self.done,
            self.total,
            json.loads(self.marks or "[]"),
            (now or time.time()) - self.started,
            past,
            alike=self.kind not in UNLIKE_STEPS,
        ).seconds

    def logged_estimates(self) -> list[dict[str, Any]]:
        return json.loads(self.estimates or "[]")


def _row(row: Any) -> Job:
    d = dict(row)
    d["args"] = json.loads(d["args"])
    d["cancel"] = bool(d["cancel"])
    return Job(**d)


def process_start(pid: int | None) -> int | None:
    """When the process started (clock ticks since boot, /proc/PID/stat field 22), which tells a live
    worker from a new process that got its recycled pid; None where /proc cannot say."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int | None, started: int | None = None) -> bool:
    """Whether the process is there and not a zombie; with ``started`` (its ``process_start``), also that
    it is the same process and not a later one with the same pid."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a finished child that nobody reaped is a zombie: dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return True
    if fields[0] == "Z":
        return False
    return started is None or int(fields[19]) == started


def owner(pid: int) -> dict[str, int | None]:
    """The columns that name a row's worker: its pid and that process's start time."""
    return {"pid": pid, "pid_start": process_start(pid)}


def spawn(args: list[str], log_path: Path) -> int:
    """Starts ``python <args>`` in its own session with output to ``log_path``, ``WORKER_NICE`` steps below
    the server's CPU priority (through coreutils' ``nice``, which execs in place: the pid is the
    worker's), so pages stay quick while it works; a thread waits for it, so a finished worker is reaped
    at once and never lingers as a zombie under the server. Returns the pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    nice = shutil.which("nice")
    lower = [nice, "-n", str(WORKER_NICE)] if nice else []
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [*lower, sys.executable, "-W", "ignore", *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid


def dead_reason(status: str, pid: int | None, created: float, pid_start: int | None = None) -> str:
    """The one liveness rule for every background row (job or run): why an active row is dead, or ''. The
    operating system is asked first: a row whose worker process is alive (same pid, same start time) is
    never dead, however long it has been silent (paused, swapped, an overloaded machine). Only a row
    that never got a worker is judged by the clock. Any active state counts: a worker killed while
    'queued' is as dead as one killed 'running'."""
    if status not in ACTIVE:
        return ""
    if pid:
        return (
            ""
            if pid_alive(pid, pid_start)
            else "the worker process ended without reporting (killed or crashed)"
        )
    if time.time() - created > STARTUP_DEADLINE_S:
        return (
            f"the worker never reported within {STARTUP_DEADLINE_S:.0f} s of its launch (no process "
            "was recorded)"
        )
    return ""


class Busy(RuntimeError):
    """Another job of the same kind is active; the message names it."""


def start(kind: str, module: str, args: dict[str, Any], total: int, what: str = "") -> Job:
    """Records a job and launches ``python -m module --job ID`` in its own session; returns the job. One
    job of a kind at a time: the check and the insert are one ``BEGIN IMMEDIATE`` transaction, so two
    sessions that press the button at the same moment cannot both start one (the liveness rule runs
    first: a dead job holds nothing)."""
    active_jobs()
    with connect() as conn:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            f"SELECT id FROM jobs WHERE kind = ? AND status IN {ACTIVE} ORDER BY id LIMIT 1", (kind,)
        ).fetchone()
        if row is not None:
            raise Busy(
                f"{what or 'a ' + kind + ' job'} (#{row['id']}) is already running; stop it or wait for it"
            )
        cur = conn.execute(
            "INSERT INTO jobs (kind, args, status, total, created) VALUES (?,?,?,?,?)",
            (kind, json.dumps(args), "queued", total, time.time()),
        )
        job_id = int(cur.lastrowid)
    pid = spawn(["-m", module, "--job", str(job_id)], data_dir() / "jobs" / f"{job_id}.log")
    with connect() as conn:
        conn.execute(
            "UPDATE jobs SET pid = :pid, pid_start = :pid_start WHERE id = :id", {**owner(pid), "id": job_id}
        )
    return get(job_id)


def live_row(table: str, row_id: int, end: Callable[[int, str], None]) -> Any:
    """One row of a background-work table (jobs, runs) with the liveness rule applied: a dead worker's row
    is ended as failed through ``end(row_id, reason)`` before it is returned, so no row stays active for
    ever."""
    with connect() as conn:
        row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()
    if row is None:
        raise KeyError(f"no {table.rstrip('s')} {row_id}")
    if reason := dead_reason(row["status"], row["pid"], row["created"], row["pid_start"]):
        end(row_id, reason)
        return live_row(table, row_id, end)
    return row


def get(job_id: int) -> Job:
    """The job, with a dead active worker turned into 'failed' (never left queued or running forever)."""
    return _row(live_row("jobs", job_id, lambda i, why: finish(i, "failed", error=why)))


def latest(kind: str) -> Job | None:
    with connect() as conn:
        row = conn.execute("SELECT id FROM jobs WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,)).fetchone()
    return get(int(row["id"])) if row else None


def active_jobs() -> list[Job]:
    """Queued or running jobs of every kind, after the liveness rule turned dead ones into 'failed'."""
    with connect() as conn:
        ids = [r["id"] for r in conn.execute(f"SELECT id FROM jobs WHERE status IN {ACTIVE}")]
    return [j for j in map(get, ids) if j.active]


def mark_running(job_id: int) -> None:
    with connect() as conn:
        conn.execute(
            "UPDATE jobs SET status = 'running', pid = :pid, pid_start = :pid_start, started = :now, "
            "updated = :now WHERE id = :id",
            {**owner(os.getpid()), "now": time.time(), "id": job_id},
        )


def history(conn: Any, kind: str, total: int, exclude: int) -> dict[str, Any] | None:
    """The newest finished job of this kind and size with a timeline: its marks and its whole duration."""
    row = conn.execute(
        "SELECT marks, started, finished FROM jobs WHERE kind = ? AND total = ? AND status = 'done' "
        "AND id != ? AND marks != '' AND started IS NOT NULL AND finished IS NOT NULL "
        "ORDER BY id DESC LIMIT 1",
        (kind, total, exclude),
    ).fetchone()
    if row is None:
        return None
    return {"marks": json.loads(row["marks"]), "seconds": row["finished"] - row["started"]}


def progress(job_id: int, done: int, current: str = "", message: str = "") -> bool:
    """Records progress (and when each step was reached, and at checkpoints the time-left estimate it
    gives); returns True when a cancel was requested."""
    now = time.time()
    with connect() as conn:
        row = conn.execute(
            "SELECT kind, done, total, started, marks, estimates, cancel FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        sets: dict[str, Any] = {"done": done, "current": current, "message": message, "updated": now}
        if row is not None and row["started"] and done != row["done"]:
            elapsed = now - row["started"]
            marks = [*json.loads(row["marks"] or "[]"), [done, round(elapsed, 3)]]
            sets["marks"] = json.dumps(marks)
            logged = json.loads(row["estimates"] or "[]")
            if checkpoint_due(row["done"], done, row["total"], len(logged)):
                est = remaining(
                    done,
                    row["total"],
                    marks,
                    elapsed,
                    history(conn, row["kind"], row["total"], job_id),
                    alike=row["kind"] not in UNLIKE_STEPS,
                )
                logged.append(
                    {
                        "done": done,
                        "total": row["total"],
                        "elapsed_s": round(elapsed, 3),
                        "eta_s": est.seconds,
                        "source": est.source,
                    }
                )
                sets["estimates"] = json.dumps(logged)
        conn.execute(
            f"UPDATE jobs SET {', '.join(f'{k} = :{k}' for k in sets)} WHERE id = :id", {**sets, "id": job_id}
        )
    return bool(row["cancel"]) if row is not None else False


def set_total(job_id: int, total: int) -> None:
    """The amount of work, once the worker knows it (a model's layer count, found after building it)."""
    with connect() as conn:
        conn.execute("UPDATE jobs SET total = ?, updated = ? WHERE id = ?", (total, time.time(), job_id))


def request_cancel(job_id: int) -> None:
    with connect() as conn:
        conn.execute("UPDATE jobs SET cancel = 1 WHERE id = ?", (job_id,))


def finish(job_id: int, status: str, message: str = "", error: str = "") -> None:
    with connect() as conn:
        conn.execute(
            "UPDATE jobs SET status = ?, message = COALESCE(NULLIF(?, ''), message), error = ?, "
            "finished = ?, updated = ? WHERE id = ?",
            (status, message, error, time.time(), time.time(), job_id),
        )


def worker_main(run: Callable[[int], int], argv: list[str] | None, description: str) -> int:
    """Entry point of a job's worker process: ``--job ID``; any crash ends the job as failed, with words."""
    from core.measure.timing import pin_malloc_thresholds

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--job", type=int, required=True)
    job_id = parser.parse_args(argv).job
    pin_malloc_thresholds()
    try:
        return run(job_id)
    except Exception as err:  # noqa: BLE001  the job must never stay 'running'
        traceback.print_exc()
        finish(job_id, "failed", error=f"{type(err).__name__}: {first_line(err)}")
        return 1
