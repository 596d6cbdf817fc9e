"""Figures of the transfer-page issue: (1) lag from a metric being written to the store to its point in the
live chart, in real Chromium; (2) render time of the Runs page with 50 finished runs in the store; (3)
the freezing-depth experiment on the demo dataset with each recipe's val accuracy and wall time."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import emit, environment, parser

os.environ["ARCHSCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix="archscope-ui-bench-")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import CHROMIUM, FLAGS, free_port  # noqa: E402
from core import jobs, runs  # noqa: E402
from core.finetune.config import TrainConfig  # noqa: E402
from core.runs import experiment  # noqa: E402


def fake_run(status: str, steps: int, epochs: int) -> int:
    run_id = runs.create(TrainConfig(epochs=epochs).to_dict(), f"synthetic {status}")
    runs.update(
        run_id,
        status=status,
        pid=os.getpid(),
        started=time.time(),
        device="cpu",
        result={
            "info": {
                "steps_per_epoch": max(1, steps // epochs),
                "resumed_from_epoch": 0,
                "classes": ["a", "b"],
            },
            "best_top1": 0.9,
            "wall_s": 10.0,
        },
    )
    for s in range(1, steps + 1):
        runs.log_metrics(run_id, (s - 1) * epochs // steps, s, "train", {"loss": 1 / s, "lr": 1e-3})
    for e in range(epochs):
        runs.log_metrics(run_id, e, (e + 1) * steps // epochs, "val", {"val_loss": 0.5, "val_top1": 0.8})
    return run_id


def server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    return proc, url


def chart_max_step(page) -> float:
    """The largest step on the live chart's first trace, read from Plotly's own data in the page."""
    value = page.evaluate("""() => {
        for (const p of document.querySelectorAll('.js-plotly-plot')) {
            const t = (p.data || []).find(d => (d.name || '').endsWith(' train'));
            if (t) { const x = Array.from(t.x || []); return x.length ? Math.max(...x.map(Number)) : -1; }
        }
        return -1; }""")
    if value is None or value != value:  # NaN means the data could not be read: fail loudly, not fast
        raise RuntimeError("could not read the chart's x values")
    return float(value)


def measure_ui() -> dict:
    from playwright.sync_api import sync_playwright

    live = fake_run("running", 50, 5)
    for _ in range(50):
        fake_run("done", 100, 5)
    proc, url = server()
    lags, renders = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/transfer?run={live}")
            page.wait_for_function(
                """() => [...document.querySelectorAll('.js-plotly-plot')].some(
                p => (p.data || []).some(d => (d.name || '').endsWith(' train')))""",
                timeout=60_000,
            )
            first = chart_max_step(page)
            if first != 50:
                raise RuntimeError(f"the live chart shows step {first}, expected 50 before the test")
            for k in range(8):
                step = 51 + k
                t0 = time.perf_counter()
                runs.log_metrics(live, 4, step, "train", {"loss": 0.01, "lr": 1e-4})
                while chart_max_step(page) < step and time.perf_counter() - t0 < 10:
                    page.wait_for_timeout(20)
                lags.append(time.perf_counter() - t0)
                time.sleep(0.3)
            runs.update(live, status="done")
            for _ in range(5):
                t0 = time.perf_counter()
                page.goto(f"{url}/runs")
                page.wait_for_selector(
                    "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000
                )
                page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length > 0")
                renders.append(time.perf_counter() - t0)
            browser.close()
    finally:
        proc.terminate()
    return {
        "runs_in_store": len(runs.all_runs()),
        "metric_to_chart_lag_s": {
            "median": statistics.median(lags),
            "max": max(lags),
            "samples": [round(x, 3) for x in lags],
            "target": 2.0,
        },
        "runs_page_render_s": {
            "median": statistics.median(renders),
            "max": max(renders),
            "samples": [round(x, 3) for x in renders],
            "target": 2.0,
        },
    }


def freezing_depth() -> dict:
    job = experiment.start(TrainConfig(epochs=3, image_size=96, demo_per_class=30))
    t0 = time.perf_counter()
    while jobs.get(job.id).active:
        time.sleep(1)
    frame = experiment.results(jobs.get(job.id))
    return {
        "config": "demo set, 30 images/class (144 train, 36 val), 96 px, 3 epochs (probe: 30), CPU",
        "wall_s": time.perf_counter() - t0,
        "status": jobs.get(job.id).status,
        "recipes": frame.to_dict("records"),
        "conclusion": experiment.conclusion(frame),
    }


def main() -> None:
    args = parser(__doc__).parse_args()
    result = {"env": environment(args), "ui": measure_ui(), "freezing_depth": freezing_depth()}
    emit(result)


if __name__ == "__main__":
    main()
