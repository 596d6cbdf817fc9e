"""Two ways to train behind one interface: the whole network (finetune_top, finetune_full, scratch), or the
linear probe, whose frozen backbone runs once so that each epoch trains only the head on cached
features."""

from __future__ import annotations

from typing import Any, Callable, Protocol

import torch
from torch import nn

from core.finetune.batches import Normalizer, evaluate, probe_features
from core.finetune.data import Prepared

DEVICE_DATA_BYTES = 4 * 2**30  # a decoded uint8 training set this small stays on the GPU


class Strategy(Protocol):
    data: Prepared  # its splits: the trainer names an evaluation's misses by their val file

    def train_mode(self) -> None: ...
    def batch(self, idx: torch.Tensor, augment: str, gen: torch.Generator) -> torch.Tensor: ...
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...
    def evaluate(self) -> dict[str, Any]: ...


def _wrap(net: nn.Module, world: int) -> nn.Module:
    return nn.parallel.DistributedDataParallel(net) if world > 1 else net


class FullModel:
    """The network trains (what is frozen was frozen by the recipe); batches are augmented and normalised."""

    def __init__(
        self,
        model: nn.Module,
        data: Prepared,
        prep: Normalizer,
        device: torch.device,
        world: int,
        amp: Callable[[], Any],
    ) -> None:
        self.model, self.data, self.prep = model, data, prep
        self.trained = _wrap(model, world)
        self.train_x = data.train_x
        if device.type == "cuda" and data.train_x.numel() < DEVICE_DATA_BYTES:
            self.train_x = data.train_x.to(device)

    def train_mode(self) -> None:
        self.trained.train()

    def batch(self, idx: torch.Tensor, augment: str, gen: torch.Generator) -> torch.Tensor:
        return self.prep(self.train_x[idx.to(self.train_x.device)], augment, gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trained(x)

    def evaluate(self) -> dict[str, Any]:
        self.model.eval()
        return evaluate(self.model, self.data.val_x, self.data.val_y, len(self.data.classes), 256, self.prep)


class LinearProbe:
    """The frozen backbone's pooled features, computed once; the head trains on them (no augmentation)."""

    def __init__(
        self,
        model: nn.Module,
        data: Prepared,
        prep: Normalizer,
        device: torch.device,
        world: int,
        amp: Callable[[], Any],
    ) -> None:
        model.eval()
        self.data, self.device = data, device
        self.train_x = probe_features(model, data.train_x, 256, prep, amp)
        self.val_x = probe_features(model, data.val_x, 256, prep, amp)
        self.head = model.get_classifier()
        self.trained = _wrap(self.head, world)

    def train_mode(self) -> None:
        self.trained.train()

    def batch(self, idx: torch.Tensor, augment: str, gen: torch.Generator) -> torch.Tensor:
        return self.train_x[idx].to(self.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trained(x)

    def evaluate(self) -> dict[str, Any]:
        self.head.eval()
        return evaluate(
            self.head, self.val_x, self.data.val_y, len(self.data.classes), 256, lambda x: x.to(self.device)
        )


def for_recipe(recipe: str) -> type[FullModel] | type[LinearProbe]:
    return LinearProbe if recipe == "linear_probe" else FullModel
