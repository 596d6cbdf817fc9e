"""The lecture's transfer recipes as freezing rules and per-stage learning rates (timm's group_matcher)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from timm.models import group_parameters
from torch import nn

PRETRAINED_LR_MULT = 0.1  # finetune_top: "always use a smaller LR for the pretrained layers"


@dataclass(frozen=True)
class StageGroup:
    name: str
    params: tuple[str, ...]
    n_params: int
    trainable: bool
    lr: float


def stages(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Coarse stages from the stem to the head, from timm's ``group_matcher(coarse=True)``."""
    head = {f"{name}" for name, _ in _classifier_params(model)}
    grouped = group_parameters(model, model.group_matcher(coarse=True))
    out = []
    ids = sorted(grouped)
    for i, gid in enumerate(ids):
        names = [n for n in grouped[gid] if n not in head]
        if names:
            out.append(("stem" if i == 0 else f"stage {i}", names))
    out.append(("head (new classifier)", sorted(head)))
    return out


def _classifier_params(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    clf = model.get_classifier()
    ids = {id(p) for p in clf.parameters()}
    return [(n, p) for n, p in model.named_parameters() if id(p) in ids]


def plan(
    model: nn.Module, recipe: str, lr: float, layer_decay: float = 0.6, freeze_stages: int = 2
) -> list[StageGroup]:
    """Which stages train, and at which LR, for ``recipe``."""
    groups = stages(model)
    sizes = dict(model.named_parameters())
    last = len(groups) - 1
    out = []
    for i, (name, names) in enumerate(groups):
        if recipe == "linear_probe":
            trainable, group_lr = i == last, lr
        elif recipe == "finetune_top":
            trainable = i > freeze_stages
            group_lr = lr if i == last else lr * PRETRAINED_LR_MULT
        elif recipe == "finetune_full":
            trainable, group_lr = True, lr * layer_decay ** (last - i)
        elif recipe == "scratch":
            trainable, group_lr = True, lr
        else:
            raise ValueError(f"unknown recipe {recipe!r}")
        out.append(
            StageGroup(
                name,
                tuple(names),
                sum(sizes[n].numel() for n in names),
                trainable,
                group_lr if trainable else 0.0,
            )
        )
    return out


def apply(model: nn.Module, groups: list[StageGroup], weight_decay: float) -> list[dict]:
    """Sets requires_grad from the plan and returns AdamW param groups (trainable stages only)."""
    params = dict(model.named_parameters())
    opt_groups = []
    for g in groups:
        for n in g.params:
            params[n].requires_grad_(g.trainable)
        if g.trainable:
            opt_groups.append(
                {
                    "params": [params[n] for n in g.params],
                    "lr": g.lr,
                    "weight_decay": weight_decay,
                    "name": g.name,
                }
            )
    return opt_groups


def table(groups: list[StageGroup]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"stage": g.name, "params": g.n_params, "trainable": g.trainable, "lr": g.lr} for g in groups]
    )
