"""The backbones page in real Chromium: deep link on a fresh server, a background measurement with
progress, the result row, the recommender and the compound-scaling lab."""

import re

import pytest
from playwright.sync_api import expect

from benchmarks.harness import wait_idle

pytestmark = pytest.mark.e2e


def open_backbones(page, app_url):
    page.goto(f"{app_url}/backbones")
    wait_idle(page)
    expect(page.get_by_role("heading", name="Compare backbones")).to_be_visible()
    expect(page.get_by_text("Measure on")).to_be_visible()  # app.py's sidebar ran (router, not legacy)
    nav = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "Block explorer" in nav and "widgets" not in nav


def test_measure_one_model_from_the_page(page, app_url):
    open_backbones(page, app_url)
    multiselect = page.locator("[data-testid='stMultiSelect']")
    multiselect.get_by_role("button", name="Clear all").click()
    wait_idle(page)
    box = multiselect.get_by_role("combobox", name="Models")
    box.fill("mobilenetv3_small_100")
    box.press("Enter")
    page.keyboard.press("Escape")
    wait_idle(page)
    page.get_by_role("button", name=re.compile(r"Measure 1 model\(s\) on cpu")).click()
    expect(page.get_by_text("Last measurement finished")).to_be_visible(timeout=120_000)
    grid = page.locator("[data-testid='stDataFrame']").first
    expect(grid).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
    page.reload()
    wait_idle(page)
    expect(page.get_by_text("Last measurement finished")).to_be_visible()  # rebuilt from the store


def test_recommender_and_scaling_tabs(page, app_url):
    open_backbones(page, app_url)
    page.get_by_role("tab", name="Compound scaling").click()
    wait_idle(page)
    expect(page.get_by_text("296 px", exact=True)).to_be_visible()
    page.get_by_role("tab", name="Recommender").click()
    wait_idle(page)
    expect(page.locator("[data-testid='stAlert']").filter(has_text="recipe")).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0


def test_where_the_time_goes_for_a_backbone(page, app_url):
    page.goto(f"{app_url}/backbones?bb.tab=Where+the+time+goes&roof.model=mobilenetv3_small_100")
    wait_idle(page)
    box = page.get_by_role("spinbutton", name="Resolution (px)")
    box.fill("64")
    box.press("Enter")
    wait_idle(page)
    page.get_by_role(
        "button", name=re.compile(r"Profile every layer of mobilenetv3_small_100 at 64 px")
    ).click()
    expect(page.get_by_text("Ridge point")).to_be_visible(
        timeout=180_000
    )  # progress, then the stored profile
    panel = page.locator("[data-testid='stTabPanel']:visible")
    expect(panel.locator(".js-plotly-plot")).to_have_count(2, timeout=60_000)  # Plotly draws after the text
    expect(panel.get_by_text("One whole forward takes", exact=False)).to_be_visible()
    expect(panel.get_by_text("Timed alone, one by one", exact=False)).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
