"""Launching fine-tunes in the background: a run row (the cap checked in the same transaction), then the
engine's CLI in its own process through the one spawner; resume continues a stopped or failed run."""

from __future__ import annotations

from core import jobs
from core.finetune.config import TrainConfig
from core.runs import record as runs
from core.runs.record import max_runs


def _spawn(run_id: int, extra: list[str]) -> None:
    pid = jobs.spawn(["-m", "core.runs", "train", "--quiet", *extra], runs.folder(run_id) / "log.txt")
    runs.update(run_id, **jobs.owner(pid))


def launch(cfg: TrainConfig, name: str = "") -> int:
    """Creates a queued run (refused at the cap, checked in the same transaction) and starts the engine's
    CLI for it in its own process session."""
    cfg.validate().check_environment()
    run_id = runs.create(cfg.to_dict(), name, cap=max_runs())
    _spawn(run_id, ["--run-id", str(run_id), *cfg.cli_args()])
    return run_id


def resume(run_id: int) -> None:
    """Continues a cancelled or failed run from its checkpoint (refused at the cap, like a new run)."""
    runs.requeue(run_id, cap=max_runs())
    _spawn(run_id, ["--resume", str(run_id)])
