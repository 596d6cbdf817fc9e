"""Archscope: explore modern CNN building blocks and transfer learning on the machine in front of you.

``streamlit run app.py`` finds ``app`` below (an ``st.App``) and serves it: Streamlit's server with Archscope's
headers (every page cross-origin isolated) and the browser bench's routes (``core.web.server``). Each script run then
executes this file as ``__main__``: the router and the shared sidebar."""
from pathlib import Path

import streamlit as st

if __name__ != "__main__":      # imported by `streamlit run` to find the ASGI app (never during a script run)
    from core.web.server import middleware, routes
    app = st.App(__file__, routes=routes(), middleware=middleware(str(st.get_option("server.address") or ""),
                                                                  int(st.get_option("server.port") or 8501)))
else:
    # a local file: a ":material/...:" page icon makes the browser fetch an SVG from a font CDN
    st.set_page_config(page_title="Archscope", page_icon=str(Path(__file__).parent / "assets" / "icon.png"),
                       layout="wide")

    from core.config import DataDirError, data_dir
    from core.jobs.store import read_only as store_read_only
    from core.measure.timing import pin_malloc_thresholds
    from pages._widgets import sidebar_settings

    pin_malloc_thresholds()      # once per server process: CPU latencies stay unimodal (see its docstring)

    page = st.navigation([
        st.Page("pages/blocks.py", title="Block explorer", icon=":material/view_in_ar:", default=True),
        st.Page("pages/backbones.py", title="Compare backbones", icon=":material/leaderboard:", url_path="backbones"),
        st.Page("pages/transfer.py", title="Transfer learning", icon=":material/model_training:",
                url_path="transfer"),
        st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:", url_path="runs"),
    ])
    try:
        sidebar_settings()
        if store_read_only():
            st.warning(f"The data directory {data_dir()} is read-only: runs and measurements are shown as they are, "
                       "and nothing new (a run, a measurement, an upload) can be saved until it is writable again.",
                       icon=":material/lock:")
        page.run()
    except DataDirError as err:      # moved or deleted under a running server: say so, never start an empty store
        st.error(str(err))
