"""Compare mode and the lecture's worked numbers: several blocks with the same input and output shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from core.blocks import block_cost, check_input, create_block, get_block_class, resolve_config
from core.measure.profiling import Profile, profile_module, time_modules
from core.present import fmt

NO_EXTRAS: dict[str, Any] = {"bias": False, "norm": False}


@dataclass(frozen=True)
class Entry:
    """One block of a comparison: a label, a registered block name and its config."""

    label: str
    block: str
    cfg: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LectureCase:
    """A worked number from the lecture: a block config and the parameter count the slide prints."""

    label: str
    entry: Entry
    input_shape: tuple[int, int, int, int]
    lecture_params: int


def _case(label: str, block: str, c_in: int, c_out: int, hw: int, lecture: int, **cfg: Any) -> LectureCase:
    return LectureCase(
        label,
        Entry(label, block, {"in_chs": c_in, "out_chs": c_out, **NO_EXTRAS, **cfg}),
        (1, c_in, hw, hw),
        lecture,
    )


LECTURE_CASES: tuple[LectureCase, ...] = (
    _case("direct 3x3, 256->256", "conv", 256, 256, 14, 589_824),
    _case("1x1 bottleneck through 64", "bottleneck_1x1", 256, 256, 14, 69_632, mid_chs=64),
    _case("14x14x16 -> 14x14x32 direct 3x3", "conv", 16, 32, 14, 4_608),
    _case("same, through a 4-channel bottleneck", "bottleneck_1x1", 16, 32, 14, 336, mid_chs=4),
    _case("same, depthwise separable", "depthwise_separable", 16, 32, 14, 656),
    _case("C=128 standard 3x3", "conv", 128, 128, 14, 147_456),
    _case("C=128 depthwise separable", "depthwise_separable", 128, 128, 14, 17_536),
)

# (numerator case, denominator case, the lecture's rounded ratio)
LECTURE_RATIOS: tuple[tuple[int, int, str], ...] = (
    (0, 1, "~8.5x"),
    (2, 3, "~13.7x"),
    (2, 4, "~7x"),
    (5, 6, "~8.4x"),
)


def lecture_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The lecture's worked numbers next to the closed form and the counted parameters, and their ratios."""
    rows = []
    for case in LECTURE_CASES:
        cost = block_cost(case.entry.block, case.input_shape, **case.entry.cfg)
        counted = sum(p.numel() for p in create_block(case.entry.block, **case.entry.cfg).parameters())
        rows.append(
            {
                "case": case.label,
                "block": case.entry.block,
                "lecture params": case.lecture_params,
                "closed form": cost.params,
                "counted (PyTorch)": counted,
                "formula": " + ".join(t.formula for t in cost.terms),
                "matches": cost.params == counted == case.lecture_params,
            }
        )
    cases = pd.DataFrame(rows)
    ratios = pd.DataFrame(
        [
            {
                "comparison": f"{LECTURE_CASES[a].label}  vs  {LECTURE_CASES[b].label}",
                "lecture says": said,
                "computed": round(cases.loc[a, "counted (PyTorch)"] / cases.loc[b, "counted (PyTorch)"], 2),
            }
            for a, b, said in LECTURE_RATIOS
        ]
    )
    return cases, ratios


PRESETS: dict[str, tuple[tuple[int, int], tuple[Entry, ...]]] = {
    "3x3 vs 1x1 bottleneck (256 ch, lecture)": (
        (256, 14),
        (
            Entry("direct 3x3", "conv", dict(NO_EXTRAS)),
            Entry("1x1 bottleneck (64)", "bottleneck_1x1", {"mid_chs": 64, **NO_EXTRAS}),
        ),
    ),
    "standard vs depthwise separable (C=128, lecture)": (
        (128, 56),
        (
            Entry("standard 3x3", "conv", dict(NO_EXTRAS)),
            Entry("depthwise separable", "depthwise_separable", dict(NO_EXTRAS)),
        ),
    ),
    "standard vs depthwise separable (C=256)": (
        (256, 28),
        (
            Entry("standard 3x3", "conv", dict(NO_EXTRAS)),
            Entry("depthwise separable", "depthwise_separable", dict(NO_EXTRAS)),
        ),
    ),
    "ResNet basic vs bottleneck vs MBConv (256 ch)": (
        (256, 28),
        (
            Entry("resnet_basic", "resnet_basic", {}),
            Entry("resnet_bottleneck", "resnet_bottleneck", {}),
            Entry("mbconv", "mbconv", {"kernel_size": 3}),
        ),
    ),
}


def entry_cfg(entry: Entry, chs: int) -> dict[str, Any]:
    """The entry's config with in/out channels set to ``chs`` (same input and output shape)."""
    return {**entry.cfg, "in_chs": chs, "out_chs": chs}


