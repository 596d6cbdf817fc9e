"""Fine-tune runs in the store: create, status, metrics, cancel; a dead worker ends as failed."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.jobs import pid_alive
from core.store import connect

STATUSES = ("queued", "running", "done", "failed", "cancelled")


@dataclass(frozen=True)
class Run:
    id: int
    name: str
    config: dict[str, Any]
    status: str
    pid: int | None
    device: str
    run_dir: str
    created: float
    started: float | None
    updated: float | None
    finished: float | None
    error: str
    result: dict[str, Any]
    cancel: bool

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


def _run(row: Any) -> Run:
    d = dict(row)
    d["config"] = json.loads(d["config"])
    d["result"] = json.loads(d["result"] or "{}")
    d["cancel"] = bool(d["cancel"])
    return Run(**d)


def create(config: dict[str, Any], name: str = "", run_dir: str = "") -> int:
    with connect() as conn:
        cur = conn.execute("INSERT INTO runs (name, config, status, run_dir, created) VALUES (?,?,?,?,?)",
                           (name, json.dumps(config), "queued", run_dir, time.time()))
        return int(cur.lastrowid)


def update(run_id: int, **fields: Any) -> None:
    for key in ("result", "config"):
        if key in fields:
            fields[key] = json.dumps(fields[key])
    fields["updated"] = time.time()
    sets = ", ".join(f"{k} = ?" for k in fields)
    with connect() as conn:
        conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))


def get(run_id: int) -> Run:
    with connect() as conn:
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise KeyError(f"no run {run_id}")
    run = _run(row)
    if run.status == "running" and run.pid and not pid_alive(run.pid):
        update(run_id, status="failed", finished=time.time(),
               error="the training process ended without reporting (killed or crashed); resume it to continue")
        return get(run_id)
    return run


def all_runs() -> list[Run]:
    with connect() as conn:
        ids = [r["id"] for r in conn.execute("SELECT id FROM runs ORDER BY id DESC")]
    return [get(i) for i in ids]


def request_cancel(run_id: int) -> None:
    update(run_id, cancel=1)


def cancel_requested(run_id: int) -> bool:
    with connect() as conn:
        row = conn.execute("SELECT cancel FROM runs WHERE id = ?", (run_id,)).fetchone()
    return bool(row and row["cancel"])


def log_metrics(run_id: int, epoch: int, step: int, split: str, values: dict[str, float]) -> None:
    now = time.time()
    with connect() as conn:
        conn.executemany("INSERT INTO metrics (run, epoch, step, split, name, value, time) VALUES (?,?,?,?,?,?,?)",
                         [(run_id, epoch, step, split, k, float(v), now) for k, v in values.items()])


def drop_metrics_from(run_id: int, epoch: int) -> None:
    """Forget metrics of an epoch that a resume will redo, so none is duplicated."""
    with connect() as conn:
        conn.execute("DELETE FROM metrics WHERE run = ? AND epoch >= ?", (run_id, epoch))


def metrics(run_id: int) -> pd.DataFrame:
    with connect() as conn:
        rows = conn.execute("SELECT epoch, step, split, name, value, time FROM metrics WHERE run = ? "
                            "ORDER BY step, time", (run_id,)).fetchall()
    return pd.DataFrame([dict(r) for r in rows], columns=["epoch", "step", "split", "name", "value", "time"])
