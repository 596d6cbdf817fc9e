"""How an error reaches a person: one line, never a traceback. The engine's modules use this to put a
library's exception into their own message; the pages and CLIs show that message."""

from __future__ import annotations


def first_line(err: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name when the message is empty), cut to ``limit``
    characters with an ellipsis."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else type(err).__name__
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"
