"""Latency measurement: warm-up, CUDA events on GPU, perf_counter on CPU, median with p10/p90."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


def pin_malloc_thresholds() -> None:
    """glibc serves large blocks with fresh mmaps whose threshold moves with allocation history; every call
    then re-faults its activation pages, and in a VM that makes CPU latency bimodal (1.5 ms or 5 ms for
    the same block). Fixing the thresholds keeps big activations in the heap, so timings measure
    compute. Call once at the start of a process that times things (the app, workers, benchmarks);
    importing this module changes nothing."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
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
    wall_median_ms: float | None = None  # CUDA: median host wall time of the same synchronised calls

    @classmethod
    def from_samples(
        cls, samples: list[float], warmup: int, timer: str, wall: list[float] | None = None
    ) -> "LatencyStats":
        arr = np.asarray(samples, dtype=float)
        p10, med, p90 = np.percentile(arr, [10, 50, 90])
        return cls(
            float(med),
            float(p10),
            float(p90),
            float(arr.mean()),
            len(samples),
            warmup,
            timer,
            float(np.median(wall)) if wall else None,
        )

    @property
    def launch_bound(self) -> bool:
        """On a GPU: the host wall time of a call exceeds the GPU's own event time by more than 10%, so the
        CPU issuing kernels (Python, dispatch, launches), not the GPU, sets the latency."""
        return self.wall_median_ms is not None and self.wall_median_ms > 1.1 * self.median_ms


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CUDA_WARMUP_CALLS, CUDA_WARMUP_S = (
    10,
    0.3,
)  # as timm's benchmark (10 steps), and long enough for clocks to rise


def time_call(
    fn: Callable[[], object],
    device: torch.device | str = "cpu",
    *,
    warmup: int = 3,
    min_iters: int = 10,
    max_iters: int = 1000,
    min_time_s: float = 0.25,
    warmup_time_s: float = 0.1,
) -> LatencyStats:
    """Times ``fn`` per call: at least ``min_iters`` calls and ``min_time_s`` seconds, after a warm-up (on
    a GPU at least 10 calls and 0.3 s). On a GPU each call is timed by CUDA events and, around the same
    synchronised call, by the host clock; both medians are kept (``launch_bound`` says when they part)."""
    device = torch.device(device)
    if device.type == "cuda":
        warmup, warmup_time_s = max(warmup, CUDA_WARMUP_CALLS), max(warmup_time_s, CUDA_WARMUP_S)
    done, t0 = 0, time.perf_counter()
    while done < warmup or time.perf_counter() - t0 < warmup_time_s:
        fn()
        done += 1
        _sync(device)
    samples: list[float] = []
    start = time.perf_counter()
    if device.type == "cuda":
        wall: list[float] = []
        while len(samples) < max_iters and (
            len(samples) < min_iters or time.perf_counter() - start < min_time_s
        ):
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t = time.perf_counter()
            begin.record()
            fn()
            end.record()
            end.synchronize()
            wall.append((time.perf_counter() - t) * 1e3)
            samples.append(begin.elapsed_time(end))
        return LatencyStats.from_samples(samples, done, "cuda events", wall)
    while len(samples) < max_iters and (len(samples) < min_iters or time.perf_counter() - start < min_time_s):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return LatencyStats.from_samples(samples, done, "perf_counter")


RATIO_TOLERANCE = 0.15  # the ratio's interval must sit within ±15% of it
SPREAD_LIMIT = 1.5  # p90 / p10 of the per-round ratios above this: the machine is busy


def _median_interval(values: np.ndarray) -> tuple[float, float]:
    """A distribution-free ~95% interval for the median of ``values`` (order statistics, binomial(n, 1/2))."""
    v, n = np.sort(values), len(values)
    half = 0.98 * np.sqrt(n)  # 1.96 · sqrt(n) / 2
    lo, hi = int(np.floor(n / 2 - half)), int(np.ceil(n / 2 + half))
    return float(v[max(lo, 0)]), float(v[min(hi, n - 1)])


@dataclass(frozen=True)
class RatioStats:
    """How many times faster candidate i runs than the first: the median over rounds of t_first / t_i."""

    ratio: float
    low: float  # ~95% interval of that median
    high: float
    p10: float  # spread of the per-round ratios
    p90: float

    @property
    def spread(self) -> float:
        return self.p90 / self.p10 if self.p10 > 0 else float("inf")

    @property
    def settled(self) -> bool:
        """The interval lies within ±RATIO_TOLERANCE of the ratio and the rounds agree (p90/p10 ≤
        SPREAD_LIMIT)."""
        return (
            self.low >= self.ratio * (1 - RATIO_TOLERANCE)
            and self.high <= self.ratio * (1 + RATIO_TOLERANCE)
            and self.spread <= SPREAD_LIMIT
        )

    @classmethod
    def from_rounds(cls, ratios: np.ndarray) -> "RatioStats":
        low, high = _median_interval(ratios)
        p10, med, p90 = np.percentile(ratios, [10, 50, 90])
        return cls(float(med), low, high, float(p10), float(p90))


