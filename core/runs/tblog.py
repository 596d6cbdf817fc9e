"""TensorBoard event files for every run, written through the training loop's callbacks (the same path as
the store), so ``tensorboard --logdir <data dir>/tensorboard`` (and ``wandb sync --sync-tensorboard``)
open them.

One folder per run, ``<data dir>/tensorboard/<id> <name>`` (the id zero-padded to four digits, so runs
sort in order; the name made safe and cut to 255 bytes by ``core.data.names.path_part``): TensorBoard
shows each run under its Archscope name. Renaming a run renames its folder; deleting a run deletes it.
Each folder holds a marker naming its run folder, and the run folder names it back, so a folder left by
a lost store is never adopted by a new run of the same id: that run gets ``<id>-2 <name>``. Written with
``torch.utils.tensorboard`` (TensorBoard's own protobufs, ``tensorboard`` pinned):
- ``train/loss`` every step, ``lr/<parameter group>`` every step (discriminative LRs: one curve per
  stage);
- ``val/loss``, ``val/top1`` and ``time/epoch_s``, ``time/train_s``, ``time/images_per_s`` at each
  epoch's last step;
- the run's configuration as text (``config``) and as hparams with its final metrics (``hparam/*``), so
  TensorBoard's HParams tab compares runs. Steps are global training steps. A resumed run purges what
  was logged after its checkpoint (``purge_step``), so no step appears twice."""

from __future__ import annotations

import atexit
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from core.config import data_dir
from core.data.names import path_part

ROOT = "tensorboard"


def root() -> Path:
    return data_dir() / ROOT


MARKER = ".archscope-run"  # in the event folder: which run folder it belongs to
POINTER = "tensorboard.json"  # in the run folder: the name of its event folder


def folder_name(run_id: int, name: str, k: int = 1) -> str:
    """'0007 efficientnet_lite0 · linear_probe': the id first (unique, in order; '0007-2' when a lost store
    left a '0007'), then the name, through the one function that turns a user's text into a path."""
    return path_part(name, prefix=f"{run_id:04d} " if k == 1 else f"{run_id:04d}-{k} ")


def _marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / MARKER).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def existing(run_id: int, run_dir: Path) -> Path | None:
    """The run's event folder, whatever name it was given, or None. The run folder names it (``POINTER``)
    and it names the run folder back (``MARKER``); a folder from before markers is adopted only by a run
    that has trained before (a checkpoint in its folder), never by a new run whose id a lost store
    reused."""
    base = root()
    if not base.is_dir():
        return None
    try:
        named = base / json.loads((run_dir / POINTER).read_text())["folder"]
        if named.is_dir() and (_marker(named) or {}).get("run_dir") == str(run_dir):
            return named
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if not (run_dir / "checkpoint.pt").exists():
        return None
    prefix = f"{run_id:04d}"
    for path in sorted(base.iterdir()):
        if path.is_dir() and path.name.split(" ", 1)[0] == prefix and _marker(path) is None:
            return path
    return None


def _k(path: Path) -> int:
    head = path.name.split(" ", 1)[0]
    return int(head.split("-")[1]) if "-" in head and head.split("-")[1].isdigit() else 1


def _point(run_dir: Path, path: Path) -> None:
    (run_dir / POINTER).write_text(json.dumps({"folder": path.name}))


def folder(run_id: int, name: str, run_dir: Path) -> Path:
    """The folder this run writes to: its existing one, renamed to its current name when that changed, or a
    new one under a name no other folder holds (made, with its marker, and named in the run folder)."""
    have = existing(run_id, run_dir)
    if have is not None:
        return rename(run_id, run_dir, name) or have
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    taken = {p.name.split(" ", 1)[0] for p in base.iterdir()}
    k = 1
    while (f"{run_id:04d}" if k == 1 else f"{run_id:04d}-{k}") in taken:
        k += 1
    path = base / folder_name(run_id, name, k)
    path.mkdir()
    (path / MARKER).write_text(json.dumps({"run": run_id, "run_dir": str(run_dir)}))
    _point(run_dir, path)
    return path


