"""Runs → Evaluate and export → "Take it home": a run's best epoch exported to ONNX fp32 and int8 by a
background job (core.runs.export_job), with its scores, latencies and files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import jobs
from core.deploy import DeployError, report
from core.finetune.bundle import BEST
from core.present import deploy_plots, fmt
from core.runs import export_job, in_browser
from core.runs import record as runs
from core.runs.export import BundleDamaged, read_meta
from pages import _browser as browser_view
from pages._widgets import chart, job_progress_bar, lacks, refused, role_note, table


def exportable(all_runs: list[runs.Run]) -> list[runs.Run]:
    """Finished runs, and runs still training that have a best epoch already (exported as the best so far)."""
    return [r for r in all_runs if r.status == "done" or (r.active and (runs.folder(r) / BEST).exists())]


def onnx_section(run: runs.Run) -> None:
    """The export of the run chosen by the area's one picker."""
    st.subheader("Take it home: ONNX and int8")
    st.caption(
        "The best epoch as model.onnx (and a static int8 model calibrated on the training split only), each "
        "scored on the run's own validation and test images and timed at batch 1 here; predict_onnx.py runs "
        "them with only onnxruntime, numpy and Pillow."
    )
    folder = runs.folder(run) / "export"
    job = jobs.latest(export_job.KIND)
    if job is not None and job.active:
        export_progress()
        return
    if job is not None and job.status == "failed" and job.args.get("run") == run.id:
        st.error(f"The last export of run {run.id} failed: {fmt.md(job.error)}")
    cols = st.columns([1, 2])
    int8 = cols[0].toggle(
        "int8 too",
        value=True,
        key=f"onnx.int8.{run.id}",
        help="ONNX Runtime static int8 (QDQ, per-channel), calibrated on the training split.",
    )
    role_note("export")
    if cols[1].button("Export to ONNX", key=f"onnx.start.{run.id}", type="primary", **lacks("export")):
        if refused("export"):
            return
        try:
            export_job.start(run.id, int8)
            st.rerun()
        except RuntimeError as err:
            st.error(fmt.md(err))
    try:
        record = (read_meta(folder) or {}).get("onnx")
    except BundleDamaged as err:
        st.warning(fmt.md(err))
        return
    if record is None:
        return
    show_export(record, folder, run)
    try_in_browser(run)


def try_in_browser(run: runs.Run) -> None:
    """The run's own model.onnx and model.int8.onnx in this browser, on its validation images: the
    browser's top-1 beside the server's ONNX top-1 on the same images, and the latency."""
    key = f"runs.browser.{run.id}"
    st.markdown(
        "**Try it in this browser**: the same ONNX files in onnxruntime-web, on this run's validation "
        f"images (up to {in_browser.MAX_IMAGES}), checked against this server's ONNX Runtime"
    )
    if st.button("Try it in this browser", key=f"{key}.go", disabled=f"{key}.pending" in st.session_state):
        try:
            with st.spinner("Preparing the run's files and validation images for the browser…"):
                browser_view.start(key, in_browser.bench(run.id))
        except (DeployError, OSError, ValueError, KeyError) as err:
            st.error(f"It cannot run in the browser: {fmt.md(err)}")
            return
    done = browser_view.run_pending(key)
    if done is None:
        return
    bench, entries = done[0]
    browser_view.say([(None, entries)])
    rows = pd.DataFrame(in_browser.agreement(bench, entries))
    if rows.empty:
        return
    same = rows["same top-1"].dropna()
    (st.success if len(same) and same.all() else st.error)(
        "The browser's top-1 equals the server's ONNX top-1 on the same images, for every setup and "
        "precision."
        if len(same) and same.all()
        else "The browser's top-1 differs from the server's ONNX top-1: see the rows."
    )
    table(rows, width="stretch")


def show_export(record: dict, folder: Path, run: runs.Run) -> None:
    frame = report.export_table(record)
    st.markdown(
        f"**Exported: {fmt.md(record['weights'])}** (reported val top-1 "
        f"{100 * (record['val_top1_reported'] or 0):.1f}%)"
    )
    if not record["scored"]:
        st.warning(
            fmt.md(
                f"Not scored: {record['not_scored_because']}. Calibration and scoring need the run's "
                "dataset; the fp32 export was checked for parity on the demo images instead."
            )
        )
    else:
        chart(deploy_plots.export_scores(frame), f"onnx.plot.{run.id}")
        if frame["test top-1 %"].isna().all():
            st.caption("Test top-1: no test split (train with a test fraction above 0 to hold one out).")
    shown = frame.drop(columns=["colour"])
    st.dataframe(
        shown.style.format(
            {c: "{:.1f}" for c in shown.columns if "%" in c}
            | {"latency ms": "{:.2f}", "speed-up vs PyTorch": "{:.2f}×", "size MiB": "{:.2f}"},
            na_rep="—",
        ),
        hide_index=True,
        width="stretch",
        placeholder="—",
        key=f"onnx.table.{run.id}",
    )
    for line in report.export_warnings(record):
        st.warning(fmt.md(line))
    q = record["files"].get("model.int8.onnx", {}).get("quantization")
    st.caption(
        fmt.md(
            f"Parity of model.onnx on the validation images: max abs logit difference "
            f"{record['files']['model.onnx']['parity']['max_abs_diff']:.2e}; exporter "
            f"{record['files']['model.onnx']['exporter']}, opset {record['files']['model.onnx']['opset']}"
            + (
                f"; int8: {q['format']}, {q['activation_type']} activations, per-channel "
                f"{q['per_channel']}, reduce_range {q['reduce_range']}, {q['calibration_method']} on "
                f"{q['calibration_count']} images of {q['calibration_source']}, kept in float: "
                f"{', '.join(q.get('kept_in_float', ())) or 'nothing'}"
                if q
                else ""
            )
            + f"; latency at batch 1 with {record['threads']} thread(s), timed interleaved."
        )
    )


@st.fragment(run_every=1.0)
def export_progress() -> None:
    job_progress_bar(export_job.KIND)
