"""Compare backbones → Compound scaling: EfficientNet's (α, β, γ, φ) lab. The prediction draws at once; the
built networks are counted by a background job (core.zoo.scaling) and join the plot as they are kept."""

from __future__ import annotations

import streamlit as st

from core import jobs
from core.errors import first_line
from core.present import fmt, plots
from core.web.roles import why_not
from core.zoo import scaling
from pages._widgets import chart, current_settings, job_progress_bar, may, table


def scaling_tab() -> None:
    cols = st.columns(4)
    phi = cols[0].slider("φ", 0.0, 4.0, 2.0, 0.5, key="cs.phi")
    alpha = cols[1].number_input("α (depth)", 1.0, 2.0, scaling.ALPHA, 0.01, key="cs.alpha")
    beta = cols[2].number_input("β (width)", 1.0, 2.0, scaling.BETA, 0.01, key="cs.beta")
    gamma = cols[3].number_input("γ (resolution)", 1.0, 2.0, scaling.GAMMA, 0.01, key="cs.gamma")
    s = scaling.Scaling(phi, alpha, beta, gamma)
    ok = abs(s.constraint - 2) <= 0.1
    (st.success if ok else st.warning)(
        f"α·β²·γ² = {s.constraint:.3f} ({'≈ 2, so each step of φ doubles compute' if ok else 'far from 2'})"
    )
    m = st.columns(4)
    m[0].metric("Depth ×", f"{s.depth:.2f}")
    m[1].metric("Width ×", f"{s.width:.2f}")
    m[2].metric(
        "Resolution", f"{s.resolution:.0f} px", help=f"224 · γ^φ = 224 · {s.resolution_multiplier:.4f}"
    )
    m[3].metric("Predicted cost ratio", f"{s.predicted_cost_ratio:.2f}×", help="(α·β²·γ²)^φ ≈ 2^φ")
    st.caption(
        "Lecture's worked example, φ = 2: depth 1.2² = 1.44, width 1.1² = 1.21, resolution "
        "224 · 1.15² ≈ 296 px (B3 rounds to 300)."
    )
    phis = sorted({1.0, 2.0, 3.0, phi})
    frame = scaling.predicted_vs_measured(phis, alpha, beta, gamma, compute=False)
    official = scaling.official_points(compute=False)
    counting = scaling_counts(phis, alpha, beta, gamma, scaling.missing(frame, official))
    chart(plots.scaling(frame, official), "cs.plot")
    if counting:
        st.caption(
            "The prediction is drawn now; each built network's measured MACs join the plot as a background "
            "job counts it (B7 at 600 px takes the longest)."
        )
    table(frame, width="stretch")
    st.markdown("**Official B0-B7** (timm's generator; the lecture's table rounds these multipliers)")
    table(official, width="stretch")
    if st.toggle("Measure batch-1 latency of the scaled network for this φ", key="cs.time"):
        scaled_latency(s, phi)


def scaling_counts(phis: list[float], alpha: float, beta: float, gamma: float, missing: int) -> bool:
    """Starts (once) the background count of the ``missing`` networks this table needs; shows its progress.
    True while counting."""
    job = jobs.latest(scaling.KIND)
    if job is not None and job.active:
        st.caption(
            "A background job is counting the networks not yet measured (the table's empty cells); they "
            "join the plot and the table as each is kept."
        )
        scaling_progress()
        return True
    if not missing:
        return False
    if (
        job is not None
        and job.status == "failed"
        and job.args == {"phis": phis, "alpha": alpha, "beta": beta, "gamma": gamma}
    ):
        st.error(f"Counting the scaled networks failed (job #{job.id}): {fmt.md(job.error or job.message)}")
        return False
    if not may("scaling"):  # a visitor's visit never starts the count: the instructor's does
        st.caption(f"{missing} network(s) are not counted yet. {why_not('scaling')}")
        return False
    try:
        scaling.start(phis, alpha, beta, gamma)
    except RuntimeError as err:
        st.error(fmt.md(err))
        return False
    st.info(
        f"This tab has started a background job: it builds and counts the {missing} network(s) not yet "
        "measured (the table's empty cells), at a lower CPU priority than the pages. Its progress and "
        "time left "
        "are below; you can leave the tab, and the counts are kept.",
        icon=":material/hourglass_top:",
    )
    scaling_progress()
    return True


@st.fragment(run_every=1.0)
def scaling_progress() -> None:
    job_progress_bar(scaling.KIND, "cs.stop")


def scaled_latency(s: scaling.Scaling, phi: float) -> None:
    """The scaled network timed by the app's one protocol (rounds until it settles), with a progress bar."""
    from core.measure.profiling import time_settled

    setting = current_settings()
    res = int(round(s.resolution))
    bar = st.progress(0.0, text=f"Building the φ = {phi:g} network…")
    model = scaling.build_scaled(s.width, s.depth)
    counts = scaling.scaled_count(s.width, s.depth, res, compute=False)

    def on_round(i: int) -> bool:
        bar.progress(min(i / 15, 1.0), text=f"Timing at {res} px: round {i} (at least 15)")
        return False

    try:
        timed = time_settled(model, (1, 3, res, res), **setting.profile_kwargs(), on_round=on_round)
    except Exception as err:  # noqa: BLE001  the budget's refusal or a failed forward, in words
        bar.empty()
        st.error(f"Cannot time this network here: {fmt.md(first_line(err))}")
        return
    bar.empty()
    params = sum(p.numel() for p in model.parameters())
    what = f"{fmt.count(params)} params, " + (f"{fmt.si(counts['macs'])}MACs, " if counts else "")
    st.write(
        f"φ = {phi}: {what}{fmt.ms(timed.latency[0].median_ms)} at batch 1 and {res} px on {setting.device} "
        f"({setting.resolved_threads()} thread(s))."
    )
    (st.warning if timed.busy else st.caption)(timed.note())
