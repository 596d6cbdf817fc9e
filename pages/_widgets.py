"""Widgets shared by every page: the device / precision / threads sidebar and small helpers."""

from __future__ import annotations

import os
import runpy
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import streamlit as st
import torch

from core import jobs
from core.config import data_dir
from core.jobs.store import StoreError
from core.measure.settings import MEMORY_FORMATS, PRECISIONS, Setting, default_threads
from core.present import fmt, style
from core.web import roles

APP = Path(__file__).resolve().parents[1] / "app.py"


def route_through_app() -> None:
    """Call first in every page. When a fresh server's first visitor deep-links to a page (or AppTest runs
    one), Streamlit runs the page in its legacy ``pages/`` mode without app.py: no sidebar, no layout.
    Switch to app.py's ``st.navigation`` routing for good and run app.py in this same script run, which
    renders this page through the router with its widget values intact; then stop the outer run."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(APP), run_name="__main__")
        st.stop()


def stop_polling() -> None:
    """Ends the ``run_every`` timer of the fragment that calls it, in this visitor's browser: the message
    Streamlit itself sends for a polling fragment that a rerun no longer draws (``stop_auto_rerun``;
    streamlit
    1.67's runtime, pinned). For a poller that has done its one piece of work and would otherwise rerun until
    the next full run of the page. Outside a fragment it does nothing. ``pages/blocks.py``
    ``time_once_drawn`` uses it."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx

    ctx, fragment_id = get_script_run_ctx(suppress_warning=True), ThreadState.get().fragment_id
    if ctx is None or not fragment_id:
        return
    msg = ForwardMsg()
    msg.stop_auto_rerun.fragment_ids.append(fragment_id)
    ctx.enqueue(msg)


def devices() -> list[str]:
    return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def sidebar_settings() -> Setting:
    """Draws the shared sidebar and returns the current settings (kept in session state)."""
    cores = os.cpu_count() or 1
    st.session_state.setdefault("threads", default_threads(cores))
    with st.sidebar:
        st.subheader("Measure on")
        device = st.selectbox(
            "Device", devices(), key="device", help="CUDA appears when this machine has a GPU."
        )
        precision = st.selectbox(
            "Precision",
            list(PRECISIONS),
            key="precision",
            help="bf16 and fp16 run under torch.autocast (mixed precision).",
        )
        threads = st.slider(
            "CPU threads",
            1,
            cores,
            key="threads",
            help=f"Starts at {default_threads(cores)} (half the cores): the other half is left to the "
            "server and the browser, which keeps timings steady.",
        )
        memory_format = st.selectbox("Memory format", MEMORY_FORMATS, key="memory_format")
        st.caption(f"torch {torch.__version__} · data in `{data_dir()}`")
    # applied per measurement (core.measure.settings.threads_for), never to the whole server
    return Setting(device, precision, memory_format, int(threads))


def current_settings() -> Setting:
    """The settings chosen in the sidebar (defaults if the sidebar has not drawn yet)."""
    state = st.session_state
    return Setting(
        state.get("device", "cpu"),
        state.get("precision", "fp32"),
        state.get("memory_format", "contiguous"),
        int(state.get("threads", default_threads())),
    )


def number_formats(frame: pd.DataFrame) -> dict[str, Any]:
    """One number style for every table, by what each column holds (``fmt.column_format``): counts with
    thousands separators, percentages with one decimal and a % sign, learning rates in 3 significant
    digits, ratios with a × sign, millions and GMACs with two decimals."""
    cfg: dict[str, Any] = {}
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col]):
            continue
        spec = fmt.column_format(str(col), pd.api.types.is_integer_dtype(frame[col]))
        if spec is not None:
            cfg[str(col)] = st.column_config.NumberColumn(str(col), format=spec)
    return cfg


def table(frame: pd.DataFrame, **kw: Any) -> None:
    """st.dataframe with the house number formats (number_formats) and no index (and without ``attrs``,
    which hold Python objects such as the timing record that Arrow cannot carry)."""
    frame = frame.copy(deep=False)
    frame.attrs = {}
    # a GPU-only column (host wall time) is left out where nothing filled it, rather than a column of blanks
    frame = frame.drop(
        columns=[c for c in frame.columns if "gpu" in str(c).lower() and frame[c].isna().all()]
    )
    kw.setdefault("placeholder", "—")  # an empty cell reads "—", never "None"
    st.dataframe(
        frame, hide_index=True, column_config={**number_formats(frame), **kw.pop("column_config", {})}, **kw
    )


