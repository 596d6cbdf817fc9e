"""The block explorer in real Chromium: change a block's channels and see the right parameter count."""

import pytest
from playwright.sync_api import expect

from benchmarks.harness import wait_idle

pytestmark = pytest.mark.e2e


def open_blocks(page, app_url):
    """The block explorer is the default page, served at the root URL."""
    page.goto(f"{app_url}/")
    wait_idle(page)
    expect(page.get_by_text("Measure on")).to_be_visible()  # app.py's sidebar ran
    nav = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "Compare backbones" in nav and "widgets" not in nav  # app.py's pages, not a pages/ listing


def first_metric(page):
    return page.locator("[data-testid='stMetricValue']").first


def test_changing_channels_updates_parameter_count(page, app_url):
    open_blocks(page, app_url)
    expect(first_metric(page)).to_have_text("590,336")  # 9·256·256 + BN 2·256
    box = page.get_by_label("Input channels")
    box.fill("128")
    box.press("Enter")
    expect(first_metric(page)).to_have_text("295,424")  # 9·128·256 + BN 2·256
    wait_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0


def test_impossible_config_shows_a_message(page, app_url):
    open_blocks(page, app_url)
    box = page.get_by_label("Spatial size H = W")
    box.fill("2")
    box.press("Enter")
    expect(
        page.locator("[data-testid='stAlert']").filter(has_text="3x3 kernel is larger than the 2x2 input")
    ).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_link_with_a_huge_block_is_refused_and_the_server_lives(page, app_url):
    import urllib.request

    page.goto(f"{app_url}/?explore.block=conv&conv.batch=1024&conv.hw=1024")
    wait_idle(page)
    alert = page.locator("[data-testid='stAlert']").filter(
        has_text="refused: block 'conv' at batch 1024 costs"
    )
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("over the cap of 200 GMACs")
    page.goto(f"{app_url}/?explore.block=conv&conv.batch=100000")  # over the widget's bound: the default
    wait_idle(page)
    expect(first_metric(page)).to_have_text("590,336")
    assert page.locator("[data-testid='stException']").count() == 0
    assert urllib.request.urlopen(f"{app_url}/_stcore/health", timeout=5).status == 200


def test_every_tab_opens_without_exception(page, app_url):
    open_blocks(page, app_url)
    # each tab's own content, waited for (a tab's rerun starts a moment after the click): compare bars (one
    # chart per panel: params, MACs, latency) and channel sweep; the lecture's tables; the gradient plot
    for tab, marker, charts in (
        ("Compare", "Timed interleaved", 4),
        ("Lecture's numbers", "bias and BatchNorm off", 0),
        ("Gradient flow", "residual stack's gradient", 1),
    ):
        page.get_by_role("tab", name=tab).click()
        panel = page.locator("[data-testid='stTabPanel']:visible")
        expect(panel.get_by_text(marker, exact=False).first).to_be_visible(timeout=60_000)
        wait_idle(page)
        expect(panel.locator(".js-plotly-plot")).to_have_count(charts)
        assert page.locator("[data-testid='stException']").count() == 0
    assert "blocks.tab=Gradient+flow" in page.url  # the open tab is in the link
    page.reload()
    wait_idle(page)
    expect(
        page.get_by_text("residual stack's gradient", exact=False)
    ).to_be_visible()  # and a link reopens it


def test_the_roofline_renders_for_the_block_and_for_a_compare_preset(page, app_url):
    page.goto(f"{app_url}/?blocks.tab=Roofline")
    wait_idle(page)
    panel = page.locator("[data-testid='stTabPanel']:visible")
    expect(panel.get_by_text("Ridge point")).to_be_visible()
    expect(panel.locator(".js-plotly-plot")).to_have_count(
        2, timeout=60_000
    )  # the roofline and the kind bars
    page.get_by_text("A comparison preset").click()
    wait_idle(page)
    expect(panel.get_by_text("Roofline predicts", exact=True)).to_be_visible()
    expect(panel.locator(".js-plotly-plot")).to_have_count(
        3, timeout=60_000
    )  # one roofline, two blocks' bars
    assert page.locator("[data-testid='stException']").count() == 0
    assert "roof.what=" in page.url  # the choice is in the link


def test_a_new_block_is_timed_once_the_page_is_drawn_and_then_nothing_polls(page, app_url):
    """A configuration this server has not timed: its counts come with the page, its latency one poll later
    (the timer no longer shares the CPU with the browser drawing the page); then the poller stops.
    Re-measuring times again at once and leaves nothing polling either."""
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append("frame")))
    open_blocks(page, app_url)
    box = page.get_by_label("Output channels")
    box.fill("200")  # a shape no other test times: new to this server
    box.press("Enter")
    expect(first_metric(page)).to_have_text("461,200")  # 9·256·200 + BN 2·200
    latency = page.locator("[data-testid='stMetric']").filter(has_text="Latency, median")
    expect(latency).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Timing on this device")).to_have_count(0)
    wait_idle(page)
    before = len(sent)
    page.wait_for_timeout(2500)  # 8 polls' worth at 0.3 s, had the timer been left running
    assert len(sent) == before
    page.get_by_role("button", name="Re-measure latency").click()
    expect(latency).to_be_visible()
    wait_idle(page)
    before = len(sent)
    page.wait_for_timeout(2500)
    assert len(sent) == before
    assert page.locator("[data-testid='stException']").count() == 0
