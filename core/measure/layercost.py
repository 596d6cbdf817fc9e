"""One record per layer (``LayerCost``): what a layer is and what it costs, wherever it was measured. The
profile (``core.measure.profiling``), the roofline and its backbone view ("where the time goes",
``core.measure.roofline`` through ``core.zoo.layers``) produce it; tables and charts read it. Its field
names are data; the labels a person reads are the pages' to choose.

Units: ``params`` and ``macs`` are counts (one fused multiply-add is one MAC; FLOPs = 2 x MACs, for the
whole batch); ``bytes`` is the lower bound a layer moves (every input, output and weight element once,
in the precision it ran in), ``output_bytes`` its output alone; each time is a median in milliseconds,
keyed by the target it ran on (``core.deploy.targets``: "eager" is PyTorch on this server), with its
threads and precision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import pandas as pd
from torch import nn

KINDS = (
    "dense k×k conv",
    "depthwise conv",
    "1×1 pointwise conv",
    "norm",
    "activation",
    "pooling",
    "linear",
    "attention",
    "other",
)
HOW = ("alone", "in forward")  # replayed alone on its captured input; its share inside one whole forward


@dataclass(frozen=True)
class LayerTime:
    """One measured time of a layer: on ``target``, ``how`` it was timed, at ``threads`` and ``precision``."""

    target: str
    how: str
    ms: float
    threads: int
    precision: str


@dataclass(frozen=True)
class LayerCost:
    module: str  # the module's path in its model ("" for the model itself)
    op: str  # the module's class: Conv2d, BatchNormAct2d, SqueezeExcite…
    kind: str  # one of KINDS
    output_shape: tuple[int, ...]
    params: int  # its own parameters (a container counts the ones it holds directly)
    macs: int
    bytes: int
    output_bytes: int
    times: tuple[LayerTime, ...] = ()

    def time_ms(self, target: str = "eager", how: str = "alone") -> float | None:
        """The layer's median on ``target`` timed ``how``, or None when it was not timed so."""
        return next((t.ms for t in self.times if t.target == target and t.how == how), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "op": self.op,
            "kind": self.kind,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "macs": self.macs,
            "bytes": self.bytes,
            "output_bytes": self.output_bytes,
            "times": [t.__dict__ for t in self.times],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LayerCost":
        return cls(
            str(d["module"]),
            str(d["op"]),
            str(d["kind"]),
            tuple(int(s) for s in d.get("output_shape") or ()),
            int(d["params"]),
            int(d["macs"]),
            int(d["bytes"]),
            int(d["output_bytes"]),
            tuple(LayerTime(**t) for t in d.get("times") or ()),
        )


FIELDS = ["module", "op", "kind", "output_shape", "params", "macs", "bytes", "output_bytes"]


def frame(costs: Iterable[LayerCost]) -> pd.DataFrame:
    """One row per layer with the record's field names, plus one column per time measured,
    ``ms.<target>.<how>`` (e.g. ``ms.eager.alone``); the output shape as text ("1x64x56x56")."""
    rows = []
    for c in costs:
        row: dict[str, Any] = {f: getattr(c, f) for f in FIELDS}
        row["output_shape"] = "x".join(map(str, c.output_shape))
        for t in c.times:
            row[f"ms.{t.target}.{t.how}"] = t.ms
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.reindex(columns=[*FIELDS, *[c for c in out.columns if c not in FIELDS]])


def kind_of(module: nn.Module) -> str:
    """The layer kind the roofline and the graph colour by."""
    name = type(module).__name__
    if isinstance(module, nn.Conv2d):
        if module.groups > 1 and module.groups == module.in_channels:
            return "depthwise conv"
        if module.kernel_size == (1, 1):
            return "1×1 pointwise conv"
        return "dense k×k conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if is_attention(module):
        return "attention"
    if "Norm" in name:  # timm's BatchNormAct2d (norm + activation) counts as norm
        return "norm"
    if "Pool" in name:
        return "pooling"
    acts = (
        nn.ReLU,
        nn.ReLU6,
        nn.GELU,
        nn.SiLU,
        nn.Hardswish,
        nn.Hardsigmoid,
        nn.Sigmoid,
        nn.Tanh,
        nn.LeakyReLU,
        nn.ELU,
        nn.Mish,
    )
    if isinstance(module, acts) or name.endswith(("Act", "ReLU", "Swish", "Sigmoid")):
        return "activation"
    return "other"


def is_attention(module: nn.Module) -> bool:
    """Self-attention, and squeeze-excite (channel attention): timed whole, as their forward does the
    pooling, matmuls and gating between their children."""
    name = type(module).__name__
    return "Attention" in name or "SqueezeExcite" in name or name in ("SEModule", "EffectiveSEModule")
