"""The multi-node driver the tests and ``benchmarks/multinode.py`` share: two torchrun "nodes" on this
machine (two torchrun processes, --nnodes 2, one process each, gloo, loopback rendezvous), each with a
data directory of its own; the run record one of them keeps; a node killed or stopped mid-epoch."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
ARGS = [
    "-m",
    "core.runs",
    "train",
    "--data",
    "demo",
    "--demo-size",
    "64",
    "--image-size",
    "64",
    "--batch-size",
    "8",
    "--threads",
    "1",
    "--recipe",
    "finetune_top",
    "--device",
    "cpu",
    "--quiet",
    "--seed",
    "3",
]
TIMEOUT_S = 60  # ARCHSCOPE_DIST_TIMEOUT_S for these runs: the bound on a surviving node's exit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node(
    data: Path, port: int, extra: list[str], log: Path, timeout_s: float = TIMEOUT_S
) -> subprocess.Popen:
    """One "node": torchrun with --nnodes 2 and one process, in a session of its own, over its own data
    directory, with collectives bounded by ``timeout_s``."""
    env = {**os.environ, "ARCHSCOPE_DATA_DIR": str(data), "ARCHSCOPE_DIST_TIMEOUT_S": str(timeout_s)}
    cmd = [
        *TORCHRUN,
        "--nnodes",
        "2",
        "--nproc_per_node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        f"archscope-test-{port}",
        "--max-restarts",
        "0",
        *ARGS,
        *extra,
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its workers in sessions of their own: a process-group
    kill would leave them running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def two_nodes(
    tmp: Path, extra: list[str], before_b=None, timeout_s: float = TIMEOUT_S, extra_b: list[str] | None = None
) -> tuple[subprocess.Popen, subprocess.Popen, Path, Path]:
    a, b = tmp / "node-a", tmp / "node-b"
    a.mkdir()
    b.mkdir()
    if before_b is not None:
        before_b(b)
    port = free_port()
    pa = node(a, port, extra, tmp / "a.log", timeout_s)
    time.sleep(1.5)  # node a first: it hosts the rendezvous store
    pb = node(b, port, extra + (extra_b or []), tmp / "b.log", timeout_s)
    return pa, pb, a, b


def record(data: Path) -> list[dict]:
    """The runs a data directory's store holds (none when it has no store)."""
    db = data / "archscope.sqlite"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM runs")]
        except sqlite3.OperationalError:  # the file exists, its schema is not made yet: no run so far
            return []


def val_metrics(data: Path, run_id: int) -> list[tuple[int, str, float]]:
    with sqlite3.connect(data / "archscope.sqlite") as conn:
        return conn.execute(
            "SELECT epoch, name, value FROM metrics WHERE run = ? AND name IN ('val_loss', "
            "'val_top1') ORDER BY epoch, name",
            (run_id,),
        ).fetchall()


def kill_mid_epoch(
    tmp: Path, extra: list[str], how: int = signal.SIGKILL, timeout_s: float = TIMEOUT_S
) -> dict:
    """Two nodes; once rank 0's node has recorded a step into the second epoch (the first epoch's
    checkpoint is written), the other node gets ``how`` whole, agent and workers (SIGKILL: it dies and
    its connections close; SIGSTOP: it hangs with them open). Returns where the record is, the run, the
    survivor's exit code and how many seconds it took to exit."""
    pa, pb, a, b = two_nodes(tmp, extra, timeout_s=timeout_s)
    home = None
    end = time.time() + 240
    while time.time() < end and home is None:
        home = next((d for d in (a, b) if record(d)), None)
        time.sleep(0.2)
    assert home is not None, (tmp / "a.log").read_text()[-3000:]
    survivor, victim = (pa, pb) if home == a else (pb, pa)
    run_id = record(home)[0]["id"]
    step, steps_per_epoch = 0, None
    while time.time() < end:  # into the second epoch: the first epoch's checkpoint exists
        info = json.loads(record(home)[0]["result"] or "{}").get("info") or {}
        steps_per_epoch = info.get("steps_per_epoch")
        with sqlite3.connect(home / "archscope.sqlite") as conn:
            step = conn.execute("SELECT MAX(step) FROM metrics WHERE run = ?", (run_id,)).fetchone()[0] or 0
        if steps_per_epoch and step >= steps_per_epoch + 2:
            break
        time.sleep(0.1)
    victims = [*descendants(victim.pid), victim.pid]
    for pid in victims:  # the other node dies (or hangs) mid-epoch: agent and workers
        os.kill(pid, how)
    t = time.monotonic()
    try:
        code = survivor.wait(timeout_s + 60)
    finally:
        for pid in victims:  # a hung node is ended too, once measured
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return {
        "home": home,
        "run_id": run_id,
        "killed_at_step": step,
        "steps_per_epoch": steps_per_epoch,
        "survivor_exit_code": code,
        "survivor_exit_s": round(time.monotonic() - t, 2),
    }
