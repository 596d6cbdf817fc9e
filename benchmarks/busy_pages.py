"""Issue 30's background-work figure: how long the Runs page takes to open while compound scaling counts
its networks in the background, against the same page on the same idle server.

A seeded week of use (tests/seed.py), one server over it, Chromium at 1400 px. "Open" is a new browser
context's ``goto`` until the script run has finished (the page is drawn in full). The Runs page is
opened ``--visits`` times idle; then a tab opens Compare backbones → Compound scaling, which starts the
count of B0-B7 and the scaled networks as a background job (the page's own path: ``scaling.start``, a
worker at ``os.nice`` +10), and the Runs page is opened ``--visits`` times while that job is running;
then idle again once it has ended. Deployable: busy median within 1.5x of the idle median. ``--give-way
off`` starts the server with ``ARCHSCOPE_GIVE_WAY=off``: the count then does not pause while pages load
(core/jobs/yielding.py), for a before/after in the same hour."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, environment, parser

from benchmarks.harness import CHROMIUM, FLAGS, serve, wait_idle

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.5


def open_runs(browser, url: str) -> float:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    t = time.perf_counter()
    page.goto(url + "/runs")
    page.get_by_role("heading", name="Runs", level=1).wait_for(timeout=300_000)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=300_000)
    took = time.perf_counter() - t
    page.context.close()
    return round(took, 2)


def job_state(data: Path) -> tuple[str, float, int]:
    from core import jobs
    from core.zoo import scaling

    os.environ["ARCHSCOPE_DATA_DIR"] = str(data)
    job = jobs.latest(scaling.KIND)
    return ("none", 0.0, 0) if job is None else (job.status, job.done / max(job.total, 1), job.id)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--visits", type=int, default=5)
    p.add_argument("--give-way", choices=("on", "off"), default="on")
    args = p.parse_args()
    os.environ["ARCHSCOPE_GIVE_WAY"] = args.give_way  # the server and its workers inherit it
    from playwright.sync_api import sync_playwright

    data = Path(tempfile.mkdtemp(prefix="archscope-busy-"))
    seeded = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.seed", str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    out = {
        "environment": environment(args),
        "seed": json.loads(seeded.stdout.splitlines()[-1]),
        "note": __doc__.split("\n\n", 1)[1],
        "target_ratio": TARGET_RATIO,
        "give_way": args.give_way,
    }
    with sync_playwright() as pw, serve(data) as url:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        open_runs(browser, url)  # the server's first visit (imports) is not a sample
        idle_before = [open_runs(browser, url) for _ in range(args.visits)]
        tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        tab.goto(url + "/backbones?bb.tab=Compound+scaling")
        wait_idle(tab)
        end = time.time() + 120
        while job_state(data)[0] not in ("running",) and time.time() < end:
            time.sleep(0.5)
        busy, progress = [], []
        for _ in range(args.visits):
            status, done, job_id = job_state(data)
            if status != "running":
                break
            busy.append(open_runs(browser, url))
            progress.append(round(done, 2))
        out["job"] = {
            "id": job_id,
            "status_when_sampled": status,
            "fraction_done_at_each_busy_visit": progress,
        }
        while job_state(data)[0] in ("running", "queued") and time.time() < end + 900:
            time.sleep(2)
        out["job"]["final_status"] = job_state(data)[0]
        tab.context.close()
        idle_after = [open_runs(browser, url) for _ in range(args.visits)]
        browser.close()
    idle = idle_before + idle_after
    out["runs_open_s"] = {"idle_before": idle_before, "busy": busy, "idle_after": idle_after}
    if busy:
        ratios = sorted(b / statistics.median(idle) for b in busy)
        out["busy_over_idle"] = {
            "median": round(statistics.median(busy) / statistics.median(idle), 2),
            "min": round(ratios[0], 2),
            "max": round(ratios[-1], 2),
            "within_target": statistics.median(busy) <= TARGET_RATIO * statistics.median(idle),
        }
    emit(out)


if __name__ == "__main__":
    main()
