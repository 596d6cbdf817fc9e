"""A small table as GitHub Markdown, with bars drawn in block characters: what a page's first view shows
where a data grid would cost more than it gives. The grid's front-end code (glide-data-grid and Arrow,
about 1.2 MB of JavaScript) and its drawing cost a new visitor's browser about 0.25 s before the page is
whole on this machine (issue 30), and a table of a dozen rows needs no sorting, scrolling or search.
Pure text, no Streamlit: the page hands the result to ``st.markdown``."""

from __future__ import annotations

import math
from typing import Sequence

from core.present.fmt import md

EIGHTHS = "▏▎▍▌▋▊▉█"  # a character cell filled to one, two, ... eight eighths of its width
WIDTH = 5  # cells in a bar at the top value (a four-column table fits 390 px, in an expander too)
MAX_ROWS = 12  # more rows than this belong in a data grid (it scrolls, sorts and searches)


def bar(value: float | None, top: float | None, width: int = WIDTH) -> str:
    """``value`` against ``top`` as a bar of block characters, ``width`` cells long at ``top``, to an
    eighth of a cell (so 40 steps at the default width). A positive value never shows as nothing: at
    least one eighth. Zero, negative, missing or not a number: no bar."""
    if not _positive(value) or not _positive(top):
        return ""
    eighths = max(1, round(min(value / top, 1.0) * width * 8))
    full, part = divmod(eighths, 8)
    return EIGHTHS[-1] * full + (EIGHTHS[part - 1] if part else "")


def _positive(x: float | None) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def table(
    header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[bool] | None = None
) -> str:
    """GitHub Markdown for ``rows`` under ``header``. Every cell is shown literally (``fmt.md``: a class
    called ``a|b`` or ``**x**`` is not a column break or bold), but a cell that is a bar (block
    characters only, as ``bar`` makes them) is drawn in the theme's primary colour. Columns marked
    ``numeric`` are right-aligned."""
    numeric = list(numeric or [False] * len(header))
    if len(numeric) != len(header) or any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row needs {len(header)} cells, as the header has")
    lines = [
        "| " + " | ".join(md(h) for h in header) + " |",
        "|" + "|".join("---:" if n else ":---" for n in numeric) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    text = str(value)
    if text and set(text) <= set(EIGHTHS):
        return f":primary[{text}]"
    return md(text)
