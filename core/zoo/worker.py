"""Background worker that measures a list of backbones: ``python -m core.zoo.worker --job ID``.

Progress and cancel go through the jobs table; results land in the measurements cache, so the page shows
each model as soon as it is done, and a refresh or a second browser sees the same.
"""

from __future__ import annotations

import sys

from core import jobs
from core.measure.settings import Setting
from core.zoo.catalog import BackboneError, check_resolution
from core.zoo.measure import cached, measure, throughput_sweep, time_together

KIND = "measure-backbones"
MODULE = "core.zoo.worker"
MAX_MODELS = 64  # a link can name any number of models; each is built in turn


def start(
    models: list[str],
    setting: Setting,
    resolution: int | None = None,
    sweep: bool = False,
    refresh: bool = False,
    time_cap_s: float = 20.0,
) -> jobs.Job:
    """Launches the worker for ``models``; one job of this kind runs at a time."""
    if not 1 <= len(models) <= MAX_MODELS:
        raise BackboneError(f"refused: pick 1 to {MAX_MODELS} models per job, not {len(models)}")
    if resolution is not None:
        check_resolution(resolution)
    running = jobs.latest(KIND)
    if running is not None and running.active:
        raise RuntimeError(f"a measurement job (#{running.id}) is already running; stop it or wait for it")
    args = {
        "models": models,
        "device": setting.device,
        "precision": setting.precision,
        "memory_format": setting.memory_format,
        "threads": setting.threads,
        "resolution": resolution,
        "sweep": sweep,
        "refresh": refresh,
        "time_cap_s": time_cap_s,
    }
    return jobs.start(
        KIND,
        MODULE,
        args,
        total=len(models) + 1,  # counting each model, then timing them all
        what="a measurement job",
    )


def run(job_id: int) -> int:
    job = jobs.get(job_id)
    a = job.args
    setting = Setting(a["device"], a["precision"], a["memory_format"], a["threads"])
    jobs.mark_running(job_id)
    failures: list[str] = []
    models, n = a["models"], len(a["models"])
    fresh: list[str] = []
    for i, name in enumerate(models):  # counts first (latency follows, for all of them together)
        if jobs.progress(job_id, i, current=name, message=f"counting {name}"):
            jobs.finish(job_id, "cancelled", message=f"stopped after counting {i} of {n} models")
            return 0
        try:
            if a["refresh"] or cached(name, a["resolution"], setting) is None:
                measure(name, a["resolution"], setting, refresh=True, time_it=False)
                fresh.append(name)
        except BackboneError as err:
            failures.append(f"{name}: {err}")
    if len(fresh) == 1:  # nothing to interleave with: timed alone
        jobs.progress(job_id, n, current=fresh[0], message=f"timing {fresh[0]}")
        measure(fresh[0], a["resolution"], setting, refresh=True)
    elif fresh:

        def on_round(rounds: int) -> bool:
            return jobs.progress(
                job_id,
                n,
                current=f"round {rounds}",
                message=f"timing {len(fresh)} model(s) interleaved, round {rounds}",
            )

        time_together(fresh, a["resolution"], setting, on_round=on_round)
    for name in fresh if a["sweep"] else []:
        if jobs.progress(job_id, n, current=name, message=f"throughput sweep of {name}"):
            break
        try:
            throughput_sweep(
                name,
                a["resolution"],
                setting,
                time_cap_s=a["time_cap_s"],
                should_stop=lambda: jobs.get(job_id).cancel,
            )
        except BackboneError as err:
            failures.append(f"{name}: {err}")
    if jobs.get(job_id).cancel:
        jobs.finish(job_id, "cancelled", message="stopped after timing")
        return 0
    jobs.progress(job_id, n + 1, current="", message="done")
    jobs.finish(job_id, "done", message="; ".join(failures) or f"measured {len(a['models'])} models")
    return 0


def main(argv: list[str] | None = None) -> int:
    return jobs.worker_main(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
