"""Block explorer: cost of one block, compare mode, the lecture's worked numbers, gradient-flow lab."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import torch

from core.blocks import (
    BlockConfigError,
    BlockCost,
    block_cost,
    block_defaults,
    check_input,
    create_block,
    get_block_class,
    list_blocks,
    resolve_config,
)
from core.blocks import compare as cmp
from core.blocks.gradflow import gradient_flow, plain_gradient, residual_gradient
from core.blocks.registry import FLOAT_FIELDS, INT_FIELDS
from core.deploy import report
from core.deploy.measure import Target
from core.measure import budget
from core.measure import roofline as rl
from core.measure.counting import CrossCheck, cross_check, fvcore_macs
from core.measure.profiling import Profile, ProfileError, forward_peak_memory, profile_module, time_settled
from core.measure.roofline import Ceilings
from core.measure.settings import Setting
from core.measure.timing import Interleaved
from core.present import deploy_plots, fmt, plots
from pages import _browser as browser_view
from pages import _deploy as deploy_view
from pages._roofline import show_ceilings, show_profile
from pages._widgets import chart, current_settings, lazy_tabs, route_through_app, stop_polling, table

route_through_app()

FIELD_LABELS = {
    "in_chs": "Input channels", "out_chs": "Output channels", "mid_chs": "Bottleneck channels",
    "kernel_size": "Kernel", "stride": "Stride", "exp_ratio": "Expansion ratio t", "se": "Squeeze-excite",
    "se_ratio": "SE ratio", "c1": "1x1 branch", "c3_reduce": "3x3 reduce", "c3": "3x3 branch",
    "c5_reduce": "5x5 reduce", "c5": "5x5 branch", "pool_proj": "Pool projection", "bias": "Bias",
    "norm": "BatchNorm / LayerNorm",
}


@st.cache_data(show_spinner="Counting…", max_entries=128)
def count(block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int], precision: str) -> Profile:
    """Params, MACs, per-layer table and activation memory: no timing, so a shape edit redraws at once."""
    return profile_module(create_block(block, **dict(cfg)), shape, dtype=precision, time_it=False, check_counts=False)


@st.cache_data(show_spinner="Counting again with torch's FlopCounterMode…", max_entries=128)
def flop_counter_check(block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int]) -> CrossCheck:
    module = create_block(block, **dict(cfg)).eval()
    x = torch.randn(*shape)
    return cross_check(fvcore_macs(module, (x,)), module, (x,))


@st.cache_data(show_spinner="Timing on this device…", max_entries=128)
def latency(block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int], settings: Setting,
            nonce: int) -> tuple[Interleaved, int | None]:
    """The timing (Compare's protocol: rounds until it settles, else a busy warning), and on a GPU the peak memory
    of one forward (a CPU has no such counter)."""
    module = create_block(block, **dict(cfg))
    timed = time_settled(module, shape, **settings.profile_kwargs(), max_time_s=4.0)
    return timed, forward_peak_memory(module, shape, **settings.profile_kwargs())


def config_form(block: str) -> tuple[dict[str, Any], tuple[int, int, int, int]]:
    """Widgets for every option the block takes; returns the raw config and the input shape."""
    defaults = block_defaults(block)
    cfg: dict[str, Any] = {}
    numeric = [k for k, v in defaults.items() if not isinstance(v, bool) and v is not None]
    cols = st.columns(4)
    for i, key in enumerate(numeric):
        default = defaults[key]
        with cols[i % 4]:
            if isinstance(default, float):
                lo, hi = FLOAT_FIELDS.get(key, (0.0, 64.0))
                cfg[key] = st.number_input(FIELD_LABELS[key], float(lo), float(hi), value=default, step=0.25,
                                           key=f"{block}.{key}", bind="query-params")
            else:
                lo, hi = INT_FIELDS.get(key, (0, 4096))
                cfg[key] = int(st.number_input(FIELD_LABELS[key], lo, hi, value=default, step=1,
                                               key=f"{block}.{key}", bind="query-params"))
    cols = st.columns(4)
    hw = cols[0].number_input("Spatial size H = W", 1, budget.MAX_SPATIAL, value=get_block_class(block).default_hw,
                              step=1, key=f"{block}.hw", bind="query-params")
    batch = cols[1].number_input("Batch", 1, budget.MAX_BATCH, value=1, step=1, key=f"{block}.batch",
                                 bind="query-params")
    for i, key in enumerate(k for k, v in defaults.items() if isinstance(v, bool)):
        cfg[key] = cols[2 + i % 2].toggle(FIELD_LABELS[key], value=defaults[key], key=f"{block}.{key}",
                                          bind="query-params")
    return cfg, (int(batch), int(cfg["in_chs"]), int(hw), int(hw))


def latex_int(n: int) -> str:
    return f"{n:,}".replace(",", "{,}")


def show_formula(cost: BlockCost, prof: Profile) -> None:
    st.markdown("**Closed form** (bias and norm terms appear when switched on)")
    st.latex(fmt.stacked(r"\text{params}", fmt.split_sum(cost.formula)))
    if len(cost.terms) <= 6:             # one term a line, so the filled-in sum never runs off its column
        st.latex(fmt.stacked("", [t.formula for t in cost.terms], latex_int(cost.params)))
    ok = "**equal**" if cost.params == prof.params and cost.macs == prof.macs else "**they differ**"
    st.markdown(f"Closed form: **{fmt.count(cost.params)}** params, **{fmt.count(cost.macs)}** MACs · "
                f"counted (PyTorch params, fvcore MACs): **{fmt.count(prof.params)}** params, "
                f"**{fmt.count(prof.macs)}** MACs · {ok}")
    terms = pd.DataFrame([{"layer": t.name, "params formula": fmt.plain_formula(t.formula), "params": t.params,
                           "MACs": t.macs} for t in cost.terms])
    table(terms, width="stretch")
    for note in cost.notes:
        st.caption(note)


def show_counts(prof: Profile) -> None:
    cols = st.columns(4)
    cols[0].metric("Parameters", fmt.count(prof.params), help=f"{fmt.count(prof.trainable_params)} trainable")
    cols[1].metric("MACs", fmt.si(prof.macs), help=f"{fmt.count(prof.macs)} multiply-adds for the batch (fvcore)")
    cols[2].metric("FLOPs = 2 x MACs", fmt.si(prof.flops))
    cols[3].metric(f"Activation memory ({prof.activation_precision})", fmt.bytes_(prof.activation_bytes),
                   help="Sum of every layer's output tensor (what a training step keeps for backward), each in "
                        f"the dtype it has under {prof.activation_precision} autocast (norms stay fp32).")


PENDING = "explore.timing_soon"
WAIT_S = 0.3          # after the page's run: the browser has drawn the counts, formula and tables by then


@st.cache_resource
def timed_here() -> set[tuple[Any, ...]]:
    """The configurations this server has timed (``latency``'s cache holds their figures), for every visitor."""
    return set()


def latency_view(block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int], flops: int,
                 settings: Setting) -> None:
    """The measured half. A configuration timed before shows its figures at once. A new one is timed after the
    page is drawn (``time_once_drawn``), not while the browser draws it: on 2 cores the drawing took the CPU from
    the timer, which then needed 70-125 rounds instead of 15 and kept the page from finishing for 1.5-2.4 s."""
    key = (block, cfg, shape, settings, st.session_state.get("remeasure", 0))
    if key in timed_here():
        st.fragment(latency_figures)(block, cfg, shape, flops, settings)
    else:
        time_once_drawn(block, cfg, shape, flops, settings)


@st.fragment(run_every=WAIT_S)
def time_once_drawn(block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int], flops: int,
                    settings: Setting) -> None:
    """Its first call, in the page's run, says what is coming; its first rerun (``WAIT_S`` later, once the page's run
    has ended and the browser has drawn it) stops the timer, times the block and shows the figures."""
    key = (block, cfg, shape, settings, st.session_state.get("remeasure", 0))
    if st.session_state.get(PENDING) != key:
        st.session_state[PENDING] = key
        st.caption("Timing on this device once the page is drawn…")
        return
    stop_polling()
    latency_figures(block, cfg, shape, flops, settings)


