"""Fine-tune runs in the store: create, status, metrics, cancel; a dead worker ends as failed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import data_dir
from core.jobs import ACTIVE
from core.jobs.estimates import remaining
from core.jobs.lifecycle import dead_reason, live_row, pid_alive
from core.jobs.store import connect

MAX_RUNS_ENV = "ARCHSCOPE_MAX_RUNS"


class LaunchError(RuntimeError):
    """A launch that was refused (the concurrency cap, a run still active); the message says why."""


class RunBusy(RuntimeError):
    """Another worker process holds this run; the message names it."""


class EditRefused(RuntimeError):
    """A rename or delete that could not happen whole; nothing was changed in the store, and the message
    says which file stood in the way."""


LOCK = "worker.lock"
EXIT_GRACE_S = 10.0


def hold_worker_lock(run_id: int, run_dir: Path) -> Any:
    """Takes the run folder's lock for this process (an exclusive ``flock``, which the kernel drops when
    the process ends, however it ends): two workers on one run folder are impossible. Returns the open
    file, to keep."""
    import fcntl

    fh = open(run_dir / LOCK, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise RunBusy(f"run {run_id} already has a worker ({holder}); it was not started twice") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}")
    fh.flush()
    return fh


def worker_alive(run: "Run") -> bool:
    """Whether a worker process of this run is still there: its recorded pid (with its start time), or
    whoever holds the run folder's lock."""
    if run.pid and pid_alive(run.pid, run.pid_start):
        return True
    import fcntl

    path = folder(run) / LOCK
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def max_runs() -> int:
    """How many runs may be queued or running at once (``ARCHSCOPE_MAX_RUNS``, default 2)."""
    return max(1, int(os.environ.get(MAX_RUNS_ENV, "2")))


STATUS_WORDS = {"cancelled": "stopped"}  # how a status reads on a page, where it differs from the store's


CHIP_CHARS = 28  # what a multiselect chip shows whole at 390 px, beside its remove button


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
    job: int | None = None  # the background job (an experiment) that made this run, if any
    tags: str = ""  # comma-separated, as the user typed them (see ``tag_list``)
    pid_start: int | None = None  # the worker's process start time (core.jobs.process_start)
    estimates: str = ""  # JSON: time-left estimates logged at 25/50/75% of the last segment's steps

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def status_word(self) -> str:
        """The status as a person reads it: a run stopped by hand is "stopped" (the store says
        'cancelled')."""
        return STATUS_WORDS.get(self.status, self.status)

    @property
    def tag_list(self) -> list[str]:
        return [t for t in (x.strip() for x in (self.tags or "").split(",")) if t]

    def label(self) -> str:
        """How a person picks a run: its name, then the backbone and recipe when the name does not already
        say them, its best top-1 (or status) and its id; nothing is said twice."""
        best = self.result.get("best_top1")
        top1 = f"{100 * best:.1f}%" if best is not None else self.status_word
        name = self.name or default_name(self.config)
        extra = [
            str(v) for v in (self.config.get("recipe"), self.config.get("model")) if v and str(v) not in name
        ]
        return " · ".join([name, *extra, top1, f"#{self.id}"])

    def chip(self, width: int = CHIP_CHARS) -> str:
        """The run in a picker's chip, which a phone's screen cuts at about 30 characters: the id first,
        then the name, shortened with an ellipsis of its own (the table, legends and hover give the
        whole label)."""
        text = f"#{self.id} {self.name or default_name(self.config)}"
        return text if len(text) <= width else text[: width - 1].rstrip() + "…"

    def short_label(self, max_chars: int = 48) -> str:
        """A legend's label: id and best top-1 (or status) first, so a narrow chart cuts only the end of
        the name ("#7 · 50.0% · efficientnet_lite0 · finetune_…")."""
        best = self.result.get("best_top1")
        head = f"#{self.id} · " + (f"{100 * best:.1f}%" if best is not None else self.status_word)
        name = self.name or default_name(self.config)
        extra = [
            str(v) for v in (self.config.get("recipe"), self.config.get("model")) if v and str(v) not in name
        ]
        text = " · ".join([head, name, *extra])
        return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def _run(row: Any) -> Run:
    d = dict(row)
    d["config"] = json.loads(d["config"])
    d["result"] = json.loads(d["result"] or "{}")
    d["cancel"] = bool(d["cancel"])
    return Run(**d)


MAX_ID = 2**63 - 1


