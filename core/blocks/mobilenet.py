"""MobileNet blocks: depthwise separable (Howard et al. 2017) and inverted residual (Sandler et al. 2018)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from core.blocks.base import Block
from core.blocks.costs import BlockCost, conv_norm_terms, out_size
from core.blocks.layers import ConvNormAct
from core.blocks.registry import register_block


def expanded_chs(in_chs: int, exp_ratio: float) -> int:
    """Hidden width of an inverted residual: round(C_in · t), as torchvision and timm do."""
    return int(round(in_chs * exp_ratio))


@register_block("depthwise_separable", "#ff7f0e")
class DepthwiseSeparable(Block):
    """Depthwise k x k (one filter per channel) then pointwise 1x1 (MobileNet v1)."""

    paper = "Howard et al. 2017, MobileNets"
    summary = (
        "Split spatial mixing (depthwise) from channel mixing (pointwise): D_K²·C + C² instead of D_K²·C²."
    )

    def __init__(
        self,
        in_chs: int = 128,
        out_chs: int = 128,
        kernel_size: int = 3,
        stride: int = 1,
        bias: bool = False,
        norm: bool = True,
    ) -> None:
        super().__init__()
        # depth-wise
        self.conv_dw = ConvNormAct(in_chs, in_chs, kernel_size, stride, groups=in_chs, bias=bias, norm=norm)
        # point-wise
        self.conv_pw = ConvNormAct(in_chs, out_chs, 1, bias=bias, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_pw(self.conv_dw(x))

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
        bias: bool,
        norm: bool,
    ) -> BlockCost:
        ho, wo = out_size(h, kernel_size, stride), out_size(w, kernel_size, stride)
        opts: dict[str, Any] = dict(bias=bias, norm=norm)
        terms = conv_norm_terms(
            "depthwise", kernel_size, in_chs, in_chs, ho, wo, n, groups=in_chs, **opts
        ) + conv_norm_terms("pointwise 1x1", 1, in_chs, out_chs, ho, wo, n, **opts)
        formula = r"(D_K \cdot D_K \cdot 1) \cdot C_{in} + (1 \cdot 1 \cdot C_{in}) \cdot C_{out}"
        return BlockCost(tuple(terms), (n, out_chs, ho, wo), formula)


@register_block("inverted_residual", "#ffbb78")
class InvertedResidual(Block):
    """1x1 expand by t -> depthwise 3x3 -> linear 1x1 projection, skip when shapes match (MobileNet v2)."""

    paper = "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks"
    summary = "Expand thin → wide, filter depthwise, project back with no activation (the linear bottleneck)."

    def __init__(
        self,
        in_chs: int = 24,
        out_chs: int = 24,
        kernel_size: int = 3,
        stride: int = 1,
        exp_ratio: float = 6.0,
        bias: bool = False,
        norm: bool = True,
    ) -> None:
        super().__init__()
        mid = expanded_chs(in_chs, exp_ratio)
        self.has_skip = stride == 1 and in_chs == out_chs
        # point-wise expansion (skipped when t = 1)
        self.conv_pw = (
            ConvNormAct(in_chs, mid, 1, bias=bias, norm=norm, act_layer=nn.ReLU6)
            if mid != in_chs
            else nn.Identity()
        )
        # depth-wise
        self.conv_dw = ConvNormAct(
            mid, mid, kernel_size, stride, groups=mid, bias=bias, norm=norm, act_layer=nn.ReLU6
        )
        # linear projection
        self.conv_pwl = ConvNormAct(mid, out_chs, 1, bias=bias, norm=norm, act_layer=None)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv_pwl(self.conv_dw(self.conv_pw(x)))
        return x + y if self.has_skip else y

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
        bias: bool,
        norm: bool,
    ) -> BlockCost:
        mid = expanded_chs(in_chs, exp_ratio)
        ho, wo = out_size(h, kernel_size, stride), out_size(w, kernel_size, stride)
        opts: dict[str, Any] = dict(bias=bias, norm=norm)
        terms = conv_norm_terms("expand 1x1", 1, in_chs, mid, h, w, n, **opts) if mid != in_chs else []
        terms += conv_norm_terms("depthwise", kernel_size, mid, mid, ho, wo, n, groups=mid, **opts)
        terms += conv_norm_terms("project 1x1 (linear)", 1, mid, out_chs, ho, wo, n, **opts)
        formula = r"C_{in} (t C_{in}) + K^2 (t C_{in}) + (t C_{in}) C_{out}"
        return BlockCost(tuple(terms), (n, out_chs, ho, wo), formula)
