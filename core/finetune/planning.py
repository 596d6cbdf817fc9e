"""Planning a fine-tune before it starts: the per-stage learning rates a recipe gives, a measured time-per-epoch
estimate, and the LR range test on the real data and model."""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from core.finetune import recipes
from core.finetune.config import TrainConfig
from core.measure.timing import time_call


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

    def step() -> None:
        if cfg.recipe == "linear_probe":
            with torch.inference_mode():
                model(x)
        else:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    stats = time_call(step, "cpu", warmup=1, min_iters=steps, max_iters=steps, min_time_s=0.0, warmup_time_s=0.0)
    # for the linear probe this is the one pass that extracts features; its later epochs take milliseconds
    return stats.median_ms / 1e3 * -(-n_train // cfg.batch_size)


def lr_range(cfg: TrainConfig, steps: int = 40) -> tuple[pd.DataFrame, float]:
    """The LR range test on the real data and model, head LR swept from 1e-6 to 1."""
    from core.finetune.batches import Normalizer
    from core.finetune.data import prepare
    from core.finetune.schedule import lr_range_test
    from core.finetune.weights import create
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
