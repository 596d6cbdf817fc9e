"""The deployment view in real Chromium over a seeded week: the Block explorer's Deploy tab and Compare
backbones' Deployment tab draw their charts and tables, with no exception."""

import pytest
from playwright.sync_api import expect

from benchmarks.harness import serve, wait_idle

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def week_url(seeded_dir):
    with serve(seeded_dir) as url:
        yield url


def test_the_deploy_tab_in_chromium(page, week_url):
    page.goto(f"{week_url}/?blocks.tab=Deploy")
    wait_idle(page)
    panel = page.locator("[data-testid='stTabPanel']:visible")
    expect(panel.get_by_text("has 8.47× fewer MACs than direct 3x3", exact=False)).to_be_visible(
        timeout=60_000
    )
    expect(panel.locator(".js-plotly-plot")).to_have_count(1)
    expect(panel.get_by_text("ONNX Runtime int8", exact=False).first).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0


def test_the_deployment_tab_in_chromium(page, week_url):
    page.goto(f"{week_url}/backbones?bb.tab=Deployment&dep.models=mobilenetv3_small_100")
    wait_idle(page)
    panel = page.locator("[data-testid='stTabPanel']:visible")
    expect(panel.locator(".js-plotly-plot")).to_have_count(1, timeout=60_000)
    expect(panel.get_by_text("30 ms real-time budget", exact=False).first).to_be_visible()
    expect(panel.get_by_text("27 ms against 21 ms on an iPhone XS", exact=False)).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
