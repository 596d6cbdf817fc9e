"""Plotly figures of blocks and backbones (the runs' and datasets' figures are in ``run_plots``); pure
functions of data frames, no Streamlit."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.present import style
from core.present.fmt import plot_text, si, times


def compare_bars(frame: pd.DataFrame) -> go.Figure:
    """Params, MACs and median latency (p10-p90 whiskers) per block, each bar labelled with its ratio."""
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=("Parameters", "MACs (per batch)", "Latency (median, ms)")
    )
    words = {
        "params": ("more params", "fewer params"),
        "MACs": ("more MACs", "fewer MACs"),
        "latency ms": ("slower", "faster"),
    }
    for col, (metric, ratio) in enumerate(
        (("params", "params ratio"), ("MACs", "MAC ratio"), ("latency ms", "speed-up")), start=1
    ):
        unit = " ms" if metric == "latency ms" else ""
        text = [
            f"{si(v)}{unit}<br>{'baseline' if i == 0 else times(r, *words[metric])}"
            for i, (v, r) in enumerate(zip(frame[metric], frame[ratio]))
        ]
        error = None
        if metric == "latency ms":
            error = dict(
                type="data",
                symmetric=False,
                array=frame["p90 ms"] - frame["latency ms"],
                arrayminus=frame["latency ms"] - frame["p10 ms"],
            )
        # latency labels sit at the base of the bar, so the p10-p90 whisker at its top never covers them
        fig.add_bar(
            x=frame["block"],
            y=frame[metric],
            text=text,
            error_y=error,
            textposition="inside" if error else "auto",
            insidetextanchor="start" if error else None,
            marker_color=list(frame["colour"]) if "colour" in frame else None,
            showlegend=False,
            row=1,
            col=col,
        )
    fig.update_yaxes(title_text="parameters", row=1, col=1)
    fig.update_yaxes(title_text="MACs", row=1, col=2)
    fig.update_yaxes(title_text="milliseconds", row=1, col=3)
    fig.update_layout(height=420, margin=dict(t=40, b=10))
    return fig


def channel_sweep(frame: pd.DataFrame, metric: str = "params") -> go.Figure:
    """Cost against channel count on log-log axes: slope 2 is C² growth, slope 1 is C growth."""
    fig = go.Figure()
    for block, part in frame.groupby("block", sort=False):
        colour = part["colour"].iloc[0] if "colour" in part else None
        fig.add_scatter(
            x=part["channels"], y=part[metric], mode="lines+markers", name=block, line=dict(color=colour)
        )
    if not frame.empty:
        c0, cmax = frame["channels"].min(), frame["channels"].max()
        y0 = (
            frame[frame["channels"] == c0][metric].min() / 3
        )  # a third below the cheapest: parallel, never on a line
        for power, dash in ((2, "dot"), (1, "dash")):
            fig.add_scatter(
                x=[c0, cmax],
                y=[y0, y0 * (cmax / c0) ** power],
                mode="lines",
                name="∝ C² (slope guide)" if power == 2 else "∝ C (slope guide)",
                line=dict(dash=dash, color="grey"),
            )
    fig.update_xaxes(type="log", title_text="channels C (in = out)")
    fig.update_yaxes(type="log", title_text=f"{metric} (log scale)")
    fig.update_layout(height=380, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def gradient_flow(table: pd.DataFrame) -> go.Figure:
    """‖∂L/∂h_l‖ per layer (columns ``layer``, ``plain``, ``residual``) for the two stacks, on a log axis."""
    fig = go.Figure()
    for name, color in style.STACK.items():
        fig.add_scatter(
            x=table["layer"],
            y=table[name].clip(lower=1e-300),
            mode="lines+markers",
            name=f"{name} stack",
            line=dict(color=color),
        )
    fig.update_yaxes(type="log", title_text="gradient norm ‖∂L/∂hₗ‖ (log scale)", exponentformat="power")
    fig.update_xaxes(title_text="layer l (0 = input end)")
    fig.update_layout(height=400, margin=dict(t=30, b=10), legend=dict(orientation="h", y=1.1))
    return fig


def accuracy_vs_cost(frame: pd.DataFrame, x: str, x_title: str, front: "pd.Series") -> go.Figure:
    """ImageNet top-1 against a cost column, Pareto frontier drawn as a step line, hover with details."""
    fig = go.Figure()
    hover = (
        "<b>%{customdata[0]}</b> (%{customdata[1]})<br>top-1 %{y:.2f}% at %{customdata[5]} px<br>"
        + x_title
        + " %{x:.3g}<br>%{customdata[2]:.1f} M params · %{customdata[3]:.2f} GMACs @ %{customdata[4]} "
        "px<extra></extra>"
    )
    matches = (
        frame["resolution matches"] if "resolution matches" in frame else pd.Series(True, index=frame.index)
    )
    data = frame.assign(eval_px=frame["eval_resolution"].fillna(0).astype(int))[
        ["model", "tag", "params (M)", "GMACs", "resolution", "eval_px"]
    ].to_numpy()
    many = frame["resolution"].nunique() > 1  # then every label names its resolution: "resnet18 @160"
    labels = [f"{m} @{r}" if many else m for m, r in zip(frame["model"], frame["resolution"])]
    fig.add_scatter(
        x=frame[x],
        y=frame["top1"],
        mode="markers+text",
        text=labels,
        cliponaxis=False,
        textposition=_inward(frame[x]),
        customdata=data,
        hovertemplate=hover,
        name="backbones",
        marker=dict(
            size=10,
            color=[style.FRONTIER if f else style.ACCENT for f in front],
            symbol=["circle" if m else "circle-open" for m in matches],
        ),
    )
    pts = frame[front].sort_values(x)
    fig.add_scatter(
        x=pts[x],
        y=pts["top1"],
        mode="lines",
        line=dict(shape="hv", dash="dot", color=style.FRONTIER),
        name="Pareto frontier",
        hoverinfo="skip",
    )
    fig.update_xaxes(type="log", title_text=x_title + " (log scale)")
    fig.update_yaxes(title_text="ImageNet-1k top-1 (%), timm published")
    fig.update_layout(height=460, margin=dict(t=30, b=10), legend=dict(orientation="h", y=1.08))
    return fig


def _inward(xs: "pd.Series") -> list[str]:
    """Label positions that keep the end points' labels inside a narrow chart: the rightmost point's label
    runs left of it, the leftmost's right of it, the others centred above their point."""
    if xs.nunique() < 2:
        return ["top center"] * len(xs)
    return ["top left" if v == xs.max() else "top right" if v == xs.min() else "top center" for v in xs]


