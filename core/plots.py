"""Plotly figures for the pages; pure functions of data frames, no Streamlit."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.fmt import si
from core.gradflow import GradFlow


def compare_bars(frame: pd.DataFrame) -> go.Figure:
    """Params, MACs and median latency (p10-p90 whiskers) per block, each bar labelled with its ratio."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("Parameters", "MACs (per batch)", "Latency (median, ms)"))
    for col, (metric, ratio) in enumerate((("params", "params ratio"), ("MACs", "MAC ratio"),
                                           ("latency ms", "latency ratio")), start=1):
        unit = " ms" if metric == "latency ms" else ""
        text = [f"{si(v)}{unit}<br>{'baseline' if i == 0 else f'{r:.2f}x less'}"
                for i, (v, r) in enumerate(zip(frame[metric], frame[ratio]))]
        error = None
        if metric == "latency ms":
            error = dict(type="data", symmetric=False, array=frame["p90 ms"] - frame["latency ms"],
                         arrayminus=frame["latency ms"] - frame["p10 ms"])
        fig.add_bar(x=frame["block"], y=frame[metric], text=text, textposition="auto", error_y=error,
                    marker_color=["#636efa", "#ef553b", "#00cc96", "#ab63fa"][: len(frame)], showlegend=False,
                    row=1, col=col)
    fig.update_yaxes(title_text="parameters", row=1, col=1)
    fig.update_yaxes(title_text="MACs", row=1, col=2)
    fig.update_yaxes(title_text="milliseconds", row=1, col=3)
    fig.update_layout(height=420, margin=dict(t=40, b=10))
    return fig


def channel_sweep(frame: pd.DataFrame, metric: str = "params") -> go.Figure:
    """Cost against channel count on log-log axes: slope 2 is C^2 growth, slope 1 is C growth."""
    fig = go.Figure()
    for block, part in frame.groupby("block", sort=False):
        fig.add_scatter(x=part["channels"], y=part[metric], mode="lines+markers", name=block)
    if not frame.empty:
        c0, cmax = frame["channels"].min(), frame["channels"].max()
        y0 = frame[frame["channels"] == c0][metric].min()
        for power, dash in ((2, "dot"), (1, "dash")):
            fig.add_scatter(x=[c0, cmax], y=[y0, y0 * (cmax / c0) ** power], mode="lines", name=f"∝ C^{power}",
                            line=dict(dash=dash, color="grey"))
    fig.update_xaxes(type="log", title_text="channels C (in = out)")
    fig.update_yaxes(type="log", title_text=f"{metric} (log scale)")
    fig.update_layout(height=380, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def gradient_flow(result: GradFlow) -> go.Figure:
    """||dL/dh_l|| per layer for the plain and the residual stack, on a log axis."""
    fig = go.Figure()
    for name, color in (("plain", "#ef553b"), ("residual", "#00cc96")):
        fig.add_scatter(x=result.table["layer"], y=result.table[name].clip(lower=1e-300), mode="lines+markers",
                        name=f"{name} stack", line=dict(color=color))
    fig.update_yaxes(type="log", title_text="gradient norm ||∂L/∂h_l|| (log scale)", exponentformat="power")
    fig.update_xaxes(title_text="layer l (0 = input end, gradient arrives from the right)")
    fig.update_layout(height=400, margin=dict(t=30, b=10), legend=dict(orientation="h", y=1.1))
    return fig
