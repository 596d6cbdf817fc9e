"""What a run leaves, asked once: its best weights, classes, preprocessing, splits and dataset root.
Evaluation, the bundle's "try an image" and the ONNX export all start from ``artifacts(run)`` instead of
re-deriving each piece from the run folder, the checkpoint and the dataset."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data.names import nfc
from core.data.preprocess import Preprocessing
from core.finetune import bundle
from core.runs import record


class NoArtifacts(RuntimeError):
    """The run has nothing to take yet (no finished epoch); the message says so in one line."""


@dataclass
class Split:
    paths: list[Path]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class Artifacts:
    run: record.Run
    folder: Path  # the run's folder (checkpoint, best weights, bundle)
    arch: str
    classes: list[str]
    preprocessing: Preprocessing
    epoch: int  # the best epoch (the one whose top-1 is reported)
    val_top1: float | None
    val_loss: float | None
    state: dict[str, torch.Tensor]  # that epoch's weights
    checkpoint_sha256: str  # of best.pt: which weights an export holds
    label: str  # "epoch 3, the best val top-1"
    dataset_root: Path | None = None  # the class folders' root (None: the dataset is gone)
    splits: dict[str, Split] | None = None
    why_no_data: str = ""

    def model(self) -> torch.nn.Module:
        """The best epoch as a timm model in eval mode, exportable (no in-place activations ONNX cannot
        trace)."""
        import timm

        model = timm.create_model(self.arch, pretrained=False, num_classes=len(self.classes), exportable=True)
        model.load_state_dict(self.state)
        return model.eval()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def artifacts(run: record.Run | int, with_splits: bool = True) -> Artifacts:
    """Everything a consumer of the run needs, read once. NoArtifacts when no epoch has finished. With
    ``with_splits`` the run's own image files per split are found in its dataset; a dataset that is gone
    is no error here (``splits`` is None and ``why_no_data`` says why)."""
    run = record.get(run) if isinstance(run, int) else run
    folder = record.folder(run)
    best = bundle.load_best(folder)
    if best is None:
        raise NoArtifacts(f"run {run.id} has no checkpoint yet: it must finish at least one epoch first")
    ckpt = bundle.load_checkpoint(folder) or {}
    classes = list(run.result.get("info", {}).get("classes") or ckpt.get("classes", []))
    label = (
        f"epoch {best['epoch']}, the best val top-1 so far (the run is {run.status})"
        if run.active
        else f"epoch {best['epoch']}, the best val top-1"
    )
    art = Artifacts(
        run,
        folder,
        run.config["model"],
        classes,
        Preprocessing.for_model(run.config["model"], int(run.config["image_size"])),
        int(best["epoch"]),
        best.get("val_top1"),
        best.get("val_loss"),
        best["model"],
        sha256(folder / bundle.BEST),
        label,
    )
    if with_splits:
        art.dataset_root, art.splits, art.why_no_data = _splits(run, ckpt, classes)
    return art


def _splits(
    run: record.Run, ckpt: dict[str, Any], classes: list[str]
) -> tuple[Path | None, dict[str, Split] | None, str]:
    """The run's images per split, from what training recorded: the class folders' root
    (``info.dataset.root``) and the split's paths under it, each labelled by its class folder."""
    if not ckpt:
        return None, None, "the run has no checkpoint with its split"
    recorded = (run.result.get("info", {}).get("dataset") or {}).get("root")
    if not recorded:
        return (
            None,
            None,
            (
                "its dataset folder was not recorded (the run was trained before Archscope kept it); "
                "train it again to score or calibrate its export"
            ),
        )
    root = Path(recorded)
    if not root.is_dir():
        return None, None, f"its dataset folder {root} is gone"
    out = {}
    for name in ("train", "val", "test"):
        paths = list(ckpt.get(f"split_{name}", []))
        missing = [p for p in paths if not (root / p).is_file() or nfc(p.split("/")[0]) not in classes]
        if missing:
            return root, None, f"{len(missing)} image(s) of its split are no longer in the dataset"
        out[name] = Split(
            [root / p for p in paths],
            np.asarray([classes.index(nfc(p.split("/")[0])) for p in paths], dtype=np.int64),
        )
    return root, out, ""
