"""Evaluating a finished run: the confusion matrix with per-class precision and recall, and the top losses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.finetune.batches import wilson  # noqa: F401  (its home is the engine: the trainer scores with it)
from core.runs import record as runs


def evaluation(run: runs.Run) -> dict[str, Any] | None:
    """The exported epoch's confusion matrix (the best val top-1; the last epoch for older runs) with
    per-class precision and recall, and which epoch it is."""
    files = sorted(runs.folder(run).glob("eval_epoch*.json"))
    if not files:
        return None
    best = run.result.get("best_epoch")
    chosen = next((f for f in files if best and f.name == f"eval_epoch{best:03d}.json"), files[-1])
    details = json.loads(chosen.read_text())
    conf = np.array(details["confusion"])
    classes = run.result.get("info", {}).get("classes", [str(i) for i in range(len(conf))])
    precision = conf.diagonal() / np.maximum(conf.sum(0), 1)
    recall = conf.diagonal() / np.maximum(conf.sum(1), 1)
    table = pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "support": conf.sum(1)})
    return {
        "classes": classes,
        "confusion": conf,
        "table": table,
        "epoch": int(chosen.stem.removeprefix("eval_epoch")),
    }


def _best_details(run: runs.Run) -> dict[str, Any] | None:
    files = sorted(runs.folder(run).glob("eval_epoch*.json"))
    best = run.result.get("best_epoch")
    chosen = next((f for f in files if best and f.name == f"eval_epoch{best:03d}.json"), None)
    return json.loads(chosen.read_text()) if chosen is not None else None


def top_losses(run: runs.Run, k: int = 12) -> list[dict[str, Any]]:
    """Misclassified val images with the model's confidence, worst first, for the best epoch (the exported
    one). Training kept them with that epoch's evaluation (read at once); a run from before that, or
    whose recorded misses point at files no longer there, is scored again on its own val split,
    preprocessed as in training."""
    details = _best_details(run)
    info = run.result.get("info", {})
    root, classes = (info.get("dataset") or {}).get("root"), info.get("classes")
    if details is not None and "misses" in details and root and classes:
        kept = [
            {
                "path": str(Path(root) / m["path"]),
                "true": classes[m["true"]],
                "predicted": classes[m["predicted"]],
                "confidence": m["confidence"],
                "loss": m["loss"],
            }
            for m in details["misses"][:k]
        ]
        if all(Path(m["path"]).is_file() for m in kept):
            return kept
    return _scored_top_losses(run, k)


def _scored_top_losses(run: runs.Run, k: int) -> list[dict[str, Any]]:
    from core.runs.artifacts import NoArtifacts, artifacts

    try:
        art = artifacts(run)
    except NoArtifacts:
        return []
    if not run.result.get("export_dir"):
        return []
    if art.splits is None:
        raise ValueError(f"its validation images cannot be read: {art.why_no_data}")
    model, val = art.model(), art.splits["val"]
    with torch.inference_mode():
        probs = torch.cat(
            [
                model(torch.from_numpy(art.preprocessing.batch(val.paths[i : i + 32]))).softmax(-1)
                for i in range(0, len(val), 32)
            ]
        )
    out = []
    for path, true, p in zip(val.paths, val.labels.tolist(), probs):
        pred = int(p.argmax())
        if pred != true:
            out.append(
                {
                    "path": str(path),
                    "true": art.classes[true],
                    "predicted": art.classes[pred],
                    "confidence": float(p[pred]),
                    "loss": float(-torch.log(p[true])),
                }
            )
    return sorted(out, key=lambda r: -r["loss"])[:k]