def compare(
    entries: list[Entry],
    chs: int,
    hw: int,
    batch: int = 1,
    device: str = "cpu",
    dtype: str = "fp32",
    memory_format: str = "contiguous",
    threads: int | None = None,
    profiler: Callable[..., Profile] = profile_module,
    **timing: Any,
) -> pd.DataFrame:
    """Counts each entry at (batch, chs, hw, hw), then times them all interleaved, round by round, so a
    drift in the machine's speed cannot make one look faster. Ratios are against the first entry: "MACs
    ×" and "params ×" say how many times fewer the entry has, "speed-up" how many times faster it runs
    (median of the per-round ratios, with a ~95% interval). ``frame.attrs`` keeps the timing
    (``interleaved``) and its note."""
    shape = (batch, chs, hw, hw)
    setting = {"device": device, "dtype": dtype, "memory_format": memory_format, "threads": threads}
    for e in entries:  # bounds, MACs and memory, before anything is built
        check_input(e.block, resolve_config(e.block, **entry_cfg(e, chs)), shape)
    modules = [create_block(e.block, **entry_cfg(e, chs)) for e in entries]
    profiles = [profiler(m, shape, time_it=False, check_counts=False, **setting) for m in modules]
    timed = time_modules(modules, [shape] * len(modules), **setting, **timing)
    rows = []
    for e, prof, lat, ratio in zip(entries, profiles, timed.latency, timed.ratios):
        rows.append(
            {
                "block": e.label,
                "kind": e.block,
                "colour": get_block_class(e.block).colour,
                "params": prof.params,
                "MACs": prof.macs,
                "latency ms": lat.median_ms,
                "p10 ms": lat.p10_ms,
                "p90 ms": lat.p90_ms,
                "GFLOP/s": prof.flops / (lat.median_ms / 1e3) / 1e9,
                "speed-up": ratio.ratio,
                "speed-up low": ratio.low,
                "speed-up high": ratio.high,
                "device": prof.env.label(),
            }
        )
    frame = pd.DataFrame(rows)
    base = frame.iloc[0]
    frame["params ratio"] = base["params"] / frame["params"]
    frame["MAC ratio"] = base["MACs"] / frame["MACs"]
    frame.attrs.update(interleaved=timed, note=timed.note(), busy=timed.busy)
    return frame


def ratio_statement(frame: pd.DataFrame) -> list[str]:
    """Plain-words verdicts on where the MAC ratio and the measured speed-up disagree."""
    base = frame.iloc[0]["block"]
    lines = []
    for _, row in frame.iloc[1:].iterrows():
        mac, lat = row["MAC ratio"], row["speed-up"]
        if mac <= 0 or lat != lat:  # NaN latency
            continue
        gap = lat / mac
        verdict = (
            "agree within 20%"
            if 0.8 <= gap <= 1.25
            else f"disagree: only {gap:.0%} of the MAC saving shows up as speed"
            if gap < 0.8
            else "disagree: the measured speed-up beats the MAC ratio"
        )
        interval = ""
        if "speed-up low" in row:
            lo, hi = sorted((row["speed-up low"], row["speed-up high"]))
            interval = (
                f" (~95% interval {lo:.2f}–{hi:.2f}× faster)"
                if lat >= 1
                else f" (~95% interval {1 / hi:.2f}–{1 / lo:.2f}× slower)"
            )
        lines.append(
            f"{row['block']} has {fmt.times(mac, 'more MACs', 'fewer MACs')} than {base}. "
            f"It runs {fmt.times(lat, 'slower', 'faster')}{interval} on this device: the two ratios "
            f"{verdict}."
        )
    return lines


SWEEP_CHANNELS = (16, 32, 64, 128, 256, 512, 1024)


def channel_sweep(entries: list[Entry], hw: int, channels: tuple[int, ...] = SWEEP_CHANNELS) -> pd.DataFrame:
    """Closed-form params and MACs against channel count C (C in = C out) for each entry."""
    rows = []
    for e in entries:
        for c in channels:
            cfg = entry_cfg(e, c)
            if "mid_chs" in cfg:
                cfg["mid_chs"] = max(1, c // 4)
            try:
                resolve_config(e.block, **cfg)
            except ValueError:
                continue
            cost = block_cost(e.block, (1, c, hw, hw), **cfg)
            rows.append(
                {
                    "block": e.label,
                    "kind": e.block,
                    "colour": get_block_class(e.block).colour,
                    "channels": c,
                    "params": cost.params,
                    "MACs": cost.macs,
                }
            )
    return pd.DataFrame(rows)
