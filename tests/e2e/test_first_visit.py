"""The first visit after a server start (issue 30): a deep link on a fresh server goes through app.py's router,
which paints the navigation and the page's title with a progress bar while torch and timm import, then the page
itself; the next visitor gets the page with no skeleton. (How fast: ``benchmarks/first_visit.py``.)"""
import tempfile

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import serve, wait_idle

pytestmark = pytest.mark.e2e
NAV = "[data-testid='stSidebarNav'] a"
SKELETON = "Starting up: PyTorch, timm and the measuring code load once"


def test_a_fresh_server_paints_the_navigation_and_a_skeleton_before_the_imports_finish(browser):
    with serve(tempfile.mkdtemp(prefix="archscope-first-")) as url:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(url + "/backbones")
        skeleton = page.get_by_text(SKELETON)
        expect(skeleton).to_be_visible(timeout=60_000)        # the imports take seconds: the skeleton is seen
        # while it shows: the whole navigation, and the linked page's own title (not the default page's)
        names = [t.split("\n")[-1] for t in page.locator(NAV).all_inner_texts()]     # after the icon's name
        assert names == ["Block explorer", "Compare backbones", "Transfer learning", "Runs"]
        assert page.locator("h1").first.inner_text() == "Compare backbones"
        expect(page.locator("[data-testid='stProgress']")).to_have_count(1)   # may come a delta after the caption
        expect(skeleton).to_have_count(0, timeout=120_000)
        wait_idle(page)
        main = page.locator("[data-testid='stMain']")
        expect(main.get_by_text("Add any timm model", exact=False).first).to_be_visible()
        assert page.locator("h1").count() == 1 and page.locator("[data-testid='stException']").count() == 0
        page.context.close()

        later = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        later.goto(url + "/runs")
        wait_idle(later)
        assert later.locator("h1").first.inner_text() == "Runs" and later.get_by_text(SKELETON).count() == 0
        assert later.locator("[data-testid='stException']").count() == 0
        later.context.close()