def latency_figures(block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int], flops: int,
                    settings: Setting) -> None:
    """The figures, always inside a fragment: re-measuring reruns only that part."""
    nonce = st.session_state.get("remeasure", 0)
    try:
        timed, peak = latency(block, cfg, shape, settings, nonce)
    except ProfileError as err:
        st.error(f"Cannot time this block here: {fmt.md(err)}")
        return
    timed_here().add((block, cfg, shape, settings, nonce))
    stats = timed.latency[0]
    gflops = flops / (stats.median_ms / 1e3) / 1e9
    cols = st.columns(5 if peak is not None else 4)
    cols[0].metric("Latency, median", fmt.ms(stats.median_ms))
    cols[1].metric("Latency p10 – p90", fmt.ms_range(stats.p10_ms, stats.p90_ms))
    cols[2].metric("Achieved GFLOP/s", f"{gflops:,.1f}",
                   help="FLOPs / median latency: low values mean memory-bound, not compute-bound.")
    if peak is not None:
        cols[4].metric("Peak GPU memory", fmt.bytes_(peak), help="torch.cuda.max_memory_allocated during one forward.")
    if cols[3].button("Re-measure latency", key="explore.remeasure"):
        st.session_state["remeasure"] = nonce + 1
        st.session_state[PENDING] = (block, cfg, shape, settings, nonce + 1)   # the page is drawn: time at once
        st.rerun(scope="fragment")
    st.caption(f"Measured on {settings.device} · {settings.precision} · {settings.memory_format} · batch {shape[0]} "
               f"· {settings.resolved_threads()} thread(s) · {stats.timer}")
    (st.warning if timed.busy else st.caption)(timed.note())


