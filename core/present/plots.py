"""Plotly figures for the pages; pure functions of data frames, no Streamlit."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.blocks.gradflow import GradFlow
from core.present import style
from core.present.fmt import plot_text, si, times
from core.present.style import run_colour  # noqa: F401  (pages colour runs through here)


def compare_bars(frame: pd.DataFrame) -> go.Figure:
    """Params, MACs and median latency (p10-p90 whiskers) per block, each bar labelled with its ratio."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("Parameters", "MACs (per batch)", "Latency (median, ms)"))
    words = {"params": ("more params", "fewer params"), "MACs": ("more MACs", "fewer MACs"),
             "latency ms": ("slower", "faster")}
    for col, (metric, ratio) in enumerate((("params", "params ratio"), ("MACs", "MAC ratio"),
                                           ("latency ms", "speed-up")), start=1):
        unit = " ms" if metric == "latency ms" else ""
        text = [f"{si(v)}{unit}<br>{'baseline' if i == 0 else times(r, *words[metric])}"
                for i, (v, r) in enumerate(zip(frame[metric], frame[ratio]))]
        error = None
        if metric == "latency ms":
            error = dict(type="data", symmetric=False, array=frame["p90 ms"] - frame["latency ms"],
                         arrayminus=frame["latency ms"] - frame["p10 ms"])
        # latency labels sit at the base of the bar, so the p10-p90 whisker at its top never covers them
        fig.add_bar(x=frame["block"], y=frame[metric], text=text, error_y=error,
                    textposition="inside" if error else "auto", insidetextanchor="start" if error else None,
                    marker_color=[style.block_colour(b) for b in frame.get("kind", frame["block"])],
                    showlegend=False, row=1, col=col)
    fig.update_yaxes(title_text="parameters", row=1, col=1)
    fig.update_yaxes(title_text="MACs", row=1, col=2)
    fig.update_yaxes(title_text="milliseconds", row=1, col=3)
    fig.update_layout(height=420, margin=dict(t=40, b=10))
    return fig


