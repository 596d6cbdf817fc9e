"""Issue 22's figures: a fine-tune on two "nodes" of this machine (two torchrun processes, --nnodes 2, one
process each, gloo, c10d rendezvous on the loopback, a data directory each) against the same run on one
node with
--nproc_per_node 2 (same seed, same global batch), and how long the surviving node takes to exit after the
other is killed mid-epoch, or hangs (SIGSTOP) with its connections open. Prints JSON."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, environment, parser

from benchmarks.multinode_driver import ARGS, ROOT, TIMEOUT_S, TORCHRUN, kill_mid_epoch, record, two_nodes


def metrics(data: Path, run_id: int) -> dict[str, list[float]]:
    with sqlite3.connect(data / "archscope.sqlite") as conn:
        rows = conn.execute(
            "SELECT name, value FROM metrics WHERE run = ? AND name IN ('val_loss', 'val_top1', "
            "'loss') ORDER BY step, time",
            (run_id,),
        ).fetchall()
    out: dict[str, list[float]] = {}
    for name, value in rows:
        out.setdefault(name, []).append(value)
    return out


def agreement(tmp: Path) -> dict:
    extra = ["--demo-per-class", "20", "--epochs", "3"]
    t = time.perf_counter()
    pa, pb, a, b = two_nodes(tmp, extra)
    assert pa.wait(600) == 0 and pb.wait(600) == 0
    two_s = time.perf_counter() - t
    home = next(d for d in (a, b) if record(d))
    single = tmp / "single"
    t = time.perf_counter()
    subprocess.run(
        [*TORCHRUN, "--standalone", "--nproc_per_node", "2", *ARGS, *extra],
        cwd=ROOT,
        check=True,
        env={**os.environ, "ARCHSCOPE_DATA_DIR": str(single)},
        capture_output=True,
        timeout=600,
    )
    one_s = time.perf_counter() - t
    two, one = record(home)[0], record(single)[0]
    m2, m1 = metrics(home, two["id"]), metrics(single, one["id"])
    return {
        "config": " ".join(ARGS[2:] + extra),
        "global_batch": 16,
        "two_nodes": {
            "best_val_top1": json.loads(two["result"])["best_top1"],
            "val_top1": m2["val_top1"],
            "val_loss": m2["val_loss"],
            "wall_s": round(two_s, 1),
            "nodes": json.loads(two["result"])["info"]["nodes"],
        },
        "one_node_nproc_2": {
            "best_val_top1": json.loads(one["result"])["best_top1"],
            "val_top1": m1["val_top1"],
            "val_loss": m1["val_loss"],
            "wall_s": round(one_s, 1),
        },
        "max_abs_diff": {
            k: max(abs(x - y) for x, y in zip(m2[k], m1[k])) for k in ("val_top1", "val_loss", "loss")
        },
        "other_node_wrote": sorted(
            p.name for p in ({a, b} - {home}).pop().iterdir() if not p.name.startswith(".")
        ),
    }


def kill(tmp: Path) -> dict:
    killed = kill_mid_epoch(tmp, ["--demo-per-class", "120", "--epochs", "3"])
    home, run_id = killed.pop("home"), killed["run_id"]
    run = record(home)[0]
    resumed = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "core.runs", "train", "--quiet", "--resume", str(run_id)],
        cwd=ROOT,
        capture_output=True,
        timeout=600,
        env={**os.environ, "ARCHSCOPE_DATA_DIR": str(home)},
    )
    after = record(home)[0]
    return {
        **killed,
        "timeout_s": TIMEOUT_S,
        "status_after_kill": run["status"],
        "error": run["error"],
        "resume_exit_code": resumed.returncode,
        "status_after_resume": after["status"],
        "epochs_done_after_resume": json.loads(after["result"])["epochs_done"],
    }


def hang(tmp: Path) -> dict:
    """The other node hangs (SIGSTOP: its connections stay open): the survivor's wait is bounded by the
    timeout."""
    hung = kill_mid_epoch(tmp, ["--demo-per-class", "120", "--epochs", "3"], signal.SIGSTOP, timeout_s=20)
    run = record(hung.pop("home"))[0]
    return {**hung, "timeout_s": 20, "status": run["status"], "error": run["error"]}


def main() -> None:
    args = parser(__doc__).parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="archscope-multinode-"))
    (tmp / "agree").mkdir()
    (tmp / "kill").mkdir()
    (tmp / "hang").mkdir()
    emit(
        {
            "environment": environment(args),
            "agreement": agreement(tmp / "agree"),
            "node_killed": kill(tmp / "kill"),
            "node_hung": hang(tmp / "hang"),
        }
    )


if __name__ == "__main__":
    main()
