"""The backbone catalog: timm's architectures (a curated list and search), building one with random
weights, and timm's published ImageNet accuracy for them."""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn

from core.errors import first_line
from core.measure import budget

CURATED: tuple[str, ...] = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "mobilenetv2_100",
    "mobilenetv3_large_100",
    "mobilenetv3_small_100",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_lite0",
    "convnext_tiny",
    "vit_base_patch16_224",
    "inception_v3",
    "vit_small_patch14_dinov2",
)
ACCURACY_CSV = Path(__file__).resolve().parents[2] / "assets" / "imagenet_accuracy.csv"
MIN_RES, MAX_RES = 32, 1024


class BackboneError(ValueError):
    """An unknown model or an input the model cannot take; the message says why in plain words."""


@lru_cache(maxsize=1)
def all_models() -> tuple[str, ...]:
    import timm  # imported where needed: timm (with torch._dynamo) takes ~1.8 s to import

    return tuple(timm.list_models())


def search_models(query: str, limit: int = 50) -> list[str]:
    """timm architectures whose name contains ``query`` (case-insensitive)."""
    q = query.strip().lower()
    return [m for m in all_models() if q in m][:limit] if q else []


def close_models(query: str, n: int = 3) -> list[str]:
    """The timm architectures a mistyped name most likely meant (difflib's closest matches)."""
    import difflib

    return difflib.get_close_matches(query.strip().lower(), all_models(), n=n, cutoff=0.6)


def resolve_name(name: str) -> str:
    """A timm architecture name; 'resnet50.a1_in1k' keeps its architecture part. Unknown names fail
    clearly."""
    arch = name.strip().split(".")[0]
    if arch in all_models():
        return arch
    close = difflib.get_close_matches(arch, all_models(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else " Search the catalog for a timm name."
    raise BackboneError(f"unknown model {name!r}: timm has no architecture of that name.{hint}")


def default_resolution(name: str) -> int:
    import timm

    cfg = timm.get_pretrained_cfg(resolve_name(name))
    return int(cfg.input_size[-1]) if cfg is not None else 224


def build(name: str, resolution: int | None = None, initialise: bool = True) -> nn.Module:
    """The architecture with random weights (profiling never downloads); ViTs are built for ``resolution``.
    With ``initialise=False`` the weights are allocated but never initialised (built on the meta device,
    then ``to_empty``): for counting, where only shapes matter, that skips seconds of random init on a
    large model."""
    arch = resolve_name(name)
    kwargs: dict[str, Any] = {}
    if resolution and resolution != default_resolution(arch) and _is_vit(arch):
        kwargs["img_size"] = resolution
    import timm

    try:
        check_budget(arch, resolution, lambda: timm.create_model(arch, pretrained=False, **kwargs))
        if not initialise:
            with torch.device("meta"):
                skeleton = timm.create_model(arch, pretrained=False, **kwargs)
            return skeleton.to_empty(device="cpu").eval()
        return timm.create_model(arch, pretrained=False, **kwargs).eval()
    except BackboneError:
        raise
    except Exception as err:  # timm raises assorted errors for impossible sizes
        raise BackboneError(f"{arch} cannot be built for {resolution} px: {first_line(err)}") from err


def check_budget(arch: str, resolution: int | None, make: Callable[[], nn.Module]) -> budget.Footprint | None:
    """The model's weights, and its batch-1 forward at ``resolution``, against the memory budget, found on
    the meta device before anything is allocated; returns the batch-1 footprint (None without a
    resolution)."""
    try:
        meta = budget.on_meta(make)
        budget.check_params(sum(p.numel() for p in meta.parameters()), arch)
        if resolution:
            check_resolution(resolution)
            return budget.check_module(meta, (1, 3, resolution, resolution), arch, "Lower the resolution.")
    except budget.BudgetError as err:
        raise BackboneError(str(err)) from err
    return None


def _is_vit(arch: str) -> bool:
    return arch.startswith(("vit_", "deit", "eva", "beit"))


def check_resolution(resolution: int) -> None:
    if not MIN_RES <= resolution <= MAX_RES:
        raise BackboneError(f"resolution {resolution} px is out of range: use {MIN_RES} to {MAX_RES} px")


def accuracy_table() -> pd.DataFrame:
    """timm's published ImageNet accuracy for the catalog (see the CSV header for the source)."""
    return pd.read_csv(ACCURACY_CSV, comment="#")


def default_accuracy() -> pd.DataFrame:
    """One row per architecture: the tag that timm loads by default where listed, else the first listed."""
    table = accuracy_table()
    import timm

    preferred = {
        arch: (timm.get_pretrained_cfg(arch).tag if timm.get_pretrained_cfg(arch) else None)
        for arch in table["model"].unique()
    }
    table["default"] = [tag == preferred.get(m) for m, tag in zip(table["model"], table["tag"])]
    table = table.sort_values(["model", "default"], ascending=[True, False])
    return table[~table["tag"].str.startswith("tv_") | table["default"]].drop_duplicates("model")


def is_model(name: str) -> bool:
    """Whether timm can build an architecture of this name (a name from a shared link is checked first)."""
    import timm

    return bool(name) and timm.is_model(name)
