"""Deployment measurements as a background job (the one lifecycle): ``python -m core.deploy.job --job ID``.
Each target is measured in every runtime in turn, with progress, and lands in the store as soon as it is
done."""

from __future__ import annotations

import sys
from typing import Any

from core import jobs
from core.deploy.deployable import Deployable
from core.deploy.measure import cached, measure_group
from core.deploy.targets import SERVER, keys, parse_targets
from core.errors import first_line

KIND = "deploy"
MODULE = "core.deploy.job"
MAX_TARGETS = 12


def start(
    targets: list[Deployable], threads: int, names: tuple[str, ...] | None = None, refresh: bool = False
) -> jobs.Job:
    """Launches the job for ``targets``; one deployment job runs at a time (checked in the insert's
    transaction)."""
    if not 1 <= len(targets) <= MAX_TARGETS:
        raise ValueError(f"pick 1 to {MAX_TARGETS} targets per deployment job, not {len(targets)}")
    names = parse_targets(",".join(names or keys(SERVER)))
    for t in targets:
        t.check_memory()  # a BudgetError (ValueError) says what and by how much
    args = {
        "targets": [
            {"kind": t.kind, "name": t.name, "shape": list(t.shape), "cfg": dict(t.cfg), "label": t.label}
            for t in targets
        ],
        "threads": threads,
        "runtimes": list(names),
        "refresh": refresh,
    }
    return jobs.start(KIND, MODULE, args, total=len(targets) * len(names), what="a deployment measurement")


def target_of(d: dict[str, Any]) -> Deployable:
    return Deployable(d["kind"], d["name"], tuple(d["shape"]), tuple(sorted(d["cfg"].items())), d["label"])


def run(job_id: int) -> int:
    """Measures the job's targets: each model alone (its runtimes interleaved), or all blocks of a pair
    together."""
    a = jobs.get(job_id).args
    jobs.mark_running(job_id)
    targets = [target_of(spec) for spec in a["targets"]]
    todo = [t for t in targets if a["refresh"] or cached(t.key, t.resolution, a["threads"]) is None]
    groups = [todo] if todo and all(t.kind == "block" for t in todo) else [[t] for t in todo]
    failures, done = [], [0]
    total = max(1, sum(len(g) for g in groups) * (len(a["runtimes"]) + 1))
    jobs.set_total(job_id, total)

    def on_step(message: str) -> bool:
        done[0] = min(done[0] + 1, total - 1)
        return jobs.progress(job_id, done[0], current=message.split(":")[0], message=message)

    for group in groups:
        try:
            measure_group(group, tuple(a["runtimes"]), a["threads"], on_step=on_step)
        except Exception as err:  # noqa: BLE001  one target failing never stops the others
            failures.append(f"{', '.join(t.label for t in group)}: {first_line(err, 200)}")
        if jobs.get(job_id).cancel:
            jobs.finish(job_id, "cancelled", message="stopped by request")
            return 0
    jobs.progress(job_id, total, current="", message="done")
    jobs.finish(job_id, "done", message="; ".join(failures) or f"measured {len(targets)} target(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return jobs.worker_main(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
