"""One fine-tune run recorded in the store, as the CLI, the launcher's worker and the freezing-depth
experiment all run it: the store callbacks, the run's folder and wall time across resumes, and failures
ended with words."""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch.distributed as dist

from core.config import DataDirError
from core.data.errors import DatasetError
from core.errors import first_line
from core.finetune.config import TrainConfig
from core.finetune.weights import WeightsError
from core.jobs.estimates import checkpoint_due, remaining
from core.jobs.lifecycle import owner
from core.jobs.store import StoreError
from core.runs import record as runs
from core.runs.record import RunBusy

USER_ERRORS = (DatasetError, WeightsError, ValueError, FileNotFoundError, StoreError, DataDirError)


class StoreCallbacks:
    """Reports to the run store (buffered about twice a second) and to a tqdm bar; reads cancel requests."""

    def __init__(self, run_id: int, run_dir: Path, total_epochs: int, quiet: bool = False) -> None:
        self.run_id, self.run_dir, self.total_epochs, self.quiet = run_id, run_dir, total_epochs, quiet
        self.buffer: list[tuple[int, int, dict[str, float]]] = []
        self.last_flush = self.last_cancel_check = 0.0
        self.cancel = False
        self.bar = None
        self.steps = self.total_steps = 0
        self.t0 = time.time()
        self.logged: list[dict[str, Any]] = []
        self.first = [0, 0.0]
        self.tail_s = 0.0

    def on_start(self, info: dict[str, Any]) -> None:
        self.t0 = time.time()
        self.total_steps = info["steps_per_epoch"] * (self.total_epochs - info["resumed_from_epoch"])
        self.tail_s = runs.end_tail_s()  # what follows the last step, from the runs before (as the page does)
        runs.update(
            self.run_id,
            status="running",
            **owner(os.getpid()),
            device=info["device"],
            started=self.t0,
            result={"info": info},
            estimates="[]",
        )
        (self.run_dir / "info.json").write_text(json.dumps(info, indent=2))
        if info.get("no_val_classes"):
            print(
                f"warning: no validation image for class(es) {', '.join(info['no_val_classes'])}: "
                "val top-1 says nothing about them",
                file=sys.stderr,
                flush=True,
            )
        if not self.quiet:
            from tqdm import tqdm

            total = info["steps_per_epoch"] * (self.total_epochs - info["resumed_from_epoch"])
            self.bar = tqdm(total=total, unit="step", desc=f"run {self.run_id}", file=sys.stderr)

    def flush(self) -> None:
        for epoch, step, values in self.buffer:
            runs.log_metrics(self.run_id, epoch, step, "train", values)
        self.buffer.clear()
        self.last_flush = time.monotonic()

    def on_step(
        self, epoch: int, step: int, values: dict[str, float], groups: dict[str, float] | None = None
    ) -> None:
        self.buffer.append((epoch, step, values))
        self.steps += 1
        if self.steps == 1:
            self.first = [
                1,
                time.time() - self.t0,
            ]  # the first step carries the warm-up: rates start after it
        if checkpoint_due(self.steps - 1, self.steps, self.total_steps, len(self.logged)):
            elapsed = time.time() - self.t0  # the estimate the Watch view shows now (record.progress)
            est = remaining(
                self.steps, self.total_steps, [self.first, [self.steps, elapsed]], elapsed, tail_s=self.tail_s
            )
            self.logged.append(
                {
                    "done": self.steps,
                    "total": self.total_steps,
                    "elapsed_s": round(elapsed, 3),
                    "eta_s": est.seconds,
                    "source": est.source,
                }
            )
            runs.update(self.run_id, estimates=json.dumps(self.logged))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(epoch=epoch + 1, loss=f"{values['loss']:.3f}")
        if time.monotonic() - self.last_flush > 0.5:
            self.flush()

    def on_epoch(self, epoch: int, step: int, values: dict[str, float], details: dict[str, Any]) -> None:
        self.flush()
        runs.log_metrics(self.run_id, epoch, step, "val", values)
        (self.run_dir / f"eval_epoch{epoch + 1:03d}.json").write_text(json.dumps(details))
        message = (
            f"epoch {epoch + 1}/{self.total_epochs}: val top-1 {values['val_top1']:.3f}, "
            f"val loss {values['val_loss']:.3f}"
        )
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def on_end(self, status: str, metrics: dict[str, float]) -> None:
        self.flush()

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self.cancel and now - self.last_cancel_check > 0.2:
            self.cancel = runs.cancel_requested(self.run_id)
            self.last_cancel_check = now
        return self.cancel


def run_callbacks(run: runs.Run, run_dir: Path, cfg: TrainConfig, quiet: bool) -> Any:
    """Where a run's progress goes (rank 0 only): the store and the TensorBoard event files, one callback
    path."""
    from core.runs.tblog import TensorBoardCallbacks

    return Fanout(
        StoreCallbacks(run.id, run_dir, cfg.epochs, quiet=quiet),
        TensorBoardCallbacks(run.id, run.name, run_dir, cfg),
    )


