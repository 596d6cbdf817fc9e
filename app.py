"""Archscope: explore modern CNN building blocks and transfer learning on the machine in front of you.

``streamlit run app.py`` finds ``app`` below (an ``st.App``) and serves it: Streamlit's server with
Archscope's headers (every page cross-origin isolated) and the browser bench's routes
(``core.web.server``). Each script run then executes this file as ``__main__``: the router and the
shared sidebar."""

from pathlib import Path

import streamlit as st

from core.web import preload, warm

ROOT = Path(__file__).parent
# (file, title, icon, url path); the first is the default page
PAGES = [
    ("pages/blocks.py", "Block explorer", ":material/view_in_ar:", None),
    ("pages/backbones.py", "Compare backbones", ":material/leaderboard:", "backbones"),
    ("pages/transfer.py", "Transfer learning", ":material/model_training:", "transfer"),
    ("pages/runs.py", "Runs", ":material/monitoring:", "runs"),
]


def heavy_modules() -> list[str]:
    """What the pages import at their top (torch, timm, pandas, the measuring code): imported once per
    server process, in the background. The pages' own helper modules are left to the script run: they
    register Streamlit components, which wants a script's context."""
    modules = preload.modules_of([ROOT / "pages" / "_widgets.py", *(ROOT / f for f, *_ in PAGES)])
    return [m for m in modules if m.split(":")[0].split(".")[0] != "pages"]


if __name__ != "__main__":  # imported by `streamlit run` to find the ASGI app (never during a script run)
    from streamlit.runtime.pages_manager import PagesManager

    from core.web.guard import TokenError
    from core.web.server import middleware, routes

    # every URL goes through this file's st.navigation, a deep link on a fresh server too (never the legacy
    # pages/ mode, which would run a page, and its heavy imports, before the skeleton below can paint)
    PagesManager.uses_pages_directory = False
    preload.start(
        heavy_modules(), preload.QUIET_S, warm.STEPS
    )  # torch and timm import while the server waits
    try:
        guards = middleware(
            str(st.get_option("server.address") or ""), int(st.get_option("server.port") or 8501)
        )
    except TokenError as err:  # a chosen token the rule refuses: said once, at start, and the server stops
        import sys

        print(f"\n  Archscope cannot start: {err}\n", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    app = st.App(__file__, routes=routes(), middleware=guards)
else:
    # a local file: a ":material/...:" page icon makes the browser fetch an SVG from a font CDN
    st.set_page_config(page_title="Archscope", page_icon=str(ROOT / "assets" / "icon.png"), layout="wide")

    from core.jobs import yielding
    from pages._loading import wait_for_imports

    yielding.mark()  # a full script run: a counting job gives way while this page is drawn

    page = st.navigation(
        [
            st.Page(f, title=title, icon=icon, url_path=url, default=i == 0)
            for i, (f, title, icon, url) in enumerate(PAGES)
        ]
    )
    wait_for_imports(
        page.title, heavy_modules
    )  # the first visit after a server start: navigation and title at once

    from core.config import DataDirError, data_dir
    from core.jobs.store import read_only as store_read_only
    from core.measure.timing import pin_malloc_thresholds
    from pages._widgets import sidebar_settings

    pin_malloc_thresholds()  # CPU latencies stay unimodal (see its docstring); cheap, idempotent
    try:
        sidebar_settings()
        if store_read_only():
            st.warning(
                f"The data directory {data_dir()} is read-only: runs and measurements are shown as they are, "
                "and nothing new (a run, a measurement, an upload) can be saved until it is writable again.",
                icon=":material/lock:",
            )
        page.run()
    except DataDirError as err:  # moved or deleted under a running server: say so, never start an empty store
        st.error(str(err))