def throughput(sweeps: list[dict]) -> go.Figure:
    """Images/s against batch size per model, the saturation batch marked."""
    fig = go.Figure()
    starred = False
    for i, sw in enumerate(sweeps):
        rows = pd.DataFrame(sw["rows"])
        if rows.empty:
            continue
        colour = style.RUNS[i % len(style.RUNS)]
        fig.add_scatter(
            x=rows["batch"],
            y=rows["images_per_s"],
            mode="lines+markers",
            line=dict(color=colour),
            name=f"{sw['model']} @ {sw['resolution']} px ({sw.get('mode', 'inference')})",
        )
        sat = rows[rows["batch"] == sw.get("saturation_batch")]
        fig.add_scatter(
            x=sat["batch"],
            y=sat["images_per_s"],
            mode="markers",
            name="★ saturation batch",
            legendgroup="saturation",
            showlegend=bool(len(sat)) and not starred,
            marker=dict(symbol="star", size=16, color=colour, line=dict(width=1, color="black")),
            hovertemplate="saturation at batch %{x}<extra></extra>",
        )
        starred = starred or bool(len(sat))
    batches = sorted({int(b) for sw in sweeps for b in pd.DataFrame(sw["rows"]).get("batch", [])})
    # a tick at every batch measured, reading its value (Plotly's own log ticks say 1, 2, 5 for 1, 2, 4)
    fig.update_xaxes(
        type="log",
        title_text="batch size (log scale)",
        tickvals=batches or None,
        ticktext=[str(b) for b in batches] or None,
    )
    fig.update_yaxes(title_text="throughput (images/s)")
    fig.update_layout(height=420, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def scaling(frame: pd.DataFrame, official: pd.DataFrame) -> go.Figure:
    """Predicted (α·β²·γ²)ᵠ against measured MAC ratio of the built networks, with official B0-B7."""
    fig = go.Figure()
    fig.add_scatter(
        x=frame["phi"], y=frame["predicted cost ratio"], mode="lines+markers", name="predicted (α·β²·γ²)ᵠ"
    )
    fig.add_scatter(
        x=frame["phi"],
        y=frame["measured MAC ratio"],
        mode="lines+markers",
        name="measured MACs / B0 (built with timm)",
    )
    if not official.empty:
        fig.add_scatter(
            x=official["phi (fit)"],
            y=official["MAC ratio"],
            mode="markers+text",
            text=official["model"],
            textposition="bottom right",
            name="official B0-B7 (timm)",
            marker=dict(symbol="diamond", size=10),
        )
    # room for the "bottom right" labels inside the plot (B0's under the lowest point, B7's right of the last)
    ys = pd.concat(
        [
            frame["predicted cost ratio"],
            frame["measured MAC ratio"],
            official["MAC ratio"] if not official.empty else pd.Series(dtype=float),
        ]
    ).dropna()
    xs = pd.concat(
        [frame["phi"], official["phi (fit)"] if not official.empty else pd.Series(dtype=float)]
    ).dropna()
    ys, xs = ys[ys > 0], xs
    if len(ys) and len(xs):
        lo, hi = math.log10(ys.min()), math.log10(ys.max())
        fig.update_yaxes(range=[lo - 0.25, hi + 0.12])
        fig.update_xaxes(range=[xs.min() - 0.3, xs.max() + 0.3 + 0.12 * (xs.max() - xs.min())])
    fig.update_yaxes(type="log", title_text="compute relative to B0 (log scale)")
    fig.update_xaxes(title_text="φ")
    fig.update_layout(height=420, margin=dict(t=30, b=10), legend=dict(orientation="h", y=1.1))
    return fig


KIND_COLOURS = style.KIND


LEVEL_DASH = {"L1": "dot", "L2": "dashdot", "L3": "dash"}


LABEL_GAP = 1.6  # on the roofline's log y axis, a line of text spans about this factor at the heights drawn


def _label_groups(ceilings: "list[tuple[str, float]]") -> "list[list[tuple[str, float]]]":
    """Ceilings sorted by bandwidth, in runs whose neighbours are within ``LABEL_GAP`` of each other."""
    groups: list[list[tuple[str, float]]] = []
    for name, gbs in ceilings:
        if groups and gbs < groups[-1][-1][1] * LABEL_GAP:
            groups[-1].append((name, gbs))
        else:
            groups.append([(name, gbs)])
    return groups


def roofline(
    frames: "dict[str, pd.DataFrame]",
    peak_gflops: float,
    bandwidth_gbs: float,
    levels: "list[dict] | tuple" = (),
) -> go.Figure:
    """Log-log roofline: achieved GFLOP/s against arithmetic intensity (FLOP/byte), one point per layer
    that does counted MACs, coloured by kind (one marker shape per block or model). Peak compute and
    every memory ceiling drawn and labelled: DRAM's, and each cache level's where ``levels`` (dicts with
    ``name`` and ``gbs``) has them."""
    import numpy as np

    fig = go.Figure()
    symbols = ("circle", "diamond", "square", "triangle-up")
    roofs = [(lv["name"], lv["gbs"]) for lv in levels if lv.get("gbs") and lv["name"] != "DRAM"]
    top = max([g for _, g in roofs] + [bandwidth_gbs])
    xs = [f["intensity"][f["macs"] > 0] for f in frames.values()]
    lo = min([x.min() for x in xs if len(x)] + [bandwidth_gbs and peak_gflops / top]) / 4
    hi = max([x.max() for x in xs if len(x)] + [peak_gflops / bandwidth_gbs]) * 4
    grid = np.geomspace(lo, hi, 200)
    dram = "DRAM" if levels else "memory"
    fig.add_scatter(
        x=grid,
        y=np.minimum(peak_gflops, bandwidth_gbs * grid),
        mode="lines",
        name=f"roofline ({dram} {bandwidth_gbs:,.1f} GB/s)",
        line=dict(color="#333", width=2),
        hoverinfo="skip",
    )
    for name, gbs in roofs:  # each cache level's ceiling, up to where it meets peak compute
        fig.add_scatter(
            x=grid,
            y=np.minimum(peak_gflops, gbs * grid),
            mode="lines",
            name=f"{name} {gbs:,.0f} GB/s",
            line=dict(color="#777", width=1.5, dash=LEVEL_DASH.get(name, "longdash")),
            hoverinfo="skip",
        )
    ridge = peak_gflops / bandwidth_gbs
    ys = [f["gflops"][f["macs"] > 0] for f in frames.values()]
    y_lo = min([y.min() for y in ys if len(y)] + [bandwidth_gbs * lo]) / 2
    # on log axes Plotly's shapes take log10 coordinates, so the ridge line and the labels are traces
    fig.add_scatter(
        x=[ridge, ridge],
        y=[y_lo, peak_gflops],
        mode="lines",
        line=dict(color="#888", dash="dot"),
        name=f"ridge {ridge:.1f} FLOP/B ({dram})",
        hoverinfo="skip",
    )
    fig.add_scatter(
        x=[lo, hi],
        y=[peak_gflops, peak_gflops],
        mode="text",
        showlegend=False,
        hoverinfo="skip",
        text=["", f"peak {peak_gflops:,.0f} GFLOP/s (GEMM)"],
        textposition="top left",
    )
    # the ceilings' labels inside the plot, right of the left edge, each on its own line (legend has them
    # too);
    # ceilings closer than LABEL_GAP share one label, which would otherwise sit on the other's text
    x = lo * 2
    for group in _label_groups(sorted([(dram, bandwidth_gbs), *roofs], key=lambda r: r[1])):
        gbs = group[-1][1]
        if gbs * x < peak_gflops / 1.5:
            fig.add_scatter(
                x=[x],
                y=[gbs * x],
                mode="text",
                showlegend=False,
                hoverinfo="skip",
                text=[" · ".join(f"{n} {g:,.1f}" for n, g in group) + " GB/s"],
                textposition="top right",
                cliponaxis=False,
            )
    shown_kinds: set[str] = set()
    for (label, f), symbol in zip(frames.items(), symbols):
        f = f[f["macs"] > 0]
        for kind, part in f.groupby("kind", sort=False):
            cols = ["module", "kind", "macs", "bytes", "ms_alone", "gbs", "efficiency", "bound"]
            part = part.assign(
                level=part["level"] if "level" in part else "", roof=part["roof"] if "roof" in part else ""
            )
            data = part[[*cols, "level", "roof"]].to_numpy()
            outside = [
                str(v).startswith(("above every", "above its level")) for v in part["roof"]
            ]  # red ring
            name = kind if len(frames) == 1 else f"{plot_text(label)}: {kind}"
            fig.add_scatter(
                x=part["intensity"],
                y=part["gflops"],
                mode="markers",
                name=name,
                customdata=data,
                marker=dict(
                    color=KIND_COLOURS.get(kind, "#999"),
                    symbol=symbol,
                    size=10,
                    line=dict(
                        width=[2 if above else 1 for above in outside],
                        color=["#d62728" if above else "#fff" for above in outside],
                    ),
                ),
                legendgroup=kind,
                showlegend=len(frames) > 1 or kind not in shown_kinds,
                hovertemplate=(
                    "<b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]:,} MACs · "
                    "%{customdata[3]:,} bytes (fits %{customdata[8]})<br>intensity %{x:.2f} FLOP/B · "
                    "%{y:.1f} GFLOP/s · %{customdata[5]:.1f} GB/s<br>%{customdata[4]:.3f} ms alone · "
                    "%{customdata[7]}-bound · efficiency %{customdata[6]:.0%}<br>%{customdata[9]}"
                    "<extra></extra>"
                ),
            )
            shown_kinds.add(kind)
    fig.update_xaxes(
        type="log",
        title_text="arithmetic intensity (FLOPs per byte moved, log)",
        range=[np.log10(lo), np.log10(hi)],
    )
    fig.update_yaxes(
        type="log", title_text="achieved GFLOP/s (log)", range=[np.log10(y_lo), np.log10(peak_gflops * 3)]
    )
    fig.update_layout(height=480, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.2))
    return fig


def kind_shares(shares: pd.DataFrame) -> go.Figure:
    """Time by layer kind beside MACs by layer kind (percent of each), so a kind that takes far more time
    than its MACs stands out."""
    fig = go.Figure()
    for col, name, colour in (
        ("time_pct", "time", style.QUANTITY["time"]),
        ("macs_pct", "MACs", style.QUANTITY["MACs"]),
    ):
        fig.add_bar(
            y=shares["kind"],
            x=shares[col],
            orientation="h",
            name=name,
            marker_color=colour,
            texttemplate="%{x:.1f}%",
            textposition="outside",
            cliponaxis=False,
        )
    fig.update_xaxes(title_text="share of the whole (%)", range=[0, 125])  # room for an outside "99.9%"
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        barmode="group",
        height=150 + 55 * len(shares),
        margin=dict(t=10, b=10, r=30),
        legend=dict(orientation="h", y=-0.25),
        bargap=0.25,
    )
    return fig
