"""Where the time goes: every layer's MACs, bytes, arithmetic intensity and replayed latency against this
machine's ceilings (``core.measure.ceilings``: peak compute and memory bandwidth, per cache level on a
CPU), the roofline.

Bytes moved by a layer, as a lower bound: every input, output and weight element read or written once,
    bytes = (input elements + output elements + weight elements) x bytes per element (4 in fp32, 2 in
    bf16/fp16),
and arithmetic intensity = FLOPs / bytes = 2 x MACs / bytes. The roofline's attainable time is
    max(FLOPs / peak FLOP/s, bytes / bandwidth),
and a layer is memory-bound when the second term is the larger.

A layer's working set is its bytes; the level it fits in is the smallest whose capacity holds them, and
its attainable time is call time + max(FLOPs / peak, bytes / that level's bandwidth).
"""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import torch
from torch import nn

from core.measure.attribution import Attribution, attribute
from core.measure.ceilings import ELEMENT_BYTES, Ceilings
from core.measure.counting import fvcore_macs
from core.measure.layercost import KINDS, LayerCost, LayerTime, is_attention, kind_of  # noqa: F401  (KINDS: re-exported)
from core.measure.profiling import autocast_for, resolve_device
from core.measure.settings import Setting, threads_for
from core.measure.timing import time_call

BYTES_FORMULA = "bytes = (input + output + weight elements) × bytes per element; intensity = 2·MACs / bytes"


def layer_bytes(in_elems: int, out_elems: int, weight_elems: int, precision: str) -> int:
    """The lower bound of bytes a layer moves (see the module docstring)."""
    return (in_elems + out_elems + weight_elems) * ELEMENT_BYTES[precision]


def intensity(macs: int, nbytes: int) -> float:
    """FLOPs per byte moved: 2 x MACs / bytes."""
    return 2 * macs / nbytes if nbytes else 0.0


def attainable_s(macs: int, nbytes: int, ceilings: Ceilings) -> tuple[float, str]:
    """The roofline's least time for a layer and what bounds it ('compute' or 'memory'): one op call, then
    the larger of its FLOPs at peak and its bytes at the bandwidth of the level its working set fits in."""
    compute = 2 * macs / (ceilings.peak_gflops * 1e9)
    memory = nbytes / (ceilings.bandwidth_for(nbytes) * 1e9)
    return ceilings.call_us / 1e6 + max(compute, memory), "memory" if memory > compute else "compute"


def roof_verdict(kind: str, macs: int, nbytes: int, seconds: float, ceilings: Ceilings) -> tuple[str, str]:
    """(level, verdict) for a timed layer: under its level's roof, above the DRAM roof but under its
    level's, or above every measured ceiling with the likely reason. Never left unexplained."""
    level = ceilings.level(nbytes)["name"]
    if macs <= 0 or seconds <= 0:
        return level, "no MACs: not on the roofline"
    achieved_gbs = nbytes / seconds / 1e9
    achieved_gflops = 2 * macs / seconds / 1e9
    own = ceilings.bandwidth_for(nbytes)
    if achieved_gflops > ceilings.peak_gflops * 1.05:
        return level, (
            "above every measured ceiling: faster than the GEMM peak, so fewer FLOPs ran than counted "
            "(a kernel that skips zeros or reuses results) or the timing is below the timer's resolution"
        )
    if achieved_gbs <= own * 1.05:
        if achieved_gbs > ceilings.bandwidth_gbs * 1.05:
            return level, f"above the DRAM roof, under its level's ({level}): it runs from cache"
        return level, f"under its level's roof ({level})"
    if achieved_gbs <= ceilings.top_gbs * 1.05:
        return level, (
            f"above its level's roof ({level}): its working set is counted whole, but the kernel streams "
            "it in tiles that stay in a smaller cache"
        )
    why = (
        "the replay calls it on the same input every time, so it runs from a smaller cache than its counted "
        "working set" + (" (and an in-place op reads and writes one buffer)" if kind == "activation" else "")
    )
    return level, f"above every measured ceiling: {why}"


