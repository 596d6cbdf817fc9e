"""Planning a fine-tune before it starts: the per-stage learning rates a recipe gives, a measured
time-per-epoch estimate, and the LR range test on the real data and model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F

from core.finetune import recipes
from core.finetune.config import TrainConfig
from core.measure.settings import autocast_dtype, threads_for
from core.measure.timing import time_call
from core.present.fmt import duration


def group_lrs(cfg: TrainConfig, n_classes: int) -> pd.DataFrame:
    """The per-stage trainable flags and learning rates the recipe will use (random weights suffice)."""
    import timm

    model = timm.create_model(cfg.model, pretrained=False, num_classes=n_classes)
    return recipes.table(recipes.plan(model, cfg.recipe, cfg.lr, cfg.layer_decay, cfg.freeze_stages))


@dataclass(frozen=True)
class EpochEstimate:
    """What one epoch will cost on the run's own device and precision, from a few timed real steps. For the
    linear probe the frozen backbone runs once (``extraction_s``) and each epoch then trains only the
    head."""

    recipe: str
    device: str
    precision: str
    batch: int
    train_images: int
    val_images: int
    extraction_s: float  # linear probe: the one-off feature pass over train + val; 0 otherwise
    epoch_s: float  # one epoch: training steps plus the validation pass
    steps_timed: int

    def text(self) -> str:
        where = (
            f"on {self.device} in {self.precision}, batch {self.batch}, from {self.steps_timed} timed steps"
        )
        if self.recipe == "linear_probe":
            return (
                f"About {duration(self.extraction_s)} once, to extract features of "
                f"{self.train_images + self.val_images} images with the frozen backbone, then about "
                f"{duration(self.epoch_s)} per epoch for the head ({where})."
            )
        return (
            f"About {duration(self.epoch_s)} per epoch ({self.train_images} training + {self.val_images} "
            f"validation images, {where})."
        )


def estimate_epoch(
    cfg: TrainConfig,
    n_train: int,
    n_val: int,
    steps: int = 5,
    on_stage: Callable[[float, str], None] | None = None,
) -> EpochEstimate:
    """Times a few real steps of this model, recipe and batch on the run's device and precision (as the
    trainer resolves them) and scales them to the epoch; ``on_stage(fraction done, what now)`` hears of
    each stage."""
    import timm

    def stage(fraction: float, text: str) -> None:
        if on_stage is not None:
            on_stage(fraction, text)

    stage(0.0, f"building {cfg.model}")
    from core.finetune.trainer import pick_device

    device = pick_device(cfg)
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    dtype = autocast_dtype(precision)
    amp = lambda: torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)  # noqa: E731
    with threads_for(cfg.threads):
        model = timm.create_model(cfg.model, pretrained=False, num_classes=6)
        groups = recipes.apply(
            model, recipes.plan(model, cfg.recipe, cfg.lr, cfg.layer_decay, cfg.freeze_stages), 0.0
        )
        model = model.to(device, memory_format=fmt)
        opt = torch.optim.AdamW(groups)
        batch = min(cfg.batch_size, max(n_train, 1))
        x = torch.randn(batch, 3, cfg.image_size, cfg.image_size, device=device).contiguous(memory_format=fmt)
        y = torch.randint(0, 6, (batch,), device=device)
        # inference as the trainer runs it (validation, feature extraction): batches of 256, uint8 converted
        # and
        # normalised on the device; a CPU times a smaller batch and scales it
        eval_batch = min(256, max(n_train + n_val, 1), 128 if device.type == "cpu" else 256)
        raw = torch.randint(0, 256, (eval_batch, 3, cfg.image_size, cfg.image_size), dtype=torch.uint8)
        mean = torch.tensor((0.485, 0.456, 0.406), device=device)[None, :, None, None]

        def infer() -> None:
            with torch.inference_mode(), amp():
                inp = ((raw.to(device).float().div_(255) - mean) / 0.226).contiguous(memory_format=fmt)
                model.forward_head(model.forward_features(inp), pre_logits=cfg.recipe == "linear_probe")

        def step(net, inp, target) -> None:
            with amp():
                loss = F.cross_entropy(net(inp).float(), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()  # the trainer reads the loss every step

        def per_call_s(fn) -> float:
            stats = time_call(
                fn, device, warmup=2, min_iters=steps, max_iters=steps, min_time_s=0.0, warmup_time_s=0.0
            )
            return stats.median_ms / 1e3

        model.eval()
        stage(0.3, f"timing inference on {eval_batch} images")
        per_image = per_call_s(infer) / eval_batch  # inference: validation, or feature extraction
        stage(0.6, f"timing {steps} training steps")
        if cfg.recipe == "linear_probe":
            extraction = per_image * (n_train + n_val)
            epoch = _probe_epoch_s(
                model.get_classifier(), opt, model.num_features, n_train, n_val, batch, device, step
            )
        else:
            model.train()
            extraction = 0.0
            epoch = per_call_s(lambda: step(model, x, y)) * -(-n_train // batch) + per_image * n_val
    stage(1.0, "done")
    return EpochEstimate(cfg.recipe, str(device), precision, batch, n_train, n_val, extraction, epoch, steps)


def _probe_epoch_s(
    head, opt, features: int, n_train: int, n_val: int, batch: int, device: torch.device, step
) -> float:
    """One real head-only epoch on random features of the backbone's width, as the trainer runs it
    (shuffled sampler, a step per batch, the validation pass with its confusion matrix): it costs
    milliseconds, so it is run whole (three times, the median kept) instead of scaled from a few steps."""
    import statistics
    import time

    from torch.utils.data import DistributedSampler

    from core.finetune.batches import evaluate
    from core.finetune.schedule import make_scheduler

    sched = make_scheduler(opt, "cosine", 4 * -(-max(n_train, 1) // batch), 1)
    feats = torch.randn(max(n_train, 1), features, device=device)
    labels = torch.randint(0, 6, (max(n_train, 1),), device=device)
    val, val_y = torch.randn(max(n_val, 1), features, device=device), torch.randint(0, 6, (max(n_val, 1),))
    took = []
    for epoch in range(4):
        t = time.perf_counter()
        sampler = DistributedSampler(range(len(feats)), num_replicas=1, rank=0, shuffle=True, seed=0)
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        head.train()
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            step(head, feats[idx], labels[idx])
            sched.step()
            opt.param_groups[-1]["lr"]  # the trainer reads it for its step log
        head.eval()
        evaluate(head, val, val_y, 6, 256, lambda v: v)
        took.append(time.perf_counter() - t)
    return statistics.median(took[1:])


def lr_range(
    cfg: TrainConfig, steps: int = 40, on_step: Callable[[int, int], None] | None = None
) -> tuple[pd.DataFrame, float]:
    """The LR range test on the real data and model, head LR swept from 1e-6 to 1; ``on_step(i, n)`` after
    each step (step 0: data and model ready)."""
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

    if on_step is not None:
        on_step(0, steps)
    return lr_range_test(step, steps=steps, on_step=on_step)
