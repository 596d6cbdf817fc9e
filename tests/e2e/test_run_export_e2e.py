"""The ONNX export area in real Chromium: a run exported (fp32 and int8) shows its chart and table; its one
download is the whole bundle, and the README's ONNX command runs from the unzipped folder in a fresh
venv that has only onnxruntime, numpy and Pillow; "Try it in this browser" gives the server's ONNX top-1
on the same images."""

import os
import re
import subprocess
import sys
import zipfile

import pytest
from playwright.sync_api import expect

from benchmarks.harness import serve, wait_idle

pytestmark = pytest.mark.e2e


def test_the_export_area_in_chromium_and_its_zip_runs_as_its_readme_says(page, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path / "data"))
    from core.runs import record as runs
    from core.runs.artifacts import artifacts
    from core.runs.cli import train as finetune
    from core.runs.export import export_run

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
                "exported",
            ]
        )
        == 0
    )
    run = runs.all_runs()[0]
    record = export_run(run.id, int8=True)
    with serve(tmp_path / "data") as url:
        page.goto(f"{url}/runs?runs.tab=Evaluate+and+export")
        wait_idle(page)
        panel = page.locator("[data-testid='stTabPanel']:visible")
        expect(panel.get_by_text("Take it home: ONNX and int8")).to_be_visible(timeout=60_000)
        expect(panel.locator(".js-plotly-plot")).to_have_count(2)  # confusion matrix, export scores
        button = panel.get_by_role("button", name=f"Download run {run.id}'s bundle (zip)")
        expect(button).to_be_visible()
        with page.expect_download(timeout=60_000) as dl:
            button.click()
        archive = tmp_path / dl.value.suggested_filename
        dl.value.save_as(archive)
        assert page.locator("[data-testid='stException']").count() == 0
        # the same files in this browser, on the run's validation images: the server's ONNX top-1, exactly
        panel.get_by_role("button", name="Try it in this browser").click()
        expect(panel.get_by_text("The browser's top-1 equals the server's ONNX top-1")).to_be_visible(
            timeout=300_000
        )
        expect(panel.get_by_role("button", name="Try it in this browser")).to_be_enabled(timeout=5_000)
        assert page.locator("[data-testid='stException']").count() == 0
    from core.deploy import devices

    tried = devices.stored(f"run:{run.id}")
    assert {(r["precision"], r["setup"]) for r in tried} == {
        ("fp32", "wasm-1"),
        ("int8", "wasm-1"),
        ("fp32", "wasm-N"),
        ("int8", "wasm-N"),
    }
    for r in tried:
        scored = record["files"]["model.onnx" if r["precision"] == "fp32" else "model.int8.onnx"]["scores"][
            "val"
        ]
        assert r["row"]["top1"] == pytest.approx(scored["top1"])  # the export's own val top-1, in the browser
    assert archive.name == f"archscope-run{run.id}.zip"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "home")
    home = tmp_path / "home" / f"archscope-run{run.id}"
    assert {
        "model.safetensors",
        "bundle.json",
        "config.json",
        "predict.py",
        "README.md",
        "model.onnx",
        "model.int8.onnx",
        "predict_onnx.py",
    } <= {p.name for p in home.iterdir()}
    readme = (home / "README.md").read_text()
    command = re.search(r"^python (predict_onnx\.py) photo\.jpg\s", readme, re.M)
    assert command, readme
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "onnxruntime==1.32.0", "numpy==2.4.6", "pillow==13.0.0"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    val = artifacts(run).splits["val"]
    out = subprocess.run(
        [str(venv / "bin" / "python"), command.group(1), *map(str, val.paths)],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ["PATH"]},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    classes = record["preprocessing"]["classes"]
    predicted = [line.split("\t")[1] for line in out.stdout.strip().splitlines()]
    hits = sum(p == classes[y] for p, y in zip(predicted, val.labels))
    assert len(predicted) == len(val.paths) and hits == record["files"]["model.onnx"]["scores"]["val"]["hits"]
