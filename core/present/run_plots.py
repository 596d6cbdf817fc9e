"""Plotly figures of datasets and fine-tuning runs: training curves, the LR finder, a run's evaluation, the
freezing-depth experiment and hyper-parameters against top-1. Pure functions of data frames, no
Streamlit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.present import style
from core.present.fmt import plot_text

X_AXES = {"step": "step", "epoch": "epoch", "wall time": "wall time (s)"}


def ema(values: "pd.Series | list[float]", weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average with its start-up bias removed (s_t =
    w·s_{t-1} + (1-w)·x_t, shown as s_t / (1 - w^t)); weight 0 returns the values."""
    out, last = [], 0.0
    for t, x in enumerate(values, start=1):
        last = weight * last + (1 - weight) * float(x)
        out.append(last / (1 - weight**t) if weight else float(x))
    return out


def _x(c: pd.DataFrame, axis: str, val: bool) -> "pd.Series":
    if axis == "wall time":
        return c["wall_s"]
    if axis == "epoch":  # a training step at its fraction of the epoch; a validation at the end of its epoch
        return c["epoch"] + 1 if val else c["step"] / c.attrs.get("steps_per_epoch", 1.0)
    return c["step"]


def training_curves(
    curves: "dict[str, pd.DataFrame]",
    colours: "dict[str, str] | None" = None,
    x: str = "step",
    smoothing: float = 0.0,
    log_loss: bool = False,
) -> go.Figure:
    """Loss (train per step, val per epoch), val top-1 and the head's LR for one or more runs: one colour
    per run, train solid and validation dashed; the train loss smoothed as TensorBoard does (raw shown
    faint)."""
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=("Loss (cross-entropy)", "Val top-1", "Learning rate (head)")
    )
    colours = colours or {}
    for i, (name, c) in enumerate(curves.items()):
        if c.empty:
            continue
        colour = colours.get(name, style.RUNS[i % len(style.RUNS)])
        label = plot_text(name)
        line = dict(color=colour)
        if "loss" in c:
            tr = c.dropna(subset=["loss"])
            if smoothing:
                fig.add_scatter(
                    x=_x(tr, x, False).tolist(),
                    y=tr["loss"].tolist(),
                    mode="lines",
                    opacity=0.25,
                    line=line,
                    legendgroup=label,
                    showlegend=False,
                    hoverinfo="skip",
                    row=1,
                    col=1,
                )
            fig.add_scatter(
                x=_x(tr, x, False).tolist(),
                y=ema(tr["loss"], smoothing),
                mode="lines",
                line=line,
                name=f"{label}",
                legendgroup=label,
                row=1,
                col=1,
                hovertemplate=f"{label} train loss %{{y:.4f}}<extra></extra>",
            )
        if "val_loss" in c:
            va = c.dropna(subset=["val_loss"])
            dashed = dict(color=colour, dash="dash")
            fig.add_scatter(
                x=_x(va, x, True),
                y=va["val_loss"],
                mode="lines+markers",
                line=dashed,
                legendgroup=label,
                showlegend=False,
                row=1,
                col=1,
                hovertemplate=f"{label} val loss %{{y:.4f}}<extra></extra>",
            )
            fig.add_scatter(
                x=_x(va, x, True),
                y=va["val_top1"] * 100,
                mode="lines+markers",
                line=dashed,
                legendgroup=label,
                showlegend=False,
                row=1,
                col=2,
                hovertemplate=f"{label} val top-1 %{{y:.1f}}%<extra></extra>",
            )
        if "lr" in c:
            lr = c.dropna(subset=["lr"])
            fig.add_scatter(
                x=_x(lr, x, False),
                y=lr["lr"],
                mode="lines",
                line=line,
                legendgroup=label,
                showlegend=False,
                row=1,
                col=3,
                hovertemplate=f"{label} lr %{{y:.3g}}<extra></extra>",
            )
    for col in (1, 2, 3):
        fig.update_xaxes(title_text=X_AXES[x], row=1, col=col)
    fig.update_yaxes(
        title_text="loss (log)" if log_loss else "loss", type="log" if log_loss else "linear", row=1, col=1
    )
    fig.update_yaxes(title_text="top-1 (%)", range=[0, 101], row=1, col=2)
    fig.update_yaxes(title_text="learning rate", type="log", row=1, col=3)
    fig.update_layout(
        height=420,
        margin=dict(t=40, b=10),
        legend=dict(orientation="h", y=-0.3, title=dict(text="solid: train · dashed: validation  ")),
    )
    if all(c.empty for c in curves.values()):
        waiting(fig, "waiting for the first training step")
    elif not any("val_loss" in c for c in curves.values()):
        waiting(fig, "waiting for the first epoch", xref="x2 domain", yref="y2 domain")
    return fig


def waiting(fig: go.Figure, text: str, xref: str = "paper", yref: str = "paper") -> go.Figure:
    """An empty state that says what it waits for, in place of empty axes."""
    fig.add_annotation(
        text=text, x=0.5, y=0.5, xref=xref, yref=yref, showarrow=False, font=dict(size=15, color="#666")
    )
    return fig


