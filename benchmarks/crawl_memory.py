"""Issue 21's figures: every page and every tab opened once, in Chromium, on a freshly started server over
an empty data directory with the default settings (cold: no cache of any kind is warm). Prints each
page's and tab's first-visit time (until Streamlit's script run has finished), the server process's
resident memory after each visit and after the whole crawl, and how soon Compound scaling's background
count put its first measured point in the store."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import emit, environment, parser

from benchmarks.harness import CHROMIUM, FLAGS, SERVERS, serve, wait_idle

TABS = {
    "/": ["Explore", "Compare", "Roofline", "Deploy", "Lecture's numbers", "Gradient flow"],
    "/backbones": [
        "Measure",
        "Leaderboard",
        "Accuracy vs cost",
        "Throughput",
        "Where the time goes",
        "Compound scaling",
        "Recommender",
        "Deployment",
    ],
    "/transfer": [None],
    "/runs": ["Compare runs", "Effect of freezing depth", "Evaluate and export"],
}
LIMIT_MB = 2.5 * 1024
# counts the script runs that end from now on (a tab click's rerun can be shorter than any poll)
WATCH = """() => { window.__ended = 0; const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'notRunning') window.__ended++;
  })
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']}); }"""


def rss_mb(pid: int) -> float:
    """Resident memory of one process (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def first_scaled_point(db: Path, since: float, timeout: float = 120.0) -> float | None:
    """Seconds from ``since`` until the first scaled network's count is in the store."""
    end = time.time() + timeout
    while time.time() < end:
        if db.exists():
            with sqlite3.connect(db) as conn:
                row = conn.execute(
                    "SELECT MIN(created) FROM measurements WHERE kind = 'scaled-count'"
                ).fetchone()
            if row and row[0]:
                return round(row[0] - since, 2)
        time.sleep(0.2)
    return None


def main() -> None:
    args = parser(__doc__).parse_args()
    from playwright.sync_api import sync_playwright

    data = Path(tempfile.mkdtemp(prefix="archscope-crawl-"))
    out = {
        "environment": environment(args),
        "data_dir": "fresh and empty",
        "first_visit_s": {},
        "server_rss_mb": {},
    }
    with sync_playwright() as pw, serve(data) as url:
        pid = SERVERS[url]
        out["server_rss_mb"]["started"] = round(rss_mb(pid), 1)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(300_000)
        peak = 0.0
        for path, tabs in TABS.items():
            for tab in tabs:
                name = path if tab is None else f"{path} · {tab}"
                t = time.perf_counter()
                started = time.time()
                if tab is None or tab == tabs[0]:
                    page.goto(url + path)
                    page.wait_for_selector("h1")
                else:
                    page.evaluate(WATCH)
                    t = time.perf_counter()
                    page.get_by_role("tab", name=tab, exact=True).click()
                    page.wait_for_function("() => window.__ended > 0")  # the rerun the click started, ended
                wait_idle(page)
                out["first_visit_s"][name] = round(time.perf_counter() - t - 0.3, 2)
                if tab == "Compound scaling":
                    out["compound_scaling_first_point_s"] = first_scaled_point(
                        data / "archscope.sqlite", started
                    )
                mem = rss_mb(pid)
                peak = max(peak, mem)
                out["server_rss_mb"][name] = round(mem, 1)
        browser.close()
        time.sleep(2)
        after = rss_mb(pid)
    slowest = max(out["first_visit_s"].items(), key=lambda kv: kv[1])
    out.update(
        server_rss_mb_after_crawl=round(after, 1),
        server_rss_mb_peak=round(max(peak, after), 1),
        limit_mb=LIMIT_MB,
        under_limit=max(peak, after) < LIMIT_MB,
        slowest_first_visit=slowest,
        cores=os.cpu_count(),
    )
    emit(out)


if __name__ == "__main__":
    main()
