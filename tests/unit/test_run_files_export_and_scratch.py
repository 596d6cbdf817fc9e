"""Runs' files, exports and scripts, the deploy scratch and command lines, and nodes, when a user gets them
wrong: each test asserts the message, the exit code, and that nothing is lost, mixed or left behind."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.deploy import DeployError
from core.deploy.deployable import Deployable
from core.deploy.scratch import inside_data_dir, plain_path, scratch_root
from core.finetune import bundle
from core.finetune.distributed import config_disagreement
from core.runs import export as rx
from core.runs import record as runs
from core.runs import tblog
from core.runs.cli import main as runs_cli
from core.runs.cli import train as finetune

TINY = [
    "--data",
    "demo",
    "--demo-size",
    "48",
    "--image-size",
    "48",
    "--threads",
    "1",
    "--quiet",
    "--epochs",
    "1",
    "--recipe",
    "linear_probe",
    "--demo-per-class",
    "24",
]
EMOJI = "😀" * 70


def train(name: str, *extra: str) -> runs.Run:
    assert finetune([*TINY, "--name", name, *extra]) == 0
    return next(r for r in runs.all_runs() if r.name == " ".join(name.split())[:200])


@pytest.fixture(scope="module")
def two_runs():
    """Two finished runs of different backbones; the first exported (fp32) into its own bundle."""
    a = train("round4 lite0")
    b = train("round4 resnet", "--model", "resnet18", "--weights", "random", "--image-size", "32")
    rx.export_run(a.id)
    return runs.get(a.id), runs.get(b.id)


# 1, 2: a name becomes a path only through one function: 255 bytes, whole or not at all


@pytest.mark.slow
def test_a_run_named_with_70_emoji_keeps_its_tensorboard_files():
    run = train(EMOJI)
    folder = tblog.existing(run.id, runs.folder(run))
    assert folder is not None and len(folder.name.encode()) <= 255
    assert list(folder.glob("events.out.tfevents.*"))
    assert folder.name.startswith(f"{run.id:04d} 😀")


@pytest.mark.slow
def test_a_rename_is_whole_or_refused_with_the_old_name_kept(two_runs, monkeypatch):
    run, _ = two_runs
    runs.rename(run.id, EMOJI)  # 280 bytes of name: the folder is cut, not refused
    assert runs.get(run.id).name == EMOJI
    assert len(tblog.existing(run.id, runs.folder(run)).name.encode()) <= 255
    before = tblog.existing(run.id, runs.folder(run))

    def refuse(self, target):
        raise OSError(36, "File name too long")

    monkeypatch.setattr(Path, "rename", refuse)
    with pytest.raises(
        runs.EditRefused,
        match=rf"run {run.id} keeps its name .*: its TensorBoard folder could not "
        r"be renamed \(File name too long\)",
    ):
        runs.rename(run.id, "something else")
    monkeypatch.undo()
    assert runs.get(run.id).name == EMOJI and before.exists()  # store and folder agree
    runs.rename(run.id, "round4 lite0")


# 3: a store that was lost: the new run 1 never adopts (and never deletes) the old run 1's events


@pytest.mark.slow
def test_a_lost_store_never_mixes_two_runs_events(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path / "home"))
    first = train("before the loss")
    old = tblog.existing(first.id, runs.folder(first))
    old_files = sorted(p.name for p in old.iterdir())
    (tmp_path / "home" / "archscope.sqlite").unlink()  # the store is lost; the folders stay
    for side in ("-wal", "-shm"):
        (tmp_path / "home" / f"archscope.sqlite{side}").unlink(missing_ok=True)
    second = train("after the loss")
    assert second.id == first.id
    new = tblog.existing(second.id, runs.folder(second))
    assert new != old and new.name.startswith(f"{second.id:04d}-2 ") and old.exists()
    assert sorted(p.name for p in old.iterdir()) == old_files  # nothing written into the old folder
    runs.delete(second.id)
    assert old.exists() and sorted(p.name for p in old.iterdir()) == old_files and not new.exists()


# 4: a delete removes the row last; a file it cannot remove keeps the row and is named


@pytest.mark.slow
def test_a_file_that_cannot_be_deleted_keeps_the_run(monkeypatch):
    run = train("undeletable")
    folder = runs.folder(run)

    def refuse(path):
        raise OSError(f"cannot remove {path}/events.out.tfevents.x (Permission denied)")

    monkeypatch.setattr(tblog, "remove_tree", refuse)
    with pytest.raises(
        runs.EditRefused,
        match=rf"run {run.id} was not deleted: cannot remove .*events.out.tfevents"
        r".* \(Permission denied\)",
    ):
        runs.delete(run.id)
    monkeypatch.undo()
    assert runs.get(run.id).status == "done" and folder.exists() and (folder / bundle.BEST).exists()
    runs.delete(run.id)
    with pytest.raises(KeyError):
        runs.get(run.id)
    assert not folder.exists()


# 5-7: an export is reused only when it provably belongs to this run and epoch


@pytest.mark.slow
def test_a_folder_holding_another_runs_export_is_refused(two_runs, tmp_path):
    a, b = two_runs
    out = tmp_path / "X"
    rx.export_run(a.id, out=out)
    with pytest.raises(DeployError, match=rf"{out} holds run {a.id}'s export; choose another --out"):
        rx.export_run(b.id, out=out)
    assert json.loads((out / "bundle.json").read_text())["onnx"]["run"] == a.id
    assert json.loads((out / "bundle.json").read_text())["model"] == "efficientnet_lite0"


@pytest.mark.slow
def test_an_edited_bundle_or_a_missing_script_is_exported_again(two_runs):
    a, _ = two_runs
    folder = runs.folder(a) / "export"
    meta = json.loads((folder / "bundle.json").read_text())
    classes = list(meta["classes"])
    meta["classes"] = classes[::-1]
    meta["onnx"]["preprocessing"]["mean"] = [0, 0, 0]
    (folder / "bundle.json").write_text(json.dumps(meta))
    (folder / "predict_onnx.py").unlink()
    record = rx.export_run(a.id)
    assert not record.get("reused")
    again = json.loads((folder / "bundle.json").read_text())
    assert again["onnx"]["preprocessing"]["mean"] != [0, 0, 0] and (folder / "predict_onnx.py").exists()
    assert again["record_sha256"] == rx.record_hash(again)
    assert rx.export_run(a.id).get("reused")  # now whole: reused


@pytest.mark.slow
def test_a_truncated_bundle_json_is_one_line_and_export_rewrites_it(two_runs, capsys):
    a, _ = two_runs
    folder = runs.folder(a) / "export"
    text = (folder / "bundle.json").read_text()
    (folder / "bundle.json").write_text(text[: len(text) // 2])
    with pytest.raises(
        rx.BundleDamaged,
        match=r"bundle.json is damaged \(JSONDecodeError: .*\); exporting the run "
        r"again rewrites it",
    ):
        rx.read_meta(folder)
    assert runs_cli(["export", str(a.id)]) == 0
    assert json.loads((folder / "bundle.json").read_text())["onnx"]["run"] == a.id
    capsys.readouterr()


# 8-10: one writer per bundle at a time


@pytest.mark.slow
def test_a_second_export_and_a_delete_wait_for_the_one_running(two_runs):
    a, _ = two_runs
    with bundle.writer_lock(runs.folder(a), "job #41"):
        with pytest.raises(DeployError, match=rf"run {a.id} is being exported \(job #41\); wait or stop it"):
            rx.export_run(a.id)
        with pytest.raises(
            runs.EditRefused, match=rf"run {a.id} is being exported \(job #41\); wait or stop it"
        ):
            runs.delete(a.id)
    assert runs.get(a.id).status == "done" and (runs.folder(a) / "export" / "model.onnx").exists()


def test_a_killed_exports_scratch_goes_when_the_next_export_starts():
    pid = 4_194_303  # above this machine's pid_max: no such process
    left = scratch_root() / "work-killed"
    left.mkdir()
    (left / "model.onnx").write_bytes(b"x" * 1024)
    (left / ".owner").write_text(json.dumps({"pid": pid, "pid_start": 1}))
    mine = scratch_root() / "work-alive"
    mine.mkdir()
    (mine / ".owner").write_text(json.dumps({"pid": os.getpid(), "pid_start": None}))
    with inside_data_dir() as work:
        assert work.exists()
    assert not left.exists() and mine.exists()
    shutil.rmtree(mine)


@pytest.mark.slow
def test_a_running_run_is_refused_and_its_files_are_untouched(two_runs):
    a, _ = two_runs
    folder = runs.folder(a) / "export"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    runs.update(a.id, status="running", pid=os.getpid())
    try:
        with pytest.raises(DeployError, match=rf"run {a.id} is still running: export it when it ends"):
            rx.export_run(a.id, int8=False)
    finally:
        runs.update(a.id, status="done")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


# 11: the plain script goes on past a bad image, says why in one line, and exits 1


@pytest.mark.slow
def test_predict_onnx_classifies_the_good_images_and_names_the_bad(two_runs, tmp_path, capsys):
    a, _ = two_runs
    folder = runs.folder(a) / "export"
    good = tmp_path / "good.jpg"
    Image.new("RGB", (60, 50), (200, 30, 30)).save(good)
    shutil.copy(good, tmp_path / "good2.jpg")
    data = good.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "a folder").mkdir()
    script = folder / "predict_onnx.py"
    args = [
        str(good),
        str(tmp_path / "truncated.jpg"),
        str(tmp_path / "good2.jpg"),
        str(tmp_path / "a folder"),
    ]
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == [str(good), str(tmp_path / "good2.jpg")]
    errors = out.stderr.strip().splitlines()
    assert errors == [
        f"{tmp_path / 'truncated.jpg'}: cannot read this image (truncated)",
        f"{tmp_path / 'a folder'}: cannot read this image (it is a folder)",
    ]
    usage = subprocess.run(
        [sys.executable, str(script), str(good), "--model"], capture_output=True, text=True, timeout=120
    )
    assert usage.returncode == 2 and usage.stderr.startswith("usage: predict_onnx.py")
    assert "expected one argument" in usage.stderr and "Traceback" not in usage.stderr


# 13: arguments and outputs checked before the work, 0 included


@pytest.mark.parametrize(
    "args, message",
    [
        (["resnet18", "--json", "no_such_folder/out.json"], "the folder .*no_such_folder does not exist"),
        (["resnet18", "--resolution", "0"], "resolution 0 px is out of range"),
        (["resnet18", "--threads", "0"], "--threads must be 1 to 256, not 0"),
        (["resnet18", "--max-time", "0"], "--max-time must be 0.5 to 600 s, not 0"),
    ],
)
def test_deploy_measure_refuses_before_measuring(args, message, capsys):
    from core.deploy.__main__ import main as deploy_cli

    assert deploy_cli(["measure", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    import re

    assert re.search(message, err), err


# 14: a read-only cache is one line; any data-directory path works with torch.compile


def test_a_read_only_cache_is_one_line(tmp_path, monkeypatch):
    from tests.helpers import read_only_mount

    home = tmp_path / "home"
    (home / "cache").mkdir(parents=True)
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(home))
    with read_only_mount(home / "cache", home / "cache"):
        with pytest.raises(DeployError, match=r"cannot write deploy scratch in .*/cache \(read-only\)"):
            scratch_root()


def test_a_path_with_a_space_a_quote_and_non_ascii_reaches_gxx_by_a_plain_name(tmp_path):
    target = tmp_path / "My Models" / "ünï 'q'" / "torchinductor"
    target.mkdir(parents=True)
    plain = plain_path(target)
    assert plain.isascii() and " " not in plain and "'" not in plain
    assert Path(plain).resolve() == target.resolve()
    assert plain_path(tmp_path) == str(tmp_path)  # a plain path is used as it is


# 15: the memory budget covers the parity and calibration inputs, before the button and in the job


def test_a_huge_deploy_target_is_refused_before_any_work(monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_MEMORY_BUDGET_MB", "4096")
    target = Deployable.block("depthwise_separable", {"in_chs": 512, "out_chs": 512}, (1, 512, 512, 512))
    nbytes, what = target.memory_needed()
    assert nbytes >= 96 * 512 * 512 * 512 * 4  # the 96 inputs alone are 48 GiB
    with pytest.raises(
        ValueError,
        match=r"refused: deploying depthwise_separable: 96 parity and calibration "
        r"inputs of 512 x 512 x 512 .* needs about 240.00 GiB, over this server's "
        r"memory budget of 4.00 GiB",
    ):
        target.check_memory()
    from core.deploy import job as deploy_job

    with pytest.raises(ValueError, match="over this server's memory budget"):
        deploy_job.start([target], 1, ("eager", "onnx"))
    small = Deployable.block("depthwise_separable", {"in_chs": 32, "out_chs": 32}, (1, 32, 56, 56))
    small.check_memory()


# 16: every rank's configuration is compared with rank 0's


def test_a_node_with_other_flags_stops_every_rank_with_one_line():
    from core.finetune.config import TrainConfig

    ref = TrainConfig(image_size=64).to_dict()
    ranks = [
        {"rank": 0, "host": "a", "node": 0, "config": ref},
        {
            "rank": 1,
            "host": "b",
            "node": 1,
            "config": {**ref, "image_size": 32, "device": "cuda:1", "threads": 8},
        },
    ]
    assert config_disagreement(ranks) == (
        "node 1 (host b, rank 1) has image_size 32, rank 0 has 64: start every node with the same flags"
    )
    ranks[1]["config"] = {**ref, "threads": 8, "device": "cpu", "cache": "memory"}
    assert config_disagreement(ranks) == ""  # where and how a node runs may differ
    ranks[1]["config"] = {**ref, "lr": 0.1, "seed": 1}
    assert config_disagreement(ranks).startswith(
        "node 1 (host b, rank 1) has lr 0.1, rank 0 has 0.001 (and seed)"
    )


@pytest.mark.slow
def test_a_data_directory_with_a_space_a_quote_and_non_ascii_trains_exports_and_compiles(
    tmp_path, monkeypatch
):
    """The data directory at '…/My Models/ünï 'q'/.archscope': a run writes its TensorBoard files, exports
    to ONNX and torch.compile compiles (g++ reaches the cache through a plain link), with every file in
    the data directory."""
    home = tmp_path / "My Models" / "ünï 'q'" / ".archscope"
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(home))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    run = train("spaced home")
    assert list(tblog.existing(run.id, runs.folder(run)).glob("events.out.tfevents.*"))
    record = rx.export_run(run.id)
    assert (runs.folder(run) / "export" / "model.onnx").exists() and record["files"]["model.onnx"]["sha256"]
    import torch

    from core.deploy import runtimes
    from core.deploy.scratch import inductor_cache

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", inductor_cache())
    with inside_data_dir():
        prepared = runtimes.compiled(torch.nn.Conv2d(3, 4, 3), torch.randn(1, 3, 16, 16), timeout_s=300)
    assert prepared.error == "" and prepared.call is not None, prepared.error
    assert any((home / "cache" / "torchinductor").rglob("*")), (
        "the compile cache is inside the data directory"
    )
