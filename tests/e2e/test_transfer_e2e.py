"""The transfer page in real Chromium: upload the demo zip, launch, see the curve get points, reload
through the query string, press Stop and see the status change; then the runs page lists it."""

import re

import pytest
from playwright.sync_api import expect

from benchmarks.harness import wait_idle
from core.data import demo

pytestmark = pytest.mark.e2e


def test_upload_launch_reload_and_stop(page, app_url, tmp_path):
    archive = demo.generate_zip(tmp_path / "shapes.zip", per_class=8, size=32)
    page.goto(f"{app_url}/transfer")
    wait_idle(page)
    page.get_by_text("Upload a zip of class folders").click()
    wait_idle(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(archive))
    expect(page.get_by_text("48 images in 6 classes")).to_be_visible(timeout=60_000)
    wait_idle(page)
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("300")
    epochs.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Start fine-tuning").click()
    page.wait_for_url(re.compile(r".*[?&]run=\d+"), timeout=60_000)
    run_id = re.search(r"run=(\d+)", page.url).group(1)
    expect(page.get_by_text(f"Run {run_id}", exact=True).first).to_be_visible(timeout=60_000)
    # the curve chart gets points: a plotly trace path with data appears
    expect(page.locator(".js-plotly-plot .scatterlayer .trace path.js-line").first).to_be_attached(
        timeout=90_000
    )
    page.reload()
    wait_idle(page)
    expect(page.get_by_text(f"Run {run_id}", exact=True).first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Stop this run").click()
    expect(page.get_by_text("stopped").first).to_be_visible(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    page.goto(f"{app_url}/runs")
    wait_idle(page)
    expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
