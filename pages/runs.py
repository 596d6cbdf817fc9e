"""Runs: compare finished runs, the freezing-depth experiment, evaluate a run, try an image, export."""
from __future__ import annotations

import io
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import streamlit as st

from core import jobs
from core.data.images import open_image, thumbnail
from core.finetune import evaluate, experiment, runs
from core.finetune.bundle import Predictor
from core.finetune.config import TrainConfig
from core.present import fmt, plots
from pages._widgets import current_settings, lazy_tabs, route_through_app, store_errors_shown, table

route_through_app()


def runs_table(all_runs: list[runs.Run]) -> pd.DataFrame:
    rows = [{"id": r.id, "name": r.name, "status": r.status, "recipe": r.config.get("recipe"),
             "backbone": r.config.get("model"), "best val top-1 %": _pct(r.result.get("best_top1")),
             "exported epoch": r.result.get("best_epoch"), "wall s": r.result.get("wall_s"), "device": r.device,
             "note": runs.empty_reason(r)} for r in all_runs]
    return pd.DataFrame(rows)


def _pct(x: float | None) -> float | None:
    return None if x is None else 100 * x


def compare_section(all_runs: list[runs.Run]) -> None:
    frame = runs_table(all_runs)
    table(frame, width="stretch", key="runs.table")
    chosen = st.multiselect("Overlay curves of", frame["id"].tolist(), default=frame["id"].tolist()[:3],
                            key="runs.overlay")
    if chosen:
        st.plotly_chart(plots.training_curves({f"run {i}": runs.curves(i) for i in chosen}), key="runs.curves")


@st.fragment(run_every=1.0)
def experiment_progress() -> None:
    with store_errors_shown():
        experiment_progress_body()


def experiment_progress_body() -> None:
    job = jobs.latest(experiment.KIND)
    if job is None or not job.active:
        st.rerun()
        return
    st.progress(job.done / job.total, text=f"{job.message} ({job.done}/{job.total})")
    if st.button("Stop the experiment", key="exp.stop"):
        experiment.cancel(job.id)


def experiment_section() -> None:
    st.markdown("Trains `linear_probe`, `finetune_top`, `finetune_full` and `scratch` on the same split of the "
                "demo dataset, one after another, and compares accuracy against wall time.")
    cols = st.columns(3)
    epochs = int(cols[0].number_input("Epochs per recipe", 1, 50, 3, key="exp.epochs",
                                      help="The same for every recipe, so they are compared on one budget."))
    size = int(cols[1].number_input("Image size (px)", 32, 256, 96, 16, key="exp.size"))
    per_class = int(cols[2].number_input("Demo images per class", 10, 200, 30, 10, key="exp.per_class"))
    job = jobs.latest(experiment.KIND)
    if job is not None and job.active:
        experiment_progress()
    elif st.button("Run the freezing-depth experiment", key="exp.start"):
        settings = current_settings()
        base = TrainConfig(epochs=epochs, image_size=size, demo_per_class=per_class, threads=settings.threads,
                           device=settings.device)          # cuda:N keeps its index
        try:
            experiment.start(base)
        except RuntimeError as err:
            st.error(fmt.md(err))
        st.rerun()
    if job is not None and not job.active:
        frame = experiment.results(job)
        if not frame.empty:
            st.caption(experiment.budget(job.args["config"]))
            st.plotly_chart(plots.accuracy_vs_time(frame.dropna(subset=["val top-1 %"])), key="exp.plot")
            pct = {c: st.column_config.NumberColumn(c, format="%.1f%%") for c in frame.columns if "%" in c or "95%" in c}
            st.dataframe(frame, hide_index=True, column_config={**pct, "wall s": st.column_config.NumberColumn(
                "wall s", format="%.1f")})
            if frame["test top-1 %"].isna().all():
                st.caption("No test score: this experiment ran before held-out test splits were added.")
            for line in experiment.conclusion(frame):
                (st.warning if line.startswith("Negative") else st.markdown)(line)


def evaluate_section(all_runs: list[runs.Run]) -> None:
    done = [r for r in all_runs if r.status == "done"]
    if not done:
        st.info("No finished run yet.")
        return
    by_id = {r.id: r for r in done}
    chosen = st.selectbox("Run", list(by_id), key="eval.run", format_func=lambda i: run_label(by_id[i]))
    run = by_id[chosen]
    with run_files_shown(run):
        evaluation_view(run)
    with run_files_shown(run):
        try_image(run)
    export_button(run)


@contextmanager
def run_files_shown(run: runs.Run) -> Iterator[None]:
    """A run whose files were moved or deleted (or whose dataset is gone) gets a message, not a traceback."""
    try:
        yield
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        st.warning(fmt.md(f"Run {run.id}'s files cannot be read ({type(err).__name__}: {fmt.first_line(err)}). "
                          f"Its folder is {runs.folder(run)}."))


def evaluation_view(run: runs.Run) -> None:
    ev = evaluate.evaluation(run)
    if ev is not None:
        left, right = st.columns([3, 2])
        left.plotly_chart(plots.confusion(ev["confusion"], ev["classes"]), key="eval.conf")
        right.dataframe(ev["table"].style.format({"precision": "{:.1%}", "recall": "{:.1%}"}), hide_index=True)
    if st.toggle("Show the top losses (misclassified val images)", key="eval.losses"):
        losses = evaluate.top_losses(run)
        if not losses:
            st.success("No misclassified validation image.")
        for start in range(0, len(losses), 4):
            for col, item in zip(st.columns(4), losses[start:start + 4]):
                col.image(thumbnail(item["path"]), width=96,
                          caption=fmt.md(f"true {item['true']} · predicted {item['predicted']} "
                                         f"({item['confidence']:.0%})"))


def run_label(run: runs.Run) -> str:
    best = run.result.get("best_top1")
    top1 = f" · best {best:.1%}" if isinstance(best, (int, float)) else ""
    return f"run {run.id} · {run.name or 'unnamed'} · {run.config.get('model')} · {run.config.get('recipe')}{top1}"


def try_image(run: runs.Run) -> None:
    up = st.file_uploader("Try an image", type=["png", "jpg", "jpeg", "webp", "bmp"], key="eval.image")
    if up is None:
        return
    try:
        image = open_image(up.getvalue())
    except ValueError as err:
        st.error(f"That image cannot be used: {fmt.md(err)}")
        return
    except Exception:  # noqa: BLE001  any other undecodable upload gets the same message
        st.error("That file is not an image this app can read.")
        return
    top = Predictor(run.result["export_dir"]).top_k(image, 5)
    st.image(image, width=160)
    st.plotly_chart(plots.bars(pd.DataFrame(top, columns=["class", "probability"]), "class", "probability",
                               "class", "probability", text="%{y:.1%}"), key="eval.top5")


def export_button(run: runs.Run) -> None:
    export = Path(run.result.get("export_dir", ""))
    if not export.is_dir():
        return
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in export.iterdir():
            zf.write(f, f.name)
    st.download_button("Download the fine-tuned bundle (safetensors + labels + preprocessing)", buf.getvalue(),
                       f"archscope-run{run.id}.zip", "application/zip", key="eval.export")


st.title("Runs")
all_runs: list[runs.Run] = []
with store_errors_shown():
    all_runs = runs.all_runs()
lazy_tabs("runs.tab", {"Compare runs": lambda: compare_section(all_runs) if all_runs else
                       st.info("No run yet: start one on the Transfer learning page."),
                       "Effect of freezing depth": experiment_section,
                       "Evaluate and export": lambda: evaluate_section(all_runs)})
