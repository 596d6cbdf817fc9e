"""What every page test needs: open a page through app.py's router, and read escaped Markdown as shown."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_page(page: str, query: dict | None = None, timeout: float = 300) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def shown(markdown: str) -> str:
    """The text a reader sees for Markdown whose user parts were backslash-escaped (core.present.fmt.md)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def texts(at: AppTest, kind: str) -> list[str]:
    """The shown text of every element of one kind (markdown, error, warning, info, success, caption)."""
    return [shown(str(e.value)) for e in getattr(at, kind)]


def plotted(values) -> list:
    """A trace's x or y as a list: Plotly sends numbers as a typed array (``{"dtype": "f8", "bdata":
    base64}``)."""
    if isinstance(values, dict) and "bdata" in values:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def md_table(at, first_header: str) -> list[list[str]]:
    """The rows of the Markdown table whose first column is ``first_header``, each cell as shown."""
    (text,) = [str(m.value) for m in at.markdown if str(m.value).startswith(f"| {first_header} |")]
    return [[shown(c.strip()) for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in text.split("\n")[2:]]
