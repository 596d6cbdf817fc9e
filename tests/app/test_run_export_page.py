"""AppTest of the ONNX export area on the Runs page: a real export job started from the page, then PyTorch,
ONNX fp32 and ONNX int8 side by side with their downloads; the seeded week's runs render it with no
exception."""

import io
import time
import zipfile

import pytest

from core import jobs
from core.runs import export, export_job
from core.runs import record as runs
from core.runs.cli import train as finetune
from tests.app._util import open_page, texts

EVAL = {"runs.tab": "Evaluate and export"}


def test_the_seeded_week_shows_the_export_area(seeded_dir, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(seeded_dir))
    at = open_page("pages/runs.py", EVAL)
    assert "Take it home: ONNX and int8" in [h.value for h in at.subheader]
    assert len(at.selectbox(key="eval.run").options) >= 7  # one picker: every finished run
    assert not at.exception


@pytest.mark.slow
def test_an_export_started_from_the_page_shows_three_models_and_their_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path / "data"))
    assert (
        finetune(
            [
                "--data",
                "demo",
                "--demo-per-class",
                "30",
                "--demo-size",
                "64",
                "--image-size",
                "64",
                "--epochs",
                "1",
                "--threads",
                "1",
                "--quiet",
                "--name",
                "to export",
            ]
        )
        == 0
    )
    run = runs.all_runs()[0]
    at = open_page("pages/runs.py", EVAL)
    at.button(key=f"onnx.start.{run.id}").click().run()
    assert not at.exception
    job = jobs.latest(export_job.KIND)
    assert job is not None and job.args == {"run": run.id, "int8": True}
    end = time.time() + 240
    while time.time() < end and jobs.get(job.id).active:
        time.sleep(0.5)
    assert jobs.get(job.id).status == "done", jobs.get(job.id).error
    at = open_page("pages/runs.py", EVAL)
    table = next(
        d.value for d in at.dataframe if "agreement with PyTorch %" in getattr(d.value, "columns", [])
    )
    assert list(table["model"]) == ["PyTorch", "ONNX fp32", "ONNX int8"]
    assert table["val top-1 %"].iloc[0] == pytest.approx(100 * run.result["best_top1"])
    assert table["val top-1 %"].iloc[1] == table["val top-1 %"].iloc[0]
    assert table["agreement with PyTorch %"].iloc[1] >= 99.5
    labels = [b.label for b in at.get("download_button")]
    assert labels == [f"Download run {run.id}'s bundle (zip)"]  # one download: the whole bundle
    name, data = export.bundle_zip(run.id)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        inside = {n.split("/", 1)[1] for n in zf.namelist()}
    assert (
        name == f"archscope-run{run.id}.zip"
        and {
            "model.onnx",
            "model.int8.onnx",
            "predict_onnx.py",
            "bundle.json",
            "README.md",
            "model.safetensors",
        }
        <= inside
    )
    assert not any(n.startswith(".") for n in inside)  # no lock or partial file
    assert any("the best val top-1" in m for m in texts(at, "markdown"))
    assert not at.exception
