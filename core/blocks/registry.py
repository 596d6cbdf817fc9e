"""Block registry: ``register_block`` refuses duplicate names; ``create_block`` validates and builds."""

from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

from torch import nn

from core.blocks.costs import BlockCost
from core.measure import budget

_REGISTRY: dict[str, type[nn.Module]] = {}
T = TypeVar("T", bound=type[nn.Module])

# Options every block may take, with the bounds the UI and the validator share.
INT_FIELDS: dict[str, tuple[int, int]] = {
    "in_chs": (1, 4096),
    "out_chs": (1, 4096),
    "mid_chs": (1, 4096),
    "stride": (1, 4),
    "kernel_size": (1, 11),
    "c1": (0, 2048),
    "c3_reduce": (1, 2048),
    "c3": (0, 2048),
    "c5_reduce": (1, 2048),
    "c5": (0, 2048),
    "pool_proj": (0, 2048),
}
FLOAT_FIELDS: dict[str, tuple[float, float]] = {"exp_ratio": (1.0, 8.0), "se_ratio": (0.0, 1.0)}


class BlockConfigError(ValueError):
    """A block configuration that cannot be built; the message says why in plain words."""


def register_block(name: str) -> Callable[[T], T]:
    """Class decorator adding a block to the registry under ``name``; a second use of a name fails."""

    def wrap(cls: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"block {name!r} is already registered (by {_REGISTRY[name].__name__})")
        cls.block_name = name
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
