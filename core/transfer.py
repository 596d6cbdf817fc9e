"""What the transfer and runs pages need from the engine: launch/stop/resume background runs, curves,
progress, a measured time-per-epoch estimate, the LR range test, evaluation, and the freezing-depth experiment."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from core import jobs, runs
from core.finetune import recipes
from core.finetune.config import TrainConfig

MAX_RUNS_ENV = runs.MAX_RUNS_ENV
LaunchError = runs.LaunchError
max_runs = runs.max_runs
active_runs = runs.active_runs


def _spawn(run_id: int, extra: list[str]) -> None:
    pid = jobs.spawn(["-m", "core.finetune", "--quiet", *extra], runs.folder(run_id) / "log.txt")
    runs.update(run_id, pid=pid)


def launch(cfg: TrainConfig, name: str = "") -> int:
    """Creates a queued run (refused at the cap, checked in the same transaction) and starts the engine's CLI
    for it in its own process session."""
    cfg.validate()
    run_id = runs.create(cfg.to_dict(), name, cap=max_runs())
    _spawn(run_id, ["--run-id", str(run_id), *cfg.cli_args()])
    return run_id


def resume(run_id: int) -> None:
    run = runs.get(run_id)
    if run.active:
        raise LaunchError(f"run {run_id} is still {run.status}")
    if len(active_runs()) >= max_runs():
        raise LaunchError(f"the cap of {max_runs()} concurrent runs is reached")
    runs.update(run_id, status="queued", cancel=0, error="", created=time.time(), pid=None)
    _spawn(run_id, ["--resume", str(run_id)])


def curves(run_id: int) -> pd.DataFrame:
    """One row per step (train loss, lr) or epoch (val loss, val top-1), wide format."""
    m = runs.metrics(run_id)
    if m.empty:
        return pd.DataFrame(columns=["step", "epoch"])
    return m.pivot_table(index=["step", "epoch"], columns="name", values="value", aggfunc="last").reset_index()


@dataclass(frozen=True)
class Progress:
    epoch: int
    epochs: int
    step: int
    total_steps: int
    eta_s: float | None
    fraction: float


def progress(run: runs.Run) -> Progress:
    info = run.result.get("info", {})
    per_epoch = int(info.get("steps_per_epoch", 0))
    epochs = int(run.config.get("epochs", 1))
    m = runs.metrics(run.id)
    step = int(m["step"].max()) if not m.empty else 0
    epoch = int(m["epoch"].max()) + 1 if not m.empty else 0
    total = per_epoch * epochs
    eta = None
    if run.started and step and total and run.status == "running":
        start_step = per_epoch * int(info.get("resumed_from_epoch", 0))
        done = step - start_step
        if done > 0:
            eta = (time.time() - run.started) / done * (total - step)
    return Progress(epoch, epochs, step, total, eta, min(1.0, step / total) if total else 0.0)


def group_lrs(cfg: TrainConfig, n_classes: int) -> pd.DataFrame:
    """The per-stage trainable flags and learning rates the recipe will use (random weights suffice)."""
    import timm
    model = timm.create_model(cfg.model, pretrained=False, num_classes=n_classes)
    return recipes.table(recipes.plan(model, cfg.recipe, cfg.lr, cfg.layer_decay, cfg.freeze_stages))


def estimate_epoch_s(cfg: TrainConfig, n_train: int, steps: int = 3) -> float:
    """Seconds per epoch, from timing a few real training steps of this model/recipe/batch here."""
    import timm
    model = timm.create_model(cfg.model, pretrained=False, num_classes=6)
    groups = recipes.apply(model, recipes.plan(model, cfg.recipe, cfg.lr, cfg.layer_decay, cfg.freeze_stages), 0.0)
    opt = torch.optim.AdamW(groups)
    x = torch.randn(cfg.batch_size, 3, cfg.image_size, cfg.image_size)
    y = torch.randint(0, 6, (cfg.batch_size,))
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        if cfg.recipe == "linear_probe":
            with torch.inference_mode():
                model(x)
        else:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if i:
            times.append(time.perf_counter() - t)
    # for the linear probe this is the one pass that extracts features; its later epochs take milliseconds
    return float(np.median(times)) * -(-n_train // cfg.batch_size)


def lr_range(cfg: TrainConfig, steps: int = 40) -> tuple[pd.DataFrame, float]:
    """The LR range test on the real data and model, head LR swept from 1e-6 to 1."""
    from core.finetune.data import prepare
    from core.finetune.schedule import lr_range_test
    from core.finetune.trainer import Normalizer
    from core.weights import create
    data = prepare(cfg)
    model, _ = create(cfg.model, cfg.weights, len(data.classes))
    groups = recipes.plan(model, cfg.recipe, 1.0, cfg.layer_decay, cfg.freeze_stages)
    opt = torch.optim.AdamW(recipes.apply(model, groups, cfg.weight_decay))
    scales = [g["lr"] for g in opt.param_groups]
    prep = Normalizer(model, torch.device("cpu"), False)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()

    def step(lr: float) -> float:
        idx = torch.randint(0, len(data.train_x), (cfg.batch_size,), generator=gen)
        for g, s in zip(opt.param_groups, scales):
            g["lr"] = lr * s
        loss = F.cross_entropy(model(prep(data.train_x[idx])), data.train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return lr_range_test(step, steps=steps)


def evaluation(run: runs.Run) -> dict[str, Any] | None:
    """The last epoch's confusion matrix with per-class precision and recall."""
    files = sorted(runs.folder(run).glob("eval_epoch*.json"))
    if not files:
        return None
    import json
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