def parse_id(text: str | None) -> int | None:
    """A run id from a URL or form: ASCII digits only (``str.isdigit`` accepts '²'), within SQLite's range."""
    if text is None or not re.fullmatch(r"[0-9]{1,19}", text.strip()):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def new_folder(run_id: int) -> Path:
    """A folder no run has used: ``runs/<id>``, or ``runs/<id>-<k>`` when a folder of that id is left from
    a store that was lost (its files are kept, never resumed into)."""
    base = data_dir() / "runs"
    base.mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        folder = base / (str(run_id) if k == 0 else f"{run_id}-{k}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"no free folder for run {run_id} under {base}")


def _claim_slot(conn: sqlite3.Connection, cap: int | None) -> None:
    """Opens the write transaction in which the caller queues a run; with ``cap``, refuses when that many
    runs are already active. Counting and queueing in one ``BEGIN IMMEDIATE`` transaction means two
    launches at once can never both pass the check (the liveness rule runs first, so dead rows hold no
    slot)."""
    if cap is None:
        return
    active_runs()
    conn.execute("BEGIN IMMEDIATE")
    n = conn.execute(f"SELECT COUNT(*) FROM runs WHERE status IN {ACTIVE}").fetchone()[0]
    if n >= cap:
        raise LaunchError(
            f"{n} run(s) already queued or running, the cap is {cap} "
            f"(set {MAX_RUNS_ENV} to change it); stop one or wait"
        )


def default_name(config: dict[str, Any]) -> str:
    """The name a run gets when nobody typed one, from the page, the CLI or an experiment alike."""
    return f"{config.get('model', '?')} · {config.get('recipe', '?')}"


def create(config: dict[str, Any], name: str = "", cap: int | None = None, job: int | None = None) -> int:
    """A queued run with a fresh folder of its own, refused at ``cap`` active runs (see ``_claim_slot``); a
    blank name becomes ``default_name``."""
    name = (" ".join(name.split()) or default_name(config))[:200]
    with connect() as conn:
        _claim_slot(conn, cap)
        cur = conn.execute(
            "INSERT INTO runs (name, config, status, run_dir, created, job) VALUES (?,?,?,?,?,?)",
            (name, json.dumps(config), "queued", "", time.time(), job),
        )
        run_id = int(cur.lastrowid)
    update(run_id, run_dir=str(new_folder(run_id)))
    return run_id


def requeue(run_id: int, cap: int | None = None) -> None:
    """Queues a stopped or failed run again for a resume, under the same cap and in the same kind of
    transaction as a new run; the start-up deadline counts from now."""
    run = get(run_id)
    if run.active:
        raise LaunchError(f"run {run_id} is still {run.status}")
    deadline = time.monotonic() + EXIT_GRACE_S  # a worker that just reported its end is still exiting
    while worker_alive(run) and time.monotonic() < deadline:
        time.sleep(0.2)
    if worker_alive(run):
        raise LaunchError(
            f"run {run_id}'s worker process (pid {run.pid}) is still alive; stop it or wait for it "
            "to end before resuming"
        )
    with connect() as conn:
        _claim_slot(conn, cap)
        conn.execute(
            "UPDATE runs SET status = 'queued', cancel = 0, error = '', pid = NULL, created = ?, "
            "updated = ? WHERE id = ?",
            (time.time(), time.time(), run_id),
        )


def _select(where: str = "", params: tuple[Any, ...] = (), order: str = "id") -> list[Run]:
    """Runs read in one query; only a row the liveness rule finds dead is ended and read again."""
    with connect() as conn:
        rows = conn.execute(f"SELECT * FROM runs {where} ORDER BY {order}", params).fetchall()
    return [
        get(r["id"]) if dead_reason(r["status"], r["pid"], r["created"], r["pid_start"]) else _run(r)
        for r in rows
    ]


def by_job(job_id: int) -> list[Run]:
    """The runs a background job (the freezing-depth experiment) made, oldest first."""
    return _select("WHERE job = ?", (job_id,))


def active_runs() -> list[Run]:
    """Queued or running runs, after the liveness rule turned dead ones into 'failed'."""
    return [r for r in _select(f"WHERE status IN {ACTIVE}") if r.active]


def folder(run: "Run | int") -> Path:
    """The run's folder (older rows without one recorded used ``runs/<id>``)."""
    run = get(run) if isinstance(run, int) else run
    return Path(run.run_dir) if run.run_dir else data_dir() / "runs" / str(run.id)


def update(run_id: int, **fields: Any) -> None:
    for key in ("result", "config"):
        if key in fields:
            fields[key] = json.dumps(fields[key])
    fields["updated"] = time.time()
    sets = ", ".join(f"{k} = ?" for k in fields)
    with connect() as conn:
        conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))


