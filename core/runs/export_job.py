"""Exporting a run (ONNX, int8 calibration, scoring, timing) as a background job: ``python -m
core.runs.export_job --job ID``. One export at a time; its progress and its end go through the jobs
table."""

from __future__ import annotations

import errno
import sys

from core import jobs
from core.deploy import DeployError
from core.errors import first_line
from core.runs.export import export_run

KIND = "export-run"
MODULE = "core.runs.export_job"
STEPS = 6


def start(run_id: int, int8: bool) -> jobs.Job:
    return jobs.start(KIND, MODULE, {"run": run_id, "int8": int8}, total=STEPS, what="an ONNX export")


def friendly(err: BaseException) -> str:
    """One line for the page: a refusal as it is, a full disk in words, anything else with its type."""
    if isinstance(err, DeployError):
        return str(err)
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return (
            "disk full while writing the export; nothing was half-written. Free some space (the data "
            "directory's "
            "cache/ and datasets/ can be cleaned) and export again"
        )
    return f"{type(err).__name__}: {first_line(err, 200)}"


def run(job_id: int) -> int:
    a = jobs.get(job_id).args
    jobs.mark_running(job_id)
    done = [0]

    def on_step(message: str) -> bool:
        done[0] = min(done[0] + 1, STEPS - 1)
        return jobs.progress(job_id, done[0], current=f"run {a['run']}", message=message)

    try:
        record = export_run(a["run"], a["int8"], on_step=on_step, holder=f"job #{job_id}")
    except Exception as err:  # noqa: BLE001  every failure ends the job with words
        jobs.finish(job_id, "failed", error=friendly(err))
        return 0
    jobs.progress(job_id, STEPS, current="", message="done")
    jobs.finish(
        job_id,
        "done",
        message=("reused the files of epoch " if record.get("reused") else "exported epoch ")
        + str(record["epoch"]),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return jobs.worker_main(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
