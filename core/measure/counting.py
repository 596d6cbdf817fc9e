"""MAC counting adapters: fvcore's FlopCountAnalysis (primary) and torch's FlopCounterMode (cross-check).

fvcore counts one fused multiply-add as one "flop", i.e. it returns MACs. FlopCounterMode counts 2 FLOPs
per multiply-add, so its total is halved here before comparing.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# Ops that fvcore reports as unsupported but which are, by convention, free: shape plumbing.
_SHAPE_OPS = {
    "aten::size",
    "aten::view",
    "aten::reshape",
    "aten::permute",
    "aten::flatten",
    "aten::contiguous",
    "aten::cat",
    "aten::t",
    "aten::transpose",
    "aten::expand",
    "aten::unsqueeze",
    "aten::squeeze",
    "aten::Int",
    "aten::ScalarImplicit",
    "prim::NumToTensor",
    "aten::dropout",
    "aten::detach",
    "aten::to",
    "aten::slice",
    "aten::select",
    "aten::chunk",
    "aten::split",
    "aten::clone",
    "aten::pad",
    "aten::constant_pad_nd",
    "aten::narrow",
}


# Compute ops fvcore ignores silently; un-ignoring them makes them show up as uncounted, not hidden.
_UNHIDE = {"aten::relu", "aten::relu_", "aten::clamp", "aten::clamp_", "aten::sum", "aten::max"}


def _zero_handle(inputs: list[Any], outputs: list[Any]) -> int:
    return 0


def sdpa_macs(q_shape: list[int], k_shape: list[int], v_shape: list[int]) -> int:
    """Fused attention as its two matmuls: Q·K^T (L·S·E) and softmax·V (L·S·E_v) per batch and head."""
    *batch, length, embed = q_shape
    source, embed_v = k_shape[-2], v_shape[-1]
    n = 1
    for b in batch:
        n *= b
    return n * length * source * (embed + embed_v)


def _sdpa_handle(inputs: list[Any], outputs: list[Any]) -> int:
    return sdpa_macs(get_shape(inputs[0]), get_shape(inputs[1]), get_shape(inputs[2]))


@dataclass(frozen=True)
class MacCount:
    """A MAC count with its per-operator and per-module breakdown."""

    total: int
    by_operator: dict[str, int]
    by_module: dict[str, int]
    uncounted_ops: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CrossCheck:
    """fvcore against FlopCounterMode, in MACs."""

    fvcore_macs: int
    flop_counter_macs: int
    flop_counter_by_op: dict[str, int]
    agree: bool
    explanation: str


def fvcore_macs(model: nn.Module, inputs: tuple[torch.Tensor, ...], ignore: tuple[str, ...] = ()) -> MacCount:
    """MACs by fvcore with the model in ``eval()`` (BatchNorm counted as 2 per element, affine).

    ``ignore`` lists aten ops to count as zero; fvcore's ``set_op_handle(op, None)`` does not override
    an op that already has a handle, so a zero handle is installed instead.
    """
    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, inputs)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        # fvcore predates fused attention; count it as the matmuls timm's unfused path runs
        analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_handle)
        ignored = getattr(analysis, "_ignored_ops", None)
        if isinstance(ignored, set):
            ignored -= _UNHIDE
        if ignore:
            analysis.set_op_handle(**{op: _zero_handle for op in ignore})
        fv_logger = logging.getLogger("fvcore")
        level = fv_logger.level
        fv_logger.setLevel(logging.ERROR)
        try:
            total = int(analysis.total())
            by_op = {k: int(v) for k, v in analysis.by_operator().items()}
            by_module = {k: int(v) for k, v in analysis.by_module().items()}
            skipped = Counter(analysis.unsupported_ops())
        finally:
            fv_logger.setLevel(level)
    finally:
        model.train(was_training)
    uncounted = {op: n for op, n in sorted(skipped.items()) if op not in _SHAPE_OPS}
    return MacCount(total, by_op, by_module, uncounted)


def _fvcore_name(aten_name: str) -> str:
    """FlopCounterMode's aten op name in fvcore's vocabulary."""
    if aten_name.startswith("_scaled_dot_product") or aten_name == "scaled_dot_product_attention":
        return "scaled_dot_product_attention"
    return {"convolution": "conv", "addmm": "linear", "mm": "linear", "bmm": "matmul"}.get(
        aten_name, aten_name
    )


def flop_counter_macs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[int, dict[str, int]]:
    """MACs by torch.utils.flop_counter.FlopCounterMode (its FLOPs / 2), per op in fvcore's names."""
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            model(*inputs)
    finally:
        model.train(was_training)
    by_op: dict[str, int] = Counter()
    for op, flops in counter.get_flop_counts().get("Global", {}).items():
        by_op[_fvcore_name(getattr(op, "__name__", str(op)).split(".")[0])] += int(flops) // 2
    return int(counter.get_total_flops()) // 2, dict(by_op)


def cross_check(fv: MacCount, model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> CrossCheck:
    """Compares fvcore to FlopCounterMode and explains any gap by the ops only fvcore counts."""
    fc_total, fc_by_op = flop_counter_macs(model, inputs)
    gap = fv.total - fc_total
    if gap == 0:
        return CrossCheck(fv.total, fc_total, fc_by_op, True, "fvcore and FlopCounterMode agree exactly.")
    only_fvcore = {op: n for op, n in fv.by_operator.items() if n and op not in fc_by_op}
    if gap == sum(only_fvcore.values()):
        parts = ", ".join(f"{op} {n:,}" for op, n in only_fvcore.items())
        text = (
            f"fvcore counts {gap:,} more MACs than FlopCounterMode, exactly the ops only fvcore counts "
            f"({parts}). FlopCounterMode counts convolutions and matrix products only (and has no formula "
            "for the CPU fused-attention kernel); fvcore also counts BatchNorm in eval (2 per element), "
            "LayerNorm (5 per element) and adaptive average pooling (1 per element)."
        )
        return CrossCheck(fv.total, fc_total, fc_by_op, True, text)
    text = (
        f"fvcore ({fv.total:,} MACs) and FlopCounterMode ({fc_total:,} MACs) differ by {gap:,}, which the "
        f"ops only fvcore counts ({sum(only_fvcore.values()):,}) do not explain: an op is counted "
        "differently by the two. Compare the per-op tables."
    )
    return CrossCheck(fv.total, fc_total, fc_by_op, False, text)
