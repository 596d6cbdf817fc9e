"""Issue 30's first-visit figures, in Chromium at 1400 px over an empty data directory.

For each page: a freshly started server (``streamlit run app.py``, visited the moment
``/_stcore/health`` answers) and its first visitor on that page (cold). Then, on the now warm server:
- ``navigate``: the same visitor clicks each other page in the navigation, its first visit in that
  session;
- ``new_visitor``: every page opened from a new browser context (a new session, nothing cached in the
  browser). Each gives two times, from ``goto`` or the click:
- ``usable_s``: the navigation's links and the page's title are on screen (the skeleton app.py paints
  while torch and timm finish importing);
- ``complete_s``: the script run has finished and the page is drawn in full: no skeleton left, no figure
  still to come (the Block explorer times a new block once the page is drawn: ``PENDING`` waits for its
  latency too), and the page has stopped changing: the time of its last DOM change, once none came for
  ``QUIET_S``. Plotly's charts are drawn after the script run ends (the first chart of a session loads
  plotly.js: about 1 s here), so a click 0.3 s after the run ended used to land while the last page was
  still drawing. A change inside a ``<canvas>`` is not counted: that is fallback content the browser
  never paints (the data grid of every table keeps an accessibility copy of its cells there, and
  rewrites it about 0.3 s after the table is drawn); ``complete_any_s`` counts it too, for comparison.
  ``floor`` is a one-line Streamlit app (a title) opened the same way as ``new_visitor``, in the same
  run: what Streamlit's own front end costs in a fresh browser context on this machine, before any page
  code runs. Targets: the cold first page usable within 3 s, every other first visit (``navigate``)
  complete within 2 s. ``--root`` times another checkout of the app the same way, interleaved page by
  page with this one."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from _common import emit, environment, parser

from benchmarks.harness import CHROMIUM, FLAGS, serve

PAGES = {
    "Block explorer": "/",
    "Compare backbones": "/backbones",
    "Transfer learning": "/transfer",
    "Runs": "/runs",
}
NAV = "[data-testid='stSidebarNav'] a"
DONE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PENDING = ("Starting up: PyTorch", "Timing on this device")  # texts on screen while a page is not complete
QUIET_S = 0.5
# counts the page's DOM changes from its first byte (an init script of every browser context): [painted, any];
# a change inside a <canvas> (fallback content, never painted) counts only as any
OBSERVE = (
    "window.__changes = [0, 0]; new MutationObserver(records => { window.__changes[1]++; "
    "if (records.some(r => { const el = r.target.nodeType === 1 ? r.target : r.target.parentElement; "
    "return !(el && el.closest('canvas')); })) window.__changes[0]++; }).observe(document, "
    "{subtree: true, childList: true, attributes: true, characterData: true});"
)


def settle(page, title: str, t: float) -> dict[str, float]:
    page.wait_for_selector(NAV, state="visible", timeout=300_000)
    page.get_by_role("heading", name=title, level=1).first.wait_for(state="visible", timeout=300_000)
    usable = time.perf_counter() - t
    page.wait_for_function(
        "([done, pending]) => document.querySelector(done) && "
        "!pending.some(text => document.body.innerText.includes(text))",
        arg=[DONE, list(PENDING)],
        timeout=300_000,
        polling=50,
    )
    return {"usable_s": round(usable, 2), **still(page, t)}


def still(page, t: float) -> dict[str, float]:
    painted, any_change = last_change(page, QUIET_S)
    return {"complete_s": round(painted - t, 2), "complete_any_s": round(any_change - t, 2)}


def last_change(page, quiet_s: float, limit_s: float = 30.0) -> tuple[float, float]:
    """When the page last changed (``perf_counter``, to 50 ms), once it has not changed for ``quiet_s``: a
    painted change, and any change (canvas fallback content too)."""
    seen, start = page.evaluate("window.__changes"), time.perf_counter()
    last = [start, start]
    while time.perf_counter() - max(last) < quiet_s and time.perf_counter() - start < limit_s:
        page.wait_for_timeout(50)
        now = page.evaluate("window.__changes")
        for i in (0, 1):
            if now[i] != seen[i]:
                last[i] = time.perf_counter()
        seen = now
    return last[0], last[1]


def visit(browser, url: str, title: str, keep: bool = False):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(OBSERVE)
    page = context.new_page()
    t = time.perf_counter()
    page.goto(url)
    result = settle(page, title, t)
    if keep:
        return result, page
    page.context.close()
    return result


def navigate(page, title: str) -> dict[str, float]:
    """A click on ``title`` in the navigation, 0.3 s after the current page is complete (drawn and still)."""
    page.wait_for_timeout(300)
    t = time.perf_counter()
    page.locator(NAV).filter(has_text=title).first.click()
    return settle(page, title, t)  # the new title is drawn only by the new page's run: then its end


def one_server(browser, root: Path, first: str) -> dict:
    """A cold server whose first visitor opens ``first`` and then clicks every other page; then each page
    opened by a new visitor."""
    t = time.perf_counter()
    with serve(tempfile.mkdtemp(prefix="archscope-bench-"), root) as url:
        healthy = time.perf_counter() - t
        cold, page = visit(browser, url + PAGES[first], first, keep=True)
        out = {"server_healthy_s": round(healthy, 2), "cold": cold, "navigate": {}, "new_visitor": {}}
        for name in PAGES:
            if name != first:
                out["navigate"][name] = navigate(page, name)
        page.context.close()
        for name, path in PAGES.items():
            out["new_visitor"][name] = visit(browser, url + path, name)
    return out


def floor(browser, tmp: Path) -> list[dict[str, float]]:
    app = tmp / "app.py"
    app.write_text(
        "import streamlit as st\nst.title('Floor')\nst.sidebar.page_link('app.py', label='Floor')\n"
    )
    with serve(tmp, tmp) as url:
        return [visit_plain(browser, url) for _ in range(3)]


def visit_plain(browser, url: str) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(OBSERVE)
    page = context.new_page()
    t = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("h1", timeout=60_000)
    usable = time.perf_counter() - t
    page.wait_for_selector(DONE, timeout=60_000)
    out = {"usable_s": round(usable, 2), **still(page, t)}
    page.context.close()
    return out


def summary(rounds: list[dict]) -> dict:
    def stats(values: list[float], target: float) -> dict:
        return {
            "median": statistics.median(values),
            "max": max(values),
            "n": len(values),
            f"within_{target:g}s": sum(v <= target for v in values),
        }

    return {
        "cold_usable_s": stats([r["cold"]["usable_s"] for r in rounds], 3),
        "cold_complete_s": stats([r["cold"]["complete_s"] for r in rounds], 3),
        "navigate_complete_s": stats([v["complete_s"] for r in rounds for v in r["navigate"].values()], 2),
        "new_visitor_usable_s": stats([v["usable_s"] for r in rounds for v in r["new_visitor"].values()], 2),
        "new_visitor_complete_s": stats(
            [v["complete_s"] for r in rounds for v in r["new_visitor"].values()], 2
        ),
        "new_visitor_complete_any_s": stats(
            [v["complete_any_s"] for r in rounds for v in r["new_visitor"].values()], 2
        ),
    }


def commit(root: Path) -> str:
    """The checkout's commit, with ``+changes`` when its tracked files differ from it."""
    import subprocess

    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def main() -> None:
    p = parser(__doc__)
    p.add_argument(
        "--root", type=Path, default=None, help="another checkout to time the same way (before/after)"
    )
    p.add_argument("--rounds", type=int, default=1, help="servers per page and checkout")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    roots = {"this": Path(__file__).resolve().parents[1]}
    if args.root:
        roots["other"] = args.root.resolve()
    out = {
        "environment": environment(args),
        "roots": {k: str(v) for k, v in roots.items()},
        "commits": {k: commit(v) for k, v in roots.items()},
        "note": __doc__.split("\n\n", 1)[1],
        "visits": {k: {} for k in roots},
    }
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        out["floor"] = floor(browser, Path(tempfile.mkdtemp(prefix="archscope-floor-")))
        for _ in range(args.rounds):
            for first in PAGES:
                for key, root in roots.items():  # interleaved: A and B see the same machine load
                    out["visits"][key].setdefault(first, []).append(one_server(browser, root, first))
        browser.close()
    out["summary"] = {k: summary([r for rs in v.values() for r in rs]) for k, v in out["visits"].items()}
    emit(out)


if __name__ == "__main__":
    main()
