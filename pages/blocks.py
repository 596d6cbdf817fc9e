"""Block explorer: the cost of one block (Explore: counts, closed form and latency) and blocks side by side
(Compare). Its other tabs (Roofline, Deploy, the lecture's numbers, gradient flow) are in
``pages/_block_tabs.py``, and the block form they share in ``pages/_block_form.py``."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import torch

from core.blocks import (
    BlockConfigError,
    BlockCost,
    block_cost,
    check_input,
    create_block,
    list_blocks,
    resolve_config,
)
from core.blocks import compare as cmp
from core.blocks.registry import INT_FIELDS
from core.measure import budget, layercost
from core.measure.counting import CrossCheck, cross_check, fvcore_macs
from core.measure.profiling import Profile, ProfileError, forward_peak_memory, profile_module, time_settled
from core.measure.settings import Setting
from core.measure.timing import Interleaved
from core.present import fmt, plots
from pages._block_form import block_form, cached_compare
from pages._block_tabs import deploy_tab, gradient_tab, lecture_tab, roofline_tab
from pages._widgets import chart, current_settings, lazy_tabs, route_through_app, stop_polling, table

route_through_app()


@st.cache_data(show_spinner="Counting…", max_entries=128)
def count(
    block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int], precision: str
) -> Profile:
    """Params, MACs, per-layer table and activation memory: no timing, so a shape edit redraws at once."""
    return profile_module(
        create_block(block, **dict(cfg)), shape, dtype=precision, time_it=False, check_counts=False
    )


@st.cache_data(show_spinner="Counting again with torch's FlopCounterMode…", max_entries=128)
def flop_counter_check(
    block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int]
) -> CrossCheck:
    module = create_block(block, **dict(cfg)).eval()
    x = torch.randn(*shape)
    return cross_check(fvcore_macs(module, (x,)), module, (x,))


@st.cache_data(show_spinner="Timing on this device…", max_entries=128)
def latency(
    block: str,
    cfg: tuple[tuple[str, Any], ...],
    shape: tuple[int, int, int, int],
    settings: Setting,
    nonce: int,
) -> tuple[Interleaved, int | None]:
    """The timing (Compare's protocol: rounds until it settles, else a busy warning), and on a GPU the peak
    memory of one forward (a CPU has no such counter)."""
    module = create_block(block, **dict(cfg))
    timed = time_settled(module, shape, **settings.profile_kwargs(), max_time_s=4.0)
    return timed, forward_peak_memory(module, shape, **settings.profile_kwargs())


def latex_int(n: int) -> str:
    return f"{n:,}".replace(",", "{,}")


def show_formula(cost: BlockCost, prof: Profile) -> None:
    st.markdown("**Closed form** (bias and norm terms appear when switched on)")
    st.latex(fmt.stacked(r"\text{params}", fmt.split_sum(cost.formula)))
    if len(cost.terms) <= 6:  # one term a line, so the filled-in sum never runs off its column
        st.latex(fmt.stacked("", [t.formula for t in cost.terms], latex_int(cost.params)))
    ok = "**equal**" if cost.params == prof.params and cost.macs == prof.macs else "**they differ**"
    st.markdown(
        f"Closed form: **{fmt.count(cost.params)}** params, **{fmt.count(cost.macs)}** MACs · "
        f"counted (PyTorch params, fvcore MACs): **{fmt.count(prof.params)}** params, "
        f"**{fmt.count(prof.macs)}** MACs · {ok}"
    )
    terms = pd.DataFrame(
        [
            {
                "layer": t.name,
                "params formula": fmt.plain_formula(t.formula),
                "params": t.params,
                "MACs": t.macs,
            }
            for t in cost.terms
        ]
    )
    table(terms, width="stretch")
    for note in cost.notes:
        st.caption(note)


def show_counts(prof: Profile) -> None:
    cols = st.columns(4)
    cols[0].metric("Parameters", fmt.count(prof.params), help=f"{fmt.count(prof.trainable_params)} trainable")
    cols[1].metric(
        "MACs", fmt.si(prof.macs), help=f"{fmt.count(prof.macs)} multiply-adds for the batch (fvcore)"
    )
    cols[2].metric("FLOPs = 2 x MACs", fmt.si(prof.flops))
    cols[3].metric(
        f"Activation memory ({prof.activation_precision})",
        fmt.bytes_(prof.activation_bytes),
        help="Sum of every layer's output tensor (what a training step keeps for backward), each in "
        f"the dtype it has under {prof.activation_precision} autocast (norms stay fp32).",
    )


PENDING = "explore.timing_soon"
WAIT_S = 0.3  # after the page's run: the browser has drawn the counts, formula and tables by then


@st.cache_resource
def timed_here() -> set[tuple[Any, ...]]:
    """The configurations this server has timed (``latency``'s cache holds their figures), for every
    visitor."""
    return set()


def timing_key(
    block: str,
    cfg: tuple[tuple[str, Any], ...],
    shape: tuple[int, int, int, int],
    settings: Setting,
    nonce: int | None = None,
) -> tuple[Any, ...]:
    """One timing: the configuration, the settings and the re-measure count (this visitor's, unless given)."""
    return (block, cfg, shape, settings, st.session_state.get("remeasure", 0) if nonce is None else nonce)


def latency_view(
    block: str,
    cfg: tuple[tuple[str, Any], ...],
    shape: tuple[int, int, int, int],
    flops: int,
    settings: Setting,
) -> None:
    """The measured half. A configuration timed before shows its figures at once. A new one is timed after
    the page is drawn (``time_once_drawn``), not while the browser draws it: on 2 cores the drawing took
    the CPU from the timer, which then needed 70-125 rounds instead of 15 and kept the page from
    finishing for
    1.5-2.4 s."""
    if timing_key(block, cfg, shape, settings) in timed_here():
        st.fragment(latency_figures)(block, cfg, shape, flops, settings)
    else:
        time_once_drawn(block, cfg, shape, flops, settings)


@st.fragment(run_every=WAIT_S)
def time_once_drawn(
    block: str,
    cfg: tuple[tuple[str, Any], ...],
    shape: tuple[int, int, int, int],
    flops: int,
    settings: Setting,
) -> None:
    """Its first call, in the page's run, says what is coming; its first rerun (``WAIT_S`` later, once the
    page's run has ended and the browser has drawn it) stops the timer, times the block and shows the
    figures."""
    key = timing_key(block, cfg, shape, settings)
    if st.session_state.get(PENDING) != key:
        st.session_state[PENDING] = key
        st.caption("Timing on this device once the page is drawn…")
        return
    stop_polling()
    latency_figures(block, cfg, shape, flops, settings)


def latency_figures(
    block: str,
    cfg: tuple[tuple[str, Any], ...],
    shape: tuple[int, int, int, int],
    flops: int,
    settings: Setting,
) -> None:
    """The figures, always inside a fragment: re-measuring reruns only that part."""
    nonce = st.session_state.get("remeasure", 0)
    try:
        timed, peak = latency(block, cfg, shape, settings, nonce)
    except ProfileError as err:
        st.error(f"Cannot time this block here: {fmt.md(err)}")
        return
    timed_here().add(timing_key(block, cfg, shape, settings, nonce))
    stats = timed.latency[0]
    gflops = flops / (stats.median_ms / 1e3) / 1e9
    cols = st.columns(5 if peak is not None else 4)
    cols[0].metric("Latency, median", fmt.ms(stats.median_ms))
    cols[1].metric("Latency p10 – p90", fmt.ms_range(stats.p10_ms, stats.p90_ms))
    cols[2].metric(
        "Achieved GFLOP/s",
        f"{gflops:,.1f}",
        help="FLOPs / median latency: low values mean memory-bound, not compute-bound.",
    )
    if peak is not None:
        cols[4].metric(
            "Peak GPU memory", fmt.bytes_(peak), help="torch.cuda.max_memory_allocated during one forward."
        )
    if cols[3].button("Re-measure latency", key="explore.remeasure"):
        st.session_state["remeasure"] = nonce + 1
        st.session_state[PENDING] = timing_key(block, cfg, shape, settings, nonce + 1)  # drawn: time at once
        st.rerun(scope="fragment")
    st.caption(
        f"Measured on {settings.device} · {settings.precision} · {settings.memory_format} · batch {shape[0]} "
        f"· {settings.resolved_threads()} thread(s) · {stats.timer}"
    )
    (st.warning if timed.busy else st.caption)(timed.note())


def explore(settings: Setting) -> None:
    block, raw, shape = block_form()
    try:
        cfg = resolve_config(block, **raw)
        check_input(block, cfg, shape)
        cost = block_cost(block, shape, **cfg)
        items = tuple(sorted(cfg.items()))
        prof = count(block, items, shape, settings.precision)
    except (BlockConfigError, ProfileError) as err:
        st.error(f"Cannot build this block: {err}")
        return
    show_counts(prof)
    timed = st.container()  # filled last: the counts and the formula show while it is being timed
    skip = "has a skip connection" if create_block(block, **cfg).has_skip else "has no skip connection"
    st.markdown(f"Output shape **{' x '.join(map(str, prof.output_shape))}** · this configuration {skip}.")
    show_formula(cost, prof)
    st.markdown("**Per-layer breakdown**")  # full width: its columns are never cut off
    table(layer_table(prof.per_layer), width="stretch")
    show_counter_notes(prof, block, items, shape)
    with timed:
        latency_view(block, items, shape, prof.flops, settings)


# the per-layer record's fields as this page names them (core.measure.layercost keeps the data names)
LAYER_LABELS = {
    "module": "layer",
    "op": "type",
    "kind": "kind",
    "output_shape": "output shape",
    "params": "params",
    "macs": "MACs",
    "bytes": "bytes moved",
    "output_bytes": "output KiB",
}


def layer_table(costs: tuple) -> pd.DataFrame:
    shown = layercost.frame(costs)[list(LAYER_LABELS)]
    shown["output_bytes"] = (shown["output_bytes"] / 1024).round(1)
    shown["module"] = shown["module"].replace("", "(block)")
    return shown.rename(columns=LAYER_LABELS)


def show_counter_notes(
    prof: Profile, block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int]
) -> None:
    if st.toggle(
        "Cross-check with torch's FlopCounterMode",
        key="explore.crosscheck",
        help="A second, independent MAC counter. Its first use loads torch.compile's machinery (about "
        "a second, once per server), so it runs when asked.",
    ):
        cc = flop_counter_check(block, cfg, shape)
        (st.info if cc.agree else st.warning)(
            f"Cross-check with torch FlopCounterMode: {fmt.count(cc.flop_counter_macs)} MACs. "
            f"{cc.explanation}"
        )
    if prof.uncounted_ops:
        ops = ", ".join(f"`{op.replace('aten::', '')}` x{n}" for op, n in prof.uncounted_ops.items())
        st.caption(f"Ops neither counter charges MACs for (activations, adds, max-pool): {ops}")


def compare_tab(settings: Setting) -> None:
    preset = st.selectbox("Preset", [*cmp.PRESETS, "custom"], key="cmp.preset", bind="query-params")
    if preset == "custom":
        (chs, hw) = (128, 28)
        names = st.multiselect(
            "Blocks (2 to 4)",
            list_blocks(),
            default=["conv", "depthwise_separable"],
            max_selections=4,
            key="cmp.blocks",
        )
        entries = [cmp.Entry(n, n, {}) for n in names]
    else:
        (chs, hw), preset_entries = cmp.PRESETS[preset]
        entries = list(preset_entries)
    cols = st.columns(3)
    chs = int(
        cols[0].number_input(
            "Channels C (in = out)", 1, INT_FIELDS["in_chs"][1], value=chs, step=1, key=f"cmp.chs.{preset}"
        )
    )
    hw = int(
        cols[1].number_input("Spatial size", 1, budget.MAX_SPATIAL, value=hw, step=1, key=f"cmp.hw.{preset}")
    )
    batch = int(
        cols[2].number_input("Batch", 1, budget.MAX_BATCH, value=1, step=1, key=f"cmp.batch.{preset}")
    )
    if len(entries) < 2:
        st.info("Pick at least two blocks to compare.")
        return
    try:
        frame = cached_compare(tuple(entries), chs, hw, batch, settings)
    except (BlockConfigError, ProfileError) as err:
        st.error(f"Cannot compare these blocks: {err}")
        return
    chart(plots.compare_bars(frame), "cmp.bars")
    for line in cmp.ratio_statement(frame):
        st.info(line)
    (st.warning if frame.attrs["busy"] else st.caption)(frame.attrs["note"])
    if any(e.block == "depthwise_separable" for e in entries) and any(e.block == "conv" for e in entries):
        st.caption(
            "The lecture claims depthwise separable is 8-10× faster than a standard convolution; the bars "
            "above are what this device says."
        )
    table(
        frame.drop(columns=["speed-up low", "speed-up high", "colour"]),
        width="stretch",
        column_config={
            "latency ms": st.column_config.NumberColumn("latency ms", format="%.3f"),
            "GFLOP/s": st.column_config.NumberColumn("GFLOP/s", format="%.1f"),
        },
    )
    st.markdown("**Cost against channel count** (closed form, log-log: slope 2 = C², slope 1 = C)")
    sweep = cmp.channel_sweep(entries, hw)
    metric = st.radio("Metric", ["params", "MACs"], horizontal=True, key="cmp.sweep_metric")
    chart(plots.channel_sweep(sweep, metric), "cmp.sweep")


settings = current_settings()
st.title("Block explorer")
lazy_tabs(
    "blocks.tab",
    {
        "Explore": lambda: explore(settings),
        "Compare": lambda: compare_tab(settings),
        "Roofline": lambda: roofline_tab(settings),
        "Deploy": lambda: deploy_tab(settings),
        "Lecture's numbers": lecture_tab,
        "Gradient flow": gradient_tab,
    },
)
