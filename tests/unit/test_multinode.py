"""Fine-tuning across nodes with torchrun's own c10d rendezvous: two "nodes" on this machine (two torchrun
processes, --nnodes 2, one process each, gloo, loopback rendezvous), each with a data directory of its
own. One run record, written by global rank 0 alone; the same final metrics as a single-node
--nproc_per_node 2 run with the same seed and global batch; a node holding a different dataset stops
both with one message; a node killed mid-epoch makes the other exit within the timeout, the run is
failed with its reason, and
--resume finishes it."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.multinode_driver import (
    ARGS,
    ROOT,
    TIMEOUT_S,
    TORCHRUN,
    kill_mid_epoch,
    record,
    two_nodes,
    val_metrics,
)


@pytest.mark.slow
def test_two_nodes_record_one_run_and_match_a_single_node_run(tmp_path):
    extra = ["--demo-per-class", "8", "--epochs", "2", "--name", "two nodes"]
    pa, pb, a, b = two_nodes(tmp_path, extra)
    assert pa.wait(300) == 0 and pb.wait(300) == 0, (tmp_path / "a.log").read_text()[-3000:]
    recorded = [d for d in (a, b) if record(d)]
    assert len(recorded) == 1 and len(record(recorded[0])) == 1  # one record, by global rank 0
    home, other = recorded[0], ({a, b} - {recorded[0]}).pop()
    # the other node wrote only its copy of the dataset and its decoded-image cache: no store, no run folder
    assert sorted(p.name for p in other.iterdir() if not p.name.startswith(".")) == ["cache", "datasets"]
    run = record(home)[0]
    result = json.loads(run["result"])
    assert run["status"] == "done" and result["info"]["world"] == 2 and result["info"]["nodes"] == 2
    single = tmp_path / "single"
    env = {**os.environ, "ARCHSCOPE_DATA_DIR": str(single)}
    out = subprocess.run(
        [*TORCHRUN, "--standalone", "--nproc_per_node", "2", *ARGS, *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    one = record(single)[0]
    assert json.loads(one["result"])["info"]["nodes"] == 1
    # same seed, same global batch (8 per rank x 2 ranks), gloo's all-reduce over two ranks either way:
    # the validation metrics agree to 1e-6 (they are identical on this machine)
    two_nodes_val, one_node_val = val_metrics(home, run["id"]), val_metrics(single, one["id"])
    assert [(e, n) for e, n, _ in two_nodes_val] == [(e, n) for e, n, _ in one_node_val] and len(
        one_node_val
    ) == 4
    for (_, _, x), (_, _, y) in zip(two_nodes_val, one_node_val):
        assert x == pytest.approx(y, abs=1e-6)
    assert json.loads(one["result"])["best_top1"] == pytest.approx(result["best_top1"], abs=1e-9)


@pytest.mark.slow
def test_a_node_with_a_different_dataset_stops_both_with_one_message(tmp_path):
    def tamper(b: Path) -> None:  # node b already holds a demo set, one image of it changed
        from core.data import demo

        folder = demo.generate(b / "datasets" / "demo-s3-n6-px64-c6", per_class=6, size=64, seed=3)
        first = sorted((folder / "circle").glob("*.png"))[0]
        demo.render("square", 64, __import__("numpy").random.default_rng(9)).save(first)

    pa, pb, a, b = two_nodes(tmp_path, ["--demo-per-class", "6", "--epochs", "1"], tamper)
    assert pa.wait(300) != 0 and pb.wait(300) != 0
    text = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    assert "holds a different dataset at" in text and "copy the same dataset to every node" in text
    runs = record(a) + record(b)
    assert len(runs) == 1 and runs[0]["status"] == "failed" and "different dataset" in runs[0]["error"]
    assert not any(d.joinpath("runs", "1", "checkpoint.pt").exists() for d in (a, b))  # nothing trained


@pytest.mark.slow
def test_nodes_started_with_different_flags_stop_every_rank_with_one_line(tmp_path):
    """Node b asks for 32 px images while rank 0 trains at 64 px: both exit non-zero before any training,
    the run is failed with the one line that names the flag, and nothing is recorded as done."""
    pa, pb, a, b = two_nodes(
        tmp_path, ["--demo-per-class", "6", "--epochs", "1"], extra_b=["--image-size", "32"]
    )
    assert pa.wait(300) != 0 and pb.wait(300) != 0
    text = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    said = re.search(
        r"has image_size (32|64), rank 0 has (32|64): start every node with the same flags", text
    )
    assert said and said.group(1) != said.group(2), text[-3000:]  # c10d picks which node is rank 0
    runs = record(a) + record(b)
    assert (
        len(runs) == 1
        and runs[0]["status"] == "failed"
        and "start every node with the same" in runs[0]["error"]
    )
    assert not any(d.joinpath("runs", "1", "checkpoint.pt").exists() for d in (a, b))


@pytest.mark.slow
def test_a_killed_node_fails_the_run_in_bounded_time_and_resume_finishes_it(tmp_path):
    killed = kill_mid_epoch(tmp_path, ["--demo-per-class", "48", "--epochs", "2", "--name", "killed"])
    home, run_id = killed["home"], killed["run_id"]
    print(json.dumps({k: v for k, v in killed.items() if k != "home"} | {"timeout_s": TIMEOUT_S}))
    assert killed["survivor_exit_code"] != 0 and killed["survivor_exit_s"] < TIMEOUT_S + 30
    assert killed["killed_at_step"] > killed["steps_per_epoch"]
    assert (home / "runs" / str(run_id) / "checkpoint.pt").exists()
    run = record(home)[0]
    assert run["status"] == "failed" and "another rank of this run stopped answering" in run["error"]
    assert f"--resume {run_id}" in run["error"]
    env = {**os.environ, "ARCHSCOPE_DATA_DIR": str(home)}
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "core.runs", "train", "--quiet", "--resume", str(run_id)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run = record(home)[0]
    result = json.loads(run["result"])
    assert (
        run["status"] == "done" and result["epochs_done"] == 2 and result["info"]["resumed_from_epoch"] == 1
    )
    epochs = [e for e, n, _ in val_metrics(home, run_id) if n == "val_top1"]
    assert epochs == [0, 1]  # each epoch's validation once: nothing lost, nothing twice


@pytest.mark.slow
def test_a_hung_node_ends_the_others_after_the_timeout(tmp_path):
    """A node that stops answering without closing its connections (SIGSTOP): the survivor's next
    collective fails after ARCHSCOPE_DIST_TIMEOUT_S (15 s here) and the run is failed with that reason."""
    hung = kill_mid_epoch(tmp_path, ["--demo-per-class", "48", "--epochs", "2"], signal.SIGSTOP, timeout_s=15)
    print(json.dumps({k: v for k, v in hung.items() if k != "home"}))
    assert hung["survivor_exit_code"] != 0 and 15 <= hung["survivor_exit_s"] < 15 + 30
    run = record(hung["home"])[0]
    assert run["status"] == "failed" and "Timed out waiting 15000ms" in run["error"]  # gloo's own words
