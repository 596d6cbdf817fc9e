"""Closed-form costs of layers, as plain arithmetic (no torch).

MACs follow fvcore's convention (one fused multiply-add = one MAC, model in ``eval()``): convolution and
linear layers count their multiply-adds, BatchNorm in eval counts 2 per element (scale and shift),
LayerNorm with affine 5 per element, adaptive average pooling 1 per input element. Bias additions,
activations, element-wise adds and max pooling are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Term:
    """One layer of a block: its name, LaTeX formula with numbers, params and MACs."""

    name: str
    formula: str
    params: int
    macs: int


@dataclass(frozen=True)
class BlockCost:
    """The closed-form cost of a whole block, as the sum of its terms."""

    terms: tuple[Term, ...]
    out_shape: tuple[int, int, int, int]
    formula: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def params(self) -> int:
        return sum(t.params for t in self.terms)

    @property
    def macs(self) -> int:
        return sum(t.macs for t in self.terms)


def out_size(size: int, kernel: int, stride: int, padding: int | None = None) -> int:
    """Spatial output size of a convolution or pooling with 'same'-style padding ``kernel // 2``."""
    pad = kernel // 2 if padding is None else padding
    return (size + 2 * pad - kernel) // stride + 1


def conv_params(k: int, c_in: int, c_out: int, groups: int = 1, bias: bool = False) -> int:
    """(K·K·C_in/g)·C_out weights, plus C_out biases."""
    return k * k * (c_in // groups) * c_out + (c_out if bias else 0)


def conv_macs(k: int, c_in: int, c_out: int, h_out: int, w_out: int, batch: int = 1, groups: int = 1) -> int:
    """N·H_out·W_out·C_out·(C_in/g)·K·K multiply-adds."""
    return batch * h_out * w_out * c_out * (c_in // groups) * k * k


def conv_term(
    name: str,
    k: int,
    c_in: int,
    c_out: int,
    h_out: int,
    w_out: int,
    batch: int,
    groups: int = 1,
    bias: bool = False,
) -> Term:
    """A convolution as a term, with the lecture's (K_h·K_w·C_in)·C_out formula filled in."""
    cin_g = c_in // groups
    formula = rf"({k}\cdot{k}\cdot{cin_g})\cdot{c_out}" + (rf" + {c_out}" if bias else "")
    return Term(
        name,
        formula,
        conv_params(k, c_in, c_out, groups, bias),
        conv_macs(k, c_in, c_out, h_out, w_out, batch, groups),
    )


def bn_term(name: str, channels: int, h: int, w: int, batch: int) -> Term:
    """BatchNorm: 2·C params (γ, β); in eval 2 MACs per element."""
    return Term(name, rf"2\cdot{channels}", 2 * channels, 2 * batch * channels * h * w)


def layernorm_term(name: str, channels: int, h: int, w: int, batch: int) -> Term:
    """LayerNorm with affine: 2·C params; fvcore counts 5 MACs per element."""
    return Term(name, rf"2\cdot{channels}", 2 * channels, 5 * batch * channels * h * w)


def linear_term(name: str, c_in: int, c_out: int, rows: int, bias: bool = True) -> Term:
    """Linear layer applied to ``rows`` vectors: C_in·C_out (+C_out) params, rows·C_in·C_out MACs."""
    formula = rf"{c_in}\cdot{c_out}" + (rf" + {c_out}" if bias else "")
    return Term(name, formula, c_in * c_out + (c_out if bias else 0), rows * c_in * c_out)


def pool_term(name: str, channels: int, h: int, w: int, batch: int) -> Term:
    """Adaptive average pooling: no params, 1 MAC per input element."""
    return Term(name, "0", 0, batch * channels * h * w)


def conv_norm_terms(
    name: str,
    k: int,
    c_in: int,
    c_out: int,
    h_out: int,
    w_out: int,
    batch: int,
    *,
    groups: int = 1,
    bias: bool = False,
    norm: bool = True,
) -> list[Term]:
    """A convolution followed by an optional BatchNorm."""
    terms = [conv_term(name, k, c_in, c_out, h_out, w_out, batch, groups, bias)]
    if norm:
        terms.append(bn_term(f"{name}.bn", c_out, h_out, w_out, batch))
    return terms
