"""Bounded by design: every size a URL, a widget or a file can set is checked here, against a budget
derived from this machine's free memory, before anything is built, decoded or run.

The footprint of a module at an input shape is found without allocating it: the module's parameters and
buffers are swapped for ``meta`` tensors (shapes only) and one forward runs on a ``meta`` input, with
hooks adding up every layer's output. That is what a profile keeps alive at once (its per-layer table
holds every output), so input + activations + parameters is the bytes a measurement needs, before the
allocator's overhead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

BUDGET_ENV = "ARCHSCOPE_MEMORY_BUDGET_MB"  # a fixed budget (MiB) instead of a share of the free memory
FREE_SHARE = 0.25  # one measurement may use this share of the memory free now
MAX_BATCH = 1024
MAX_SPATIAL = 1024
MAX_BLOCK_MACS = 200 * 10**9  # one forward of a block: ~10 s at this VM's ~40 GFLOP/s
MAX_BACKBONE_PARAMS = 1_000_000_000


class BudgetError(ValueError):
    """A size that would not fit this machine; the message says the limit and what to lower."""


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def free_bytes() -> int:
    """Memory available to new allocations now (Linux MemAvailable; free physical pages elsewhere)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def memory_budget() -> tuple[int, str]:
    """(bytes one measurement may use, how that figure was set)."""
    fixed = os.environ.get(BUDGET_ENV, "").strip()
    if fixed:
        try:
            return int(float(fixed) * 2**20), f"{BUDGET_ENV}={fixed}"
        except ValueError:
            pass
    free = free_bytes()
    return int(free * FREE_SHARE), f"a quarter of the {_gib(free)} free now"


def check_bytes(what: str, nbytes: float, advice: str) -> None:
    """Refuses ``what`` when it needs more than the budget, with the limit and the advice in one line."""
    budget, how = memory_budget()
    if nbytes > budget:
        raise BudgetError(
            f"refused: {what} needs about {_gib(nbytes)}, over this server's memory budget of "
            f"{_gib(budget)} ({how}). {advice}"
        )


def check_range(label: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or int(value) != value or not low <= value <= high:
        raise BudgetError(f"refused: {label} {value!r} is out of range; use {low} to {high:,}")


def check_shape(shape: tuple[int, ...]) -> None:
    """Batch and spatial size of an (N, C, H, W) input within their bounds."""
    if len(shape) != 4:
        raise BudgetError(f"refused: an input must be (batch, channels, height, width), got {tuple(shape)}")
    check_range("batch", shape[0], 1, MAX_BATCH)
    check_range("spatial size", shape[2], 1, MAX_SPATIAL)
    check_range("spatial size", shape[3], 1, MAX_SPATIAL)


@dataclass(frozen=True)
class Footprint:
    """Bytes a forward keeps alive, found on the meta device (fp32)."""

    params: int
    param_bytes: int
    input_bytes: int
    activation_bytes: int

    @property
    def total(self) -> int:
        return self.param_bytes + self.input_bytes + self.activation_bytes


def on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """The module ``build`` makes, with every parameter and buffer on the meta device (nothing allocated)."""
    with torch.device("meta"):
        return build()


def _out_bytes(out: Any) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel() * 4
    if isinstance(out, (tuple, list)):
        return sum(_out_bytes(o) for o in out)
    return 0


def _keeps_shape(m: nn.Module) -> bool:
    name = type(m).__name__
    return (
        (type(m).__module__ == "torch.nn.modules.activation" and name != "MultiheadAttention")
        or ("Norm" in name and "Conv" not in name)
        or isinstance(m, nn.Dropout)
    )


def _same_shape(x: torch.Tensor, *_: Any, **__: Any) -> torch.Tensor:
    return x


def footprint(module: nn.Module, shape: tuple[int, ...]) -> Footprint:
    """Parameters, input and every layer's output of one forward at ``shape``, in fp32 bytes, without
    allocating any of them. A forward that the meta device cannot run (data-dependent control flow)
    counts the input and parameters only."""
    state = {
        k: torch.empty_like(v, device="meta")
        for k, v in (*module.named_parameters(), *module.named_buffers())
    }
    params = sum(p.numel() for p in module.parameters())
    acts = [0]

    def add(_m: nn.Module, _i: Any, out: Any) -> None:
        acts[0] += _out_bytes(out)

    # norms and activations keep their input's shape; on the meta device their kernels are Python
    # decompositions
    # whose first use imports torch._dynamo (~0.8 s), so they run as the identity here (their output still
    # counts)
    same = [m for m in module.modules() if _keeps_shape(m)]
    hooks = [m.register_forward_hook(add) for m in module.modules() if not list(m.children()) or m in same]
    for m in same:
        m.forward = _same_shape
    was_training = module.training
    try:
        module.eval()
        # what torch.func.functional_call does, without its import of torch._dynamo (~0.8 s on a first visit)
        from torch.nn.utils.stateless import _reparametrize_module

        with torch.no_grad(), _reparametrize_module(module, state):
            module(torch.empty(*shape, device="meta"))
    except Exception:  # noqa: BLE001  an op the meta device cannot run: the input and weights still count
        acts[0] = 0
    finally:
        module.train(was_training)
        for h in hooks:
            h.remove()
        for m in same:
            del m.forward
    n_in = 1
    for s in shape:
        n_in *= int(s)
    return Footprint(params, params * 4, n_in * 4, acts[0])


def check_module(
    module: nn.Module,
    shape: tuple[int, ...],
    what: str = "this measurement",
    advice: str = "Lower the batch, the spatial size or the channels.",
) -> Footprint:
    """The shape's bounds, then the forward's footprint against the budget; returns the footprint."""
    check_shape(shape)
    fp = footprint(module, shape)
    check_bytes(f"{what} at input {' x '.join(map(str, shape))}", fp.total, advice)
    return fp


def check_params(params: int, what: str, limit: int = MAX_BACKBONE_PARAMS) -> None:
    """A model's weights within the parameter cap and the memory budget, before it is built for real."""
    if params > limit:
        raise BudgetError(f"refused: {what} has {params:,} parameters, over the cap of {limit:,}")
    check_bytes(f"{what}'s {params:,} parameters", params * 4, "Choose a smaller model or configuration.")


def check_macs(macs: int, what: str, limit: int = MAX_BLOCK_MACS) -> None:
    if macs > limit:
        raise BudgetError(
            f"refused: {what} costs {macs / 1e9:,.1f} GMACs per forward, over the cap of "
            f"{limit / 1e9:,.0f} GMACs this server times. Lower the batch, the spatial size or the "
            "channels."
        )