def units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers timed one by one: attention (and squeeze-excite) modules and modules with weights of
    their own and children (timm's BatchNormAct2d: the norm and its activation) whole, since their
    forward does work no child owns; else every leaf module (no children) that does something (Identity
    and Dropout are skipped)."""
    out: list[tuple[str, nn.Module]] = []
    skip: tuple[str, ...] = ()
    for name, m in model.named_modules():
        if skip and name.startswith(skip):
            continue
        whole = is_attention(m) or (list(m.children()) and any(True for _ in m.parameters(False)))
        if whole and name:
            out.append((name, m))
            skip = (*skip, name + ".")
        elif not list(m.children()) and not isinstance(m, (nn.Identity, nn.Dropout)) and name:
            out.append((name, m))
    return out


def _out(x: Any) -> tuple[int, tuple[int, ...], int]:
    """A layer's output: elements, shape (of its first tensor) and bytes."""
    first = (
        x
        if isinstance(x, torch.Tensor)
        else next((v for v in x if isinstance(v, torch.Tensor)), None)
        if isinstance(x, (tuple, list))
        else None
    )
    nbytes = x.numel() * x.element_size() if isinstance(x, torch.Tensor) else 0
    return _numel(x), tuple(first.shape) if first is not None else (), nbytes


def _numel(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel()
    if isinstance(x, (tuple, list)):
        return sum(_numel(v) for v in x)
    return 0


def profile_layers(
    model: nn.Module,
    input_shape: tuple[int, ...],
    setting: Setting,
    ceilings: Ceilings,
    on_layer: Callable[[int, int, str], bool] | None = None,
    min_time_s: float = 0.05,
) -> pd.DataFrame:
    """The roofline table of ``measure_layers``' records (one ``roof_row`` each), with the whole forward's
    accounting in ``frame.attrs``."""
    costs, attrs = measure_layers(model, input_shape, setting, ceilings, on_layer, min_time_s)
    frame = pd.DataFrame([roof_row(c, ceilings) for c in costs], columns=COLUMNS)
    frame.attrs.update(attrs, sum_ms=float(frame["ms_alone"].sum()), timed=len(frame))
    return frame


def measure_layers(
    model: nn.Module,
    input_shape: tuple[int, ...],
    setting: Setting,
    ceilings: Ceilings,
    on_layer: Callable[[int, int, str], bool] | None = None,
    min_time_s: float = 0.05,
) -> tuple[list[LayerCost], dict[str, Any]]:
    """One row per layer: kind, MACs (fvcore), bytes, intensity, replayed latency, achieved GFLOP/s and
    GB/s, attainable time and bound, efficiency (attainable / measured). Each layer is timed alone on
    the input it got in a real forward (captured by hooks), with the same timer as the whole model.
    ``frame.attrs`` holds the whole model's latency and the sum of the layers'. ``on_layer(i, n, name)``
    reports progress and may stop."""
    dev = resolve_device(setting.device)
    fmt = torch.channels_last if setting.memory_format == "channels_last" else torch.contiguous_format
    model = model.eval().to("cpu", memory_format=torch.contiguous_format)
    x_cpu = torch.randn(*input_shape)
    macs = fvcore_macs(model, (x_cpu,)).by_module
    layers = units(model)
    model = model.to(dev, memory_format=fmt)
    x = x_cpu.to(dev).contiguous(memory_format=fmt)
    captured: dict[str, tuple[tuple, dict]] = {}
    outputs: dict[str, tuple[int, tuple[int, ...], int]] = {}  # elements, shape, bytes
    hooks = [
        m.register_forward_pre_hook(
            lambda _m, args, kwargs, n=n: captured.__setitem__(
                n, (tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args), dict(kwargs))
            ),
            with_kwargs=True,
        )
        for n, m in layers
    ]
    hooks += [
        m.register_forward_hook(lambda _m, _i, out, n=n: outputs.__setitem__(n, _out(out))) for n, m in layers
    ]
    costs: list[LayerCost] = []
    with threads_for(setting.threads), torch.inference_mode(), autocast_for(dev, setting.precision):
        try:
            model(x)
        finally:
            for h in hooks:
                h.remove()
        whole = time_call(lambda: model(x), dev, min_time_s=0.3)
        inside = attribute(model, x, dev, min_time_s=0.3)
        for i, (name, m) in enumerate(layers):
            if on_layer is not None and on_layer(i, len(layers), name):
                break
            if name not in captured:
                continue  # a module the forward never called
            args, kwargs = captured[name]
            stats = time_call(
                lambda m=m, a=args, k=kwargs: m(*a, **k),
                dev,
                warmup=2,
                min_iters=5,
                min_time_s=min_time_s,
                warmup_time_s=0.0,
            )
            layer_macs = sum(v for k, v in macs.items() if k == name or k.startswith(name + "."))
            weights = sum(p.numel() for p in m.parameters())
            elems, shape, out_bytes = outputs.get(name, (0, (), 0))
            cost = LayerCost(
                name,
                type(m).__name__,
                kind_of(m),
                shape,
                weights,
                layer_macs,
                layer_bytes(_numel(args), elems, weights, setting.precision),
                out_bytes,
                (
                    LayerTime("eager", "alone", stats.median_ms, setting.threads or 0, setting.precision),
                    LayerTime(
                        "eager", "in forward", inside.inside(name), setting.threads or 0, setting.precision
                    ),
                ),
            )
            costs.append(cost)
    return costs, {
        "whole_ms": whole.median_ms,
        "layers": len(layers),
        **accounting(inside, [n for n, _ in layers]),
    }


def roof_row(cost: LayerCost, ceilings: Ceilings, target: str = "eager") -> dict[str, Any]:
    """A layer's row of the roofline table, derived from its record and this machine's ceilings: intensity,
    achieved GFLOP/s and GB/s from its time alone on ``target``, the roofline's attainable time and
    bound, the efficiency, the level its working set fits and the verdict."""
    alone = cost.time_ms(target, "alone") or 0.0
    secs = alone / 1e3
    best, bound = attainable_s(cost.macs, cost.bytes, ceilings)
    level, verdict = roof_verdict(cost.kind, cost.macs, cost.bytes, secs, ceilings)
    return {
        "module": cost.module,
        "op": cost.op,
        "kind": cost.kind,
        "macs": cost.macs,
        "bytes": cost.bytes,
        "intensity": intensity(cost.macs, cost.bytes),
        "ms_in_forward": cost.time_ms(target, "in forward"),
        "ms_alone": alone,
        "gflops": 2 * cost.macs / secs / 1e9 if secs else 0.0,
        "gbs": cost.bytes / secs / 1e9 if secs else 0.0,
        "attainable_ms": best * 1e3,
        "bound": bound,
        "efficiency": best / secs if secs else 0.0,
        "level": level,
        "roof": verdict,
    }


COLUMNS = [
    "module",
    "op",
    "kind",
    "macs",
    "bytes",
    "intensity",
    "ms_in_forward",
    "ms_alone",
    "gflops",
    "gbs",
    "attainable_ms",
    "bound",
    "efficiency",
    "level",
    "roof",
]


def above_roofs(frame: pd.DataFrame) -> pd.DataFrame:
    """The layers above their level's roof or above every ceiling, with the reason each gives."""
    if "roof" not in frame:
        return frame.iloc[0:0]
    return frame[
        frame["roof"].str.startswith("above every") | frame["roof"].str.startswith("above its level")
    ]


OWN_KINDS = {"blocks_own_ms": "blocks' own ops", "model_own_ms": "model's own forward"}


def accounting(inside: Attribution, layers: list[str]) -> dict[str, Any]:
    """How one whole forward's time divides: the layers (in forward), the blocks' own ops (what a container
    module runs between its children: residual adds, reshapes), and the model's own forward outside any
    submodule."""
    prefixes = tuple(n + "." for n in layers)
    in_layers = sum(inside.inside(n) for n in layers)
    blocks = {
        k: v
        for k, v in inside.own_ms.items()
        if k and k not in layers and not k.startswith(prefixes) and v > 0
    }
    top = dict(sorted(blocks.items(), key=lambda kv: -kv[1])[:8])
    return {
        "forward_ms": inside.whole_ms,
        "clean_ms": inside.clean_ms,
        "in_layers_ms": in_layers,
        "blocks_own_ms": sum(blocks.values()),
        "model_own_ms": inside.own_ms.get("", 0.0),
        "top_blocks_own": top,
        "attribution_runs": inside.runs,
    }


def by_kind(frame: pd.DataFrame) -> pd.DataFrame:
    """Share of the whole forward's time (in forward) and of the MACs per layer kind, in percent; the
    blocks' own ops and the model's own forward are kinds of their own (no MACs are counted for them)."""
    time_col = "ms_in_forward" if "ms_in_forward" in frame else "ms_alone"
    g = frame.groupby("kind")[[time_col, "macs"]].sum()
    for attr, kind in OWN_KINDS.items():
        if frame.attrs.get(attr):
            g.loc[kind] = [frame.attrs[attr], 0]
    out = pd.DataFrame(
        {
            "time_pct": 100 * g[time_col] / max(g[time_col].sum(), 1e-12),
            "macs_pct": 100 * g["macs"] / max(g["macs"].sum(), 1),
        }
    )
    return out.reindex([k for k in (*KINDS, *OWN_KINDS.values()) if k in out.index]).reset_index()


# the column names stored profiles had before they were data names (a display label each); "time ms" is from
# before in-forward attribution, when the one time column was the isolated replay
LEGACY = {
    "layer": "module",
    "type": "op",
    "MACs": "macs",
    "intensity FLOP/B": "intensity",
    "in forward ms": "ms_in_forward",
    "alone ms": "ms_alone",
    "time ms": "ms_alone",
    "GFLOP/s": "gflops",
    "GB/s": "gbs",
    "attainable ms": "attainable_ms",
}


def upgrade(frame: pd.DataFrame) -> pd.DataFrame:
    """A stored profile with display-label columns (``LEGACY``) read under the data names."""
    return frame.rename(columns=LEGACY)


def sum_note(frame: pd.DataFrame) -> str:
    """How the time adds up, honestly, around one whole-forward time (the clean forward, no timestamps):
    the shares that the layers, the blocks and the model itself own inside a forward timed with
    timestamps, then the layers' isolated replay, which the roofline's efficiency uses."""
    whole, alone = frame.attrs.get("whole_ms"), frame.attrs.get("sum_ms")
    if not whole:
        return ""
    n = frame.attrs.get("timed", len(frame))
    why = (
        "alone, each finds its input still in cache and skips what runs between layers"
        if alone < whole
        else "alone, each pays its own call overhead and starts with cold caches, which a whole forward "
        "shares"
    )
    head = f"One whole forward takes {whole:.3g} ms (clean: timed as a whole, with no timestamps inside)."
    replay = (
        "Timed alone, one by one (the “alone ms” column, which the roofline's efficiency uses), the "
        f"{n} layers "
        f"add up to {alone:.3g} ms, {100 * alone / whole:.0f}% of that clean forward: {why}."
    )
    forward = frame.attrs.get("forward_ms")
    if not forward:
        return (
            f"{head} {replay} This profile predates in-forward timing: profile it again to see the "
            "whole forward "
            "divided."
        )
    layers, blocks, model = (
        frame.attrs["in_layers_ms"],
        frame.attrs["blocks_own_ms"],
        frame.attrs["model_own_ms"],
    )
    top = ", ".join(
        f"{k} {100 * v / forward:.1f}%" for k, v in list(frame.attrs.get("top_blocks_own", {}).items())[:3]
    )
    change = 100 * (forward / whole - 1)
    cost = (
        f"which slows that forward by {change:.0f}%"
        if change >= 1
        else f"whose cost is within this machine's noise: that forward took {change:+.0f}%"
    )
    return (
        f"{head} Divided by a timestamp at every module's entry and exit ({cost}, so only shares are "
        f"quoted): the {n} layers own "
        f"{100 * layers / forward:.1f}% of it and the blocks' own ops (residual adds and reshapes between "
        f"layers{': ' + top if top else ''}) {100 * blocks / forward:.1f}% (the “in forward ms” "
        "column). The rest, "
        f"{100 * model / forward:.1f}%, is the model's own forward outside any submodule (its "
        "functional calls "
        f"and the timestamps of its direct children). {replay}"
    )


def predicted_ratio(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """How many times faster the roofline says B runs than A: the ratio of their summed attainable times."""
    return float(a["attainable_ms"].sum() / max(b["attainable_ms"].sum(), 1e-12))


def claim(
    label_a: str, a: pd.DataFrame, label_b: str, b: pd.DataFrame, measured: float, mac_ratio: float
) -> str:
    """The lecture's claim answered in one sentence from the figures measured here."""
    mem = sorted(
        {
            f"{r['kind']} ({r['module']})"
            for _, r in pd.concat([a, b]).iterrows()
            if r["bound"] == "memory" and r["macs"] > 0
        }
    )
    return (
        f"{label_b} has {mac_ratio:.2f}× fewer MACs than {label_a}; on this machine's roofline "
        + (
            "the memory-bound layers are " + ", ".join(mem)
            if mem
            else "no MAC-carrying layer is memory-bound"
        )
        + ", "
        f"so the roofline predicts {predicted_ratio(a, b):.2f}× faster and {measured:.2f}× was measured."
    )
