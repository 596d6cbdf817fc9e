"""The page's skeleton while the server's first imports finish (``core.web.preload``): the navigation is
already drawn by app.py; this adds the page's title and a progress bar naming the module being imported,
then clears itself. Imports nothing heavy, so it paints within a second of the first visit."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from core.web import preload

POLL_S = 0.2  # each progress update is also where Streamlit can stop this run (the visitor left or navigated)


def wait_for_imports(title: str, modules: Callable[[], list[str]]) -> None:
    """Returns at once when the imports are done (every visit but the first few seconds after a server
    start); else shows the skeleton until they are, then removes it. Starts them when nothing has
    (AppTest, or a server started without app.py's import)."""
    if preload.ready():
        return
    preload.start(modules())
    holder = st.empty()
    with holder.container():
        st.title(title)
        st.caption(
            "Starting up: PyTorch, timm and the measuring code load once, on the first visit after the "
            "server starts. The page fills in as soon as they are ready."
        )
        bar = st.progress(0.0, text="Loading…")
        preload.begin()  # painted: the imports start now if no quiet spell has started them already
        while not preload.wait(POLL_S):
            p = preload.progress()
            bar.progress(
                min(p.done / max(p.total, 1), 1.0),
                text=f"Loading {p.current or '…'} · {p.done} of {p.total} modules · {p.elapsed_s:.1f} s",
            )
    holder.empty()