def _end_dead(run_id: int, reason: str) -> None:
    update(run_id, status="failed", finished=time.time(), error=f"{reason}; resume it to continue")


def get(run_id: int) -> Run:
    """The run, with the one liveness rule applied (core.jobs.live_row)."""
    return _run(live_row("runs", run_id, _end_dead))


def all_runs() -> list[Run]:
    """Every run, newest first, in one query."""
    return _select(order="id DESC")


def rename(run_id: int, name: str) -> None:
    """Renames the run and its TensorBoard folder together, or neither: the folder is renamed first, and a
    folder that cannot be renamed leaves the store's name as it was (EditRefused says why)."""
    from core.runs import tblog

    name = " ".join(name.split())[:200]
    if not name:
        raise ValueError("a run name cannot be empty")
    run = get(run_id)
    try:
        tblog.rename(run_id, folder(run), name)  # its TensorBoard folder follows (core.runs.tblog)
    except OSError as err:
        raise EditRefused(
            f"run {run_id} keeps its name {run.name!r}: its TensorBoard folder could not be renamed "
            f"({err.strerror or err})"
        ) from None
    try:
        update(run_id, name=name)
    except Exception:
        tblog.rename(run_id, folder(run), run.name)  # the store refused: the folder goes back
        raise


def set_tags(run_id: int, tags: list[str] | str) -> list[str]:
    """Replaces the run's tags (a list, or comma-separated text); returns them cleaned (trimmed, unique, in
    order)."""
    items = tags.split(",") if isinstance(tags, str) else tags
    clean = list(dict.fromkeys(t for t in (" ".join(str(x).split())[:40] for x in items) if t))
    update(run_id, tags=",".join(t.replace(",", " ") for t in clean))
    return clean


def delete(run_id: int) -> Path | None:
    """Deletes a run that is not active: its TensorBoard event files, its folder under the data directory
    (a folder recorded elsewhere is left alone), then its metrics and its row, last. A file that cannot
    be removed stops the delete with the row kept (EditRefused names the file), so the store never
    forgets a run whose files remain. Returns the folder removed."""
    from core.runs import tblog

    run = get(run_id)
    if run.active:
        raise LaunchError(f"run {run_id} is still {run.status}: stop it first")
    path = folder(run)
    runs_root = (data_dir() / "runs").resolve()
    removed = None
    from core.finetune.bundle import BundleBusy, writer_lock

    try:
        with (
            writer_lock(path, f"a delete (pid {os.getpid()})") if path.is_dir() else contextlib.nullcontext()
        ):
            tblog.delete(run_id, path)  # first: the run folder names its event folder
            if path.exists() and path.resolve().parent == runs_root:
                tblog.remove_tree(path)
                removed = path
    except BundleBusy as busy:
        raise EditRefused(
            f"run {run_id} is being exported ({busy}); wait or stop it, then delete it"
        ) from None
    except OSError as err:
        raise EditRefused(
            f"run {run_id} was not deleted: {err}; fix that file's permissions (or remove it) and "
            "delete again"
        ) from None
    with connect() as conn:
        conn.execute("DELETE FROM metrics WHERE run = ?", (run_id,))
        conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
    return removed


def request_cancel(run_id: int) -> None:
    update(run_id, cancel=1)


def cancel_requested(run_id: int) -> bool:
    with connect() as conn:
        row = conn.execute("SELECT cancel FROM runs WHERE id = ?", (run_id,)).fetchone()
    return bool(row and row["cancel"])


def log_metrics(run_id: int, epoch: int, step: int, split: str, values: dict[str, float]) -> None:
    now = time.time()
    with connect() as conn:
        conn.executemany(
            "INSERT INTO metrics (run, epoch, step, split, name, value, time) VALUES (?,?,?,?,?,?,?)",
            [(run_id, epoch, step, split, k, float(v), now) for k, v in values.items()],
        )


def drop_metrics_from(run_id: int, epoch: int) -> None:
    """Forget metrics of an epoch that a resume will redo, so none is duplicated."""
    with connect() as conn:
        conn.execute("DELETE FROM metrics WHERE run = ? AND epoch >= ?", (run_id, epoch))


