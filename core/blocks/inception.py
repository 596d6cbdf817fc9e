"""GoogLeNet's Inception v1 module (Szegedy et al. 2014, "Going deeper with convolutions")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from core.blocks.base import Block
from core.blocks.costs import BlockCost, Term, conv_norm_terms
from core.blocks.layers import ConvNormAct
from core.blocks.registry import BlockConfigError, register_block


@register_block("inception", "#c5b0d5")
class Inception(Block):
    """Four parallel branches (1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 max-pool->1x1), concatenated on channels."""

    paper = "Szegedy et al. 2014, Going deeper with convolutions (GoogLeNet)"
    summary = "Offer a buffet of receptive fields and let SGD pick; 1×1 reductions keep 3×3 and 5×5 cheap."
    default_hw = 28

    def __init__(
        self,
        in_chs: int = 192,
        c1: int = 64,
        c3_reduce: int = 96,
        c3: int = 128,
        c5_reduce: int = 16,
        c5: int = 32,
        pool_proj: int = 32,
        out_chs: int | None = None,
        bias: bool = False,
        norm: bool = True,
    ) -> None:
        super().__init__()
        opts: dict[str, Any] = dict(bias=bias, norm=norm)
        self.out_chs = c1 + c3 + c5 + pool_proj
        self.branch1 = ConvNormAct(in_chs, c1, 1, **opts) if c1 else None
        self.branch3 = (
            nn.Sequential(ConvNormAct(in_chs, c3_reduce, 1, **opts), ConvNormAct(c3_reduce, c3, 3, **opts))
            if c3
            else None
        )
        self.branch5 = (
            nn.Sequential(ConvNormAct(in_chs, c5_reduce, 1, **opts), ConvNormAct(c5_reduce, c5, 5, **opts))
            if c5
            else None
        )
        self.branch_pool = (
            nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvNormAct(in_chs, pool_proj, 1, **opts))
            if pool_proj
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1, self.branch3, self.branch5, self.branch_pool]
        return torch.cat([b(x) for b in branches if b is not None], dim=1)

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        total = cfg["c1"] + cfg["c3"] + cfg["c5"] + cfg["pool_proj"]
        if total == 0:
            raise BlockConfigError(
                "every Inception branch has 0 output channels: the module would output nothing"
            )
        if cfg.get("out_chs") not in (None, total):
            raise BlockConfigError(
                f"Inception outputs c1 + c3 + c5 + pool_proj = {total} channels, "
                f"not out_chs = {cfg['out_chs']}"
            )
        if cfg.get("out_chs") is None:
            cfg["out_chs"] = total

    @classmethod
    def closed_form(
        cls,
        n: int,
        h: int,
        w: int,
        *,
        in_chs: int,
        c1: int,
        c3_reduce: int,
        c3: int,
        c5_reduce: int,
        c5: int,
        pool_proj: int,
        bias: bool,
        norm: bool,
        out_chs: int | None = None,
    ) -> BlockCost:
        opts: dict[str, Any] = dict(bias=bias, norm=norm)
        terms: list[Term] = []
        if c1:
            terms += conv_norm_terms("branch1 1x1", 1, in_chs, c1, h, w, n, **opts)
        if c3:
            terms += conv_norm_terms("branch3 1x1 reduce", 1, in_chs, c3_reduce, h, w, n, **opts)
            terms += conv_norm_terms("branch3 3x3", 3, c3_reduce, c3, h, w, n, **opts)
        if c5:
            terms += conv_norm_terms("branch5 1x1 reduce", 1, in_chs, c5_reduce, h, w, n, **opts)
            terms += conv_norm_terms("branch5 5x5", 5, c5_reduce, c5, h, w, n, **opts)
        if pool_proj:
            terms += conv_norm_terms("pool proj 1x1", 1, in_chs, pool_proj, h, w, n, **opts)
        formula = r"C_{in} c_1 + (C_{in} r_3 + 9 r_3 c_3) + (C_{in} r_5 + 25 r_5 c_5) + C_{in} c_p"
        notes = ("The 3x3 max-pool has no parameters and fvcore does not count it (listed as uncounted).",)
        return BlockCost(tuple(terms), (n, c1 + c3 + c5 + pool_proj, h, w), formula, notes)