def confusion(matrix, classes: list[str]) -> go.Figure:
    classes = [plot_text(c) for c in classes]  # user folder names: shown literally, never as HTML
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=classes,
            y=classes,
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="predicted class")
    fig.update_yaxes(title_text="true class", autorange="reversed")
    fig.update_layout(height=420, margin=dict(t=30, b=10))
    return fig


def bars(
    frame: pd.DataFrame, x: str, y: str, x_title: str, y_title: str, log_y: bool = False, text: str = "%{y:,}"
) -> go.Figure:
    """A bar per row, labelled with its value (``text``: a Plotly texttemplate); the x labels (often user
    class names) are shown literally. Labels in percent put the axis in percent too."""
    labels = [plot_text(v) for v in frame[x]]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=frame[y],
            texttemplate=text,
            textposition="auto",
            marker_color=style.ACCENT,
            cliponaxis=False,
        )
    )
    fig.update_xaxes(title_text=x_title)
    percent = "%}" in text
    fig.update_yaxes(
        title_text=y_title + (" (%)" if percent and "%" not in y_title else ""),
        type="log" if log_y else "linear",
        tickformat=".0%" if percent else None,
    )
    fig.update_layout(height=320, margin=dict(t=30, b=10))
    return fig


SKIP_END = 5  # fastai's plot_lr_find(skip_end=5): the last points, where the loss shoots up, are not drawn


def lr_plot_range(frame: pd.DataFrame, skip_end: int = SKIP_END) -> tuple[pd.DataFrame, tuple[float, float]]:
    """What an LR-finder plot shows, as fastai's does: the points before the divergent tail (the last
    ``skip_end`` and any non-finite loss), and a loss axis set by the smoothed loss over them, so one
    diverging point (a loss of 60) cannot flatten the useful curve."""
    finite = frame[np.isfinite(frame["loss"]) & np.isfinite(frame["smoothed loss"])]
    kept = finite.iloc[:-skip_end] if len(finite) > skip_end + 2 else finite
    if kept.empty:
        return kept, (0.0, 1.0)
    lo = float(kept["smoothed loss"].min())
    hi = float(kept["smoothed loss"].max())
    pad = 0.08 * max(hi - lo, 1e-6)
    return kept, (lo - pad, hi + pad)


def lr_finder(frame: pd.DataFrame, suggestion: float) -> go.Figure:
    """The LR range test as fastai plots it: the divergent tail cut (``lr_plot_range``), the loss axis set
    by the smoothed curve, and the suggestion marked on that curve."""
    import numpy as np

    kept, y_range = lr_plot_range(frame)
    fig = go.Figure()
    fig.add_scatter(
        x=kept["lr"],
        y=kept["loss"],
        mode="markers",
        name="loss per step",
        opacity=0.35,
        marker=dict(color=style.ACCENT),
    )
    fig.add_scatter(
        x=kept["lr"],
        y=kept["smoothed loss"],
        mode="lines",
        name="smoothed loss",
        line=dict(color=style.ACCENT, width=3),
    )
    if len(kept):
        at = float(np.interp(np.log(suggestion), np.log(kept["lr"]), kept["smoothed loss"]))
        fig.add_scatter(
            x=[suggestion],
            y=[at],
            mode="markers+text",
            name=f"suggested {suggestion:.1e}",
            text=[f"suggested {suggestion:.1e}"],
            textposition="top right",
            marker=dict(color=style.FRONTIER, size=13, symbol="circle"),
        )
        fig.update_yaxes(range=list(y_range))
    cut = len(frame) - len(kept)
    fig.update_xaxes(type="log", title_text="head learning rate (log scale)")
    fig.update_yaxes(title_text="training loss (cross-entropy)")
    fig.update_layout(
        height=360,
        margin=dict(t=30, b=10),
        legend=dict(orientation="h", y=-0.25),
        title=dict(
            text=f"last {cut} step(s) not drawn: the loss diverges there (fastai skips the last {SKIP_END})"
            if cut
            else "",
            font=dict(size=12),
        ),
    )
    return fig


