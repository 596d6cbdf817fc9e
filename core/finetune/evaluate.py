"""Evaluating a finished run: the confusion matrix with per-class precision and recall, and the top losses."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.finetune import runs
from core.finetune.config import TrainConfig


def evaluation(run: runs.Run) -> dict[str, Any] | None:
    """The last epoch's confusion matrix with per-class precision and recall."""
    files = sorted(runs.folder(run).glob("eval_epoch*.json"))
    if not files:
        return None
    details = json.loads(files[-1].read_text())
    conf = np.array(details["confusion"])
    classes = run.result.get("info", {}).get("classes", [str(i) for i in range(len(conf))])
    precision = conf.diagonal() / np.maximum(conf.sum(0), 1)
    recall = conf.diagonal() / np.maximum(conf.sum(1), 1)
    table = pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "support": conf.sum(1)})
    return {"classes": classes, "confusion": conf, "table": table}


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
