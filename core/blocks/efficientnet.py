"""EfficientNet's MBConv (Tan & Le 2019) and ConvNeXt's block (Liu et al. 2022)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from core.blocks.base import Block
from core.blocks.costs import (
    BlockCost,
    Term,
    conv_norm_terms,
    conv_term,
    layernorm_term,
    linear_term,
    out_size,
    pool_term,
)
from core.blocks.layers import ConvNormAct, SqueezeExcite
from core.blocks.mobilenet import expanded_chs
from core.blocks.registry import BlockConfigError, register_block


def se_chs(in_chs: int, se_ratio: float) -> int:
    """Squeeze-excite width: max(1, int(C_in · se_ratio)), computed from the block input as in timm."""
    return max(1, int(in_chs * se_ratio))


@register_block("mbconv", "#ff9896")
class MBConv(Block):
    """Inverted residual + squeeze-excite + SiLU (EfficientNet's MBConv)."""

    paper = "Tan & Le 2019, EfficientNet: Rethinking Model Scaling for CNNs"
    summary = "MobileNetV2's inverted residual with SiLU and a squeeze-excite gate on the expanded channels."
    default_hw = 28

    def __init__(
        self,
        in_chs: int = 40,
        out_chs: int = 40,
        kernel_size: int = 5,
        stride: int = 1,
        exp_ratio: float = 6.0,
        se: bool = True,
        se_ratio: float = 0.25,
        bias: bool = False,
        norm: bool = True,
    ) -> None:
        super().__init__()
        mid = expanded_chs(in_chs, exp_ratio)
        self.has_skip = stride == 1 and in_chs == out_chs
        # point-wise expansion
        self.conv_pw = (
            ConvNormAct(in_chs, mid, 1, bias=bias, norm=norm, act_layer=nn.SiLU)
            if mid != in_chs
            else nn.Identity()
        )
        # depth-wise
        self.conv_dw = ConvNormAct(
            mid, mid, kernel_size, stride, groups=mid, bias=bias, norm=norm, act_layer=nn.SiLU
        )
        # squeeze-and-excitation
        self.se = SqueezeExcite(mid, se_chs(in_chs, se_ratio)) if se else nn.Identity()
        # point-wise linear projection
        self.conv_pwl = ConvNormAct(mid, out_chs, 1, bias=bias, norm=norm, act_layer=None)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        return x + y if self.has_skip else y

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        if cfg["se"] and cfg["se_ratio"] <= 0:
            raise BlockConfigError("se_ratio must be above 0 when squeeze-excite is on")

    @classmethod
    def closed_form(
        cls,
        n: int,
        h: int,
        w: int,
        *,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int,
        exp_ratio: float,
        se: bool,
        se_ratio: float,
        bias: bool,
        norm: bool,
    ) -> BlockCost:
        mid = expanded_chs(in_chs, exp_ratio)
        ho, wo = out_size(h, kernel_size, stride), out_size(w, kernel_size, stride)
        opts: dict[str, Any] = dict(bias=bias, norm=norm)
        terms = conv_norm_terms("expand 1x1", 1, in_chs, mid, h, w, n, **opts) if mid != in_chs else []
        terms += conv_norm_terms("depthwise", kernel_size, mid, mid, ho, wo, n, groups=mid, **opts)
        if se:
            rd = se_chs(in_chs, se_ratio)
            terms += [
                pool_term("se pool", mid, ho, wo, n),
                conv_term("se reduce 1x1", 1, mid, rd, 1, 1, n, bias=True),
                conv_term("se expand 1x1", 1, rd, mid, 1, 1, n, bias=True),
            ]
        terms += conv_norm_terms("project 1x1 (linear)", 1, mid, out_chs, ho, wo, n, **opts)
        formula = r"C_{in} m + K^2 m + [\text{SE}]\, 2 m r + r + m + m C_{out}, \quad m = t C_{in}"
        notes = ("SE convolutions always carry biases, as in the paper and timm.",) if se else ()
        return BlockCost(tuple(terms), (n, out_chs, ho, wo), formula, notes)


class _ChannelsLastLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of an NCHW tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@register_block("convnext", "#c49c94")
class ConvNeXtBlock(Block):
    """Depthwise 7x7 -> LayerNorm -> Linear 4C -> GELU -> Linear C -> layer scale, plus identity skip."""

    paper = "Liu et al. 2022, A ConvNet for the 2020s (ConvNeXt)"
    summary = "A ResNet modernised towards transformers: large depthwise kernel, LayerNorm, inverted MLP."
    default_hw = 56

    def __init__(
        self,
        in_chs: int = 96,
        out_chs: int = 96,
        kernel_size: int = 7,
        exp_ratio: float = 4.0,
        bias: bool = True,
        norm: bool = True,
    ) -> None:
        super().__init__()
        mid = expanded_chs(in_chs, exp_ratio)
        self.has_skip = True
        # depth-wise
        self.conv_dw = nn.Conv2d(
            in_chs, in_chs, kernel_size, padding=kernel_size // 2, groups=in_chs, bias=bias
        )
        self.norm = _ChannelsLastLayerNorm(in_chs) if norm else nn.Identity()
        # inverted MLP, applied per pixel
        self.fc1 = nn.Linear(in_chs, mid, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mid, out_chs, bias=bias)
        self.gamma = nn.Parameter(torch.full((out_chs,), 1e-6))

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.conv_dw(x)).permute(0, 2, 3, 1)
        y = self.fc2(self.act(self.fc1(y))) * self.gamma
        return x + y.permute(0, 3, 1, 2)

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        if cfg["in_chs"] != cfg["out_chs"]:
            raise BlockConfigError(
                "a ConvNeXt block keeps its width: set out_chs equal to in_chs "
                "(ConvNeXt changes width in separate downsampling layers)"
            )

    @classmethod
    def closed_form(
        cls,
        n: int,
        h: int,
        w: int,
        *,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        exp_ratio: float,
        bias: bool,
        norm: bool,
    ) -> BlockCost:
        mid = expanded_chs(in_chs, exp_ratio)
        terms: list[Term] = [conv_term("depthwise", kernel_size, in_chs, in_chs, h, w, n, in_chs, bias)]
        if norm:
            terms.append(layernorm_term("layernorm", in_chs, h, w, n))
        terms += [
            linear_term("fc1 (C -> 4C)", in_chs, mid, n * h * w, bias),
            linear_term("fc2 (4C -> C)", mid, out_chs, n * h * w, bias),
            Term("layer scale", str(out_chs), out_chs, 0),
        ]
        formula = r"K^2 C + 2C + 2 \cdot C \cdot 4C + C \;(+\text{biases})"
        return BlockCost(tuple(terms), (n, out_chs, h, w), formula)
