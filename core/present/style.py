"""The app's one palette and the finishing touches every chart gets (readable log ticks, room for the
toolbar).

Palette: one colour per concept, the same on every page, and no concept colour reused for another
concept.
- layer kinds (roofline, "where the time goes"): ``KIND``
- blocks of the explorer (compare, channel sweep, deploy pair): each block's registration names its own
  (``core.blocks.registry``), and a frame carries it in a ``colour`` column
- measured quantities drawn side by side (time against MACs): ``QUANTITY``
- the gradient-flow lab's stacks: ``STACK``
- targets a model runs on (server runtimes, browser setups): each entry of ``core.deploy.targets`` names
  its own, and a test keeps them apart from the concept colours here
- transfer-learning recipes (the freezing-depth experiment): ``RECIPE``
- fine-tuning runs: ``RUNS``, a separate cycle (a run is an item, not a concept) that shares no colour
  with the concept colours above Reference lines (budgets, rooflines, ∝ C² guides) are grey or black and
  dashed; the Pareto frontier is ``FRONTIER``; figures published by others (phones of the lecture's era)
  are ``PUBLISHED`` grey crosses.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable

import plotly.graph_objects as go

KIND = {
    "dense k×k conv": "#1f77b4",
    "depthwise conv": "#ff7f0e",
    "1×1 pointwise conv": "#2ca02c",
    "norm": "#9467bd",
    "activation": "#8c564b",
    "pooling": "#e377c2",
    "linear": "#bcbd22",
    "attention": "#17becf",
    "other": "#7f7f7f",
}
QUANTITY = {"time": "#d62728", "MACs": "#393b79", "params": "#637939"}
STACK = {"plain": "#843c39", "residual": "#3182bd"}
RECIPE = {
    "linear_probe": "#6baed6",
    "finetune_top": "#fd8d3c",
    "finetune_full": "#74c476",
    "scratch": "#9e9ac8",
}
FRONTIER = "#d62728"
PUBLISHED = "#8c8c8c"
ACCENT = "#393b79"  # a single series with no concept of its own (bars of counts, probabilities)
# every run colour reads on white (contrast 3.3:1 or more, no yellow) and no two are of one hue (one orange
# only)
RUNS = (
    "#e7298a",
    "#4d9221",
    "#6a3d9a",
    "#b35806",
    "#1b9e77",
    "#08519c",
    "#a50f15",
    "#666666",
    "#7a6a00",
    "#543005",
)
CONCEPTS = {
    "kind": KIND,
    "quantity": QUANTITY,
    "stack": STACK,
    "recipe": RECIPE,
}


def run_colour(run_id: int) -> str:
    """One colour per run, the same in every plot and table of the app."""
    return RUNS[(run_id - 1) % len(RUNS)]


def _enclosing(value: float, up: bool, mantissas: tuple[int, ...]) -> float:
    """The nearest tick value (m·10^e) at or below (or above, ``up``) a positive value."""
    e = math.floor(math.log10(value))
    grid = [m * 10.0**k for k in (e - 1, e, e + 1) for m in mantissas]
    return (
        min(t for t in grid if t >= value * (1 - 1e-9))
        if up
        else max(t for t in grid if t <= value * (1 + 1e-9))
    )


def ticks(low: float, high: float) -> list[float]:
    """Log-axis ticks that read: 1-2-5 per decade over up to three decades, decades alone over more (never
    Plotly's minor labels '2 5 1'). The first tick is at or below ``low`` and the last at or above
    ``high``, so an axis ranged over them always shows at least two labelled ticks."""
    low, high = max(low, 1e-300), max(high, low, 1e-300)
    mantissas = (1, 2, 5) if math.log10(high) - math.log10(low) <= 3 else (1,)
    first, last = _enclosing(low, False, mantissas), _enclosing(high, True, mantissas)
    if first == last:
        last = _enclosing(high * 1.0001, True, mantissas)
    lo_exp, hi_exp = math.floor(math.log10(first)), math.ceil(math.log10(last))
    if len(mantissas) == 1:  # decades, at most ~8 of them, counted down from the top one
        step = max(1, -(-(hi_exp - lo_exp) // 8))
        return [10.0**e for e in reversed(range(hi_exp, lo_exp - step, -step))]
    out = [m * 10.0**e for e in range(lo_exp, hi_exp + 1) for m in mantissas]
    return [t for t in out if first * (1 - 1e-9) <= t <= last * (1 + 1e-9)]


def label(value: float) -> str:
    """A tick label: 0.002, 0.5, 20, 5k, 2M, 1G; 1e-7 below a thousandth of a thousandth."""
    if value == 0:
        return "0"
    if abs(value) < 1e-4:
        return f"{value:.0e}".replace("e-0", "e-")
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:g}{prefix}"
    return f"{value:g}"


def _axis_values(fig: go.Figure, axis: str) -> list[float]:
    """Every positive value the traces put on a layout axis ('xaxis', 'yaxis2', ...)."""
    letter, ref = axis[0], axis[0] + axis[5:]
    values: list[float] = []
    for trace in fig.data:
        if (getattr(trace, f"{letter}axis", None) or letter) != ref:
            continue
        data = getattr(trace, letter, None)
        if data is None:
            continue
        values += [
            float(v)
            for v in data
            if isinstance(v, numbers.Real) and not isinstance(v, bool) and v == v and v > 0
        ]
    return values


def _log_axes(fig: go.Figure) -> Iterable[str]:
    layout = fig.layout.to_plotly_json()
    return [
        k
        for k, v in layout.items()
        if k[:5] in ("xaxis", "yaxis")
        and isinstance(v, dict)
        and v.get("type") == "log"
        and v.get("tickvals") is None
    ]


def readable(fig: go.Figure) -> go.Figure:
    """What every chart gets before it is drawn: 1-2-5 (or decade) ticks with short labels on each log axis
    that has none of its own, and a top margin that keeps Plotly's toolbar off any title or subplot
    title."""
    for axis in _log_axes(fig):
        values = _axis_values(fig, axis)
        if values:
            vals = ticks(min(values), max(values))
            fig.layout[axis].update(tickvals=vals, ticktext=[label(v) for v in vals])
            if fig.layout[axis].range is None:  # ranged over the enclosing ticks, with a little room
                fig.layout[axis].update(range=[math.log10(vals[0]) - 0.05, math.log10(vals[-1]) + 0.05])
    legend = fig.layout.legend
    if legend.orientation == "h" and legend.y is not None and legend.y < 0:
        # below the plot: anchored to the figure's bottom edge (Plotly pushes the margin to fit it), never at
        # a
        # fraction of a plot area that shrinks as the legend wraps at phone width onto the axis title
        fig.update_layout(legend=dict(yref="container", y=0, yanchor="bottom"))
    if fig.layout.title.text:  # just above the plot area, left-aligned: below the toolbar's strip at the top
        fig.update_layout(
            title=dict(xref="paper", x=0, xanchor="left", yref="paper", y=1, yanchor="bottom", pad=dict(b=10))
        )
    titled = bool(fig.layout.title.text) or any(
        a.yref == "paper" and (a.y or 0) >= 1 for a in fig.layout.annotations or ()
    )
    top = fig.layout.margin.t
    if titled and (top is None or top < 64):
        fig.update_layout(margin=dict(t=64))
    elif top is None or top < 36:
        fig.update_layout(margin=dict(t=36))
    return fig


CHART_CONFIG = {
    "displaylogo": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}


def _axis_number(key: str) -> int:
    return int(key[5:] or 1)


def panels(fig: go.Figure) -> list[go.Figure]:
    """A figure made with ``make_subplots`` as one figure per panel (its subplot title as the title), so
    the page can lay them out in columns that stack at phone width instead of squeezing three plots into
    390 px. A figure with one panel comes back as it is."""
    layout = fig.layout.to_plotly_json()
    xs = sorted(
        (k for k in layout if k.startswith("xaxis") and (k[5:] == "" or k[5:].isdigit())), key=_axis_number
    )
    if len(xs) < 2:
        return [fig]
    notes = list(fig.layout.annotations or ())
    titles = sorted(
        (a for a in notes if a.xref == "paper" and a.yref == "paper" and (a.y or 0) >= 1),
        key=lambda a: a.x or 0,
    )
    others = [a for a in notes if a not in titles]
    out = []
    for i, xk in enumerate(xs):
        n = xk[5:]
        ref = "x" + n
        f = go.Figure()
        for trace in fig.data:
            if (getattr(trace, "xaxis", None) or "x") != ref:
                continue
            spec = trace.to_plotly_json()
            spec.pop("xaxis", None)
            spec.pop("yaxis", None)
            f.add_trace(type(trace)(spec))
        axes = {}
        for letter in ("x", "y"):
            ax = dict(layout.get(f"{letter}axis{n}", {}))
            for k in ("domain", "anchor", "matches", "scaleanchor"):
                ax.pop(k, None)
            axes[f"{letter}axis"] = ax
        f.update_layout(
            **axes,
            height=layout.get("height"),
            margin=layout.get("margin"),
            legend=layout.get("legend"),
            showlegend=layout.get("showlegend"),
            barmode=layout.get("barmode"),
            title=dict(text=titles[i].text if i < len(titles) else "", font=dict(size=14)),
        )
        for a in others:
            if a.xref in ("paper", f"{ref} domain") or (a.xref == "x domain" and not n):
                f.add_annotation(
                    a.to_plotly_json()
                    | {
                        "xref": "paper" if a.xref == "paper" else "x domain",
                        "yref": "paper" if a.yref == "paper" else "y domain",
                    }
                )
        out.append(f)
    return out
