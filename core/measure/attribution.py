"""Where the time goes inside one whole forward: every module's own time, measured in the forward itself.

Every module gets a pre- and a post-forward hook that take a timestamp from the one clock
(``perf_counter_ns`` on a CPU; CUDA events, read after one synchronisation, on a GPU). A module's time
in the forward is what lies between its two stamps; its *own* time is that minus its children's, so
every op belongs to the innermost module that ran it: a block's residual add, or the reshape between two
layers, counts for the block. The root model's own time is what no submodule ran (its own functional
calls, and the hooks' bookkeeping of its direct children). Summed, the own times are the whole forward
measured in the same run, exactly; the same forward without hooks is timed interleaved with it, so the
hooks' cost is reported too.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

ROOT = ""


@dataclass(frozen=True)
class Attribution:
    """Own milliseconds per module name (``""`` is the model's own forward) over the quieter half of the
    runs."""

    whole_ms: float  # the hooked forward, mean over the runs kept (= sum of own_ms)
    clean_ms: float  # the same forward without hooks, median, timed interleaved
    own_ms: dict[str, float]
    runs: int

    @property
    def hook_overhead_ms(self) -> float:
        return self.whole_ms - self.clean_ms

    def inside(self, name: str) -> float:
        """The module's time in the forward: its own and every descendant's."""
        prefix = name + "."
        return sum(v for k, v in self.own_ms.items() if k == name or k.startswith(prefix))


def _stamper(dev: torch.device) -> tuple[Callable[[], Any], Callable[[Any, Any], float]]:
    """(take a stamp, milliseconds between two stamps) on the device's clock."""
    if dev.type == "cuda":

        def stamp() -> Any:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev

        return stamp, lambda a, b: a.elapsed_time(b)
    return time.perf_counter_ns, lambda a, b: (b - a) / 1e6


def _own_times(events: list[tuple[bool, str, Any]], span: Callable[[Any, Any], float]) -> dict[str, float]:
    """Own ms per module from one forward's (is_end, name, stamp) events, nested as the calls were."""
    own: dict[str, float] = defaultdict(float)
    stack: list[list[Any]] = []
    for is_end, name, stamp in events:
        if not is_end:
            stack.append([name, stamp, 0.0])
            continue
        started_name, start, children = stack.pop()
        inclusive = span(start, stamp)
        own[started_name] += inclusive - children
        if stack:
            stack[-1][2] += inclusive
    return dict(own)


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    dev: torch.device,
    min_runs: int = 10,
    min_time_s: float = 0.3,
    warmup: int = 2,
    max_runs: int = 200,
) -> Attribution:
    """Times ``model(x)`` with hooks (own time per module) and without (the clean forward), alternating
    round by round, for at least ``min_runs`` rounds and ``min_time_s``; keeps the quieter half of the
    hooked runs (a busy machine's slow runs say nothing of the model). Run it inside the caller's
    inference mode, autocast and thread setting."""
    stamp, span = _stamper(dev)
    modules = list(model.named_modules())
    events: list[tuple[bool, str, Any]] = []

    def hooked() -> dict[str, float]:
        hooks = []
        for name, m in modules:
            hooks.append(
                m.register_forward_pre_hook(lambda _m, _i, n=name: events.append((False, n, stamp())))
            )
            hooks.append(
                m.register_forward_hook(lambda _m, _i, _o, n=name: events.append((True, n, stamp())))
            )
        events.clear()
        try:
            model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
        finally:
            for h in hooks:
                h.remove()
        return _own_times(events, span)

    for _ in range(warmup):
        hooked()
        _timed_clean(model, x, dev, stamp, span)
    runs: list[dict[str, float]] = []
    cleans: list[float] = []
    t_end = time.perf_counter() + min_time_s
    while len(runs) < max_runs and (len(runs) < min_runs or time.perf_counter() < t_end):
        runs.append(hooked())
        cleans.append(_timed_clean(model, x, dev, stamp, span))
    totals = [sum(r.values()) for r in runs]
    cut = sorted(totals)[max(0, (len(totals) - 1) // 2)]
    kept = [r for r, t in zip(runs, totals) if t <= cut]
    names = {k for r in kept for k in r}
    own = {k: sum(r.get(k, 0.0) for r in kept) / len(kept) for k in names}
    cleans.sort()
    return Attribution(sum(own.values()), cleans[len(cleans) // 2], own, len(kept))


def _timed_clean(
    model: nn.Module,
    x: torch.Tensor,
    dev: torch.device,
    stamp: Callable[[], Any],
    span: Callable[[Any, Any], float],
) -> float:
    start = stamp()
    model(x)
    end = stamp()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return span(start, end)