class Fanout:
    """Several callbacks as one: each hears every event; a stop asked by any of them is a stop."""

    def __init__(self, *callbacks: Any) -> None:
        self.callbacks = callbacks

    def on_start(self, info: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_start(info)

    def on_step(
        self, epoch: int, step: int, values: dict[str, float], groups: dict[str, float] | None = None
    ) -> None:
        for cb in self.callbacks:
            cb.on_step(epoch, step, values, groups)

    def on_epoch(self, epoch: int, step: int, values: dict[str, float], details: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_epoch(epoch, step, values, details)

    def on_end(self, status: str, metrics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_end(status, metrics)

    def should_stop(self) -> bool:
        return any(cb.should_stop() for cb in self.callbacks)


def _run_id(run_id: int | None, cfg: TrainConfig, name: str, rank: int) -> int:
    if rank == 0 and run_id is None:
        run_id = runs.create(cfg.to_dict(), name)
    if dist.is_initialized():
        box = [run_id]
        dist.broadcast_object_list(box, src=0)
        run_id = box[0]
    return int(run_id)


def execute(
    cfg: TrainConfig, run_id: int | None = None, name: str = "", resume: bool = False, quiet: bool = True
) -> int:
    """Trains ``cfg`` into run ``run_id`` (a new run when None; with ``resume``, continues it from its
    checkpoint). Returns an exit code: 0 done or cancelled, 2 bad input (one line on stderr), 1 a crash."""
    from core.finetune.distributed import from_rank0, init, lost_peer, timeout_s
    from core.finetune.trainer import train

    try:  # bad input: one line, exit 2, nothing in the store
        cfg.validate().check_environment()
    except ValueError as err:
        return _fail(run_id, 0, str(err), code=2)
    rank, _ = init(cfg.device)
    try:
        run_id = _run_id(run_id, cfg, name, rank)
        # only global rank 0 reads or writes the store and the run folder (on another node the other ranks
        # have
        # a data directory of their own, without this run); they get the folder's path for the record only
        run_dir, wall_offset, cb = Path(), 0.0, None
        if rank == 0:
            run = runs.get(run_id)
            run_dir = runs.folder(run)
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = runs.hold_worker_lock(run_id, run_dir)  # noqa: F841  held while this function trains
            wall_offset = float(run.result.get("wall_s") or 0.0) if resume else 0.0
            from core.finetune.bundle import load_checkpoint

            ckpt = load_checkpoint(run_dir)
            wall_offset = max(wall_offset, float((ckpt or {}).get("wall_s", 0.0)))
            runs.drop_metrics_from(run_id, ckpt["epoch"] if ckpt else 0)
            runs.update(
                run_id,
                run_dir=str(run_dir),
                config=cfg.to_dict(),
                cancel=0,
                error="",
                status="running",
                **owner(os.getpid()),
            )
            cb = run_callbacks(run, run_dir, cfg, quiet)
        home, host = from_rank0((str(run_dir), socket.gethostname()))
        run_dir = Path(home)
        if rank != 0:  # where to look for the record, on a node that has none
            print(
                f"rank {rank} on {socket.gethostname()}: run {run_id} is recorded by global rank 0 on {host} "
                f"(its folder there: {home})",
                flush=True,
            )
        result = train(cfg, run_dir, cb, wall_offset=wall_offset)
        if rank == 0:
            runs.update(
                run_id,
                status=result.status,
                finished=time.time(),
                result={
                    **runs.get(run_id).result,
                    "best_top1": result.best_top1,
                    "last": result.last,
                    "export_dir": result.export_dir,
                    "best_epoch": result.best_epoch,
                    "test": result.test,
                    "extraction_s": result.extraction_s,
                    "wall_s": result.wall_s,
                    "note": result.note,
                    "epochs_done": result.epochs_done,
                },
            )
            print(
                f"run {run_id} {result.status}: best val top-1 {result.best_top1:.3f}"
                + (f"; exported to {result.export_dir}" if result.export_dir else "")
                + (f" ({result.note})" if result.note else ""),
                flush=True,
            )
        return 0
    except USER_ERRORS as err:
        return _fail(run_id, rank, f"{err}", code=2)
    except RunBusy as err:  # another worker owns this run: its row is not ours to touch
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001  a crash still ends the run as failed, with words
        if lost_peer(err):
            return _fail(
                run_id,
                rank,
                f"another rank of this run stopped answering ({peer_error(err)}): a node "
                f"died, lost its network or timed out after "
                f"{timeout_s():g} s; resume the run with --resume {run_id} on any set of nodes (it "
                "continues from its last checkpoint)",
                code=1,
            )
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return _fail(
                run_id,
                rank,
                f"disk full: {err.strerror or first_line(err)}; free some space (the data "
                "directory's cache/ and datasets/ can be cleaned on the Runs page) and resume the run",
                code=1,
            )
        if run_id is not None:
            try:
                folder = runs.folder(run_id)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "traceback.txt").write_text(traceback.format_exc())
            except (OSError, StoreError, DataDirError, KeyError):
                pass
        return _fail(run_id, rank, f"{type(err).__name__}: {first_line(err)}", code=1)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def peer_error(err: BaseException) -> str:
    """A collective's failure in a few words: gloo's source path and its advice dropped."""
    import re

    text = re.sub(r"^\[[^\]]*\]\s*", "", first_line(err)).split(". This is typically")[0]
    return f"{type(err).__name__}: {text[:200]}"


def _fail(run_id: int | None, rank: int, message: str, code: int) -> int:
    if run_id is not None and rank == 0:
        try:
            runs.update(run_id, status="failed", error=message, finished=time.time())
        except (StoreError, DataDirError) as err:
            message += f" (and the run could not be marked failed: {err})"
    print(f"error: {message}", file=sys.stderr)
    return code
