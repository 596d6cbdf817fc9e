"""The lecture's "telephone game": gradient norms through a plain and a residual stack of depth N."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}


def plain_gradient(upstream: float, f_prime: float, layers: int) -> float:
    """dL/dh_in through ``layers`` plain layers: upstream · (F')^n."""
    return upstream * f_prime**layers


def residual_gradient(upstream: float, f_prime: float, layers: int) -> float:
    """dL/dh_in through ``layers`` residual layers: upstream · (1 + F')^n (the +1 is the highway)."""
    return upstream * (1.0 + f_prime) ** layers


class Stack(nn.Module):
    """N small conv layers F(h) = act(conv3x3(h)); residual stacks add the skip h + F(h)."""

    def __init__(self, depth: int, width: int, residual: bool, act: str, init_gain: float) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), ACTIVATIONS[act]())
            for _ in range(depth)
        )
        for layer in self.layers:
            conv = layer[0]
            nn.init.normal_(conv.weight, std=init_gain / (conv.weight[0].numel() ** 0.5))

    def forward(self, h: torch.Tensor, keep: list[torch.Tensor] | None = None) -> torch.Tensor:
        for layer in self.layers:
            if keep is not None:
                h.retain_grad()
                keep.append(h)
            h = h + layer(h) if self.residual else layer(h)
        return h


@dataclass(frozen=True)
class GradFlow:
    """Per-layer ‖∂L/∂h_l‖ for both stacks (layer 0 is the input end)."""

    table: pd.DataFrame
    depth: int
    act: str
    init_gain: float

    def ratio_at_input(self) -> float:
        """How many times larger the residual stack's gradient is at layer 0."""
        first = self.table.iloc[0]
        return float(first["residual"] / max(first["plain"], 1e-300))


def _layer_grad_norms(stack: Stack, x: torch.Tensor, upstream: torch.Tensor) -> list[float]:
    keep: list[torch.Tensor] = []
    out = stack(x.clone().requires_grad_(True), keep)
    out.backward(upstream)
    return [float(h.grad.norm()) if h.grad is not None else 0.0 for h in keep]


def gradient_flow(
    depth: int = 30, width: int = 16, size: int = 16, act: str = "tanh", init_gain: float = 0.5, seed: int = 0
) -> GradFlow:
    """Runs one real backward pass through each stack (same weights) and records gradient norms."""
    if not 2 <= depth <= 100:
        raise ValueError(f"depth must be between 2 and 100, got {depth}")
    if not 1 <= width <= 256 or not 1 <= size <= 128:
        raise ValueError(f"width must be 1 to 256 and size 1 to 128, got {width} and {size}")
    if act not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}")
    torch.manual_seed(seed)
    plain = Stack(depth, width, residual=False, act=act, init_gain=init_gain)
    residual = Stack(depth, width, residual=True, act=act, init_gain=init_gain)
    residual.load_state_dict(plain.state_dict())
    # float64 so that a vanished gradient reads as 1e-200, not as an fp32 underflow to 0
    plain, residual = plain.double(), residual.double()
    x = torch.randn(1, width, size, size, dtype=torch.float64)
    upstream = torch.randn_like(x)
    upstream /= upstream.norm()  # dL/dh_N has norm 1 for both stacks
    table = pd.DataFrame(
        {
            "layer": range(depth),
            "plain": _layer_grad_norms(plain, x, upstream),
            "residual": _layer_grad_norms(residual, x, upstream),
        }
    )
    return GradFlow(table, depth, act, init_gain)
