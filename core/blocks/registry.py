"""Block registry: ``register_block`` refuses duplicate names; ``create_block`` validates and builds."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from torch import nn

from core.blocks.costs import BlockCost
from core.measure import budget

_REGISTRY: dict[str, type[nn.Module]] = {}
T = TypeVar("T", bound=type[nn.Module])


@dataclass(frozen=True)
class Field:
    """One option a block may take, described once: the label a form shows, and for a number its bounds
    (``low``..``high``), which the form and the validator share; a switch has no bounds."""

    label: str
    low: float | None = None
    high: float | None = None
    integer: bool = True


# every option any block takes
FIELDS: dict[str, Field] = {
    "in_chs": Field("Input channels", 1, 4096),
    "out_chs": Field("Output channels", 1, 4096),
    "mid_chs": Field("Bottleneck channels", 1, 4096),
    "stride": Field("Stride", 1, 4),
    "kernel_size": Field("Kernel", 1, 11),
    "c1": Field("1x1 branch", 0, 2048),
    "c3_reduce": Field("3x3 reduce", 1, 2048),
    "c3": Field("3x3 branch", 0, 2048),
    "c5_reduce": Field("5x5 reduce", 1, 2048),
    "c5": Field("5x5 branch", 0, 2048),
    "pool_proj": Field("Pool projection", 0, 2048),
    "exp_ratio": Field("Expansion ratio t", 1.0, 8.0, integer=False),
    "se_ratio": Field("SE ratio", 0.0, 1.0, integer=False),
    "se": Field("Squeeze-excite"),
    "bias": Field("Bias"),
    "norm": Field("BatchNorm / LayerNorm"),
}
INT_FIELDS: dict[str, tuple[int, int]] = {
    k: (int(f.low), int(f.high))
    for k, f in FIELDS.items()
    if f.integer and f.low is not None and f.high is not None
}
FLOAT_FIELDS: dict[str, tuple[float, float]] = {
    k: (float(f.low), float(f.high))
    for k, f in FIELDS.items()
    if not f.integer and f.low is not None and f.high is not None
}
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class BlockConfigError(ValueError):
    """A block configuration that cannot be built; the message says why in plain words."""


def register_block(name: str, colour: str) -> Callable[[T], T]:
    """Class decorator adding a block to the registry under ``name``, drawn in ``colour`` (#rrggbb) on
    every chart; a second use of a name, a colour that is not #rrggbb or one another block has, or a
    constructor option that ``FIELDS`` does not describe fails."""

    def wrap(cls: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"block {name!r} is already registered (by {_REGISTRY[name].__name__})")
        if not isinstance(colour, str) or not _COLOUR.fullmatch(colour):
            raise ValueError(f"block {name!r} needs its colour as #rrggbb, not {colour!r}")
        if any(getattr(c, "colour", "").lower() == colour.lower() for c in _REGISTRY.values()):
            raise ValueError(f"block {name!r}: the colour {colour} is already another block's")
        options = [
            k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "args", "kwargs")
        ]
        if undescribed := [k for k in options if k not in FIELDS]:
            raise ValueError(f"block {name!r} takes {', '.join(undescribed)}, which FIELDS does not describe")
        cls.block_name = name
        cls.colour = colour
        _REGISTRY[name] = cls
        return cls

    return wrap


def list_blocks() -> list[str]:
    """Registered block names, in registration order."""
    return list(_REGISTRY)


def get_block_class(name: str) -> type[nn.Module]:
    if name not in _REGISTRY:
        raise BlockConfigError(f"unknown block {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def block_defaults(name: str) -> dict[str, Any]:
    """The keyword defaults of a block's constructor (its default configuration)."""
    sig = inspect.signature(get_block_class(name).__init__)
    return {
        k: p.default
        for k, p in sig.parameters.items()
        if k != "self" and p.default is not inspect.Parameter.empty
    }


def resolve_config(name: str, **cfg: Any) -> dict[str, Any]:
    """Defaults merged with ``cfg``, checked; raises BlockConfigError with a readable reason."""
    cls = get_block_class(name)
    merged = block_defaults(name)
    unknown = sorted(set(cfg) - set(merged))
    if unknown:
        raise BlockConfigError(
            f"block {name!r} does not take {', '.join(unknown)}; it takes: {', '.join(merged)}"
        )
    merged.update(cfg)
    _check_bounds(merged)
    cls.check_config(merged)  # type: ignore[attr-defined]
    return merged


def _check_bounds(cfg: dict[str, Any]) -> None:
    for key, (lo, hi) in INT_FIELDS.items():
        if cfg.get(key) is not None:
            value = cfg[key]
            if isinstance(value, bool) or int(value) != value:
                raise BlockConfigError(f"{key} must be a whole number, got {value!r}")
            if not lo <= value <= hi:
                what = "channels" if "chs" in key or key.startswith(("c1", "c3", "c5", "pool")) else key
                raise BlockConfigError(f"{key} = {value} is impossible: {what} must be between {lo} and {hi}")
    for key, (lo, hi) in FLOAT_FIELDS.items():
        if key in cfg and not lo <= float(cfg[key]) <= hi:
            raise BlockConfigError(f"{key} = {cfg[key]} is out of range [{lo}, {hi}]")
    k = cfg.get("kernel_size")
    if k is not None and k % 2 == 0:
        raise BlockConfigError(f"kernel_size = {k}: use an odd kernel so that 'same' padding keeps the shape")


def check_input(name: str, cfg: dict[str, Any], input_shape: tuple[int, int, int, int]) -> None:
    """Checks an (N, C, H, W) input against a resolved config."""
    if len(input_shape) != 4:
        raise BlockConfigError(f"input must be (batch, channels, height, width), got {input_shape}")
    n, c, h, w = input_shape
    if n < 1 or h < 1 or w < 1:
        raise BlockConfigError(f"batch and spatial size must be at least 1, got {input_shape}")
    if c != cfg["in_chs"]:
        raise BlockConfigError(f"input has {c} channels but the block expects in_chs = {cfg['in_chs']}")
    k = cfg.get("kernel_size", 1)
    if k > min(h, w):
        raise BlockConfigError(f"a {k}x{k} kernel is larger than the {h}x{w} input")
    cls = get_block_class(name)
    try:
        budget.check_shape(input_shape)
        budget.check_macs(cls.closed_form(n, h, w, **cfg).macs, f"block {name!r} at batch {n}")  # type: ignore[attr-defined]
        budget.check_module(budget.on_meta(lambda: cls(**cfg)), input_shape, f"block {name!r}")
    except budget.BudgetError as err:
        raise BlockConfigError(str(err)) from err


def create_block(name: str, **cfg: Any) -> nn.Module:
    """Builds a registered block from its defaults and ``cfg``; its weights are checked against the memory
    budget on the meta device first, so an impossible configuration never allocates."""
    cls = get_block_class(name)
    resolved = resolve_config(name, **cfg)
    meta = budget.on_meta(lambda: cls(**resolved))
    try:
        budget.check_params(sum(p.numel() for p in meta.parameters()), f"block {name!r}")
    except budget.BudgetError as err:
        raise BlockConfigError(str(err)) from err
    return cls(**resolved)


def block_cost(name: str, input_shape: tuple[int, int, int, int], **cfg: Any) -> BlockCost:
    """The block's closed-form parameter and MAC count for this input shape."""
    resolved = resolve_config(name, **cfg)
    check_input(name, resolved, input_shape)
    n, _, h, w = input_shape
    return get_block_class(name).closed_form(n, h, w, **resolved)  # type: ignore[attr-defined]
