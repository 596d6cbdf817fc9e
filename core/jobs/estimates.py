"""Time-left estimates a user can plan by, and the record that checks them.

A job's steps are rarely equal (a deployment job's "preparing torch.compile" step takes many times its
"timing eager" step), so a rate averaged over the steps done so far misjudges the rest. Where the store
holds a finished job of the same kind and the same number of steps, its own timeline is the model: the
time it took from this step to its end, scaled by how fast this job ran up to here compared with it,
    left = (T_past - t_past(done)) x clamp(t_here(done) / t_past(done), 1/3, 3) - (now - t_here(done)),
where t(done) is the elapsed time when step ``done`` was reached. With no such history, the rate of the
steps done since the first one (the first carries the warm-up: building, loading, the first batch):
    left = (t_here(done) - t_here(first)) / (done - first) x (total - done) - (now - t_here(done)),
but only for kinds whose steps are alike (a fine-tune's batches, a measurement's models); a kind in
``UNLIKE_STEPS`` (a deployment's runtimes, an export's stages, compound scaling's B0 to B7, a
measurement's models, mobilenetv3_small_100 beside resnet50) has no rate estimate, since its next step
may take twenty times its last. A fine-tune's rate of steps misses what follows its last step (the final
validation pass, the best weights and the bundle written): the median of that tail over the last
finished runs in the store is added (``tail_s``). With neither (one step done, or no history for an
unlike kind) there is no estimate, and the page says "estimating…".

Every job logs the estimate it would have shown at 25%, 50% and 75% of its steps (and at its first
step), with its source; once it ends, each is compared with the time it really took (``ratios``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHECKPOINTS = (0.25, 0.5, 0.75)
SCALE = (1 / 3, 3.0)
UNLIKE_STEPS = frozenset({"deploy", "export-run", "compound-scaling", "measure-backbones"})
FLOOR_S = 1.0  # a job running over its estimate still has "about 1 s" left (see _counted_down)


@dataclass(frozen=True)
class Estimate:
    seconds: float | None
    source: str  # "history", "rate" or "" (nothing known yet)


def at_step(marks: list[list[float]], done: float) -> float:
    """The elapsed seconds when step ``done`` was reached on a timeline of [done, elapsed] marks (linear
    between marks; 0 at step 0)."""
    prev_d, prev_t = 0.0, 0.0
    for d, t in marks:
        if d >= done:
            if d == prev_d:
                return t
            return prev_t + (t - prev_t) * (done - prev_d) / (d - prev_d)
        prev_d, prev_t = d, t
    return prev_t


def _counted_down(projected: float, since: float) -> float:
    """What is left of ``projected`` seconds ``since`` seconds later. A job running over keeps a small
    positive figure (``FLOOR_S``, or the projection itself when that was smaller), never zero or a
    negative time."""
    return max(projected - since, min(FLOOR_S, projected))


def remaining(
    done: float,
    total: float,
    marks: list[list[float]],
    elapsed: float,
    history: dict[str, Any] | None = None,
    alike: bool = True,
    tail_s: float = 0.0,
) -> Estimate:
    """Seconds left for a job at ``elapsed`` seconds, which reached the steps in ``marks``; ``history`` is
    a finished job of the same kind and size ({"marks": ..., "seconds": its whole duration}); ``alike``:
    whether its steps take about the same time (a rate may then be extrapolated); ``tail_s``: the work
    after the last step that a rate of steps does not see (a fine-tune's last validation pass and
    bundle), added to a rate estimate. See the module docstring."""
    if total <= 0 or done >= total:
        return Estimate(None, "")
    here = at_step(marks, done) if done > 0 else 0.0
    since = max(elapsed - here, 0.0)
    if history and history.get("seconds"):
        past = at_step(history["marks"], done) if done > 0 else 0.0
        scale = min(max(here / past, SCALE[0]), SCALE[1]) if done > 0 and past > 0 and here > 0 else 1.0
        return Estimate(_counted_down((history["seconds"] - past) * scale, since), "history")
    first = next(((d, t) for d, t in marks if d > 0), None)
    if alike and first is not None and done > first[0] and here > first[1]:
        rate = (here - first[1]) / (done - first[0])
        return Estimate(_counted_down(rate * (total - done) + tail_s, since), "rate")
    return Estimate(None, "")


def checkpoint_due(done_before: float, done: float, total: float, logged: int) -> bool:
    """Whether reaching ``done`` steps (from ``done_before``) calls for the next logged estimate: at the
    first step, then at 25%, 50% and 75%; ``logged`` estimates were logged already."""
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
