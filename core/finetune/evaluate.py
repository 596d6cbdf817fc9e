"""Evaluating a finished run: the confusion matrix with per-class precision and recall, and the top losses."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.finetune import runs
from core.finetune.config import TrainConfig


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (~95% for z = 1.96) of a top-1 of hits / n: how far a split this small can
    move the figure. (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def evaluation(run: runs.Run) -> dict[str, Any] | None:
    """The exported epoch's confusion matrix (the best val top-1; the last epoch for older runs) with per-class
    precision and recall, and which epoch it is."""
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
    return {"classes": classes, "confusion": conf, "table": table, "epoch": int(chosen.stem.removeprefix("eval_epoch"))}


def top_losses(run: runs.Run, k: int = 12) -> list[dict[str, Any]]:
    """Misclassified val images with the model's confidence, worst first (uses the exported bundle)."""
    from core.finetune.bundle import Predictor, load_checkpoint
    export = run.result.get("export_dir")
    ckpt = load_checkpoint(runs.folder(run))
    if not export or ckpt is None:
        return []
    from core.finetune.data import resolve_source
    root = resolve_source(run.config["data"], TrainConfig.from_dict(run.config))
    from core.data.ingest import class_root
    base = class_root(root)
    predictor = Predictor(export)
    classes = predictor.meta["classes"]
    out = []
    for path in ckpt["split_val"]:
        true = path.split("/")[0]
        probs = predictor.probabilities(base / path)
        pred = int(probs.argmax())
        if classes[pred] != true:
            out.append({"path": str(base / path), "true": true, "predicted": classes[pred],
                        "confidence": float(probs[pred]), "loss": float(-torch.log(probs[classes.index(true)]))})
    return sorted(out, key=lambda r: -r["loss"])[:k]
