"""Standard convolution and the lecture's 1x1 bottleneck (Lin et al. 2013; Szegedy et al. 2014)."""

from __future__ import annotations

from torch import Tensor

from core.blocks.base import Block
from core.blocks.costs import BlockCost, conv_norm_terms, out_size
from core.blocks.layers import ConvNormAct
from core.blocks.registry import register_block


@register_block("conv", "#1f77b4")
class ConvBlock(Block):
    """A standard k x k convolution (+ BN + ReLU); mixes space and channels in one step."""

    paper = "LeCun et al. 1998; Simonyan & Zisserman 2014 (VGG)"
    summary = "One k×k convolution: every output channel sees every input channel over a k×k window."
    default_hw = 14

    def __init__(
        self,
        in_chs: int = 256,
        out_chs: int = 256,
        kernel_size: int = 3,
        stride: int = 1,
        bias: bool = False,
        norm: bool = True,
    ) -> None:
        super().__init__()
        self.conv = ConvNormAct(in_chs, out_chs, kernel_size, stride, bias=bias, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)

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
        terms = conv_norm_terms("conv", kernel_size, in_chs, out_chs, ho, wo, n, bias=bias, norm=norm)
        formula = r"(K_h \cdot K_w \cdot C_{in}) \cdot C_{out}"
        return BlockCost(tuple(terms), (n, out_chs, ho, wo), formula)


@register_block("bottleneck_1x1", "#2ca02c")
class Bottleneck1x1(Block):
    """1x1 squeeze, k x k spatial mix, 1x1 expand (the lecture's bottleneck; GoogLeNet's reduction)."""

    paper = "Lin et al. 2013 (Network in Network); Szegedy et al. 2014 (GoogLeNet)"
    summary = "Squeeze channels with a 1x1, do the expensive k×k on few channels, expand back with a 1x1."
    default_hw = 14

    def __init__(
        self,
        in_chs: int = 256,
        out_chs: int = 256,
        mid_chs: int = 64,
        kernel_size: int = 3,
        stride: int = 1,
        bias: bool = False,
        norm: bool = True,
    ) -> None:
        super().__init__()
        # squeeze
        self.squeeze = ConvNormAct(in_chs, mid_chs, 1, bias=bias, norm=norm)
        # spatial mix
        self.spatial = ConvNormAct(mid_chs, mid_chs, kernel_size, stride, bias=bias, norm=norm)
        # expand
        self.expand = ConvNormAct(mid_chs, out_chs, 1, bias=bias, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.expand(self.spatial(self.squeeze(x)))

    @classmethod
    def closed_form(
        cls,
        n: int,
        h: int,
        w: int,
        *,
        in_chs: int,
        out_chs: int,
        mid_chs: int,
        kernel_size: int,
        stride: int,
        bias: bool,
        norm: bool,
    ) -> BlockCost:
        ho, wo = out_size(h, kernel_size, stride), out_size(w, kernel_size, stride)
        opts = dict(bias=bias, norm=norm)
        terms = (
            conv_norm_terms("squeeze", 1, in_chs, mid_chs, h, w, n, **opts)
            + conv_norm_terms("spatial", kernel_size, mid_chs, mid_chs, ho, wo, n, **opts)
            + conv_norm_terms("expand", 1, mid_chs, out_chs, ho, wo, n, **opts)
        )
        formula = (
            r"(1 \cdot 1 \cdot C_{in}) \cdot C_{mid} + (K \cdot K \cdot C_{mid}) \cdot C_{mid}"
            r" + (1 \cdot 1 \cdot C_{mid}) \cdot C_{out}"
        )
        return BlockCost(tuple(terms), (n, out_chs, ho, wo), formula)
