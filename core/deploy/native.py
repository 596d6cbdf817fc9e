"""Native ONNX Runtime on this server, timed with the browser bench's own protocol (one warm-up, then warm
runs until a count or a time), so the ratio browser / native compares like with like."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.deploy.browser_checks import MAX_RUNS, MAX_SECONDS
from core.deploy.runtimes import session


def native(
    path: Path, x: np.ndarray, threads: int, max_runs: int = MAX_RUNS, max_seconds: float = MAX_SECONDS
) -> dict[str, Any]:
    """ONNX Runtime on this machine at ``threads`` intra-op threads: one warm-up, then warm runs of ``x``
    until ``max_runs`` or ``max_seconds``; p10, p50, p90 (ms)."""

    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x})
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and time.perf_counter() - start < max_seconds:
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t) * 1e3)
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return {
        "threads": threads,
        "runs": len(times),
        "p10_ms": q[0],
        "p50_ms": statistics.median(times),
        "p90_ms": q[-1],
    }
