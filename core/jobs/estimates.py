"""Time-left estimates a user can plan by, and the record that checks them.

A job's steps are rarely equal (a deployment job's "preparing torch.compile" step takes many times its "timing
eager" step), so a rate averaged over the steps done so far misjudges the rest. Where the store holds a finished
job of the same kind and the same number of steps, its own timeline is the model: the time it took from this step
to its end, scaled by how fast this job ran up to here compared with it,
    left = (T_past - t_past(done)) x clamp(t_here(done) / t_past(done), 1/3, 3) - (now - t_here(done)),
where t(done) is the elapsed time when step ``done`` was reached. With no such history, the mean rate of the steps
done so far:
    left = t_here(done) / done x (total - done) - (now - t_here(done)).
With neither (nothing done, no history) there is no estimate, and the page says "estimating…".

Every job logs the estimate it would have shown at 25%, 50% and 75% of its steps (and at its first step), with its
source; once it ends, each is compared with the time it really took (``ratios``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHECKPOINTS = (0.25, 0.5, 0.75)
SCALE = (1 / 3, 3.0)
FLOOR_S = 1.0               # a job running over its estimate still has "about 1 s" left, never a negative time


@dataclass(frozen=True)
class Estimate:
    seconds: float | None
    source: str                   # "history", "rate" or "" (nothing known yet)


def at_step(marks: list[list[float]], done: float) -> float:
    """The elapsed seconds when step ``done`` was reached on a timeline of [done, elapsed] marks (linear between
    marks; 0 at step 0)."""
    prev_d, prev_t = 0.0, 0.0
    for d, t in marks:
        if d >= done:
            if d == prev_d:
                return t
            return prev_t + (t - prev_t) * (done - prev_d) / (d - prev_d)
        prev_d, prev_t = d, t
    return prev_t


def remaining(done: float, total: float, marks: list[list[float]], elapsed: float,
              history: dict[str, Any] | None = None) -> Estimate:
    """Seconds left for a job at ``elapsed`` seconds, which reached the steps in ``marks``; ``history`` is a finished
    job of the same kind and size ({"marks": ..., "seconds": its whole duration}). See the module docstring."""
    if total <= 0 or done >= total:
        return Estimate(None, "")
    here = at_step(marks, done) if done > 0 else 0.0
    since = max(elapsed - here, 0.0)
    if history and history.get("seconds"):
        past = at_step(history["marks"], done) if done > 0 else 0.0
        scale = min(max(here / past, SCALE[0]), SCALE[1]) if done > 0 and past > 0 and here > 0 else 1.0
        return Estimate(max((history["seconds"] - past) * scale - since, FLOOR_S), "history")
    if done > 0 and here > 0:
        return Estimate(max(here / done * (total - done) - since, FLOOR_S), "rate")
    return Estimate(None, "")


def checkpoint_due(done_before: float, done: float, total: float, logged: int) -> bool:
    """Whether reaching ``done`` steps (from ``done_before``) calls for the next logged estimate: at the first step,
    then at 25%, 50% and 75%; ``logged`` estimates were logged already."""
    if total <= 0 or done >= total or done <= done_before:
        return False
    marks = (1 / total, *CHECKPOINTS)
    return logged < len(marks) and done / total >= marks[logged]


def ratios(estimates: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """Each logged estimate beside what really happened: actual seconds left / estimated seconds left."""
    out = []
    for e in estimates:
        actual = seconds - e["elapsed_s"]
        if e.get("eta_s") and actual > 0:
            out.append({**e, "actual_s": actual, "ratio": actual / e["eta_s"]})
    return out
