"""Issue 30's idle cost: what one browser tab left open costs the server while nothing happens.

A seeded week of use (tests/seed.py), a freshly started server over it, and Chromium. Each page is
opened on its own, left to settle (its first run and any one-off work), then left alone for
``--seconds``: the server process's CPU time (user + system, /proc/<pid>/stat, its threads included)
over that window, per minute and as a share of one core. The Transfer page is opened on a finished run
(``?run=N``), the page that once re-ran every second. Deployable: under 1% of a core for every page. The
same window with no tab open at all is measured first: the server's own floor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, environment, parser

from benchmarks.harness import CHROMIUM, FLAGS, SERVERS, serve, wait_idle

ROOT = Path(__file__).resolve().parents[1]
TARGET_PCT = 1.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (every thread of it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def finished_run(data: Path) -> int:
    import sqlite3

    with sqlite3.connect(data / "archscope.sqlite") as conn:
        row = conn.execute("SELECT MAX(id) FROM runs WHERE status = 'done'").fetchone()
    if not row or row[0] is None:
        raise SystemExit("the seeded week has no finished run")
    return int(row[0])


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--seconds", type=float, default=60.0, help="idle window per page")
    p.add_argument(
        "--settle", type=float, default=10.0, help="seconds left to a page before its window opens"
    )
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    data = Path(tempfile.mkdtemp(prefix="archscope-idle-"))
    seeded = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.seed", str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    run_id = finished_run(data)
    pages = {
        "Block explorer": "/",
        "Compare backbones": "/backbones",
        "Transfer learning (finished run)": f"/transfer?run={run_id}",
        "Runs": "/runs",
    }
    out = {
        "environment": environment(args),
        "seed": json.loads(seeded.stdout.splitlines()[-1]),
        "window_s": args.seconds,
        "settle_s": args.settle,
        "target_pct_of_a_core": TARGET_PCT,
        "pages": {},
    }
    with sync_playwright() as pw, serve(data) as url:
        pid = SERVERS[url]
        time.sleep(args.settle)  # no tab at all: the server's own floor, for comparison
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.seconds)
        used, took = cpu_seconds(pid) - c0, time.monotonic() - t0
        out["no_tab_open"] = {"cpu_s": round(used, 3), "pct_of_a_core": round(100 * used / took, 2)}
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        for name, path in pages.items():
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(300_000)
            page.goto(url + path)
            page.wait_for_selector("h1")
            wait_idle(page)
            time.sleep(args.settle)
            c0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(args.seconds)
            used, took = cpu_seconds(pid) - c0, time.monotonic() - t0
            context.close()
            pct = 100 * used / took
            out["pages"][name] = {
                "path": path,
                "cpu_s": round(used, 3),
                "cpu_s_per_min": round(60 * used / took, 3),
                "pct_of_a_core": round(pct, 2),
                "met": pct < TARGET_PCT,
            }
        browser.close()
    out["all_met"] = all(v["met"] for v in out["pages"].values())
    emit(out)


if __name__ == "__main__":
    main()
