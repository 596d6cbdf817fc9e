"""The training loop, readable in one sitting. Progress leaves through callbacks; the loop knows nothing of
SQLite or Streamlit. Under torchrun it trains with DistributedDataParallel; rank 0 alone reports and saves."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler

from core.data.health import no_validation_classes
from core.finetune import bundle, recipes
from core.finetune.config import TrainConfig
from core.finetune.data import Prepared, prepare
from core.finetune.schedule import make_scheduler
from core.finetune.weights import create

DEVICE_DATA_BYTES = 4 * 2**30


class Callbacks(Protocol):
    def on_start(self, info: dict[str, Any]) -> None: ...
    def on_step(self, epoch: int, step: int, values: dict[str, float]) -> None: ...
    def on_epoch(self, epoch: int, step: int, values: dict[str, float], details: dict[str, Any]) -> None: ...
    def should_stop(self) -> bool: ...


class NoCallbacks:
    def on_start(self, info: dict[str, Any]) -> None: pass
    def on_step(self, epoch: int, step: int, values: dict[str, float]) -> None: pass
    def on_epoch(self, epoch: int, step: int, values: dict[str, float], details: dict[str, Any]) -> None: pass
    def should_stop(self) -> bool: return False


@dataclass
class Result:
    status: str                       # done | cancelled
    epochs_done: int
    best_top1: float
    last: dict[str, float] = field(default_factory=dict)
    export_dir: str = ""
    wall_s: float = 0.0
    note: str = ""


def dist_info() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    return torch.device(cfg.device)


def augment(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Per-sample flips and shifts (light), plus brightness/contrast jitter (strong); x in [0, 1]."""
    if kind == "none":
        return x
    n = x.shape[0]
    flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    pad = max(1, x.shape[-1] // 16)
    shifted = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
    x = shifted[..., dy:dy + x.shape[-2], dx:dx + x.shape[-1]]
    if kind == "strong":
        b = (1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.4).to(x.device)
        c = (1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.4).to(x.device)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * c + mean * b).clamp(0, 1)
    return x


class Normalizer:
    def __init__(self, model: nn.Module, device: torch.device, channels_last: bool) -> None:
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        self.mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406)), device=device)[None, :, None, None]
        self.std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225)), device=device)[None, :, None, None]
        self.device, self.fmt = device, torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x_uint8: torch.Tensor, aug: str = "none", gen: torch.Generator | None = None) -> torch.Tensor:
        x = x_uint8.to(self.device, non_blocking=True).float().div_(255)   # convert on the device, not the CPU
        if aug != "none" and gen is not None:
            x = augment(x, aug, gen)
        return ((x - self.mean) / self.std).contiguous(memory_format=self.fmt)


@torch.inference_mode()
def evaluate(forward, xs: torch.Tensor, ys: torch.Tensor, n_classes: int, batch: int, prep) -> dict[str, Any]:
    """Val loss, top-1, per-class accuracy and the confusion matrix (rows = true class)."""
    conf = torch.zeros(n_classes, n_classes, dtype=torch.long)
    loss_sum = 0.0
    for i in range(0, len(xs), batch):
        logits = forward(prep(xs[i:i + batch])).float().cpu()
        y = ys[i:i + batch]
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        conf += torch.bincount(y * n_classes + logits.argmax(1), minlength=n_classes ** 2).view(n_classes, n_classes)
    per_class = (conf.diag().float() / conf.sum(1).clamp(min=1)).tolist()
    return {"loss": loss_sum / max(len(xs), 1), "top1": conf.diag().sum().item() / max(len(xs), 1),
            "per_class": per_class, "confusion": conf.tolist()}


def probe_features(model: nn.Module, xs: torch.Tensor, batch: int, prep, amp) -> torch.Tensor:
    """Pooled features of the frozen backbone, computed once (the linear-probe fast path)."""
    feats = []
    with torch.inference_mode(), amp():
        for i in range(0, len(xs), batch):
            feats.append(model.forward_head(model.forward_features(prep(xs[i:i + batch])), pre_logits=True).float())
    return torch.cat(feats)


def build_model(cfg: TrainConfig, n_classes: int, device: torch.device, channels_last: bool):
    """The backbone with its weights and new head, frozen and grouped as the recipe says, on the device."""
    model, report = create(cfg.model, cfg.weights, n_classes)
    groups = recipes.plan(model, cfg.recipe, cfg.lr, cfg.layer_decay, cfg.freeze_stages)
    opt_groups = recipes.apply(model, groups, cfg.weight_decay)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return model, report, groups, opt_groups


def checkpoint(model: nn.Module, opt, sched, data: Prepared, cfg: TrainConfig, epoch: int, step: int, best: float,
               stale: int, wall_s: float = 0.0) -> dict[str, Any]:
    """Everything a resume needs: weights, optimizer, scheduler, counters, RNG states and the split."""
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "epoch": epoch, "step": step, "best": best, "stale": stale, "rng": bundle.rng_state(),
            "split_seed": data.split.seed, "split_fraction": data.split.val_fraction,
            "split_train": list(data.split.train), "split_val": list(data.split.val),
            "classes": list(data.classes), "config": cfg.to_dict(), "wall_s": wall_s}


def saved_split(ckpt: dict[str, Any] | None):
    if ckpt is None:
        return None
    from core.data.split import Split
    return Split(ckpt["split_seed"], ckpt["split_fraction"], tuple(ckpt["split_train"]), tuple(ckpt["split_val"]))


