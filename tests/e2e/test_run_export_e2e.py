"""The ONNX export area in real Chromium: a run exported (fp32 and int8) shows its chart, table and downloads."""
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import serve, wait_idle

pytestmark = pytest.mark.e2e


def test_the_export_area_in_chromium(page, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path / "data"))
    from core.runs import record as runs
    from core.runs.cli import train as finetune
    from core.runs.export import export_run
    assert finetune(["--data", "demo", "--demo-per-class", "30", "--demo-size", "64", "--image-size", "64",
                     "--epochs", "1", "--threads", "1", "--quiet", "--name", "exported"]) == 0
    export_run(runs.all_runs()[0].id, int8=True)
    with serve(tmp_path / "data") as url:
        page.goto(f"{url}/runs?runs.tab=Evaluate+and+export")
        wait_idle(page)
        panel = page.locator("[data-testid='stTabPanel']:visible")
        expect(panel.get_by_text("Take it home: ONNX and int8")).to_be_visible(timeout=60_000)
        expect(panel.get_by_text("Download model.int8.onnx")).to_be_visible()
        expect(panel.locator(".js-plotly-plot")).to_have_count(2)               # confusion matrix, export scores
        assert page.locator("[data-testid='stException']").count() == 0
