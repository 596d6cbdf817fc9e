"""Measure in this browser: the visitor's own device (laptop or phone) runs a backbone's ONNX, fp32 and
int8, in onnxruntime-web (core/deploy/browser.py; the app serves the files itself, cross-origin
isolated: core/web/server.py). The bench runs in hidden same-origin frames, one per setup (ONNX Runtime
Web fixes its thread count when it starts), and sends its figures back; the server validates them as
hostile input, times native ONNX Runtime at the same thread count and keeps them in the store, keyed by
device."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.deploy import DeployError, browser, devices
from core.deploy import browser_checks as checks
from core.deploy.deployable import Deployable
from core.deploy.targets import BROWSER, list_targets
from core.jobs.store import StoreError
from core.present import fmt
from core.web import roles
from core.web import server as webapp
from pages._widgets import lacks, refused, role, role_note, store_error_line, store_errors_shown, table

# the component's script: runs the bench in hidden same-origin frames, one per setup, and sends the figures
# back
BENCH_JS = (Path(__file__).resolve().parents[1] / "assets" / "bench" / "component.js").read_text()
BENCH = st.components.v2.component(
    "archscope_browser_bench",
    html='<div class="bench-status">starting…</div>',
    css=".bench-status { font-size: 0.9rem; color: #555; }",
    js=BENCH_JS,
)
TIMEOUT_S = 300


def measure_in_browser(targets: list[Deployable], key: str) -> None:
    """The model picker and the "Measure in this browser" button; while a bench runs, its line of progress;
    once it sent its figures, what was kept (or why not)."""
    if not targets:
        return
    by_key = {t.key: t for t in targets}
    pick = st.selectbox(
        "Model to measure in this browser",
        list(by_key),
        key=f"{key}.model",
        format_func=lambda k: f"{by_key[k].label} @{by_key[k].resolution}",
    )
    device = st.text_input(
        "This device (a name for its results)",
        key=f"{key}.device",
        max_chars=60,
        placeholder="e.g. my Pixel 7; empty: the browser and OS it reports",
    )
    if st.button(
        "Measure in this browser",
        key=f"{key}.go",
        disabled=f"{key}.pending" in st.session_state,
        help="Runs the model's ONNX (fp32, then int8) here, in this browser's onnxruntime-web: one thread, "
        "then every core when the page is cross-origin isolated. Parity is checked first, on 32 real "
        "images; then up to 50 runs or 20 s are timed per setup and precision.",
    ):
        target = by_key[pick]
        try:
            with st.status(
                f"Preparing {target.label} for the browser (export and int8, kept for next time)…"
            ) as box:
                bench = browser.prepared(target, step=lambda m: box.update(label=m))
                box.update(label=f"{target.label} is ready for the browser", state="complete")
        except (DeployError, ValueError, RuntimeError, OSError) as err:
            st.error(f"The model could not be prepared for the browser: {fmt.md(err)}")
            return
        start(key, bench)
    done = run_pending(key, device.strip() or None)
    if done is not None:
        say(done)
        st.success("Measured in this browser and kept: see the table and the chart below.")


def start(key: str, *benches: browser.Bench) -> None:
    """Asks this page to run ``benches`` in the browser, one after the other (``run_pending`` mounts them)."""
    st.session_state.pop(f"{key}.done", None)
    st.session_state[f"{key}.pending"] = {
        "token": secrets.token_hex(8),
        "benches": [b.folder.name for b in benches],
    }


def run_pending(
    key: str, label: str | None = None
) -> list[tuple[browser.Bench, dict[str, dict[str, Any]]]] | None:
    """While benches are asked for: the component that runs them here, and its line of progress. Once the
    browser sent its figures: them validated, set beside native ONNX Runtime and stored
    (``browser.record``), each bench with its entries (one per setup), in order, kept for this session
    until the button is pressed again; else None. The page reruns once when they arrive, so the button
    it drew disabled while the bench ran is enabled."""
    kept = st.session_state.get(f"{key}.done")
    if isinstance(kept, str):  # refused: said once
        st.session_state.pop(f"{key}.done", None)
        st.error(kept)
        return None
    if kept is not None:
        return kept
    pending = st.session_state.get(f"{key}.pending")
    if pending is None:
        return None
    benches = [browser.load(browser.bench_root() / b) for b in pending["benches"]]
    if any(b is None for b in benches) or not benches:
        st.session_state.pop(f"{key}.pending", None)
        st.error("The prepared model is gone from the data directory; press the button again.")
        return None
    names = " and ".join(fmt.md(b.label) for b in benches)
    st.caption(f"Running {names} in this browser: keep this tab open (a few seconds to a minute each).")
    got = BENCH(
        key=f"{key}.bench",
        on_result_change=lambda: None,
        data={
            "token": pending["token"],
            "bench": "/bench/bench.html",
            "configs": [f"/bench-data/{b}/config.json" for b in pending["benches"]],
            "setups": list(checks.setup_keys()),
            "queries": {t.key: t.adapter.query(t.key) for t in list_targets(BROWSER)},
            "timeoutMs": TIMEOUT_S * 1000,
        },
    )
    if not got or not getattr(got, "result", None):
        return None
    st.session_state.pop(f"{key}.pending", None)
    st.session_state[f"{key}.done"] = received(got.result, pending["token"], benches, label)
    st.rerun()


def received(
    sent_json: str, token: str, benches: list[browser.Bench], label: str | None
) -> list[tuple[browser.Bench, dict[str, dict[str, Any]]]] | str:
    """What the browser sent, validated against this page's bench and stored; or why it was refused."""
    try:
        split = checks.split_sent(sent_json, token, len(benches))
    except checks.BrowserResultError as err:
        return f"The browser's result was refused, nothing was stored: {fmt.md(err)}"
    try:
        with st.spinner("Timing native ONNX Runtime at the same thread counts…"):
            return [(b, browser.record(b, pages, label=label)) for b, pages in zip(benches, split)]
    except StoreError as err:
        return store_error_line(err)