def block_form() -> tuple[str, dict[str, Any], tuple[int, int, int, int]]:
    """The block and its configuration: the same widgets (and URL keys) on the Explore and Roofline tabs, so each
    tab reads the block from its own widgets, never from another tab's leftover state."""
    block = st.selectbox("Block", list_blocks(), key="explore.block", bind="query-params")
    cls = get_block_class(block)
    st.caption(f"{fmt.md(cls.summary)}  \n*{fmt.md(cls.paper)}*")
    raw, shape = config_form(block)
    return block, raw, shape


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
    timed = st.container()          # filled last: the counts and the formula show while it is being timed
    skip = "has a skip connection" if create_block(block, **cfg).has_skip else "has no skip connection"
    st.markdown(f"Output shape **{' x '.join(map(str, prof.output_shape))}** · this configuration {skip}.")
    show_formula(cost, prof)
    st.markdown("**Per-layer breakdown**")          # full width: its columns are never cut off
    table(prof.per_layer, width="stretch")
    show_counter_notes(prof, block, items, shape)
    with timed:
        latency_view(block, items, shape, prof.flops, settings)


def show_counter_notes(prof: Profile, block: str, cfg: tuple[tuple[str, Any], ...],
                       shape: tuple[int, int, int, int]) -> None:
    if st.toggle("Cross-check with torch's FlopCounterMode", key="explore.crosscheck",
                 help="A second, independent MAC counter. Its first use loads torch.compile's machinery (about "
                      "a second, once per server), so it runs when asked."):
        cc = flop_counter_check(block, cfg, shape)
        (st.info if cc.agree else st.warning)(
            f"Cross-check with torch FlopCounterMode: {fmt.count(cc.flop_counter_macs)} MACs. {cc.explanation}")
    if prof.uncounted_ops:
        ops = ", ".join(f"`{op.replace('aten::', '')}` x{n}" for op, n in prof.uncounted_ops.items())
        st.caption(f"Ops neither counter charges MACs for (activations, adds, max-pool): {ops}")


def compare_tab(settings: Setting) -> None:
    preset = st.selectbox("Preset", [*cmp.PRESETS, "custom"], key="cmp.preset", bind="query-params")
    if preset == "custom":
        (chs, hw) = (128, 28)
        names = st.multiselect("Blocks (2 to 4)", list_blocks(), default=["conv", "depthwise_separable"],
                               max_selections=4, key="cmp.blocks")
        entries = [cmp.Entry(n, n, {}) for n in names]
    else:
        (chs, hw), preset_entries = cmp.PRESETS[preset]
        entries = list(preset_entries)
    cols = st.columns(3)
    chs = int(cols[0].number_input("Channels C (in = out)", 1, INT_FIELDS["in_chs"][1], value=chs, step=1,
                                   key=f"cmp.chs.{preset}"))
    hw = int(cols[1].number_input("Spatial size", 1, budget.MAX_SPATIAL, value=hw, step=1, key=f"cmp.hw.{preset}"))
    batch = int(cols[2].number_input("Batch", 1, budget.MAX_BATCH, value=1, step=1, key=f"cmp.batch.{preset}"))
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
        st.caption("The lecture claims depthwise separable is 8-10× faster than a standard convolution; the bars "
                   "above are what this device says.")
    table(frame.drop(columns=["speed-up low", "speed-up high"]), width="stretch",
          column_config={"latency ms": st.column_config.NumberColumn("latency ms", format="%.3f"),
                         "GFLOP/s": st.column_config.NumberColumn("GFLOP/s", format="%.1f")})
    st.markdown("**Cost against channel count** (closed form, log-log: slope 2 = C², slope 1 = C)")
    sweep = cmp.channel_sweep(entries, hw)
    metric = st.radio("Metric", ["params", "MACs"], horizontal=True, key="cmp.sweep_metric")
    chart(plots.channel_sweep(sweep, metric), "cmp.sweep")