@dataclass(frozen=True)
class Interleaved:
    """Candidates timed round by round (A B C, then C B A, …), so a drift in the machine's speed hits all
    of them alike. ``latency[i]`` summarises candidate i's per-call time over the rounds; ``ratios[i]``
    is against the first."""

    latency: tuple[LatencyStats, ...]
    ratios: tuple[RatioStats, ...]
    rounds: int
    calls_per_round: tuple[int, ...]
    steadiness: RatioStats | None = (
        None  # one candidate: its per-round times, judged by the same rule as ratios
    )

    def _judged(self) -> tuple[RatioStats, ...]:
        return self.ratios[1:] if len(self.ratios) > 1 else ((self.steadiness,) if self.steadiness else ())

    @property
    def busy(self) -> bool:
        """Still unsettled after the most rounds allowed: the figures are uncertain. With several
        candidates the ratios must settle; with one, its own per-round time (interval within ±15%,
        p90/p10 ≤ 1.5)."""
        return not all(r.settled for r in self._judged())

    def note(self) -> str:
        """One sentence for the page: how the figures were taken, and a warning when the machine was busy."""
        single = len(self.ratios) == 1
        how = (
            f"Timed in {self.rounds} rounds of about 20 ms, until the median per-call time settled "
            "(~95% interval "
            "within ±15%, p90/p10 of the rounds ≤ 1.5), the same rule as Compare's ratios."
            if single
            else f"Timed interleaved: {self.rounds} rounds, each candidate in turn (order reversed "
            "every other round); "
            "ratios are the median of the per-round ratios with a ~95% interval."
        )
        if not self.busy:
            return how
        worst = max(self._judged(), key=lambda r: r.spread)
        what = (
            f"the rounds still range {worst.p10:.3g}–{worst.p90:.3g} ms per call (interval "
            f"{worst.low:.3g}–{worst.high:.3g} ms)"
            if single
            else f"the per-round ratios still range {worst.p10:.2f}–{worst.p90:.2f}× (interval "
            f"{worst.low:.2f}–{worst.high:.2f}×)"
        )
        return f"This machine is busy: the figure is uncertain. After {self.rounds} rounds {what}. " + how


def time_interleaved(
    fns: list[Callable[[], object]],
    device: torch.device | str = "cpu",
    *,
    round_time_s: float = 0.02,
    min_rounds: int = 15,
    max_rounds: int = 200,
    max_time_s: float = 10.0,
    warmup_time_s: float = 0.1,
    on_round: Callable[[int], bool] | None = None,
) -> Interleaved:
    """Times several callables round by round and reports each one's latency and its speed ratio against
    the first. After ``min_rounds`` it stops as soon as every ratio has settled (interval within ±15%,
    p90/p10 ≤
    1.5); otherwise it keeps going up to ``max_rounds`` or ``max_time_s`` and the result says it is busy. One
    callable is timed by the same rounds, and its own per-round time must settle by the same rule.
    ``on_round(rounds done)`` reports progress; returning True stops after that round."""
    if not fns:
        raise ValueError("nothing to time")
    device = torch.device(device)
    once = []
    for fn in fns:  # warm-up, and a first estimate of one call
        took: list[float] = []
        t0 = time.perf_counter()
        while len(took) < 3 or time.perf_counter() - t0 < warmup_time_s:
            t = time.perf_counter()
            fn()
            _sync(device)
            took.append(time.perf_counter() - t)
        once.append(float(np.median(took[1:])))  # not the mean: a first call 10x slower made rounds too short
    calls = tuple(max(1, round(round_time_s / max(t, 1e-7))) for t in once)  # round: 0.004/0.002 may be 1.99…
    per_call: list[list[float]] = [[] for _ in fns]
    start, rounds = time.perf_counter(), 0
    while rounds < max_rounds:
        order = range(len(fns)) if rounds % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            per_call[i].append(_time_calls(fns[i], calls[i], device))
        rounds += 1
        if on_round is not None and on_round(rounds):
            break
        if rounds >= min_rounds:
            result = _summarise(per_call, rounds, calls, device)
            if not result.busy or time.perf_counter() - start > max_time_s:
                return result
    return _summarise(per_call, rounds, calls, device)


def _time_calls(fn: Callable[[], object], n: int, device: torch.device) -> float:
    """Milliseconds per call over ``n`` back-to-back calls (CUDA events on a GPU, perf_counter on a CPU)."""
    if device.type == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / n
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) * 1e3 / n


def _summarise(
    per_call: list[list[float]], rounds: int, calls: tuple[int, ...], device: torch.device
) -> Interleaved:
    arrays = [np.asarray(s) for s in per_call]
    timer = f"{'cuda events' if device.type == 'cuda' else 'perf_counter'}, interleaved rounds"
    latency = tuple(LatencyStats.from_samples(list(a), 0, timer) for a in arrays)
    ratios = tuple(RatioStats.from_rounds(arrays[0] / a) for a in arrays)
    steady = RatioStats.from_rounds(arrays[0]) if len(arrays) == 1 else None
    return Interleaved(latency, ratios, rounds, calls, steady)