def say(done: list[tuple[Any, dict[str, dict[str, Any]]]]) -> None:
    """For each (bench, entries) measured: a refused setup, a failed one and a refused precision, each in
    one line; a line that holds for several targets (both blocks of a pair) is said once and names them."""
    lines: dict[tuple[str, str, str], list[str]] = {}
    for bench, entries in done:
        for line in _lines(entries):
            labels = lines.setdefault(line, [])
            if bench is not None and bench.label not in labels:
                labels.append(bench.label)
    for (kind, what, why), labels in lines.items():
        about = f" ({', '.join(labels)})" if len(labels) > 1 else ""
        getattr(st, kind)(fmt.md(f"{what}{about}: {why}"))


def _lines(entries: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(kind, setup [and precision], reason) for each setup or precision that did not give a figure."""
    out = []
    for setup, entry in entries.items():
        if entry.get("error", "").startswith("refused"):
            out.append(("error", setup, f"{entry['error']}; nothing of it was stored."))
        elif entry.get("error"):
            out.append(("warning", setup, entry["error"]))
        for precision, f in (entry.get("precisions") or {}).items():
            if f.get("refused") or f.get("error"):
                out.append(("warning", f"{setup} {precision}", f.get("refused") or f.get("error")))
    return out


def devices_section(budget_ms: float, key: str, targets: list[Deployable] | None = None) -> pd.DataFrame:
    """Every device measured so far on these ``targets`` (a class can measure ten phones): the table, each
    device's ratio to native ONNX Runtime here, and renaming or forgetting a device."""
    with store_errors_shown():
        everything = devices.stored()
    keys = None if targets is None else {t.key for t in targets}
    rows = [r for r in everything if keys is None or r["model"] in keys]
    frame = devices.device_frame(rows, budget_ms)
    if frame.empty:
        st.info(
            "No browser measured yet for these models: press “Measure in this browser” (on a phone too: see "
            "“Measure a phone” above)."
        )
        return frame
    for dev, part in frame.groupby("device", sort=False):
        fp32 = part[(part["precision"] == "fp32") & part["× native here"].notna()]
        if len(fp32):
            ratios = "; ".join(
                f"{r['× native here']:.1f}× on {r['setup']} ({fmt.md(r['model'])}, native at "
                f"{r['threads']} thread(s))"
                for _, r in fp32.iterrows()
            )
            st.markdown(
                f"**{fmt.md(dev)}**: this browser is slower than native ONNX Runtime here (fp32): {ratios}."
            )
    table(frame.drop(columns=["MACs"]), width="stretch")
    with st.expander("Rename or forget a device"):
        role_note("devices.forget")
        ids = {r["device"]["id"]: r["device"].get("label") for r in everything}
        chosen = st.selectbox("Device", list(ids), format_func=lambda i: ids[i], key=f"{key}.dev")
        cols = st.columns([3, 1, 1])
        name = cols[0].text_input("New name", key=f"{key}.devname", max_chars=60)
        if cols[1].button("Rename", key=f"{key}.rename", **lacks("devices.forget", not name.strip())):
            if not refused("devices.forget"):
                with store_errors_shown():
                    devices.rename_device(chosen, name.strip())
                st.rerun()
        if cols[2].button("Forget", key=f"{key}.forget", **lacks("devices.forget")):
            if not refused("devices.forget"):
                with store_errors_shown():
                    devices.forget_device(chosen)
                st.rerun()
    return frame


def phone_help() -> None:
    """How to measure a phone: the link with its token and a QR code when this server is open to the
    network, or how to open it."""
    with st.expander("Measure a phone, or any device on this network"):
        address, port = server_address()
        token = os.environ.get(webapp.TOKEN_ENV, "")
        if webapp.is_loopback(address) or not token:
            st.markdown(
                "This server answers this machine only (127.0.0.1). To reach a phone on the same network, "
                "start it with `--server.address 0.0.0.0`: it then asks every visitor for an access token, "
                "and prints two links in the terminal: the instructor's (everything) and the visitors' (with "
                "its QR code). Set `ARCHSCOPE_TOKEN` and `ARCHSCOPE_VISITOR_TOKEN` to choose them, and "
                "`ARCHSCOPE_PUBLIC_URL` when people reach this server by another address (a proxy, a "
                "container). The visitors' link and QR code then show here."
            )
        else:
            visitor = os.environ.get(roles.VISITOR_TOKEN_ENV, "")
            url = webapp.phone_url(address, port, visitor or token)
            left, right = st.columns([1, 3])
            left.image(webapp.qr_png(url), caption="scan with the phone", width=180)
            right.markdown(
                "The class's link (a visitor's: it browses every page, times blocks, measures its own "
                "browser and names its own device; the first visit trades the token for a cookie):"
            )
            right.code(url, language=None, wrap_lines=True)
            if visitor and role() == roles.INSTRUCTOR:
                st.caption("Your own link, the instructor's (it can do everything: keep it to yourself):")
                st.code(webapp.phone_url(address, port, token), language=None, wrap_lines=True)
        st.caption(webapp.PLAIN_HTTP)


def server_address() -> tuple[str, int]:
    """The address and port this Streamlit server was started with."""
    return str(st.get_option("server.address") or ""), int(st.get_option("server.port") or 8501)


def pair_in_browser(targets: list[Deployable], key: str) -> None:
    """The Block explorer's lecture pair (or any preset) in this browser: both blocks, one after the other."""
    st.markdown("**In this browser**: the same blocks in onnxruntime-web, a bar each per browser setup below")
    if st.button(
        "Measure in this browser",
        key=f"{key}.go",
        disabled=f"{key}.pending" in st.session_state,
        help="Both blocks' ONNX (fp32, then int8) here, in this browser: one thread, then every core when "
        "the page is cross-origin isolated; parity against PyTorch first.",
    ):
        try:
            with st.status(
                "Preparing the blocks for the browser (export and int8, kept for next time)…"
            ) as box:
                benches = [browser.prepared(t, step=lambda m: box.update(label=m)) for t in targets]
                box.update(label="Ready for the browser", state="complete")
        except (DeployError, ValueError, RuntimeError, OSError) as err:
            st.error(f"The blocks could not be prepared for the browser: {fmt.md(err)}")
            return
        start(key, *benches)
    done = run_pending(key)
    if done is not None:
        say(done)
        st.success("Measured in this browser and kept: its bars are in the charts below.")


def pair_rows(a_key: str, b_key: str, mac_ratio: float) -> pd.DataFrame:
    """B against A in each browser setup measured for both on one device (``core.deploy.devices``)."""
    with store_errors_shown():
        return devices.pair_rows(devices.stored(), a_key, b_key, mac_ratio)
    return devices.pair_rows([], a_key, b_key, mac_ratio)
