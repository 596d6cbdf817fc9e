"""TensorBoard event files for every run, written through the training loop's callbacks (the same path as the
store), so ``tensorboard --logdir <data dir>/tensorboard`` (and ``wandb sync --sync-tensorboard``) open them.

One folder per run, ``<data dir>/tensorboard/<id> <name>`` (the id zero-padded to four digits, so runs sort in
order): TensorBoard shows each run under its Archscope name. Renaming a run renames its folder; deleting a run
deletes it. Written with ``torch.utils.tensorboard`` (TensorBoard's own protobufs, ``tensorboard`` pinned):
- ``train/loss`` every step, ``lr/<parameter group>`` every step (discriminative LRs: one curve per stage);
- ``val/loss``, ``val/top1`` and ``time/epoch_s``, ``time/train_s``, ``time/images_per_s`` at each epoch's last step;
- the run's configuration as text (``config``) and as hparams with its final metrics (``hparam/*``), so
  TensorBoard's HParams tab compares runs.
Steps are global training steps. A resumed run purges what was logged after its checkpoint (``purge_step``), so
no step appears twice."""
from __future__ import annotations

import atexit
import math
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from core.config import data_dir

ROOT = "tensorboard"


def root() -> Path:
    return data_dir() / ROOT


def folder_name(run_id: int, name: str) -> str:
    """'0007 efficientnet_lite0 · linear_probe': the id first (unique, in order), then the name made safe for a
    folder (no slash, no control character, at most 80 characters)."""
    safe = " ".join(re.sub(r"[\x00-\x1f\x7f/\\]+", " ", name).split())[:80].strip(" .")
    return f"{run_id:04d} {safe}" if safe else f"{run_id:04d}"


def existing(run_id: int) -> Path | None:
    """The run's event-file folder, whatever name it was given, or None."""
    base = root()
    if not base.is_dir():
        return None
    prefix = f"{run_id:04d}"
    for path in sorted(base.iterdir()):
        if path.is_dir() and (path.name == prefix or path.name.startswith(prefix + " ")):
            return path
    return None


def folder(run_id: int, name: str) -> Path:
    """The folder this run writes to: its existing one, renamed to its current name when that changed."""
    want = root() / folder_name(run_id, name)
    have = existing(run_id)
    if have is not None and have != want:
        have.rename(want)
    return want


def rename(run_id: int, name: str) -> Path | None:
    """Follows a rename in the Runs page (a run still training keeps writing: its open file moves with it)."""
    return folder(run_id, name) if existing(run_id) is not None else None


def delete(run_id: int) -> Path | None:
    path = existing(run_id)
    if path is not None:
        shutil.rmtree(path)
    return path


def _hparam(value: Any) -> float | str | bool:
    """A config value as TensorBoard's hparams plugin takes it (number, text or flag; None as 'none')."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    return "none" if value is None else str(value)


def config_text(run_id: int, name: str, cfg: dict[str, Any], info: dict[str, Any]) -> str:
    """The run's configuration as a Markdown table (TensorBoard's Text tab renders it)."""
    data = info.get("dataset") or {}
    rows = [("run", f"{run_id} · {name}"), ("dataset", data.get("name", cfg.get("data"))),
            ("dataset sha256", data.get("sha256", "")), ("images", data.get("images", "")),
            ("device", info.get("device", "")), ("precision", info.get("precision", "")),
            ("world size", info.get("world", 1)), ("nodes", info.get("nodes", 1))]
    rows += [(k, v) for k, v in cfg.items()]
    body = "\n".join(f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows)
    return "| setting | value |\n|---|---|\n" + body


class TensorBoardCallbacks:
    """The run's event files (see the module's docstring). A failure to write (no space, no permission) prints
    one warning and stops the event files; the run goes on."""

    def __init__(self, run_id: int, cfg: Any) -> None:
        self.run_id, self.cfg = run_id, cfg
        self.writer: Any = None
        self.step = 0

    def on_start(self, info: dict[str, Any]) -> None:
        from core.finetune import runs
        name = runs.get(self.run_id).name
        try:
            from torch.utils.tensorboard import SummaryWriter
            path = folder(self.run_id, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            resumed = int(info.get("resumed_from_step") or 0)
            self.step = resumed
            self.writer = SummaryWriter(str(path), purge_step=resumed + 1 if resumed else None, flush_secs=5,
                                        max_queue=200)
            self.writer.add_text("config", config_text(self.run_id, name, self.cfg.to_dict(), info), resumed)
            atexit.register(self.close)
        except (ImportError, OSError) as err:
            self._stop(err)

    def _write(self, fn: Any, *args: Any) -> None:
        if self.writer is None:
            return
        try:
            fn(*args)
        except OSError as err:
            self._stop(err)

    def _stop(self, err: BaseException) -> None:
        print(f"warning: TensorBoard event files of run {self.run_id} stopped ({type(err).__name__}: {err}); "
              "the run goes on", file=sys.stderr, flush=True)
        self.writer = None

    def on_step(self, epoch: int, step: int, values: dict[str, float], groups: dict[str, float] | None = None) -> None:
        self.step = step
        if self.writer is None:
            return
        self._write(self.writer.add_scalar, "train/loss", values["loss"], step)
        for group, lr in (groups or {"head": values.get("lr", float("nan"))}).items():
            self._write(self.writer.add_scalar, f"lr/{group}", lr, step)

    def on_epoch(self, epoch: int, step: int, values: dict[str, float], details: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for tag, key in (("val/loss", "val_loss"), ("val/top1", "val_top1"), ("time/epoch_s", "epoch_s"),
                         ("time/train_s", "train_s"), ("time/images_per_s", "images_per_s")):
            if key in values:
                self._write(self.writer.add_scalar, tag, values[key], step)
        self._write(self.writer.flush)

    def on_end(self, status: str, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams
        clean = {f"hparam/{k.replace(' ', '_').replace('-', '')}": (v if math.isfinite(v) else float("nan"))
                 for k, v in metrics.items()}
        try:
            exp, ssi, sei = hparams({k: _hparam(v) for k, v in self.cfg.to_dict().items()}, clean)
            for summary in (exp, ssi, sei):
                self.writer.file_writer.add_summary(summary)
            for k, v in clean.items():
                self.writer.add_scalar(k, v, self.step)
            self.writer.add_text("status", status, self.step)
        except OSError as err:
            self._stop(err)
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except OSError:
                pass
            self.writer = None

    def should_stop(self) -> bool:
        return False