@st.cache_data(show_spinner="Timing the blocks interleaved, round by round…", max_entries=32)
def cached_compare(entries: tuple[cmp.Entry, ...], chs: int, hw: int, batch: int, settings: Setting) -> pd.DataFrame:
    # at most 4 s of rounds: no blind wait over 5 s (an unsettled result says the machine was busy)
    return cmp.compare(list(entries), chs, hw, batch, **settings.profile_kwargs(), max_time_s=4.0)


@st.cache_data(show_spinner="Measuring this machine's ceilings (a GEMM and a STREAM triad)…", max_entries=8)
def machine_ceilings(settings: Setting) -> Ceilings:
    from core.zoo import layers  # here, not at the top: it imports timm (~1.8 s on a first visit)
    return layers.ceilings(settings)


@st.cache_data(show_spinner="Timing every layer on its captured input…", max_entries=32)
def block_layers(block: str, cfg: tuple[tuple[str, Any], ...], shape: tuple[int, int, int, int], settings: Setting,
                 c: Ceilings) -> pd.DataFrame:
    return rl.profile_layers(create_block(block, **dict(cfg)), shape, settings, c)


def roofline_tab(settings: Setting) -> None:
    st.markdown("Each layer's arithmetic intensity (FLOPs per byte it must move) against the GFLOP/s it reaches "
                "here, under this machine's two measured ceilings: peak compute and memory bandwidth.")
    what = st.radio("Show", ["A block", "A comparison preset"], horizontal=True,
                    key="roof.what", bind="query-params")
    try:
        c = machine_ceilings(settings)
    except ProfileError as err:
        st.error(f"Cannot measure this machine's ceilings: {fmt.md(err)}")
        return
    show_ceilings(c)
    try:
        if what == "A block":
            block, raw, shape = block_form()
            cfg = resolve_config(block, **raw)
            check_input(block, cfg, shape)
            show_profile({block: block_layers(block, tuple(sorted(cfg.items())), shape, settings, c)}, c, "roof.block")
        else:
            compare_roofline(settings, c)
    except (BlockConfigError, ProfileError) as err:
        st.error(f"Cannot profile this block: {fmt.md(err)}")


def compare_roofline(settings: Setting, c: Ceilings) -> None:
    preset = st.selectbox("Preset", list(cmp.PRESETS), key="roof.preset", bind="query-params")
    (chs, hw), entries = cmp.PRESETS[preset]
    a, b = entries[0], entries[1]
    shape = (1, chs, hw, hw)
    fa = block_layers(a.block, tuple(sorted(cmp.entry_cfg(a, chs).items())), shape, settings, c)
    fb = block_layers(b.block, tuple(sorted(cmp.entry_cfg(b, chs).items())), shape, settings, c)
    frame = cached_compare((a, b), chs, hw, 1, settings)
    measured, macs = float(frame["speed-up"].iloc[1]), float(frame["MAC ratio"].iloc[1])
    cols = st.columns(3)
    cols[0].metric("MAC ratio", f"{macs:.2f}×", help=f"{b.label} has this many times fewer MACs.")
    cols[1].metric("Roofline predicts", f"{rl.predicted_ratio(fa, fb):.2f}× faster",
                   help="Summed attainable time of each block's layers under the measured ceilings.")
    cols[2].metric("Measured", f"{measured:.2f}× faster", help="Timed interleaved, round by round (Compare tab).")
    st.info(rl.claim(a.label, fa, b.label, fb, measured, macs))
    show_profile({a.label: fa, b.label: fb}, c, "roof.cmp")


