"""Small layers the blocks share: conv + norm + activation, squeeze-excite."""

from __future__ import annotations

from torch import Tensor, nn


class ConvNormAct(nn.Module):
    """k x k convolution with 'same' padding, optional BatchNorm, optional activation."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
        norm: bool = True,
        act_layer: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=bias
        )
        self.bn = nn.BatchNorm2d(out_chs) if norm else nn.Identity()
        self.act = act_layer() if act_layer is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al., 2018): global pool, reduce, expand, sigmoid gate."""

    def __init__(self, chs: int, rd_chs: int, act_layer: type[nn.Module] = nn.SiLU) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(chs, rd_chs, 1, bias=True)
        self.act = act_layer()
        self.conv_expand = nn.Conv2d(rd_chs, chs, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = self.conv_expand(self.act(self.conv_reduce(self.pool(x))))
        return x * self.gate(s)
