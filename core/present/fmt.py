"""Human-readable numbers with their units, and user text made literal for Markdown and Plotly."""

from __future__ import annotations

import html
import re

_JOINER = "\u2060"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&=^\"'])")


def md(text: object) -> str:
    """User text (a class, run or file name) shown literally inside Streamlit Markdown: every character
    that Markdown, LaTeX ($), Streamlit directives (:red[..]) or HTML could act on is backslash-escaped,
    and bare URLs are kept from becoming links."""
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


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def sci(value: float, digits: int = 3) -> str:
    """A number in plain Unicode, never as '1.15e+10': 1.15e10 -> '1.15 × 10¹⁰'; 0.5 and 1,234 stay as they
    are."""
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:,.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


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


def duration(seconds: float | None) -> str:
    """A wait in words a user can plan by: "estimating…" when nothing is known yet, then ms, s or min with
    the digits that mean something; never "0.00 s"."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "estimating…"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-4 else "under 0.1 ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.1f} min"


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


_COUNT_WORDS = (
    "batch",
    "px",
    "epoch",
    "epochs",
    "resolution",
    "threads",
    "seed",
    "images",
    "classes",
    "rounds",
    "layers",
    "iters",
    "calls",
)


def _tokens(name: str) -> list[str]:
    return [t.strip("()") for t in re.split(r"[\s,]+", name.lower()) if t.strip("()")]


def column_format(name: str, integer: bool) -> str | None:
    """The printf format of a numeric table column, chosen by what the column holds (its unit word), never
    by a substring: 'Saturation batch' is a batch size, not a ratio. None: the table's default."""
    words = _tokens(name)
    last = words[-1] if words else ""
    if name.rstrip().endswith("%") or "%" in words or any(w.endswith("%") for w in words):
        return "%.1f%%"
    if "ratio" in words or "speed-up" in words or last in ("×", "x"):
        return "%.2f×"
    if "lr" in words:
        return "%.3g"
    if words and words[0] in ("id", "run", "year"):
        return None
    if integer:
        return "localized"
    if "m" in words or "gmacs" in words or "mib" in words or "gib" in words:
        return "%.2f"  # millions of params, GMACs, MiB: two decimals
    if "ms" in words:
        return "%.3f"
    if last in ("s", "images/s", "gflop/s", "gb/s"):
        return "%.1f"
    if any(w in ("params", "parameters", "macs", "flops") for w in words):
        return "localized"  # an exact count held as float: thousands separators
    if "phi" in words:
        return "%.2f"
    if any(w in _COUNT_WORDS for w in words):
        return "%.0f"  # a count held as float (an empty cell makes it float)
    return None


def split_sum(formula: str) -> list[str]:
    """A closed form's top-level terms (split at ' + ' outside brackets), so a long one can take several
    lines."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(formula):
        depth += 1 if ch in "([{" else -1 if ch in ")]}" else 0
        if depth == 0 and formula.startswith(" + ", i):
            parts.append(formula[start:i])
            start = i + 3
    return [*parts, formula[start:]] if formula else []


def stacked(lhs: str, terms: list[str], total: str = "") -> str:
    """``lhs = t1 + t2 + ... (= total)`` as aligned LaTeX, one term a line when there are more than two."""
    if len(terms) <= 2 and len(" + ".join(terms)) < 60:
        body = " + ".join(terms)
        return (f"{lhs} = " if lhs else "") + body + (f" = {total}" if total else "")
    lines = [f"{lhs} &= {terms[0]}" if lhs else f"& {terms[0]}"] + [f"&+ {t}" for t in terms[1:]]
    if total:
        lines.append(f"&= {total}")
    return r"\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}"