def lecture_tab() -> None:
    st.markdown("The lecture's worked numbers, rebuilt from real PyTorch modules with **bias and BatchNorm off**.")
    cases, ratios = cmp.lecture_table()
    table(cases.assign(formula=cases["formula"].map(fmt.plain_formula)), width="stretch")
    table(ratios, width="stretch")


def gradient_tab() -> None:
    cols = st.columns(3)
    depth = cols[0].slider("Depth N", 2, 100, 30, key="grad.depth")
    act = cols[1].selectbox("Activation", ["tanh", "sigmoid", "relu"], key="grad.act")
    gain = cols[2].slider("Weight scale (x 1/sqrt(fan-in))", 0.1, 2.0, 0.5, 0.1, key="grad.gain")
    result = gradient_flow(depth, act=act, init_gain=gain)
    chart(plots.gradient_flow(result.table), "grad.plot")
    st.markdown(f"At layer 0 the residual stack's gradient is **{fmt.sci(result.ratio_at_input())}×** the plain "
                f"stack's (one real backward pass, same weights, float64).")
    st.markdown("**The lecture's scalar example** (upstream 0.5, F' = 0.01)")
    rows = [{"layers": n, "plain 0.5·0.01ⁿ": plain_gradient(0.5, 0.01, n),
             "residual 0.5·1.01ⁿ": residual_gradient(0.5, 0.01, n)} for n in (1, 10)]
    st.dataframe(pd.DataFrame(rows).style.format({"plain 0.5·0.01ⁿ": "{:.3g}", "residual 0.5·1.01ⁿ": "{:.3g}"}),
                 hide_index=True)


def deploy_tab(settings: Setting) -> None:
    """The chosen block, or one of the lecture's pairs, in the runtimes people ship."""
    what = st.radio("What to deploy", ["A comparison preset", "One block"], horizontal=True,
                    key="dep.what", bind="query-params")
    try:
        if what == "One block":
            block, raw, shape = block_form()
            targets = [Target.block(block, raw, shape, block)]
        else:
            preset = st.selectbox("Preset", list(cmp.PRESETS), key="dep.preset", bind="query-params")
            (chs, hw), entries = cmp.PRESETS[preset]
            targets = [Target.block(e.block, cmp.entry_cfg(e, chs), (1, chs, hw, hw), e.label) for e in entries]
    except BlockConfigError as err:
        st.error(f"Cannot build this block: {err}")
        return
    names = deploy_view.pick_runtimes("dep.runtimes")
    threads = settings.resolved_threads()
    if deploy_view.controls(targets, threads, names, "dep"):
        return
    results = deploy_view.results_of(targets, threads)
    if any(r is None for r in results):
        st.info("Not measured in these runtimes yet at this thread count: press the button (a background job: "
                "export, parity, int8 calibration, then interleaved timing).")
        return
    if len(results) > 1:
        a = results[0]
        browser_view.pair_in_browser(targets, "dep.browser")
        for b in results[1:]:
            server = report.pair(a, b)
            browsers = browser_view.pair_rows(a["target"], b["target"], a["macs"] / max(b["macs"], 1))
            pair = server if browsers.empty else browsers if server.empty else pd.concat([server, browsers],
                                                                                       ignore_index=True)
            chart(deploy_plots.deploy_pair(pair, b["label"]), f"dep.pair.{b['label']}")
            best = pair.loc[pair["measured speed-up"].idxmax()] if len(pair) else None
            if best is not None:
                st.info(fmt.md(f"{b['label']} has {pair['MAC ratio'].iloc[0]:.2f}× fewer MACs than {a['label']}; "
                               f"measured it runs {pair['measured speed-up'].min():.2f}–"
                               f"{pair['measured speed-up'].max():.2f}× faster across runtimes (most in "
                               f"{best['runtime']})."
                               + (" The lecture's 8-10× holds where the measured bar reaches the dashed line."
                                  if "depthwise" in f"{b.get('name', '')} {b['label']}".lower() else "")))
    deploy_view.show_results(results, "dep")


settings = current_settings()
st.title("Block explorer")
lazy_tabs("blocks.tab", {"Explore": lambda: explore(settings), "Compare": lambda: compare_tab(settings),
                         "Roofline": lambda: roofline_tab(settings), "Deploy": lambda: deploy_tab(settings),
                         "Lecture's numbers": lecture_tab, "Gradient flow": gradient_tab})
