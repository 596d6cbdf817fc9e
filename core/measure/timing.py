"""Latency measurement: warm-up, CUDA events on GPU, perf_counter on CPU, median with p10/p90."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


def pin_malloc_thresholds() -> None:
    """glibc serves large blocks with fresh mmaps whose threshold moves with allocation history; every call
    then re-faults its activation pages, and in a VM that makes CPU latency bimodal (1.5 ms or 5 ms for the
    same block). Fixing the thresholds keeps big activations in the heap, so timings measure compute.
    Call once at the start of a process that times things (the app, workers, benchmarks); importing this module
    changes nothing."""
    import ctypes
    import sys
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)   # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)   # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass



@dataclass(frozen=True)
class LatencyStats:
    """Per-call latencies in milliseconds and their summary."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    iters: int
    warmup: int
    timer: str

    @classmethod
    def from_samples(cls, samples: list[float], warmup: int, timer: str) -> "LatencyStats":
        arr = np.asarray(samples, dtype=float)
        p10, med, p90 = np.percentile(arr, [10, 50, 90])
        return cls(float(med), float(p10), float(p90), float(arr.mean()), len(samples), warmup, timer)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device | str = "cpu", *, warmup: int = 3,
              min_iters: int = 10, max_iters: int = 1000, min_time_s: float = 0.25,
              warmup_time_s: float = 0.1) -> LatencyStats:
    """Times ``fn`` per call: at least ``min_iters`` calls and ``min_time_s`` seconds, after a warm-up."""
    device = torch.device(device)
    done, t0 = 0, time.perf_counter()
    while done < warmup or time.perf_counter() - t0 < warmup_time_s:
        fn()
        done += 1
        _sync(device)
    samples: list[float] = []
    start = time.perf_counter()
    if device.type == "cuda":
        while len(samples) < max_iters and (len(samples) < min_iters or time.perf_counter() - start < min_time_s):
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(begin.elapsed_time(end))
        return LatencyStats.from_samples(samples, done, "cuda events")
    while len(samples) < max_iters and (len(samples) < min_iters or time.perf_counter() - start < min_time_s):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return LatencyStats.from_samples(samples, done, "perf_counter")
