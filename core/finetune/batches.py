"""What a batch goes through: augmentation, normalisation on the device, evaluation, and the frozen
backbone's pooled features for the linear probe."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.data.preprocess import Preprocessing


def augment(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Per-sample flips and one random shift per batch (light), plus per-sample brightness/contrast jitter
    (strong); x in [0, 1]."""
    if kind == "none":
        return x
    n = x.shape[0]
    flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    pad = max(1, x.shape[-1] // 16)
    shifted = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
    x = shifted[..., dy : dy + x.shape[-2], dx : dx + x.shape[-1]]
    if kind == "strong":
        b = (1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.4).to(x.device)
        c = (1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.4).to(x.device)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * c + mean * b).clamp(0, 1)
    return x


class Normalizer:
    """The last step of the one preprocessing (``core.data.pixels.normalize``) on the training device:
    uint8
    -> /255 -> (x - mean) / std, in float32, with the model's mean and std (``core.data.preprocess``)."""

    def __init__(self, model: nn.Module, device: torch.device, channels_last: bool) -> None:
        pre = Preprocessing.for_model(model, 0)
        self.mean = torch.tensor(pre.mean, dtype=torch.float32, device=device)[None, :, None, None]
        self.std = torch.tensor(pre.std, dtype=torch.float32, device=device)[None, :, None, None]
        self.device, self.fmt = device, torch.channels_last if channels_last else torch.contiguous_format

    def __call__(
        self, x_uint8: torch.Tensor, aug: str = "none", gen: torch.Generator | None = None
    ) -> torch.Tensor:
        x = x_uint8.to(self.device, non_blocking=True).float().div_(255)  # convert on the device, not the CPU
        if aug != "none" and gen is not None:
            x = augment(x, aug, gen)
        return ((x - self.mean) / self.std).contiguous(memory_format=self.fmt)


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (~95% for z = 1.96) of a top-1 of hits / n: how far a split this small can
    move the figure. (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


TOP_LOSSES = 12  # the misclassified images an evaluation keeps, worst first


@torch.inference_mode()
def evaluate(forward, xs: torch.Tensor, ys: torch.Tensor, n_classes: int, batch: int, prep) -> dict[str, Any]:
    """Val loss, top-1, per-class accuracy, the confusion matrix (rows = true class) and the top losses:
    the ``TOP_LOSSES`` misclassified images with the highest loss, by index, with their prediction and
    confidence."""
    conf = torch.zeros(n_classes, n_classes, dtype=torch.long)
    losses, preds, confs = [], [], []
    for i in range(0, len(xs), batch):
        logits = forward(prep(xs[i : i + batch])).float().cpu()
        y = ys[i : i + batch]
        losses.append(F.cross_entropy(logits, y, reduction="none"))
        probs = logits.softmax(-1)
        preds.append(probs.argmax(1))
        confs.append(probs.max(1).values)
        conf += torch.bincount(y * n_classes + logits.argmax(1), minlength=n_classes**2).view(
            n_classes, n_classes
        )
    per_class = (conf.diag().float() / conf.sum(1).clamp(min=1)).tolist()
    loss = torch.cat(losses) if losses else torch.zeros(0)
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    wrong = [i for i in loss.argsort(descending=True).tolist() if int(pred[i]) != int(ys[i])][:TOP_LOSSES]
    conf_of = torch.cat(confs) if confs else torch.zeros(0)
    misses = [
        {
            "index": i,
            "true": int(ys[i]),
            "predicted": int(pred[i]),
            "confidence": float(conf_of[i]),
            "loss": float(loss[i]),
        }
        for i in wrong
    ]
    return {
        "loss": float(loss.sum()) / max(len(xs), 1),
        "top1": conf.diag().sum().item() / max(len(xs), 1),
        "per_class": per_class,
        "confusion": conf.tolist(),
        "misses": misses,
    }


def probe_features(model: nn.Module, xs: torch.Tensor, batch: int, prep, amp) -> torch.Tensor:
    """Pooled features of the frozen backbone, computed once (the linear-probe fast path)."""
    feats = []
    with torch.inference_mode(), amp():
        for i in range(0, len(xs), batch):
            feats.append(
                model.forward_head(model.forward_features(prep(xs[i : i + batch])), pre_logits=True).float()
            )
    return torch.cat(feats)
