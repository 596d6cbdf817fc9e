"""ResNet basic and bottleneck blocks with projection shortcuts (He et al. 2015, "Deep Residual Learning")."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from core.blocks.base import Block
from core.blocks.costs import BlockCost, Term, conv_norm_terms, out_size
from core.blocks.layers import ConvNormAct
from core.blocks.registry import BlockConfigError, register_block


def needs_projection(in_chs: int, out_chs: int, stride: int) -> bool:
    """y = F(x) + W_s x needs the 1x1 projection W_s when stride or channel count changes."""
    return stride != 1 or in_chs != out_chs


def _shortcut(in_chs: int, out_chs: int, stride: int, bias: bool, norm: bool) -> nn.Module:
    if not needs_projection(in_chs, out_chs, stride):
        return nn.Identity()
    return ConvNormAct(in_chs, out_chs, 1, stride, bias=bias, norm=norm, act_layer=None)


def _shortcut_terms(
    n: int, h: int, w: int, in_chs: int, out_chs: int, stride: int, bias: bool, norm: bool
) -> list[Term]:
    if not needs_projection(in_chs, out_chs, stride):
        return []
    ho, wo = out_size(h, 1, stride), out_size(w, 1, stride)
    return conv_norm_terms("shortcut W_s (1x1)", 1, in_chs, out_chs, ho, wo, n, bias=bias, norm=norm)


@register_block("resnet_basic", "#aec7e8")
class ResNetBasic(Block):
    """Two 3x3 convs plus a skip: y = relu(F(x) + x) (ResNet-18/34)."""

    paper = "He et al. 2015, Deep Residual Learning for Image Recognition"
    summary = "3×3 → 3×3 with an identity skip; a 1x1 projection shortcut when stride or channels change."

    def __init__(
        self, in_chs: int = 64, out_chs: int = 64, stride: int = 1, bias: bool = False, norm: bool = True
    ) -> None:
        super().__init__()
        self.has_skip = True
        self.has_projection = needs_projection(in_chs, out_chs, stride)
        self.conv1 = ConvNormAct(in_chs, out_chs, 3, stride, bias=bias, norm=norm)
        self.conv2 = ConvNormAct(out_chs, out_chs, 3, bias=bias, norm=norm, act_layer=None)
        self.shortcut = _shortcut(in_chs, out_chs, stride, bias, norm)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))

    @classmethod
    def closed_form(
        cls, n: int, h: int, w: int, *, in_chs: int, out_chs: int, stride: int, bias: bool, norm: bool
    ) -> BlockCost:
        ho, wo = out_size(h, 3, stride), out_size(w, 3, stride)
        opts: dict[str, Any] = dict(bias=bias, norm=norm)
        terms = (
            conv_norm_terms("conv1 3x3", 3, in_chs, out_chs, ho, wo, n, **opts)
            + conv_norm_terms("conv2 3x3", 3, out_chs, out_chs, ho, wo, n, **opts)
            + _shortcut_terms(n, h, w, in_chs, out_chs, stride, bias, norm)
        )
        formula = r"9 C_{in} C_{out} + 9 C_{out}^2 + [\text{proj}]\; C_{in} C_{out}"
        return BlockCost(tuple(terms), (n, out_chs, ho, wo), formula)


@register_block("resnet_bottleneck", "#98df8a")
class ResNetBottleneck(Block):
    """1x1 squeeze -> 3x3 -> 1x1 expand (x4) plus a skip (ResNet-50/101/152); stride on the 3x3."""

    paper = "He et al. 2015, Deep Residual Learning for Image Recognition"
    summary = "Width C_out / 4 inside, expansion 4 out; the skip carries the gradient's +1 highway."
    expansion = 4

    def __init__(
        self, in_chs: int = 256, out_chs: int = 256, stride: int = 1, bias: bool = False, norm: bool = True
    ) -> None:
        super().__init__()
        width = out_chs // self.expansion
        self.has_skip = True
        self.has_projection = needs_projection(in_chs, out_chs, stride)
        # point-wise squeeze
        self.conv1 = ConvNormAct(in_chs, width, 1, bias=bias, norm=norm)
        # spatial 3x3 (carries the stride, as in torchvision's ResNet v1.5)
        self.conv2 = ConvNormAct(width, width, 3, stride, bias=bias, norm=norm)
        # point-wise expand, no activation before the add
        self.conv3 = ConvNormAct(width, out_chs, 1, bias=bias, norm=norm, act_layer=None)
        self.shortcut = _shortcut(in_chs, out_chs, stride, bias, norm)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        if cfg["out_chs"] % cls.expansion:
            raise BlockConfigError(
                f"out_chs = {cfg['out_chs']} must be a multiple of the expansion "
                f"{cls.expansion} (inner width = out_chs / 4)"
            )

    @classmethod
    def closed_form(
        cls, n: int, h: int, w: int, *, in_chs: int, out_chs: int, stride: int, bias: bool, norm: bool
    ) -> BlockCost:
        width = out_chs // cls.expansion
        ho, wo = out_size(h, 3, stride), out_size(w, 3, stride)
        opts: dict[str, Any] = dict(bias=bias, norm=norm)
        terms = (
            conv_norm_terms("conv1 1x1 squeeze", 1, in_chs, width, h, w, n, **opts)
            + conv_norm_terms("conv2 3x3", 3, width, width, ho, wo, n, **opts)
            + conv_norm_terms("conv3 1x1 expand", 1, width, out_chs, ho, wo, n, **opts)
            + _shortcut_terms(n, h, w, in_chs, out_chs, stride, bias, norm)
        )
        formula = r"C_{in} c + 9 c^2 + 4 c^2 + [\text{proj}]\; C_{in} \cdot 4c, \quad c = C_{out}/4"
        return BlockCost(tuple(terms), (n, out_chs, ho, wo), formula)
