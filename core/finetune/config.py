"""The run configuration: one dataclass instead of globals (nanoGPT style)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

RECIPES = ("linear_probe", "finetune_top", "finetune_full", "scratch")
SCHEDULES = ("cosine", "onecycle", "constant")
AUGMENTS = ("none", "light", "strong")
CACHES = ("disk", "memory")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    data: str = "demo"                  # 'demo', a .zip of class folders, or a folder
    model: str = "efficientnet_lite0"
    weights: str = "offline"            # 'offline', 'hub', 'random' or a state_dict file
    recipe: str = "linear_probe"
    epochs: int = 5
    batch_size: int = 32
    image_size: int = 96
    lr: float = 1e-3                    # the head's LR; pretrained layers get less (see recipes)
    weight_decay: float = 0.01
    layer_decay: float = 0.6            # finetune_full: LR falls by this factor per stage from head to stem
    freeze_stages: int = 2              # finetune_top: stem + this many stages frozen (lecture: conv1-3)
    schedule: str = "cosine"
    warmup_epochs: float = 0.5
    augment: str = "light"
    val_fraction: float = 0.2
    test_fraction: float = 0.0          # > 0: a held-out test split, scored once with the exported (best) epoch
    seed: int = 0
    device: str = "auto"                # 'auto' = cuda if available
    precision: str = "auto"             # 'auto' = bf16 autocast on cuda, fp32 on cpu
    channels_last: bool | None = None   # None = on for cuda
    early_stopping: int = 0             # patience in epochs, 0 = off
    time_budget_s: float = 0.0          # stop after this wall time (0 = no limit)
    demo_per_class: int = 60
    demo_size: int = 64
    cache: str = "disk"                 # decoded-image cache: 'disk' (memory-mapped) or 'memory'
    threads: int = 0

    def validate(self) -> "TrainConfig":
        problems = []
        if self.recipe not in RECIPES:
            problems.append(f"recipe must be one of {', '.join(RECIPES)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}")
        if self.augment not in AUGMENTS:
            problems.append(f"augment must be one of {', '.join(AUGMENTS)}")
        if self.epochs < 1 or self.batch_size < 1:
            problems.append("epochs and batch size must be at least 1")
        if not 16 <= self.image_size <= 1024:
            problems.append("image size must be between 16 and 1024 px")
        if self.lr <= 0:
            problems.append("learning rate must be positive")
        if self.recipe == "scratch" and self.weights != "random":
            self.weights = "random"
        if problems:
            raise ValueError("; ".join(problems))
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