def chart(fig: Any, key: str, where: Any = None, **kw: Any) -> None:
    """Every Plotly chart of the app: readable log ticks and room for the toolbar (``core.present.style``),
    the house toolbar, the container's width. A multi-panel figure is drawn as one chart per panel in
    columns, which Streamlit stacks at phone width."""
    figs = style.panels(fig)
    if len(figs) == 1:
        (where or st).plotly_chart(style.readable(fig), key=key, config=style.CHART_CONFIG, **kw)
        return
    for i, (col, panel) in enumerate(zip((where or st).columns(len(figs)), figs)):
        col.plotly_chart(style.readable(panel), key=f"{key}.{i}", config=style.CHART_CONFIG, **kw)


def derived(key: str, value: Any) -> None:
    """A default that follows its inputs (a run name from the backbone and recipe, epochs from the recipe)
    until the user edits it: sets widget ``key`` to ``value`` unless its value differs from the one last
    derived. Call before the widget is drawn, and draw the widget without a ``value``."""
    state, auto = st.session_state, f"{key}.__derived"
    if key not in state or state[key] == state.get(auto):
        state[key] = value
    state[auto] = value


def lazy_tabs(key: str, sections: dict[str, Callable[[], None]]) -> None:
    """Tabs whose content runs only while its tab is open (the rest costs nothing on a visit), with the
    open tab in the URL (``?<key>=<label>``), so a link reopens the same tab. Each tab's content is
    guarded against a damaged store."""
    tabs = st.tabs(list(sections), key=key, bind="query-params")
    for tab, draw in zip(tabs, sections.values()):
        with tab:
            if tab.open:
                with store_errors_shown():
                    draw()


@contextmanager
def store_errors_shown() -> Iterator[None]:
    """Draws a damaged or read-only store as one error where it was needed; the rest of the page goes on."""
    try:
        yield
    except StoreError as err:
        st.error(store_error_line(err))


def store_error_line(err: StoreError) -> str:
    return f"Saved runs and measurements cannot be read here: {fmt.md(err)}"


def job_progress_bar(
    kind: str,
    stop_key: str | None = None,
    *,
    describe: Callable[[Any], str] | None = None,
    stop_label: str = "Stop",
    stop: Callable[[int], None] | None = None,
) -> Any:
    """The running job of ``kind`` as a progress bar with its message, its count and ETA (and a Stop
    button); reruns the page once it has ended. Returns the job (None once it ended), so a caller can
    draw more under it. Call it from a fragment that runs every second; it is the one job poller of
    every page."""
    with store_errors_shown():
        job = jobs.latest(kind)
        if job is None or not job.active:
            st.rerun()
            return None
        eta = job.eta_s()
        text = describe(job) if describe else (job.message or "starting…")
        count = f" ({job.done}/{job.total})" if job.total > 1 else ""
        st.progress(
            min(job.done / max(job.total, 1), 1.0),
            text=text
            + count
            + (f" · about {fmt.duration(eta)} left" if eta is not None else " · estimating time left…"),
        )
        if (
            stop_key
            and st.button(stop_label, key=stop_key, **lacks("jobs.stop"))
            and not refused("jobs.stop")
        ):
            (stop or jobs.request_cancel)(job.id)
        return job


# --- what this session's role may do (core.web.roles): controls drawn disabled with one sentence why, and
# the action checked again when it runs, whatever the page sent


def role() -> str:
    """This session's role: the instructor, or a visitor (from the cookie its link gave it)."""
    try:
        cookies = dict(st.context.cookies)
    except Exception:  # noqa: BLE001  no request context (a bare script): no cookie
        cookies = {}
    return roles.role_of(cookies)


def may(action: str) -> bool:
    return roles.allowed(role(), action)


def lacks(action: str, disabled: bool = False, help: str | None = None) -> dict[str, Any]:
    """A control's ``disabled`` and ``help`` for ``action``: disabled with the sentence why when this
    session's role lacks it, else as the caller had them."""
    if may(action):
        return {"disabled": disabled, "help": help}
    return {"disabled": True, "help": roles.why_not(action)}


def refused(action: str) -> bool:
    """True (and says why, on the page) when this session's role may not do ``action``: checked where the
    action runs, so a forced click changes nothing."""
    if may(action):
        return False
    st.error(roles.why_not(action))
    return True


def role_note(*actions: str) -> None:
    """One caption naming what a visitor cannot do here (nothing for the instructor)."""
    if role() == roles.VISITOR and any(not may(a) for a in actions):
        st.caption(
            "You opened a visitor's link: " + " ".join(dict.fromkeys(roles.why_not(a) for a in actions))
        )