def train(cfg: TrainConfig, run_dir: str | Path, callbacks: Callbacks | None = None,
          prepared: Prepared | None = None, wall_offset: float = 0.0) -> Result:
    """Fine-tunes ``cfg.model`` with ``cfg.recipe``; resumes from run_dir's checkpoint when there is one.
    ``wall_offset``: seconds earlier segments of this run took, so ``wall_s`` spans every resume."""
    cfg.validate()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rank, world = dist_info()
    cb: Callbacks = (callbacks or NoCallbacks()) if rank == 0 else NoCallbacks()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg)
    use_cuda = device.type == "cuda"
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if use_cuda else "fp32")
    channels_last = cfg.channels_last if cfg.channels_last is not None else use_cuda
    ckpt = bundle.load_checkpoint(run_dir)
    torch.manual_seed(cfg.seed)
    data = prepared or prepare(cfg, saved_split(ckpt))
    n_classes = len(data.classes)
    model, report, groups, opt_groups = build_model(cfg, n_classes, device, channels_last)
    prep = Normalizer(model, device, channels_last)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def amp():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    probe = cfg.recipe == "linear_probe"
    head = model.get_classifier()
    net: nn.Module = head if probe else model
    trained = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.AdamW(opt_groups)
    steps_per_epoch = -(-len(data.train_x) // (cfg.batch_size * world))
    sched = make_scheduler(opt, cfg.schedule, cfg.epochs * steps_per_epoch, int(cfg.warmup_epochs * steps_per_epoch))
    start_epoch, step, best, stale = 0, 0, 0.0, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        bundle.set_rng_state(ckpt["rng"])
        start_epoch, step, best, stale = ckpt["epoch"], ckpt["step"], ckpt["best"], ckpt.get("stale", 0)
    cb.on_start({"classes": list(data.classes), "device": str(device), "precision": precision, "world": world,
                 "channels_last": channels_last, "weights": report.source, "groups": recipes.table(groups).to_dict("records"),
                 "train_images": len(data.train_x), "val_images": len(data.val_x), "resumed_from_epoch": start_epoch,
                 "steps_per_epoch": steps_per_epoch,
                 "no_val_classes": list(no_validation_classes(data.dataset, data.split))})
    if probe:  # fast path: the frozen backbone runs once; epochs then train the head on cached features
        model.eval()
        train_in = probe_features(model, data.train_x, 256, prep, amp)
        val_in = probe_features(model, data.val_x, 256, prep, amp)
        forward_val = head
        prep_batch = (lambda x, aug="none", gen=None: x.to(device))
    else:
        train_in, val_in, forward_val, prep_batch = data.train_x, data.val_x, model, prep
        if use_cuda and data.train_x.numel() < DEVICE_DATA_BYTES:  # decoded uint8 set fits: keep it on the GPU
            train_in = data.train_x.to(device)
    sampler = DistributedSampler(range(len(train_in)), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    status, note, last = "done", "", {}
    for epoch in range(start_epoch, cfg.epochs):
        sampler.set_epoch(epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        order = torch.tensor(list(sampler))
        trained.train(not probe)
        if probe:
            head.train()
        t_epoch = time.perf_counter()
        seen = 0
        for i in range(0, len(order), cfg.batch_size):
            if cb.should_stop():
                status, note = "cancelled", f"stopped by request in epoch {epoch + 1}"
                break
            if cfg.time_budget_s and time.perf_counter() - t_start > cfg.time_budget_s:
                status, note = "done", f"time budget of {cfg.time_budget_s:.0f} s reached in epoch {epoch + 1}"
                break
            idx = order[i:i + cfg.batch_size]
            x = prep_batch(train_in[idx.to(train_in.device)], cfg.augment, gen)
            y = data.train_y[idx].to(device)
            with amp():
                loss = F.cross_entropy(trained(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            seen += len(idx)
            cb.on_step(epoch, step, {"loss": loss.item(), "lr": opt.param_groups[-1]["lr"]})
        if status == "cancelled":
            break
        if use_cuda:
            torch.cuda.synchronize(device)
        train_s = time.perf_counter() - t_epoch
        model.eval()
        ev = evaluate(forward_val, val_in, data.val_y, n_classes, 256, prep_batch if probe else prep) \
            if rank == 0 else {"top1": 0.0, "loss": 0.0}
        best, stale = (ev["top1"], 0) if ev["top1"] > best else (best, stale + 1)
        last = {"val_loss": ev["loss"], "val_top1": ev["top1"], "epoch_s": time.perf_counter() - t_epoch,
                "train_s": train_s, "images_per_s": seen * world / max(train_s, 1e-9)}
        if rank == 0:
            cb.on_epoch(epoch, step, last, {"per_class": ev.get("per_class"), "confusion": ev.get("confusion")})
            bundle.save_checkpoint(run_dir, checkpoint(model, opt, sched, data, cfg, epoch + 1, step, best, stale,
                                                       wall_offset + time.perf_counter() - t_start))
        if world > 1:
            dist.barrier()
        if note or (cfg.early_stopping and stale >= cfg.early_stopping):
            note = note or f"early stopping: no better val top-1 for {stale} epochs"
            break
    export_dir = ""
    if rank == 0 and status == "done":
        cfg_mean = tuple(prep.mean.flatten().tolist())
        cfg_std = tuple(prep.std.flatten().tolist())
        export_dir = str(bundle.export(run_dir, model, cfg.model, data.classes, cfg.image_size, cfg_mean, cfg_std))
    epochs_done = (bundle.load_checkpoint(run_dir) or {}).get("epoch", 0) if rank == 0 else 0
    return Result(status, epochs_done, best, last, export_dir, wall_offset + time.perf_counter() - t_start, note)
