"""Plots of the deployment view and of a run's export: targets against MACs, a block pair per target, and a
fine-tuned model's exports side by side. Plotly figures only; no computation. Each row says where its
target runs (``where``: server or browser) and its colour (``colour``, from the registry of targets), so
a chart never guesses either from a label."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from core.present import style
from core.present.fmt import plot_text

SERVER = "server"


def _server(part: pd.DataFrame) -> pd.Series:
    """Which rows run on this server (a table without ``where``: every row)."""
    return part["where"].eq(SERVER) if "where" in part else pd.Series(True, index=part.index)


def deploy_latency(table: pd.DataFrame, budget_ms: float, published: pd.DataFrame | None = None) -> go.Figure:
    """Batch-1 latency against MACs, one colour per runtime (each browser setup measured on a device is one
    more, drawn as diamonds), p10-p90 as error bars, log-log, with the real-time budget as a line: which
    models fit it in which runtime. ``published`` (rows of ``assets/phone_latency.csv``: timm, macs_m,
    latency_ms, device, runtime, precision, threads) adds other people's phones as grey crosses at the
    MACs their sources state."""
    fig = go.Figure()
    ok = table[table["median ms"].notna()]
    phones = published if published is not None and len(published) else None
    if phones is not None:
        fig.add_scatter(
            x=phones["macs_m"] * 1e6,
            y=phones["latency_ms"],
            mode="markers",
            name="published phones",
            marker=dict(size=10, symbol="x-thin", line=dict(width=2, color=style.PUBLISHED)),
            customdata=[
                f"{plot_text(r.timm)}: {plot_text(r.device)}, {plot_text(r.runtime)} "
                f"{plot_text(r.precision)}, threads {plot_text(r.threads)}"
                for r in phones.itertuples()
            ],
            hovertemplate="%{customdata}<br>%{x:.3s} MACs (as published) · %{y:.1f} ms<extra>"
            "published</extra>",
        )
        ok_x = [*ok["MACs"], *(phones["macs_m"] * 1e6)]
        ok_y = [*ok["p10 ms"], *ok["p90 ms"], *phones["latency_ms"]]
    else:
        ok_x, ok_y = list(ok["MACs"]), [*ok["p10 ms"], *ok["p90 ms"]]
    others = 0
    # a model's runtimes sit at the same MACs, often a few ms apart: its name is written once, beside its
    # slowest server runtime (the top point); every point names it on hover
    server = ok[_server(ok)]
    named = set(server.groupby("target")["median ms"].idxmax()) if len(server) else set()
    for runtime, part in ok.groupby("runtime", sort=False):
        known = bool(_server(part).all())  # else a browser ("device · setup · precision"): a diamond each
        given = part["colour"].iloc[0] if "colour" in part else None
        colour = given if known and isinstance(given, str) else style.RUNS[others % len(style.RUNS)]
        others += not known
        fig.add_scatter(
            x=part["MACs"],
            y=part["median ms"],
            mode="markers+text" if known else "markers",
            name=plot_text(runtime),
            customdata=[plot_text(t) for t in part["target"]],
            text=[plot_text(t) if i in named else "" for i, t in zip(part.index, part["target"])],
            textposition="middle right",
            marker=dict(size=11, color=colour, symbol="circle" if known else "diamond"),
            error_y=dict(
                type="data",
                symmetric=False,
                array=part["p90 ms"] - part["median ms"],
                arrayminus=part["median ms"] - part["p10 ms"],
                thickness=1,
            ),
            hovertemplate="%{customdata}<br>%{x:.3s} MACs · %{y:.2f} ms<extra>"
            + plot_text(runtime)
            + "</extra>",
        )
    if ok_x:
        lo, hi = float(min(ok_x)) / 2, float(max(ok_x)) * 2
        fig.add_scatter(
            x=[lo, hi],
            y=[budget_ms, budget_ms],
            mode="lines",
            name=f"{budget_ms:g} ms real-time budget",
            line=dict(color="#333", dash="dash"),
            hoverinfo="skip",
        )
        ys = [*ok_y, budget_ms]
        y_ticks, x_ticks = style.ticks(min(ys), max(ys)), style.ticks(lo, hi)
        fig.update_yaxes(
            tickvals=y_ticks,
            ticktext=[style.label(t) for t in y_ticks],
            range=[math.log10(y_ticks[0]) - 0.05, math.log10(y_ticks[-1]) + 0.05],
        )
        fig.update_xaxes(tickvals=x_ticks, ticktext=[style.label(t) for t in x_ticks])
    fig.update_xaxes(type="log", title_text="MACs per image (log)")
    fig.update_yaxes(type="log", title_text="batch-1 latency, median (ms, log)")
    fig.update_layout(height=460, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.2))
    return fig


def deploy_pair(pair: pd.DataFrame, label_b: str) -> go.Figure:
    """How many times faster block B runs than A in each runtime (and each browser setup measured), against
    its MAC ratio (the dashed line)."""
    fig = go.Figure()
    # two lines at phone width; a browser ("device · setup · precision", user text) is named by its setup and
    # precision, its device (long: "Chromium (headless) 150 on Linux, 2 cores") once, under the axis
    on_server = dict(zip(pair["runtime"], _server(pair)))
    colours = dict(zip(pair["runtime"], pair["colour"])) if "colour" in pair else {}
    browsers = [r for r in dict.fromkeys(pair["runtime"]) if not on_server[r]]
    devices = list(dict.fromkeys(str(r).split(" · ")[0] for r in browsers))

    def name(r: str) -> str:
        if on_server[r]:
            return str(r).replace(" Runtime ", " Runtime<br>")
        device, *rest = str(r).split(" · ")
        return "<br>".join(
            [plot_text(" ".join(rest))]
            + ([f"device {devices.index(device) + 1}"] if len(devices) > 1 else [])
        )

    names = [name(r) for r in pair["runtime"]]
    fig.add_bar(
        x=names,
        y=pair["measured speed-up"],
        name=f"{plot_text(label_b)}: measured speed-up",
        marker_color=[
            colours.get(r) if on_server[r] else style.RUNS[browsers.index(r) % len(style.RUNS)]
            for r in pair["runtime"]
        ],
        texttemplate="%{y:.1f}×",
        textposition="inside",
        insidetextanchor="end",
        textangle=0,
    )  # level: Plotly shrinks it to fit a phone's narrow bar, never turns it
    if len(pair):  # the ratio is named in the legend; a label on the line collided with the bars' own
        ratio = float(pair["MAC ratio"].iloc[0])
        fig.add_scatter(
            x=names,
            y=[ratio] * len(pair),
            mode="lines",
            name=f"MAC ratio {ratio:.2f}×",
            line=dict(color="#333", dash="dash"),
        )
    top = max(
        [float(pair["MAC ratio"].max()), float(pair["measured speed-up"].max())] if len(pair) else [1.0]
    )
    fig.update_yaxes(title_text="× faster than the first block", range=[0, top * 1.2])
    where = (
        ""
        if not devices
        else f"<br>browser bars measured in<br>{plot_text(devices[0])}"
        if len(devices) == 1
        else "".join(f"<br>device {i + 1}: {plot_text(d)}" for i, d in enumerate(devices))
    )
    fig.update_xaxes(title_text="runtime" + where)
    fig.update_layout(height=380, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


def export_scores(table: pd.DataFrame) -> go.Figure:
    """Val top-1 of PyTorch and its ONNX exports with the Wilson interval; each bar's top-1 and batch-1
    latency written under it (inside the bar, the interval's whisker would cross them)."""
    ok = table[table["val top-1 %"].notna()]
    names = [
        f"{m}<br>{t:.1f}% · {ms:.2f} ms" for m, t, ms in zip(ok["model"], ok["val top-1 %"], ok["latency ms"])
    ]
    fig = go.Figure()
    fig.add_bar(
        x=names,
        y=ok["val top-1 %"],
        marker_color=list(ok["colour"]),
        error_y=dict(
            type="data",
            symmetric=False,
            array=ok["val 95% high"] - ok["val top-1 %"],
            arrayminus=ok["val top-1 %"] - ok["val 95% low"],
        ),
        name="val top-1",
        hovertemplate="%{x}<br>val top-1 %{y:.1f}%<extra></extra>",
    )
    fig.update_yaxes(title_text="val top-1 (%), ~95% Wilson interval", range=[0, 105])
    fig.update_xaxes(title_text="model: val top-1 · batch-1 latency")
    fig.update_layout(height=340, margin=dict(t=20, b=10), showlegend=False)
    return fig
