"""The Block explorer's tabs after Explore and Compare: Roofline (a block's layers, or a lecture pair's,
under this machine's measured ceilings), Deploy (a block or a pair in the runtimes people ship, and in
this browser), the lecture's worked numbers, and the gradient-flow lab."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.blocks import BlockConfigError, check_input, create_block, resolve_config
from core.blocks import compare as cmp
from core.blocks.gradflow import gradient_flow, plain_gradient, residual_gradient
from core.deploy import report
from core.deploy.deployable import Deployable
from core.measure import roofline as rl
from core.measure.ceilings import Ceilings
from core.measure.profiling import ProfileError
from core.measure.settings import Setting
from core.present import deploy_plots, fmt, plots
from pages import _browser as browser_view
from pages import _deploy as deploy_view
from pages._block_form import block_form, cached_compare
from pages._roofline import show_ceilings, show_profile
from pages._widgets import chart, table


@st.cache_data(show_spinner="Measuring this machine's ceilings (a GEMM and a STREAM triad)…", max_entries=8)
def machine_ceilings(settings: Setting) -> Ceilings:
    from core.zoo import layers  # here, not at the top: it imports timm (~1.8 s on a first visit)

    return layers.ceilings(settings)


@st.cache_data(show_spinner="Timing every layer on its captured input…", max_entries=32)
def block_layers(
    block: str,
    cfg: tuple[tuple[str, Any], ...],
    shape: tuple[int, int, int, int],
    settings: Setting,
    c: Ceilings,
) -> pd.DataFrame:
    return rl.profile_layers(create_block(block, **dict(cfg)), shape, settings, c)


def roofline_tab(settings: Setting) -> None:
    st.markdown(
        "Each layer's arithmetic intensity (FLOPs per byte it must move) against the GFLOP/s it reaches "
        "here, under this machine's two measured ceilings: peak compute and memory bandwidth."
    )
    what = st.radio(
        "Show", ["A block", "A comparison preset"], horizontal=True, key="roof.what", bind="query-params"
    )
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
            show_profile(
                {block: block_layers(block, tuple(sorted(cfg.items())), shape, settings, c)}, c, "roof.block"
            )
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
    cols[1].metric(
        "Roofline predicts",
        f"{rl.predicted_ratio(fa, fb):.2f}× faster",
        help="Summed attainable time of each block's layers under the measured ceilings.",
    )
    cols[2].metric(
        "Measured", f"{measured:.2f}× faster", help="Timed interleaved, round by round (Compare tab)."
    )
    st.info(rl.claim(a.label, fa, b.label, fb, measured, macs))
    show_profile({a.label: fa, b.label: fb}, c, "roof.cmp")


def lecture_tab() -> None:
    st.markdown(
        "The lecture's worked numbers, rebuilt from real PyTorch modules with **bias and BatchNorm off**."
    )
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
    st.markdown(
        f"At layer 0 the residual stack's gradient is **{fmt.sci(result.ratio_at_input())}×** the plain "
        f"stack's (one real backward pass, same weights, float64)."
    )
    st.markdown("**The lecture's scalar example** (upstream 0.5, F' = 0.01)")
    rows = [
        {
            "layers": n,
            "plain 0.5·0.01ⁿ": plain_gradient(0.5, 0.01, n),
            "residual 0.5·1.01ⁿ": residual_gradient(0.5, 0.01, n),
        }
        for n in (1, 10)
    ]
    st.dataframe(
        pd.DataFrame(rows).style.format({"plain 0.5·0.01ⁿ": "{:.3g}", "residual 0.5·1.01ⁿ": "{:.3g}"}),
        hide_index=True,
    )


def deploy_tab(settings: Setting) -> None:
    """The chosen block, or one of the lecture's pairs, in the runtimes people ship."""
    what = st.radio(
        "What to deploy",
        ["A comparison preset", "One block"],
        horizontal=True,
        key="dep.what",
        bind="query-params",
    )
    try:
        if what == "One block":
            block, raw, shape = block_form()
            targets = [Deployable.block(block, raw, shape, block)]
        else:
            preset = st.selectbox("Preset", list(cmp.PRESETS), key="dep.preset", bind="query-params")
            (chs, hw), entries = cmp.PRESETS[preset]
            targets = [
                Deployable.block(e.block, cmp.entry_cfg(e, chs), (1, chs, hw, hw), e.label) for e in entries
            ]
    except BlockConfigError as err:
        st.error(f"Cannot build this block: {err}")
        return
    names = deploy_view.pick_runtimes("dep.runtimes")
    threads = settings.resolved_threads()
    if deploy_view.controls(targets, threads, names, "dep"):
        return
    results = deploy_view.results_of(targets, threads)
    if any(r is None for r in results):
        st.info(
            "Not measured in these runtimes yet at this thread count: press the button (a background job: "
            "export, parity, int8 calibration, then interleaved timing)."
        )
        return
    if len(results) > 1:
        a = results[0]
        browser_view.pair_in_browser(targets, "dep.browser")
        for b in results[1:]:
            server = report.pair(a, b)
            browsers = browser_view.pair_rows(a["target"], b["target"], a["macs"] / max(b["macs"], 1))
            pair = (
                server
                if browsers.empty
                else browsers
                if server.empty
                else pd.concat([server, browsers], ignore_index=True)
            )
            chart(deploy_plots.deploy_pair(pair, b["label"]), f"dep.pair.{b['label']}")
            best = pair.loc[pair["measured speed-up"].idxmax()] if len(pair) else None
            if best is not None:
                st.info(
                    fmt.md(
                        f"{b['label']} has {pair['MAC ratio'].iloc[0]:.2f}× fewer MACs than {a['label']}; "
                        f"measured it runs {pair['measured speed-up'].min():.2f}–"
                        f"{pair['measured speed-up'].max():.2f}× faster across runtimes (most in "
                        f"{best['runtime']})."
                        + (
                            " The lecture's 8-10× holds where the measured bar reaches the dashed line."
                            if "depthwise" in f"{b.get('name', '')} {b['label']}".lower()
                            else ""
                        )
                    )
                )
    deploy_view.show_results(results, "dep")
