"""Figures 1 and 2 of the backbones issue: a cold profile of resnet50 (fresh process, empty cache), the
cached reopen, and the whole curated list measured by the background worker, with its progress as the
page sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, environment, parser

ROOT = Path(__file__).resolve().parents[1]
COLD = """
import time, json
t0 = time.perf_counter()
from core.measure.settings import Setting
from core.zoo.measure import measure
t1 = time.perf_counter()
m = measure("resnet50", setting=Setting("{device}", "{precision}"))
t2 = time.perf_counter()
m2 = measure("resnet50", setting=Setting("{device}", "{precision}"))
t3 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "cold_measure_s": t2 - t1, "cached_reopen_ms": (t3 - t2) * 1e3,
                  "params": m["params"], "macs": m["macs"], "latency_ms": m["latency_ms"]}}))
"""


def main() -> None:
    args = parser(__doc__).parse_args()
    env = {**os.environ, "ARCHSCOPE_DATA_DIR": tempfile.mkdtemp(prefix="archscope-bench-")}
    result = {"env": environment(args)}
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", COLD.format(device=args.device, precision=args.precision)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cold = json.loads(out.stdout.strip().splitlines()[-1])
    cold["process_wall_s"] = time.perf_counter() - t
    result["resnet50_cold"] = {**cold, "target_s": 10, "cached_target_ms": 100}
    fresh = {**env, "ARCHSCOPE_DATA_DIR": tempfile.mkdtemp(prefix="archscope-bench-list-")}
    result["default_list"] = whole_list(fresh, args.device, args.precision)
    emit(result)


def whole_list(env: dict[str, str], device: str, precision: str) -> dict[str, object]:
    """Runs the page's worker on the curated list (fresh cache) and samples its progress every 0.5 s."""
    code = f"""
import json, time
from core import jobs
from core.zoo import worker as measure_worker
from core.zoo.catalog import CURATED
from core.measure.settings import Setting
from core.zoo.measure import results_frame
s = Setting("{device}", "{precision}")
t0 = time.perf_counter()
job = measure_worker.start(list(CURATED), s)
seen = []
while True:
    j = jobs.get(job.id)
    if not seen or seen[-1][1] != j.done:
        seen.append((round(time.perf_counter() - t0, 1), j.done, j.current))
    if not j.active:
        break
    time.sleep(0.5)
wall = time.perf_counter() - t0
frame = results_frame(s)
print(json.dumps({{"wall_s": wall, "status": j.status, "message": j.message, "models": len(frame),
                  "progress_samples": seen,
                  "per_model": {{r.model: {{"latency_ms": round(r.latency_ms, 2), "GMACs": round(r.GMACs, 3),
                                            "measure_s": r.measure_s}} for r in frame.itertuples()}}}}))
"""
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "target_s": 180}


if __name__ == "__main__":
    main()
