"""Human-readable numbers with their units, and user text made literal for Markdown and Plotly."""
from __future__ import annotations

import html
import re

_JOINER = "\u2060"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&=^\"'])")


def first_line(err: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else type(err).__name__
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def md(text: object) -> str:
    """User text (a class, run or file name) shown literally inside Streamlit Markdown: every character that
    Markdown, LaTeX ($), Streamlit directives (:red[..]) or HTML could act on is backslash-escaped, and bare
    URLs are kept from becoming links."""
    flat = " ".join(str(text).split())
    # GFM turns bare URLs and e-mail addresses into live links even when escaped: a word joiner (U+2060),
    # invisible, breaks the pattern
    for pattern in ("://", "www.", "@"):
        flat = flat.replace(pattern, pattern[0] + _JOINER + pattern[1:])
    return _MD_SPECIAL.sub(r"\\\1", flat)


def plot_text(text: object) -> str:
    """User text shown literally in a Plotly label (Plotly renders <a>, <b>, <br> and entities)."""
    return html.escape(str(text), quote=False)


def percent(fraction: float | None) -> float | None:
    """A fraction (0.875) as the percent every table shows (87.5); None stays None (an empty cell)."""
    return None if fraction is None else 100 * fraction


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """12_345_678 -> '12.3 M' (+unit); keeps small numbers whole."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}".rstrip()
    if float(value).is_integer():
        return f"{value:,.0f} {unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def count(value: int) -> str:
    """Exact integer with thousands separators: 589824 -> '589,824'."""
    return f"{int(value):,}"


def bytes_(value: int | None) -> str:
    if value is None:
        return "n/a"
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if value >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{value} B"


def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def ms_range(low: float | None, high: float | None) -> str:
    """'0.61–0.67 ms': a spread with one unit."""
    if low is None or high is None:
        return "n/a"
    return f"{low:.3g}–{high:.3g} ms"


def times(ratio: float, more: str, fewer: str) -> str:
    """A ratio against a baseline in plain words: 8.47 -> '8.47× fewer', 0.89 -> '1.12× more'."""
    if ratio >= 1:
        return f"{ratio:,.2f}× {fewer}"
    return f"{1 / ratio:,.2f}× {more}"


_LATEX_PLAIN = ((r"\cdot", "·"), ("{,}", ","), (r"\;", " "), (r"\quad", "  "), (r"\,", " "))


def plain_formula(latex: str) -> str:
    """A LaTeX cost formula as plain text for a table cell: (3\\cdot3\\cdot256)\\cdot256 -> (3·3·256)·256,
    C_{in} -> C_in, \\text{proj} -> proj."""
    text = latex
    for a, b in _LATEX_PLAIN:
        text = text.replace(a, b)
    text = re.sub(r"\\text\{([^}]*)\}", r"\1", text)
    text = re.sub(r"_\{([^}]*)\}", r"_\1", text)
    text = re.sub(r"\^\{([^}]*)\}", r"^\1", text)
    return " ".join(text.replace("\\", "").split())
