"""The crawler: the real app over a data directory as a week of use leaves it (tests/seed.py), in Chromium.
It visits every page, clicks every tab, picks several options of every select box and flips every toggle
in the main area, and fails on the first exception shown. Widgets are found in the DOM, so a new widget
is crawled the day it lands."""

import re
import time

import pytest

from benchmarks.harness import serve, wait_idle
from core.runs import record as runs
from tests.seed import NASTY_NAME

pytestmark = pytest.mark.e2e
OPTIONS_PER_SELECTBOX = 2  # the second option and the last (the suite's time budget)


class Crawl:
    def __init__(self, page, url: str) -> None:
        self.page, self.url, self.where = page, url, ""
        self.counts = {"pages": 0, "tabs": 0, "selectboxes": 0, "options": 0, "toggles": 0}

    def check(self, action: str) -> None:
        wait_idle(self.page)
        errors = self.page.locator("[data-testid='stException']")
        if errors.count():
            raise AssertionError(
                f"exception after {action} on {self.where}:\n{errors.first.inner_text()[:2000]}"
            )

    def scope(self):
        """The visible tab panel, or the whole main area on a page without tabs."""
        panels = self.page.locator("[data-testid='stMain'] [data-testid='stTabPanel']:visible")
        return panels.first if panels.count() else self.page.locator("[data-testid='stMain']")

    def selectboxes(self) -> None:
        i = 0
        while i < (boxes := self.scope().locator("[data-testid='stSelectbox']:visible")).count():
            box = boxes.nth(i)
            label = box.locator("[data-testid='stWidgetLabel']").inner_text()
            box.locator("[role='combobox']").click()
            options = self.page.locator("[role='listbox'] [role='option']").all_inner_texts()
            self.page.keyboard.press("Escape")
            picks = list(dict.fromkeys([*options[1:2], *options[-1:], *options[len(options) // 2 :][:1]]))
            for option in picks[:OPTIONS_PER_SELECTBOX]:
                box = self.scope().locator("[data-testid='stSelectbox']:visible").nth(i)
                box.locator("[role='combobox']").click()
                self.page.locator("[role='listbox'] [role='option']").filter(has_text=option).first.click()
                self.counts["options"] += 1
                self.check(f"picking {option!r} in {label!r}")
            self.counts["selectboxes"] += 1
            i += 1

    def toggles(self) -> None:
        i = 0
        while i < (boxes := self.scope().locator("[data-testid='stCheckbox']:visible")).count():
            label = boxes.nth(i).inner_text()
            for state in ("on", "back"):
                self.scope().locator("[data-testid='stCheckbox']:visible").nth(i).locator("label").click()
                self.check(f"flipping {label!r} {state}")
            self.counts["toggles"] += 1
            i += 1

    def visit(self, url: str, widgets: bool = True) -> None:
        self.page.goto(url)
        self.where = url
        self.check("opening the page")
        self.counts["pages"] += 1
        if not widgets:
            return
        tabs = self.page.locator("[data-testid='stMain'] [data-testid='stTab']")
        for t in range(max(tabs.count(), 1)):
            if tabs.count():
                tab = tabs.nth(t)
                self.where = f"{url} › {tab.inner_text()}"
                tab.click()
                self.check("opening the tab")
                self.counts["tabs"] += 1
            self.selectboxes()
            self.toggles()


def literal_name_shown(page) -> None:
    """The run name full of Markdown, LaTeX, directives and HTML reads literally, and acts as nothing."""
    main = page.locator("[data-testid='stMain']")
    assert NASTY_NAME in main.inner_text().replace("\u2060", "")  # word joiners keep URLs from linking
    assert main.locator("strong", has_text="bold").count() == 0 and main.locator(".katex").count() == 0
    assert (
        main.locator("img[src*='127.0.0.1:9']").count() == 0
        and main.locator("a[href*='127.0.0.1:9']").count() == 0
    )


def test_every_page_tab_selectbox_and_toggle_with_a_week_of_state(page, seeded_dir, monkeypatch):
    start = time.time()
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(seeded_dir))
    week = runs.all_runs()
    nasty = next(r.id for r in week if r.name == NASTY_NAME)  # done
    failed, cancelled = (next(r.id for r in week if r.status == s) for s in ("failed", "cancelled"))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    with serve(seeded_dir) as url:
        page.goto(url)
        wait_idle(page)
        links = page.eval_on_selector_all(
            "[data-testid='stSidebarNav'] a", "els => [...new Set(els.map(e => e.href))]"
        )
        assert len(links) == 4, links
        crawl = Crawl(page, url)
        for link in links:
            crawl.visit(link)
        for run in (failed, cancelled, nasty):  # a run of each ending: every widget again
            crawl.visit(f"{url}/transfer?run={run}")
        literal_name_shown(page)  # the last of them: the run with the nasty name
        for run in ("99999999999999999999", "²", "-3"):  # links to no run: opened, no widget of a run to try
            crawl.visit(f"{url}/transfer?run={run}", widgets=False)
            said = page.locator("[data-testid='stAlert']").filter(
                has_text=re.compile(r"is not a run id|There is no run")
            )
            assert said.count() == 1, f"{run!r}: the page does not say that the link names no run"
    elsewhere = sorted({r for r in requests if not r.startswith((url + "/", "data:", "blob:")) and r != url})
    assert not elsewhere, f"the browser fetched from outside the app: {elsewhere[:5]}"
    print(f"crawler: {crawl.counts} in {time.time() - start:.0f} s")
    assert crawl.counts["pages"] == 4 + 6 and crawl.counts["tabs"] >= 12
    assert crawl.counts["selectboxes"] >= 8 and crawl.counts["toggles"] >= 6
