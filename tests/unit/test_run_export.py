"""Taking a run home: the best epoch as ONNX fp32 and int8 in the run's bundle, scored on the run's own
splits, with the record in bundle.json, a plain-onnxruntime script that reproduces the reported top-1 in
a fresh virtual environment, and a clear message (nothing half-written) for every bad input."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.deploy import DeployError
from core.runs import export as rx
from core.runs import record as runs
from core.runs.artifacts import artifacts
from core.runs.cli import main as runs_cli
from core.runs.cli import train as finetune

pytestmark = pytest.mark.slow  # every test here fine-tunes a run or exports one (see tests/conftest.py)

TINY = ["--data", "demo", "--demo-size", "64", "--image-size", "64", "--threads", "1", "--quiet"]


def train(name: str, *extra: str) -> runs.Run:
    assert finetune([*TINY, "--name", name, *extra]) == 0
    return next(r for r in runs.all_runs() if r.name == name)


@pytest.fixture(scope="module")
def probe():
    """A finished linear probe of the offline EfficientNet-Lite0 on the demo set, exported with int8."""
    run = train(
        "onnx probe",
        "--recipe",
        "linear_probe",
        "--epochs",
        "2",
        "--demo-per-class",
        "30",
        "--test-fraction",
        "0.2",
    )
    return run, rx.export_run(run.id, int8=True)


def test_onnx_fp32_scores_what_pytorch_scores_on_the_run_s_own_splits(probe):
    run, record = probe
    torch_val = record["pytorch"]["scores"]["val"]
    fp32 = record["files"]["model.onnx"]["scores"]
    assert torch_val["top1"] == pytest.approx(run.result["best_top1"])  # the reported epoch's figure
    assert fp32["val"]["top1"] == torch_val["top1"] and fp32["val"]["agreement_with_pytorch"] >= 0.995
    assert fp32["test"]["n"] == run.result["test"]["n"] and fp32["test"]["hits"] == run.result["test"]["hits"]
    int8 = record["files"]["model.int8.onnx"]
    assert int8["quantization"]["calibration_source"] == "the run's training split"
    assert int8["quantization"]["calibration_count"] == run.result["info"]["train_images"]
    assert abs(int8["scores"]["val"]["top1"] - torch_val["top1"]) <= 0.10  # demo set, 36 val images
    assert set(fp32["val"]["per_class_recall"]) == set(run.result["info"]["classes"])


def test_bundle_json_records_each_file_with_its_hash(probe):
    run, record = probe
    folder = runs.folder(run) / "export"
    meta = json.loads((folder / "bundle.json").read_text())
    assert meta["onnx"]["epoch"] == run.result["best_epoch"] and meta["model"] == "efficientnet_lite0"
    pre = meta["onnx"]["preprocessing"]
    assert pre["image_size"] == 64 and pre["input_name"] == "input" and pre["channel_order"] == "RGB"
    assert meta["onnx"]["versions"]["onnxruntime"] == "1.32.0"
    for name in ("model.onnx", "model.int8.onnx"):
        assert meta["onnx"]["files"][name]["sha256"] == rx.sha256(folder / name)
    assert meta["onnx"]["files"]["model.onnx"]["opset"] == 18
    assert meta["onnx"]["files"]["model.onnx"]["exporter"] == "torchscript (dynamo=False)"
    readme = (folder / "README.md").read_text()
    assert (
        "## Without PyTorch" in readme and (folder / "predict_onnx.py").read_text() in readme
    )  # the snippet
    assert (folder / "model.safetensors").exists()  # the bundle keeps what it had


def test_a_second_export_of_the_same_epoch_reuses_the_files(probe):
    run, record = probe
    again = rx.export_run(run.id, int8=True)
    assert (
        again["reused"] and again["files"]["model.onnx"]["sha256"] == record["files"]["model.onnx"]["sha256"]
    )


@pytest.mark.slow
def test_the_plain_onnxruntime_script_reproduces_the_top1_in_a_fresh_venv(probe, tmp_path):
    run, record = probe
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "onnxruntime==1.32.0", "numpy==2.4.6", "pillow==13.0.0"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    folder = runs.folder(run) / "export"
    val = artifacts(run).splits["val"]
    paths, labels = val.paths, val.labels
    out = subprocess.run(
        [str(venv / "bin" / "python"), str(folder / "predict_onnx.py"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ["PATH"]},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    classes = record["preprocessing"]["classes"]
    predicted = [line.split("\t")[1] for line in out.stdout.strip().splitlines()]
    hits = sum(p == classes[y] for p, y in zip(predicted, labels))
    assert len(predicted) == len(paths) and hits == record["files"]["model.onnx"]["scores"]["val"]["hits"]
    imported = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True)
    assert imported.returncode != 0  # no torch there


def test_a_run_with_no_checkpoint_is_refused_in_words():
    run_id = runs.create({"model": "efficientnet_lite0", "image_size": 64}, "nothing yet")
    runs.update(run_id, status="cancelled")
    with pytest.raises(
        DeployError, match=rf"run {run_id} has no checkpoint yet: it must finish at least one epoch"
    ):
        rx.export_run(run_id)


def test_a_run_still_training_is_refused_until_it_ends(probe):
    """Its final bundle would replace the export when it ends: refused in words, nothing written."""
    run, _ = probe
    runs.update(run.id, status="running", pid=os.getpid())
    try:
        src = artifacts(runs.get(run.id), with_splits=False)
        assert src.label == f"epoch {src.epoch}, the best val top-1 so far (the run is running)"
        with pytest.raises(DeployError, match=rf"run {run.id} is still running: export it when it ends"):
            rx.export_run(run.id)
    finally:
        runs.update(run.id, status="done")


def test_a_deleted_dataset_allows_fp32_only_and_says_why(tmp_path):
    from core.data.demo import generate

    folder = generate(tmp_path / "mine", per_class=12, size=48)
    run = train("deleted data", "--recipe", "linear_probe", "--epochs", "1", "--data", str(folder))
    shutil.rmtree(folder)
    with pytest.raises(
        DeployError,
        match=r"int8 needs the run's training images to calibrate, and its dataset "
        r"folder .* is gone; export fp32 without them instead",
    ):
        rx.export_run(run.id, int8=True)
    record = rx.export_run(run.id)
    assert not record["scored"] and record["not_scored_because"].startswith("its dataset folder")
    assert record["files"]["model.onnx"]["parity"]["max_abs_diff"] <= rx.LOGIT_TOLERANCE


def test_fewer_than_32_training_images_refuse_int8_only():
    run = train("tiny set", "--recipe", "linear_probe", "--epochs", "1", "--demo-per-class", "4")
    assert run.result["info"]["train_images"] < 32
    with pytest.raises(
        DeployError,
        match=rf"int8 calibration needs at least 32 training images, and this run has "
        rf"{run.result['info']['train_images']}",
    ):
        rx.export_run(run.id, int8=True)
    assert "model.onnx" in rx.export_run(run.id)["files"]


def test_a_full_disk_leaves_the_bundle_as_it_was(probe, monkeypatch, tmp_path):
    run, _ = probe
    folder = runs.folder(run) / "export"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    target = tmp_path / "bundle"
    shutil.copytree(folder, target)
    (target / "bundle.json").write_text(
        json.dumps({**json.loads((target / "bundle.json").read_text()), "onnx": {}})
    )  # not reusable: it must write again
    snapshot = {p.name: p.read_bytes() for p in target.iterdir()}

    def full(src, dst, *a, **k):
        Path(dst).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rx.shutil, "copyfile", full)
    with pytest.raises(OSError):
        rx.export_run(run.id, out=target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == snapshot  # no partial file, nothing changed
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    from core.runs.export_job import friendly

    assert friendly(OSError(errno.ENOSPC, "x")).startswith(
        "disk full while writing the export; nothing was half-written"
    )


def test_the_cli_exports_and_refuses_in_one_line(probe, capsys):
    run, _ = probe
    assert runs_cli(["export", str(run.id), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["epoch"] == run.result["best_epoch"]
    assert runs_cli(["export", str(run.id)]) == 0  # a table, then the paths written, last
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert lines[0].split()[:3] == ["model", "val", "top-1"] and lines[1].split()[0] == "PyTorch"
    folder = runs.folder(run) / "export"
    head = max(i for i, line in enumerate(lines) if line in ("written:", "reused, unchanged:"))
    paths = lines[head + 1 :]  # the paths come last, nothing after them
    assert {f"  {folder / n}" for n in ("model.onnx", "predict_onnx.py", "bundle.json", "README.md")} <= set(
        paths
    )
    assert all(p.startswith(f"  {folder}/") for p in paths)
    assert runs_cli(["export", "999999"]) == 2
    assert capsys.readouterr().err.strip() == "error: there is no run 999999"


def test_a_run_in_a_picker_chip_keeps_its_id_and_fits_a_phone():
    from core.runs.record import CHIP_CHARS, Run

    base = dict(
        status="done",
        config={"recipe": "linear_probe", "model": "efficientnet_lite0"},
        result={},
        created=0.0,
        pid=None,
        device="cpu",
        run_dir="",
        started=None,
        updated=None,
        finished=None,
        error="",
        cancel=False,
    )
    long = Run(id=7, name="freezing-depth #3: linear_probe · efficientnet_lite0", **base)
    assert long.chip() == "#7 freezing-depth #3: linea…" and len(long.chip()) == CHIP_CHARS
    assert Run(id=12, name="top layers", **base).chip() == "#12 top layers"