def accuracy_vs_time(frame: pd.DataFrame) -> go.Figure:
    """Test top-1 (validation where there is no test score) against wall time, with ~95% Wilson whiskers;
    one colour per recipe, named in the legend (labels beside the points collided with the whiskers)."""
    col = "test top-1 %" if frame["test top-1 %"].notna().any() else "val top-1 %"
    lo, hi = col.replace("top-1 %", "95% low"), col.replace("top-1 %", "95% high")
    fig = go.Figure()
    for recipe, part in frame.groupby("recipe", sort=False):
        fig.add_scatter(
            x=part["wall s"],
            y=part[col],
            mode="markers",
            name=plot_text(recipe),
            marker=dict(size=14, color=style.RECIPE.get(str(recipe), style.ACCENT)),
            error_y=dict(
                type="data",
                symmetric=False,
                array=part[hi] - part[col],
                arrayminus=part[col] - part[lo],
                color=style.RECIPE.get(str(recipe)),
            ),
            hovertemplate=f"{plot_text(recipe)}<br>%{{x:.1f}} s · %{{y:.1f}}%<extra></extra>",
        )
    fig.update_xaxes(title_text="wall time (s)")
    fig.update_yaxes(title_text=f"{col.split()[0]} top-1 (%), ~95% interval", range=[0, 105])
    fig.update_layout(height=380, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


HP_TEXT = ("recipe", "backbone", "augment")
HP_NUMBERS = ("epochs", "image px", "batch")
TOP1 = "best val top-1 %"


def _constant_axis(value: float) -> dict:
    """An axis whose every value is the same shows that one value, not ±10% of made-up ticks around it."""
    pad = max(abs(value) * 0.5, 0.5)
    return dict(range=[value - pad, value + pad], tickvals=[value], ticktext=[style.label(value)])


def parallel_runs(hp: pd.DataFrame) -> go.Figure:
    """Hyper-parameters against best val top-1, one line per finished run, coloured by that top-1
    (TensorBoard's HParams parallel-coordinates view). Text columns become numbered categories; the LR
    axis is log10; an axis whose value never changes shows that value alone."""
    dims = []
    for col in HP_TEXT:
        cats = sorted(hp[col].astype(str).unique())
        dims.append(
            dict(
                label=col,
                values=[cats.index(v) for v in hp[col].astype(str)],
                tickvals=list(range(len(cats))),
                ticktext=[plot_text(c) for c in cats],
                **({"range": [-0.5, 0.5]} if len(cats) == 1 else {}),
            )
        )
    lr = np.log10(hp["head LR"].astype(float))
    if lr.notna().all():
        lo, hi = int(np.floor(lr.min())), int(np.ceil(lr.max()))
        one = lr.nunique() == 1
        dims.append(
            dict(
                label="head LR (log)",
                values=lr,
                **(
                    dict(
                        range=[lr.iloc[0] - 0.5, lr.iloc[0] + 0.5],
                        tickvals=[lr.iloc[0]],
                        ticktext=[style.label(10.0 ** lr.iloc[0])],
                    )
                    if one
                    else dict(
                        tickvals=list(range(lo, hi + 1)),
                        ticktext=[style.label(10.0**e) for e in range(lo, hi + 1)],
                    )
                ),
            )
        )
    for col in HP_NUMBERS:
        if hp[col].notna().all():
            values = hp[col].astype(float)
            dims.append(
                dict(
                    label=col,
                    values=values,
                    **(_constant_axis(values.iloc[0]) if values.nunique() == 1 else {}),
                )
            )
    dims.append(dict(label="best val top-1 (%)", values=hp[TOP1], range=[0, 100]))
    fig = go.Figure(
        go.Parcoords(
            line=dict(
                color=hp[TOP1],
                colorscale="Viridis",
                cmin=0,
                cmax=100,
                showscale=True,
                colorbar=dict(title="top-1 %", thickness=12),
            ),
            dimensions=dims,
        )
    )
    fig.update_layout(height=380, margin=dict(t=60, b=20, l=60, r=40))
    return fig


def hparam_strips(hp: pd.DataFrame) -> go.Figure:
    """The narrow-screen form of ``parallel_runs``: one small strip per hyper-parameter, its values on x
    and best val top-1 on y, a dot per finished run (hover names it). ``style.panels`` draws each strip
    as its own chart, stacked on a phone."""
    cols = [c for c in (*HP_TEXT, "head LR", *HP_NUMBERS) if hp[c].notna().all()]
    fig = make_subplots(rows=1, cols=len(cols), subplot_titles=[f"{c} → best val top-1" for c in cols])
    for i, col in enumerate(cols, start=1):
        text = col in HP_TEXT
        x = [plot_text(v) for v in hp[col].astype(str)] if text else hp[col].astype(float)
        fig.add_scatter(
            x=x,
            y=hp[TOP1],
            mode="markers",
            row=1,
            col=i,
            showlegend=False,
            marker=dict(size=10, color=style.ACCENT, opacity=0.8, line=dict(width=1, color="white")),
            customdata=[plot_text(n) for n in hp["name"]],
            hovertemplate="%{customdata}<br>" + col + " %{x}<br>top-1 %{y:.1f}%<extra></extra>",
        )
        fig.update_xaxes(
            title_text=col + (" (log)" if col == "head LR" else ""),
            row=1,
            col=i,
            type="category" if text else ("log" if col == "head LR" else "linear"),
            **(
                {}
                if text or hp[col].nunique() > 1
                else {"tickvals": [float(hp[col].iloc[0])], "ticktext": [style.label(float(hp[col].iloc[0]))]}
            ),
        )
        fig.update_yaxes(title_text="best val top-1 (%)", range=[0, 105], row=1, col=i)
    fig.update_layout(height=230, margin=dict(t=40, b=10, l=50, r=10))
    return fig
