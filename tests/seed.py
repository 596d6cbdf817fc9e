"""A data directory as a week of use leaves it: finished, failed and cancelled runs made through the CLI
and the launcher, a freezing-depth experiment, backbone measurements of two models at two resolutions
with throughput sweeps, deployment measurements (a block pair and a backbone in eager, ONNX Runtime fp32
and int8) and the same three measured in headless Chromium (onnxruntime-web fp32 and int8; the pair on
wasm-1 and wasm-N, the backbone on wasm-1: real runs, few of them). ``python -m tests.seed DIR`` fills
DIR (it sets ARCHSCOPE_DATA_DIR itself) and prints JSON.

Kept tiny (64 px, 1-2 epochs, 8 images a class) so that it takes about a minute on 2 cores."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from benchmarks.harness import TINY

# user text that Markdown, LaTeX, Streamlit directives or HTML would act on: every page must show it literally
NASTY_NAME = (
    '**bold** $x^2$ :red-background[red] ![img](http://127.0.0.1:9/x.png) <a href="http://127.0.0.1:9">a</a>'
)
MODELS = ("mobilenetv3_small_100", "resnet18")
RESOLUTIONS = (64, 96)
DEPLOY_RUNTIMES = ("eager", "onnx", "onnx-int8")
DEPLOY_MODEL = "mobilenetv3_small_100"


def wait(pred, timeout: float = 240.0) -> None:
    end = time.time() + timeout
    while not pred():
        if time.time() > end:
            raise TimeoutError("seeding did not finish in time")
        time.sleep(0.3)


def deploy_targets() -> list:
    """The Deploy tab's default preset pair and the Deployment tab's backbone."""
    from core.blocks.compare import PRESETS, entry_cfg
    from core.deploy.deployable import Deployable

    (chs, hw), pair = next(iter(PRESETS.values()))
    return [Deployable.block(e.block, entry_cfg(e, chs), (1, chs, hw, hw), e.label) for e in pair]


def in_the_browser(targets: list, out: dict) -> None:
    """Each (target, setups) in headless Chromium (fp32 and int8), stored as a visitor's would be."""
    from core.deploy import browser

    try:
        for t, setups in targets:
            got = browser.measure(t, setups=setups, max_runs=5)
            out[got["label"]] = sorted(got["setups"])
    except Exception as err:  # noqa: BLE001  reported in the summary, which the fixture checks
        out["error"] = f"{type(err).__name__}: {err}"


def seed(folder: Path) -> dict:
    os.environ["ARCHSCOPE_DATA_DIR"] = str(folder)
    from core import jobs
    from core.deploy.deployable import Deployable
    from core.deploy.measure import measure_group
    from core.finetune.config import TrainConfig
    from core.measure.settings import Setting, default_threads
    from core.runs import experiment, launch
    from core.runs import record as runs
    from core.runs.cli import train as finetune
    from core.zoo import worker as measure_worker

    t0 = time.time()
    blocks = deploy_targets()
    browsed: dict = {}  # in Chromium while the CLI trains (its bench is capped at 5 runs a setup)
    in_chromium = [
        *((b, ("wasm-1", "wasm-N")) for b in blocks),
        (Deployable.model(DEPLOY_MODEL), ("wasm-1",)),
    ]
    browsing = threading.Thread(target=in_the_browser, args=(in_chromium, browsed))
    browsing.start()
    setting = Setting("cpu", "fp32", "contiguous", default_threads())  # the sidebar's defaults
    measured = [measure_worker.start(list(MODELS), setting, RESOLUTIONS[0], sweep=True, time_cap_s=1.0)]
    wait(lambda: not jobs.get(measured[0].id).active)
    measured.append(measure_worker.start(list(MODELS), setting, RESOLUTIONS[1], sweep=True, time_cap_s=1.0))
    exp = experiment.start(
        TrainConfig(
            epochs=1, image_size=64, demo_per_class=8, demo_size=64, batch_size=16, threads=1, device="cpu"
        )
    )
    codes = {
        "probe": finetune([*TINY, "--recipe", "linear_probe", "--epochs", "2", "--name", NASTY_NAME]),
        "top": finetune([*TINY, "--recipe", "finetune_top", "--epochs", "1", "--name", "top layers"]),
        "scratch": finetune(
            [
                *TINY,
                "--model",
                "resnet18",
                "--recipe",
                "scratch",
                "--epochs",
                "1",
                "--name",
                "resnet18 from scratch",
            ]
        ),
        "hub": finetune(
            [
                *TINY,
                "--weights",
                "hub",
                "--recipe",
                "finetune_full",
                "--epochs",
                "1",
                "--name",
                "hub weights offline",
            ]
        ),
    }
    cancelled = launch.launch(
        TrainConfig(
            data="demo",
            demo_per_class=8,
            demo_size=64,
            image_size=64,
            batch_size=4,
            recipe="finetune_full",
            weights="random",
            epochs=50,
            threads=1,
        ),
        "stopped by hand",
    )
    wait(lambda: not runs.metrics(cancelled).empty)
    runs.request_cancel(cancelled)
    wait(lambda: not runs.get(cancelled).active)
    wait(lambda: not jobs.get(exp.id).active and not jobs.get(measured[1].id).active)
    browsing.join(timeout=300)
    deployed = measure_group(blocks, DEPLOY_RUNTIMES, default_threads(), max_time_s=1.5)
    deployed += measure_group(
        [Deployable.model(DEPLOY_MODEL)], DEPLOY_RUNTIMES, default_threads(), max_time_s=1.5
    )
    statuses = {r.name: r.status for r in runs.all_runs()}
    return {
        "seconds": round(time.time() - t0, 1),
        "cli_exit_codes": codes,
        "runs": statuses,
        "experiment": jobs.get(exp.id).status,
        "measure_jobs": [jobs.get(j.id).status for j in measured],
        "deployed": {r["label"]: sorted(r["runtimes"]) for r in deployed},
        "browser": browsed,
    }


if __name__ == "__main__":
    print(json.dumps(seed(Path(sys.argv[1]).resolve())))
