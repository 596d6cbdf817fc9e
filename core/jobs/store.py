"""SQLite store in the app's data directory (WAL mode): cached measurements and background jobs.

Writers are background processes, readers are Streamlit sessions; every call opens its own short
connection, so nothing here is shared across threads or processes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from core.config import data_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, resolution INTEGER, batch INTEGER,
    device TEXT, precision TEXT, memory_format TEXT, threads INTEGER, torch_version TEXT,
    payload TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS measurements_kind ON measurements(kind, device, precision);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, args TEXT NOT NULL, status TEXT NOT NULL,
    pid INTEGER, done INTEGER DEFAULT 0, total INTEGER DEFAULT 0, current TEXT DEFAULT '',
    message TEXT DEFAULT '', error TEXT DEFAULT '', cancel INTEGER DEFAULT 0,
    created REAL NOT NULL, started REAL, updated REAL, finished REAL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, config TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER,
    device TEXT DEFAULT '', run_dir TEXT DEFAULT '', created REAL NOT NULL, started REAL, updated REAL,
    finished REAL, error TEXT DEFAULT '', result TEXT DEFAULT '{}', cancel INTEGER DEFAULT 0, job INTEGER);
CREATE TABLE IF NOT EXISTS metrics (
    run INTEGER NOT NULL, epoch INTEGER NOT NULL, step INTEGER NOT NULL, split TEXT NOT NULL,
    name TEXT NOT NULL, value REAL NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run, name);
"""


def db_path() -> Path:
    return data_dir() / "archscope.sqlite"


class StoreError(RuntimeError):
    """The store file cannot be read or written (corrupt, read-only, locked); the message names the file."""


def _advice(path: Path, err: sqlite3.Error) -> str:
    reason = str(err) or type(err).__name__
    if "readonly" in reason or "read-only" in reason:
        what = "is read-only, so nothing new can be saved (what it holds can still be shown)"
    elif "not a database" in reason or "malformed" in reason or "corrupt" in reason:
        what = "is damaged; move it aside (your run folders stay) and Archscope starts a fresh one"
    else:
        what = "cannot be used right now"
    return f"the store {path} {what} (SQLite: {reason})"


# columns added after a store was first made: (table, column, type)
ADDED_COLUMNS = (
    ("runs", "job", "INTEGER"),
    ("runs", "tags", "TEXT DEFAULT ''"),
    ("runs", "pid_start", "INTEGER"),
    ("jobs", "pid_start", "INTEGER"),
    ("jobs", "marks", "TEXT DEFAULT ''"),
    ("jobs", "estimates", "TEXT DEFAULT ''"),
    ("runs", "estimates", "TEXT DEFAULT ''"),
)


def _migrate(conn: sqlite3.Connection) -> None:
    for table, column, kind in ADDED_COLUMNS:
        if column not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


SCHEMA_VERSION = 5  # PRAGMA user_version of a store whose WAL mode, tables and added columns are in place


def _wal(conn: sqlite3.Connection, timeout_s: float = 30.0) -> None:
    """``PRAGMA journal_mode=WAL``, retried: switching the journal mode can fail at once with "database is
    locked" while another connection is setting up the same fresh file (SQLite does not always call the
    busy handler for it), which four processes opening a new store at the same instant hit 4-11% of the
    time."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) and "busy" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _set_up(conn: sqlite3.Connection) -> None:
    """WAL, the tables and the migrations, in one ``BEGIN IMMEDIATE`` transaction that reads the version
    again inside it: of several sessions opening a fresh store at once, one sets it up and the others
    find it done."""
    _wal(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            _migrate(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _open(path: Path) -> sqlite3.Connection:
    """A connection with a busy timeout. A store below SCHEMA_VERSION (new, older, or replaced under the
    same path) is set up once (``_set_up``); after that a connection only reads the version. A store
    that cannot be written (a read-only file or folder) is opened read-only instead."""
    if not path.parent.is_dir():
        raise sqlite3.OperationalError(f"the folder {path.parent} is gone")
    try:
        conn = sqlite3.connect(path, timeout=30)
    except sqlite3.OperationalError:
        return _open_read_only(path)
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            _set_up(conn)
        return conn
    except sqlite3.OperationalError as err:
        conn.close()
        if "readonly" not in str(err) and "unable to open" not in str(err):
            raise
    return _open_read_only(path)


def _open_read_only(path: Path) -> sqlite3.Connection:
    """The store for reading only. In a folder that cannot be written SQLite cannot make the WAL's side
    files, so the file is opened as immutable (what was committed to it is shown)."""
    if not path.exists():
        raise sqlite3.OperationalError(
            f"unable to open database file {path} (read-only, and there is no store yet)"
        )
    writable_folder = os.access(path.parent, os.W_OK) and not _read_only_mount(path.parent)
    uri = f"{path.as_uri()}?mode=ro" + ("" if writable_folder else "&immutable=1")
    conn = sqlite3.connect(uri, uri=True, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def read_only(path: Path | None = None) -> bool:
    """Whether the data directory cannot be written (a read-only folder or mount): the app then shows what
    is there and says that nothing new can be saved."""
    folder = (path or db_path()).parent
    if _read_only_mount(folder) or not os.access(folder, os.W_OK):
        return True
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        return False
    except OSError:
        return True


@contextmanager
def connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """A short-lived connection with WAL, a busy timeout and the schema in place; commits on success. Any
    SQLite failure (a damaged or read-only file) leaves as a StoreError that names the file."""
    path = path or db_path()
    try:
        conn = _open(path)
    except sqlite3.Error as err:
        raise StoreError(_advice(path, err)) from err
    conn.row_factory = sqlite3.Row
    try:
        yield conn
        conn.commit()
    except sqlite3.Error as err:
        raise StoreError(_advice(path, err)) from err
    finally:
        conn.close()


def measurement_key(
    kind: str,
    model: str,
    resolution: int,
    batch: int,
    device: str,
    precision: str,
    memory_format: str,
    threads: int,
    torch_version: str,
) -> str:
    return "|".join(
        map(str, (kind, model, resolution, batch, device, precision, memory_format, threads, torch_version))
    )


def put_measurement(key: str, kind: str, meta: dict[str, Any], payload: dict[str, Any]) -> None:
    with connect() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO measurements (key, kind, model, resolution, batch, device, precision, "
            "memory_format, threads, torch_version, payload, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                key,
                kind,
                meta["model"],
                meta["resolution"],
                meta["batch"],
                meta["device"],
                meta["precision"],
                meta["memory_format"],
                meta["threads"],
                meta["torch_version"],
                json.dumps(payload),
                time.time(),
            ),
        )


def get_measurement(key: str) -> dict[str, Any] | None:
    with connect() as conn:
        row = conn.execute("SELECT payload FROM measurements WHERE key = ?", (key,)).fetchone()
    return json.loads(row["payload"]) if row else None


def list_measurements(kind: str, **where: Any) -> list[dict[str, Any]]:
    """Payloads of one kind, filtered by equality on indexed columns (device, precision, ...)."""
    clause = " AND ".join(f"{k} = ?" for k in where)
    sql = "SELECT payload FROM measurements WHERE kind = ?" + (f" AND {clause}" if clause else "")
    with connect() as conn:
        rows = conn.execute(sql + " ORDER BY created", (kind, *where.values())).fetchall()
    return [json.loads(r["payload"]) for r in rows]