def rename(run_id: int, run_dir: Path, name: str) -> Path | None:
    """Follows a rename in the Runs page (a run still training keeps writing: its open file moves with it).
    An OSError (permissions, a full disk) is raised with the folder as it was: the caller keeps the old
    name."""
    have = existing(run_id, run_dir)
    if have is None:
        return None
    want = have.with_name(folder_name(run_id, name, _k(have)))
    if have != want:
        have.rename(want)
        try:
            if _marker(want) is None:
                (want / MARKER).write_text(json.dumps({"run": run_id, "run_dir": str(run_dir)}))
            _point(run_dir, want)
        except OSError:
            want.rename(have)
            raise
    return want


def delete(run_id: int, run_dir: Path) -> Path | None:
    """Removes the run's event files; raises OSError naming the first file that could not be removed."""
    path = existing(run_id, run_dir)
    if path is not None:
        remove_tree(path)
    return path


def remove_tree(path: Path) -> None:
    """``shutil.rmtree``, except that a file that cannot be removed raises OSError naming it (and why)."""
    problems: list[str] = []

    def note(_fn: Any, p: str, info: Any) -> None:
        problems.append(f"{p} ({getattr(info[1], 'strerror', None) or info[1]})")

    shutil.rmtree(path, onerror=note)
    if problems or path.exists():
        raise OSError(f"cannot remove {problems[0] if problems else path}")


def _hparam(value: Any) -> float | str | bool:
    """A config value as TensorBoard's hparams plugin takes it (number, text or flag; None as 'none')."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    return "none" if value is None else str(value)


def config_text(run_id: int, name: str, cfg: dict[str, Any], info: dict[str, Any]) -> str:
    """The run's configuration as a Markdown table (TensorBoard's Text tab renders it)."""
    data = info.get("dataset") or {}
    rows = [
        ("run", f"{run_id} · {name}"),
        ("dataset", data.get("name", cfg.get("data"))),
        ("dataset sha256", data.get("sha256", "")),
        ("images", data.get("images", "")),
        ("device", info.get("device", "")),
        ("precision", info.get("precision", "")),
        ("world size", info.get("world", 1)),
        ("nodes", info.get("nodes", 1)),
    ]
    rows += [(k, v) for k, v in cfg.items()]
    body = "\n".join(f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows)
    return "| setting | value |\n|---|---|\n" + body


class TensorBoardCallbacks:
    """The run's event files (see the module's docstring). A failure to write (no space, no permission)
    prints one warning and stops the event files; the run goes on."""

    def __init__(self, run_id: int, name: str, run_dir: Path, cfg: Any) -> None:
        self.run_id, self.name, self.run_dir, self.cfg = run_id, name, run_dir, cfg
        self.writer: Any = None
        self.step = 0

    def on_start(self, info: dict[str, Any]) -> None:
        name = self.name
        try:
            from torch.utils.tensorboard import SummaryWriter

            path = folder(self.run_id, name, self.run_dir)
            resumed = int(info.get("resumed_from_step") or 0)
            self.step = resumed
            self.writer = SummaryWriter(
                str(path), purge_step=resumed + 1 if resumed else None, flush_secs=5, max_queue=200
            )
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
        print(
            f"warning: TensorBoard event files of run {self.run_id} stopped ({type(err).__name__}: {err}); "
            "the run goes on",
            file=sys.stderr,
            flush=True,
        )
        self.writer = None

    def on_step(
        self, epoch: int, step: int, values: dict[str, float], groups: dict[str, float] | None = None
    ) -> None:
        self.step = step
        if self.writer is None:
            return
        self._write(self.writer.add_scalar, "train/loss", values["loss"], step)
        for group, lr in (groups or {"head": values.get("lr", float("nan"))}).items():
            self._write(self.writer.add_scalar, f"lr/{group}", lr, step)

    def on_epoch(self, epoch: int, step: int, values: dict[str, float], details: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for tag, key in (
            ("val/loss", "val_loss"),
            ("val/top1", "val_top1"),
            ("time/epoch_s", "epoch_s"),
            ("time/train_s", "train_s"),
            ("time/images_per_s", "images_per_s"),
        ):
            if key in values:
                self._write(self.writer.add_scalar, tag, values[key], step)
        self._write(self.writer.flush)

    def on_end(self, status: str, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams

        clean = {
            f"hparam/{k.replace(' ', '_').replace('-', '')}": v
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and math.isfinite(v)
        }  # no NaN is ever written
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