def channel_sweep(frame: pd.DataFrame, metric: str = "params") -> go.Figure:
    """Cost against channel count on log-log axes: slope 2 is C² growth, slope 1 is C growth."""
    fig = go.Figure()
    for block, part in frame.groupby("block", sort=False):
        colour = style.block_colour(part["kind"].iloc[0]) if "kind" in part else None
        fig.add_scatter(x=part["channels"], y=part[metric], mode="lines+markers", name=block,
                        line=dict(color=colour))
    if not frame.empty:
        c0, cmax = frame["channels"].min(), frame["channels"].max()
        y0 = frame[frame["channels"] == c0][metric].min()
        for power, dash in ((2, "dot"), (1, "dash")):
            fig.add_scatter(x=[c0, cmax], y=[y0, y0 * (cmax / c0) ** power], mode="lines", name="∝ C²" if power == 2 else "∝ C",
                            line=dict(dash=dash, color="grey"))
    fig.update_xaxes(type="log", title_text="channels C (in = out)")
    fig.update_yaxes(type="log", title_text=f"{metric} (log scale)")
    fig.update_layout(height=380, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def gradient_flow(result: GradFlow) -> go.Figure:
    """‖∂L/∂h_l‖ per layer for the plain and the residual stack, on a log axis."""
    fig = go.Figure()
    for name, color in style.STACK.items():
        fig.add_scatter(x=result.table["layer"], y=result.table[name].clip(lower=1e-300), mode="lines+markers",
                        name=f"{name} stack", line=dict(color=color))
    fig.update_yaxes(type="log", title_text="gradient norm ‖∂L/∂hₗ‖ (log scale)", exponentformat="power")
    fig.update_xaxes(title_text="layer l (0 = input end)")
    fig.update_layout(height=400, margin=dict(t=30, b=10), legend=dict(orientation="h", y=1.1))
    return fig


def accuracy_vs_cost(frame: pd.DataFrame, x: str, x_title: str, front: "pd.Series") -> go.Figure:
    """ImageNet top-1 against a cost column, Pareto frontier drawn as a step line, hover with details."""
    fig = go.Figure()
    hover = ("<b>%{customdata[0]}</b> (%{customdata[1]})<br>top-1 %{y:.2f}% at %{customdata[5]} px<br>" + x_title +
             " %{x:.3g}<br>%{customdata[2]:.1f} M params · %{customdata[3]:.2f} GMACs @ %{customdata[4]} px<extra></extra>")
    matches = frame["resolution matches"] if "resolution matches" in frame else pd.Series(True, index=frame.index)
    data = frame.assign(eval_px=frame["eval_resolution"].fillna(0).astype(int))[
        ["model", "tag", "params (M)", "GMACs", "resolution", "eval_px"]].to_numpy()
    fig.add_scatter(x=frame[x], y=frame["top1"], mode="markers+text", text=frame["model"],
                    textposition="top center", customdata=data, hovertemplate=hover, name="backbones",
                    marker=dict(size=10, color=[style.FRONTIER if f else style.ACCENT for f in front],
                                symbol=["circle" if m else "circle-open" for m in matches]))
    pts = frame[front].sort_values(x)
    fig.add_scatter(x=pts[x], y=pts["top1"], mode="lines", line=dict(shape="hv", dash="dot", color=style.FRONTIER),
                    name="Pareto frontier", hoverinfo="skip")
    fig.update_xaxes(type="log", title_text=x_title + " (log scale)")
    fig.update_yaxes(title_text="ImageNet-1k top-1 (%), timm published")
    fig.update_layout(height=460, margin=dict(t=30, b=10), legend=dict(orientation="h", y=1.08))
    return fig


def throughput(sweeps: list[dict]) -> go.Figure:
    """Images/s against batch size per model, the saturation batch marked."""
    fig = go.Figure()
    starred = False
    for i, sw in enumerate(sweeps):
        rows = pd.DataFrame(sw["rows"])
        if rows.empty:
            continue
        colour = style.RUNS[i % len(style.RUNS)]
        fig.add_scatter(x=rows["batch"], y=rows["images_per_s"], mode="lines+markers", line=dict(color=colour),
                        name=f"{sw['model']} @ {sw['resolution']} px ({sw.get('mode', 'inference')})")
        sat = rows[rows["batch"] == sw.get("saturation_batch")]
        fig.add_scatter(x=sat["batch"], y=sat["images_per_s"], mode="markers", name="★ saturation batch",
                        legendgroup="saturation", showlegend=bool(len(sat)) and not starred,
                        marker=dict(symbol="star", size=16, color=colour, line=dict(width=1, color="black")),
                        hovertemplate="saturation at batch %{x}<extra></extra>")
        starred = starred or bool(len(sat))
    fig.update_xaxes(type="log", title_text="batch size (log scale)")
    fig.update_yaxes(title_text="throughput (images/s)")
    fig.update_layout(height=420, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def scaling(frame: pd.DataFrame, official: pd.DataFrame) -> go.Figure:
    """Predicted (α·β²·γ²)ᵠ against measured MAC ratio of the built networks, with official B0-B7."""
    fig = go.Figure()
    fig.add_scatter(x=frame["phi"], y=frame["predicted cost ratio"], mode="lines+markers", name="predicted (α·β²·γ²)ᵠ")
    fig.add_scatter(x=frame["phi"], y=frame["measured MAC ratio"], mode="lines+markers",
                    name="measured MACs / B0 (built with timm)")
    if not official.empty:
        fig.add_scatter(x=official["phi (fit)"], y=official["MAC ratio"], mode="markers+text",
                        text=official["model"], textposition="bottom right", name="official B0-B7 (timm)",
                        marker=dict(symbol="diamond", size=10))
    fig.update_yaxes(type="log", title_text="compute relative to B0 (log scale)")
    fig.update_xaxes(title_text="φ")
    fig.update_layout(height=420, margin=dict(t=30, b=10), legend=dict(orientation="h", y=1.1))
    return fig


X_AXES = {"step": "step", "epoch": "epoch", "wall time": "wall time (s)"}


def ema(values: "pd.Series | list[float]", weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average with its start-up bias removed
    (s_t = w·s_{t-1} + (1-w)·x_t, shown as s_t / (1 - w^t)); weight 0 returns the values."""
    out, last = [], 0.0
    for t, x in enumerate(values, start=1):
        last = weight * last + (1 - weight) * float(x)
        out.append(last / (1 - weight ** t) if weight else float(x))
    return out


def _x(c: pd.DataFrame, axis: str, val: bool) -> "pd.Series":
    if axis == "wall time":
        return c["wall_s"]
    if axis == "epoch":   # a training step at its fraction of the epoch; a validation at the end of its epoch
        return c["epoch"] + 1 if val else c["step"] / c.attrs.get("steps_per_epoch", 1.0)
    return c["step"]


def training_curves(curves: "dict[str, pd.DataFrame]", colours: "dict[str, str] | None" = None, x: str = "step",
                    smoothing: float = 0.0, log_loss: bool = False) -> go.Figure:
    """Loss (train per step, val per epoch), val top-1 and the head's LR for one or more runs: one colour per
    run, train solid and validation dashed; the train loss smoothed as TensorBoard does (raw shown faint)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("Loss (cross-entropy)", "Val top-1", "Learning rate (head)"))
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
                fig.add_scatter(x=_x(tr, x, False).tolist(), y=tr["loss"].tolist(), mode="lines", opacity=0.25,
                                line=line, legendgroup=label, showlegend=False, hoverinfo="skip", row=1, col=1)
            fig.add_scatter(x=_x(tr, x, False).tolist(), y=ema(tr["loss"], smoothing), mode="lines", line=line,
                            name=f"{label}", legendgroup=label, row=1, col=1,
                            hovertemplate=f"{label} train loss %{{y:.4f}}<extra></extra>")
        if "val_loss" in c:
            va = c.dropna(subset=["val_loss"])
            dashed = dict(color=colour, dash="dash")
            fig.add_scatter(x=_x(va, x, True), y=va["val_loss"], mode="lines+markers", line=dashed, legendgroup=label,
                            showlegend=False, row=1, col=1, hovertemplate=f"{label} val loss %{{y:.4f}}<extra></extra>")
            fig.add_scatter(x=_x(va, x, True), y=va["val_top1"] * 100, mode="lines+markers", line=dashed,
                            legendgroup=label, showlegend=False, row=1, col=2,
                            hovertemplate=f"{label} val top-1 %{{y:.1f}}%<extra></extra>")
        if "lr" in c:
            lr = c.dropna(subset=["lr"])
            fig.add_scatter(x=_x(lr, x, False), y=lr["lr"], mode="lines", line=line, legendgroup=label,
                            showlegend=False, row=1, col=3, hovertemplate=f"{label} lr %{{y:.3g}}<extra></extra>")
    for col in (1, 2, 3):
        fig.update_xaxes(title_text=X_AXES[x], row=1, col=col)
    fig.update_yaxes(title_text="loss (log)" if log_loss else "loss", type="log" if log_loss else "linear", row=1, col=1)
    fig.update_yaxes(title_text="top-1 (%)", range=[0, 101], row=1, col=2)
    fig.update_yaxes(title_text="learning rate", type="log", row=1, col=3)
    fig.update_layout(height=420, margin=dict(t=40, b=10),
                      legend=dict(orientation="h", y=-0.3, title=dict(text="solid: train · dashed: validation  ")))
    if all(c.empty for c in curves.values()):
        waiting(fig, "waiting for the first training step")
    elif not any("val_loss" in c for c in curves.values()):
        waiting(fig, "waiting for the first epoch", xref="x2 domain", yref="y2 domain")
    return fig


def waiting(fig: go.Figure, text: str, xref: str = "paper", yref: str = "paper") -> go.Figure:
    """An empty state that says what it waits for, in place of empty axes."""
    fig.add_annotation(text=text, x=0.5, y=0.5, xref=xref, yref=yref, showarrow=False,
                       font=dict(size=15, color="#666"))
    return fig


def confusion(matrix, classes: list[str]) -> go.Figure:
    classes = [plot_text(c) for c in classes]   # user folder names: shown literally, never as HTML
    fig = go.Figure(go.Heatmap(z=matrix, x=classes, y=classes, colorscale="Blues", text=matrix, texttemplate="%{text}",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>"))
    fig.update_xaxes(title_text="predicted class")
    fig.update_yaxes(title_text="true class", autorange="reversed")
    fig.update_layout(height=420, margin=dict(t=30, b=10))
    return fig


def bars(frame: pd.DataFrame, x: str, y: str, x_title: str, y_title: str, log_y: bool = False,
         text: str = "%{y:,}") -> go.Figure:
    """A bar per row, labelled with its value (``text``: a Plotly texttemplate); the x labels (often user class
    names) are shown literally."""
    labels = [plot_text(v) for v in frame[x]]
    fig = go.Figure(go.Bar(x=labels, y=frame[y], texttemplate=text, textposition="auto", marker_color=style.ACCENT))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear")
    fig.update_layout(height=320, margin=dict(t=30, b=10))
    return fig


def lr_finder(frame: pd.DataFrame, suggestion: float) -> go.Figure:
    """The LR range test as fastai plots it: the divergent tail cut (``schedule.lr_plot_range``), the loss axis
    set by the smoothed curve, and the suggestion marked on that curve."""
    import numpy as np

    from core.finetune.schedule import SKIP_END, lr_plot_range
    kept, y_range = lr_plot_range(frame)
    fig = go.Figure()
    fig.add_scatter(x=kept["lr"], y=kept["loss"], mode="markers", name="loss per step", opacity=0.35,
                    marker=dict(color=style.ACCENT))
    fig.add_scatter(x=kept["lr"], y=kept["smoothed loss"], mode="lines", name="smoothed loss",
                    line=dict(color=style.ACCENT, width=3))
    if len(kept):
        at = float(np.interp(np.log(suggestion), np.log(kept["lr"]), kept["smoothed loss"]))
        fig.add_scatter(x=[suggestion], y=[at], mode="markers+text", name=f"suggested {suggestion:.1e}",
                        text=[f"suggested {suggestion:.1e}"], textposition="top right",
                        marker=dict(color=style.FRONTIER, size=13, symbol="circle"))
        fig.update_yaxes(range=list(y_range))
    cut = len(frame) - len(kept)
    fig.update_xaxes(type="log", title_text="head learning rate (log scale)")
    fig.update_yaxes(title_text="training loss (cross-entropy)")
    fig.update_layout(height=360, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.25),
                      title=dict(text=f"last {cut} step(s) not drawn: the loss diverges there (fastai skips the last "
                                      f"{SKIP_END})" if cut else "", font=dict(size=12)))
    return fig


def accuracy_vs_time(frame: pd.DataFrame) -> go.Figure:
    """Test top-1 (validation where there is no test score) against wall time, with ~95% Wilson whiskers; one
    colour per recipe, named in the legend (labels beside the points collided with the whiskers)."""
    col = "test top-1 %" if frame["test top-1 %"].notna().any() else "val top-1 %"
    lo, hi = col.replace("top-1 %", "95% low"), col.replace("top-1 %", "95% high")
    fig = go.Figure()
    for recipe, part in frame.groupby("recipe", sort=False):
        fig.add_scatter(x=part["wall s"], y=part[col], mode="markers", name=plot_text(recipe),
                        marker=dict(size=14, color=style.RECIPE.get(str(recipe), style.ACCENT)),
                        error_y=dict(type="data", symmetric=False, array=part[hi] - part[col],
                                     arrayminus=part[col] - part[lo], color=style.RECIPE.get(str(recipe))),
                        hovertemplate=f"{plot_text(recipe)}<br>%{{x:.1f}} s · %{{y:.1f}}%<extra></extra>")
    fig.update_xaxes(title_text="wall time (s)")
    fig.update_yaxes(title_text=f"{col.split()[0]} top-1 (%), ~95% interval", range=[0, 105])
    fig.update_layout(height=380, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


KIND_COLOURS = style.KIND


def roofline(frames: "dict[str, pd.DataFrame]", peak_gflops: float, bandwidth_gbs: float) -> go.Figure:
    """Log-log roofline: achieved GFLOP/s against arithmetic intensity (FLOP/byte), one point per layer that does
    counted MACs, coloured by kind (one marker shape per block or model); both ceilings drawn."""
    import numpy as np
    fig = go.Figure()
    symbols = ("circle", "diamond", "square", "triangle-up")
    xs = [f["intensity FLOP/B"][f["MACs"] > 0] for f in frames.values()]
    lo = min([x.min() for x in xs if len(x)] + [bandwidth_gbs and peak_gflops / bandwidth_gbs]) / 4
    hi = max([x.max() for x in xs if len(x)] + [peak_gflops / bandwidth_gbs]) * 4
    grid = np.geomspace(lo, hi, 200)
    fig.add_scatter(x=grid, y=np.minimum(peak_gflops, bandwidth_gbs * grid), mode="lines", name="roofline",
                    line=dict(color="#333", width=2), hoverinfo="skip")
    ridge = peak_gflops / bandwidth_gbs
    ys = [f["GFLOP/s"][f["MACs"] > 0] for f in frames.values()]
    y_lo = min([y.min() for y in ys if len(y)] + [bandwidth_gbs * lo]) / 2
    # on log axes Plotly's shapes take log10 coordinates, so the ridge line and the labels are traces
    fig.add_scatter(x=[ridge, ridge], y=[y_lo, peak_gflops], mode="lines", line=dict(color="#888", dash="dot"),
                    name=f"ridge {ridge:.1f} FLOP/B", hoverinfo="skip")
    fig.add_scatter(x=[lo, hi], y=[peak_gflops, peak_gflops], mode="text", showlegend=False, hoverinfo="skip",
                    text=["", f"peak {peak_gflops:,.0f} GFLOP/s (GEMM)"], textposition="top left")
    fig.add_scatter(x=[lo * 1.5], y=[bandwidth_gbs * lo * 1.5], mode="text", showlegend=False, hoverinfo="skip",
                    text=[f"{bandwidth_gbs:,.1f} GB/s (triad)"], textposition="top right")
    shown_kinds: set[str] = set()
    for (label, f), symbol in zip(frames.items(), symbols):
        f = f[f["MACs"] > 0]
        for kind, part in f.groupby("kind", sort=False):
            data = part[["layer", "kind", "MACs", "bytes", "alone ms", "GB/s", "efficiency", "bound"]].to_numpy()
            name = kind if len(frames) == 1 else f"{plot_text(label)}: {kind}"
            fig.add_scatter(
                x=part["intensity FLOP/B"], y=part["GFLOP/s"], mode="markers", name=name, customdata=data,
                marker=dict(color=KIND_COLOURS.get(kind, "#999"), symbol=symbol, size=10,
                            line=dict(width=1, color="#fff")),
                legendgroup=kind, showlegend=len(frames) > 1 or kind not in shown_kinds,
                hovertemplate=("<b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]:,} MACs · "
                               "%{customdata[3]:,} bytes<br>intensity %{x:.2f} FLOP/B · %{y:.1f} GFLOP/s · "
                               "%{customdata[5]:.1f} GB/s<br>%{customdata[4]:.3f} ms alone · %{customdata[7]}-bound · "
                               "efficiency %{customdata[6]:.0%}<extra></extra>"))
            shown_kinds.add(kind)
    fig.update_xaxes(type="log", title_text="arithmetic intensity (FLOPs per byte moved, log)",
                     range=[np.log10(lo), np.log10(hi)])
    fig.update_yaxes(type="log", title_text="achieved GFLOP/s (log)", range=[np.log10(y_lo), np.log10(peak_gflops * 3)])
    fig.update_layout(height=480, margin=dict(t=30, b=10), legend=dict(orientation="h", y=-0.2))
    return fig


def kind_shares(shares: pd.DataFrame) -> go.Figure:
    """Time by layer kind beside MACs by layer kind (percent of each), so a kind that takes far more time than
    its MACs stands out."""
    fig = go.Figure()
    for col, colour in (("time %", style.QUANTITY["time"]), ("MACs %", style.QUANTITY["MACs"])):
        fig.add_bar(y=shares["kind"], x=shares[col], orientation="h", name=col.replace(" %", ""),
                    marker_color=colour, texttemplate="%{x:.1f}%", textposition="outside", cliponaxis=False)
    fig.update_xaxes(title_text="share of the whole (%)", range=[0, 110])
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(barmode="group", height=150 + 55 * len(shares), margin=dict(t=10, b=10),
                      legend=dict(orientation="h", y=-0.25), bargap=0.25)
    return fig



def parallel_runs(hp: pd.DataFrame) -> go.Figure:
    """Hyper-parameters against best val top-1, one line per finished run, coloured by that top-1 (TensorBoard's
    HParams parallel-coordinates view). Text columns become numbered categories; the LR axis is log10."""
    import numpy as np
    dims = []
    for col in ("recipe", "backbone", "augment"):
        cats = sorted(hp[col].astype(str).unique())
        dims.append(dict(label=col, values=[cats.index(v) for v in hp[col].astype(str)],
                         tickvals=list(range(len(cats))), ticktext=[plot_text(c) for c in cats]))
    lr = np.log10(hp["head LR"].astype(float))
    if lr.notna().all():
        lo, hi = int(np.floor(lr.min())), int(np.ceil(lr.max()))
        dims.append(dict(label="head LR (log)", values=lr, tickvals=list(range(lo, hi + 1)),
                         ticktext=[style.label(10.0 ** e) for e in range(lo, hi + 1)]))
    for col in ("epochs", "image px", "batch"):
        if hp[col].notna().all():
            dims.append(dict(label=col, values=hp[col]))
    dims.append(dict(label="best val top-1 (%)", values=hp["best val top-1 %"], range=[0, 100]))
    fig = go.Figure(go.Parcoords(line=dict(color=hp["best val top-1 %"], colorscale="Viridis", cmin=0, cmax=100,
                                           showscale=True, colorbar=dict(title="top-1 %")),
                                 dimensions=dims))
    fig.update_layout(height=380, margin=dict(t=60, b=20, l=60, r=40))
    return fig
