"""The run configuration: one dataclass instead of globals (nanoGPT style)."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

RECIPES = ("linear_probe", "finetune_top", "finetune_full", "scratch")
SCHEDULES = ("cosine", "onecycle", "constant")
AUGMENTS = ("none", "light", "strong")
CACHES = ("disk", "memory")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    data: str = "demo"  # 'demo', a .zip of class folders, or a folder
    model: str = "efficientnet_lite0"
    weights: str = "offline"  # 'offline', 'hub', 'random' or a state_dict file
    recipe: str = "linear_probe"
    epochs: int = 5
    batch_size: int = 32
    image_size: int = 96
    lr: float = 1e-3  # the head's LR; pretrained layers get less (see recipes)
    weight_decay: float = 0.01
    layer_decay: float = 0.6  # finetune_full: LR falls by this factor per stage from head to stem
    freeze_stages: int = 2  # finetune_top: stem + this many stages frozen (lecture: conv1-3)
    schedule: str = "cosine"
    warmup_epochs: float = 0.5
    augment: str = "light"
    val_fraction: float = 0.2
    test_fraction: float = 0.0  # > 0: a held-out test split, scored once with the exported (best) epoch
    seed: int = 0
    device: str = "auto"  # 'auto' = cuda if available
    precision: str = "auto"  # 'auto' = bf16 autocast on cuda, fp32 on cpu
    channels_last: bool | None = None  # None = on for cuda
    early_stopping: int = 0  # patience in epochs, 0 = off
    time_budget_s: float = 0.0  # stop after this wall time (0 = no limit)
    demo_per_class: int = 60
    demo_size: int = 64
    cache: str = "disk"  # decoded-image cache: 'disk' (memory-mapped) or 'memory'
    threads: int = 0

    def validate(self) -> "TrainConfig":
        problems = []
        if self.recipe not in RECIPES:
            problems.append(f"recipe must be one of {', '.join(RECIPES)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}")
        if self.augment not in AUGMENTS:
            problems.append(f"augment must be one of {', '.join(AUGMENTS)}")
        problems += [
            f"{name.replace('_', ' ')} must be a number from {lo:g} to {hi:g}, not {value!r}"
            for name, value, lo, hi in self._ranges()
            if not _within(value, lo, hi)
        ]
        if self.val_fraction + self.test_fraction >= 0.9:
            problems.append("validation and test fractions together must leave at least 10% for training")
        if self.recipe == "scratch" and self.weights != "random":
            self.weights = "random"
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _ranges(self) -> list[tuple[str, Any, float, float]]:
        """(field, value, lowest, highest) of every number a user, a link or the CLI can set."""
        cores = os.cpu_count() or 1
        return [
            ("epochs", self.epochs, 1, 10_000),
            ("batch_size", self.batch_size, 1, 4096),
            ("image_size", self.image_size, 16, 1024),
            ("lr", self.lr, 1e-12, 10.0),
            ("weight_decay", self.weight_decay, 0.0, 1.0),
            ("layer_decay", self.layer_decay, 0.01, 1.0),
            ("freeze_stages", self.freeze_stages, 0, 50),
            ("warmup_epochs", self.warmup_epochs, 0.0, self.epochs),
            ("val_fraction", self.val_fraction, 0.05, 0.8),
            ("test_fraction", self.test_fraction, 0.0, 0.8),
            ("early_stopping", self.early_stopping, 0, self.epochs),
            ("time_budget_s", self.time_budget_s, 0, 1e7),
            ("demo_per_class", self.demo_per_class, 1, 10_000),
            ("demo_size", self.demo_size, 16, 512),
            ("threads", self.threads, 0, cores),
            ("seed", self.seed, 0, 2**32 - 1),
        ]

    def check_environment(self) -> "TrainConfig":
        """What needs torch and timm: the model exists (whatever the weights) and the device is there.
        Raises ValueError in one line; nothing is written."""
        import timm
        import torch

        if not timm.is_model(self.model):
            raise ValueError(f"unknown model {self.model!r}: timm has no architecture of that name")
        if self.device != "auto":
            kind, _, index = self.device.partition(":")
            if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
                raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {self.device!r}")
            if kind == "cuda" and int(index or 0) >= torch.cuda.device_count():
                found = torch.cuda.device_count()
                raise ValueError(
                    f"there is no CUDA device {self.device!r} on this machine (it has "
                    f"{found or 'no'} CUDA device{'' if found == 1 else 's'}); use --device cpu"
                )
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cli_args(self) -> list[str]:
        """The same configuration as ``python -m core.finetune`` flags."""
        out: list[str] = []
        for key, value in self.to_dict().items():
            if value is not None:
                out += [f"--{key.replace('_', '-')}", str(value)]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _within(value: Any, low: float, high: float) -> bool:
    """A real, finite number in [low, high] (NaN, inf, booleans and text are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and low <= value <= high
