"""The roofline view shared by the Block explorer and Compare backbones: ceilings, the plot, time vs MACs
by kind, the per-layer table and how the layer times add up."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.measure import roofline as rl
from core.measure.ceilings import Ceilings
from core.present import fmt, plots
from pages._widgets import chart, table


def show_ceilings(c: Ceilings) -> None:
    cols = st.columns(3)
    cols[0].metric(
        f"Peak compute ({c.precision})",
        f"{c.peak_gflops:,.1f} GFLOP/s",
        help=f"Best of the timed {c.gemm_n}×{c.gemm_n}×{c.gemm_n} matrix products (2n³ FLOPs each).",
    )
    cols[1].metric(
        "DRAM bandwidth" if c.device == "cpu" else "Memory bandwidth",
        f"{c.bandwidth_gbs:,.1f} GB/s",
        help=f"STREAM triad a = b + s·c over three {c.stream_mib} MiB buffers, bytes read plus written.",
    )
    cols[2].metric(
        "Ridge point", f"{c.ridge:.1f} FLOP/B", help="Below this intensity a layer is memory-bound."
    )
    sheet = c.datasheet()
    extra = ""
    if sheet:
        tflops, tbs = sheet
        extra = (
            f" Datasheet: {tflops:,.0f} TFLOP/s and {tbs:.2f} TB/s; measured "
            f"{c.peak_gflops / 1e3 / tflops:.0%} "
            f"and {c.bandwidth_gbs / 1e3 / tbs:.0%} of them."
        )
    st.caption(
        f"Ceilings measured on {fmt.md(c.device_name)} · {c.precision} · {c.threads} thread(s) · "
        f"torch {c.torch_version}, in {c.seconds:.1f} s.{extra} {rl.BYTES_FORMULA}. "
        f"{c.levels_note() if c.by_level or c.device != 'cpu' else ''}"
    )
    if c.device == "cpu" and not c.by_level:
        st.caption(
            c.levels_note() + " (These ceilings were measured before per-level triads: measure them again.)"
        )


# the roofline table's data columns (core.measure.roofline.COLUMNS) as this view names them
LABELS = {
    "module": "layer",
    "op": "type",
    "macs": "MACs",
    "intensity": "intensity FLOP/B",
    "ms_in_forward": "in forward ms",
    "ms_alone": "alone ms",
    "gflops": "GFLOP/s",
    "gbs": "GB/s",
    "attainable_ms": "attainable ms",
}


def show_profile(frames: dict[str, pd.DataFrame], c: Ceilings, key: str, top_k: int = 15) -> None:
    """The roofline of one or more per-layer profiles, the kind shares and the slowest layers."""
    chart(plots.roofline(frames, c.peak_gflops, c.bandwidth_gbs, c.levels), f"{key}.roofline")
    above = pd.concat([rl.above_roofs(f).assign(model=label) for label, f in frames.items()])
    if len(above):
        lines = "\n".join(
            f"- {fmt.md(r['module'])} ({r['kind']}, {r['gbs']:.1f} GB/s, fits {r['level']}): "
            f"{fmt.md(r['roof'])}"
            for _, r in above.head(8).iterrows()
        )
        more = f"\n\n…and {len(above) - 8} more (the table's “roof” column)." if len(above) > 8 else ""
        st.warning(
            f"{len(above)} layer(s) ringed in red sit above the roof of the level their working set fits:\n"
            f"{lines}{more}"
        )
    elif any("roof" in f for f in frames.values()):
        st.caption(
            "Every layer sits under the roof of the cache level its working set fits in (the table's "
            "“level” and “roof” columns); a point above the DRAM line runs from cache."
        )
    zero = sum(int((f["macs"] == 0).sum()) for f in frames.values())
    if zero:
        st.caption(
            f"{zero} layer(s) with no counted MACs (activations, pooling) have intensity 0 and are not on "
            "the log-log plot; their time is in the bars and the table."
        )
    for label, frame in frames.items():
        if len(frames) > 1:
            st.markdown(f"**{fmt.md(label)}**")
        left, right = st.columns([2, 3])
        chart(plots.kind_shares(rl.by_kind(frame)), f"{key}.kinds.{label}", left)
        with right:
            note = rl.sum_note(frame)
            if note:
                st.info(note)
            order = "ms_in_forward" if "ms_in_forward" in frame else "ms_alone"
            shown = frame.sort_values(order, ascending=False).head(top_k).rename(columns=LABELS)
            table(
                shown,
                width="stretch",
                height=min(420, 38 + 35 * len(shown)),
                column_config={
                    "intensity FLOP/B": st.column_config.NumberColumn(format="%.2f"),
                    "in forward ms": st.column_config.NumberColumn(
                        format="%.4f", help="The layer's time inside one whole forward (hooks, one timer)."
                    ),
                    "alone ms": st.column_config.NumberColumn(
                        format="%.4f",
                        help="The layer replayed alone on its captured input: the roofline's figure.",
                    ),
                    "GFLOP/s": st.column_config.NumberColumn(format="%.1f"),
                    "GB/s": st.column_config.NumberColumn(format="%.2f"),
                    "attainable ms": st.column_config.NumberColumn(format="%.4f"),
                    "efficiency": st.column_config.NumberColumn(format="percent"),
                },
            )
            st.caption(
                f"The {min(top_k, len(frame))} slowest of {len(frame)} layers (click a header to sort). "
                "Efficiency = the roofline's attainable time / the layer's time alone. The kind bars share "
                "out one whole forward (in forward ms, with the blocks' own ops and the model's own forward)."
            )