def metrics(run_id: int) -> pd.DataFrame:
    with connect() as conn:
        rows = conn.execute(
            "SELECT epoch, step, split, name, value, time FROM metrics WHERE run = ? ORDER BY step, time",
            (run_id,),
        ).fetchall()
    return pd.DataFrame([dict(r) for r in rows], columns=["epoch", "step", "split", "name", "value", "time"])


def epoch_values(name: str) -> dict[tuple[int, int], float]:
    """One per-epoch metric (``val_loss``) of every run, in one query: {(run, epoch): value}, the last
    value logged for that epoch."""
    with connect() as conn:
        rows = conn.execute(
            "SELECT run, epoch, value FROM metrics WHERE name = ? ORDER BY time", (name,)
        ).fetchall()
    return {(r["run"], r["epoch"]): r["value"] for r in rows}


def curves(run_id: int) -> pd.DataFrame:
    """One row per step (train loss, lr) or epoch (val loss, val top-1), wide format, with ``wall_s``:
    seconds since the run's first logged value. ``attrs['steps_per_epoch']`` lets a plot put steps on an
    epoch axis."""
    m = metrics(run_id)
    if m.empty:
        return pd.DataFrame(columns=["step", "epoch", "wall_s"])
    wide = m.pivot_table(
        index=["step", "epoch"], columns="name", values="value", aggfunc="last"
    ).reset_index()
    when = m.groupby(["step", "epoch"])["time"].max().reset_index()
    wide = wide.merge(when, on=["step", "epoch"], how="left")
    wide["wall_s"] = wide.pop("time") - m["time"].min()
    per_epoch = m[m["split"] != "val"].groupby("epoch")["step"].agg(["min", "max"])
    wide.attrs["steps_per_epoch"] = (
        float((per_epoch["max"] - per_epoch["min"] + 1).max()) if len(per_epoch) else 1.0
    )
    return wide


@dataclass(frozen=True)
class Progress:
    epoch: int
    epochs: int
    step: int
    total_steps: int
    eta_s: float | None
    fraction: float


def progress(run: Run) -> Progress:
    info = run.result.get("info", {})
    per_epoch = int(info.get("steps_per_epoch", 0))
    epochs = int(run.config.get("epochs", 1))
    m = metrics(run.id)
    step = int(m["step"].max()) if not m.empty else 0
    epoch = int(m["epoch"].max()) + 1 if not m.empty else 0
    total = per_epoch * epochs
    eta = None
    if run.status == "running" and run.started:
        before = per_epoch * int(
            info.get("resumed_from_epoch", 0)
        )  # a resumed run's steps of earlier segments
        seg = m[(m["split"] != "val") & (m["step"] > before)]
        if (
            not seg.empty
        ):  # this segment's rate since its first step (core.jobs.estimates), as the worker logs
            first = seg.loc[seg["step"].idxmin()]
            marks = [
                [int(first["step"]) - before, float(first["time"]) - run.started],
                [step - before, float(seg["time"].max()) - run.started],
            ]
            eta = remaining(
                step - before, total - before, marks, time.time() - run.started, tail_s=end_tail_s()
            ).seconds
    return Progress(epoch, epochs, step, total, eta, min(1.0, step / total) if total else 0.0)


def end_tail_s(last: int = 5) -> float:
    """The median time finished runs took after their last training step was logged (the last validation
    pass, best weights, the bundle): the part of a run that a rate of steps does not see. 0 with no
    finished run."""
    with connect() as conn:
        rows = conn.execute(
            "SELECT r.finished - (SELECT MAX(m.time) FROM metrics m WHERE m.run = r.id AND "
            "m.split != 'val') AS tail FROM runs r WHERE r.status = 'done' AND r.finished IS NOT "
            "NULL ORDER BY r.id DESC LIMIT ?",
            (last,),
        ).fetchall()
    tails = sorted(t["tail"] for t in rows if t["tail"] is not None and t["tail"] >= 0)
    return float(tails[len(tails) // 2]) if tails else 0.0


def empty_reason(run: "Run") -> str:
    """Why a run has no best top-1 yet (empty for a run that has one)."""
    if run.result.get("best_top1") is not None:
        return ""
    return {
        "queued": "queued: not started yet",
        "running": "running: filled in when the run ends",
        "failed": "failed before any epoch finished",
        "cancelled": "stopped before any epoch finished",
    }.get(run.status, f"{run.status}: no epoch finished")
