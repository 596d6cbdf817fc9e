"""Issue 11's first-visit figures: each page's cold first visit in Chromium (a freshly started server over an
empty data directory, so no cache of any kind is warm), and a Block explorer shape edit on the warm page.
``--root`` times another checkout of the app the same way (for a before/after)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import emit, environment, parser

from tests.e2e.conftest import CHROMIUM, FLAGS, serve, wait_idle

PAGES = {"Block explorer": "/", "Compare backbones": "/backbones", "Transfer learning": "/transfer", "Runs": "/runs"}


def visit(page, url: str) -> float:
    t = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("h1", timeout=300_000)
    wait_idle(page)
    return time.perf_counter() - t - 0.3          # wait_idle's settling pause is not the page's


def shape_edit(page) -> dict[str, float]:
    """Output channels 64 -> 96 on the default block: seconds until the parameter count changes on screen, and
    until the whole page (latency included) has finished its rerun."""
    value = page.locator("[data-testid='stMetricValue']").first
    before = value.inner_text()
    box = page.get_by_label("Output channels")
    t = time.perf_counter()
    box.fill("96")
    box.press("Enter")
    page.wait_for_function("b => document.querySelector(\"[data-testid='stMetricValue']\").innerText !== b",
                           arg=before, timeout=120_000)
    counts = time.perf_counter() - t
    wait_idle(page)
    return {"counts_s": round(counts, 2), "whole_rerun_s": round(time.perf_counter() - t - 0.3, 2)}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = p.parse_args()
    from playwright.sync_api import sync_playwright
    out = {"environment": environment(args), "root": str(args.root), "cold_first_visit_s": {}}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        for name, path in PAGES.items():
            with serve(tempfile.mkdtemp(prefix="archscope-bench-"), args.root) as url:
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                out["cold_first_visit_s"][name] = round(visit(page, url + path), 2)
                if path == "/":
                    out["block_shape_edit"] = shape_edit(page)
                page.context.close()
        browser.close()
    emit(out)


if __name__ == "__main__":
    main()
