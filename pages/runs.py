"""Runs: compare finished runs, the freezing-depth experiment, evaluate a run, try an image, export."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pandas as pd
import streamlit as st

from core import jobs
from core.config import data_dir
from core.data import usage
from core.data.images import open_image, thumbnail
from core.errors import first_line
from core.finetune.bundle import BEST_RULE, Predictor
from core.finetune.config import TrainConfig
from core.jobs.store import StoreError
from core.present import fmt, run_plots, style
from core.runs import evaluate, experiment, export, tblog, tracker
from core.runs import record as runs
from pages import _run_export as run_export
from pages._widgets import (
    chart,
    current_settings,
    job_progress_bar,
    lacks,
    lazy_tabs,
    refused,
    role_note,
    route_through_app,
    store_errors_shown,
)

route_through_app()


SHOWN = [
    "id",
    "name",
    "status",
    "dataset",
    "images",
    "weights",
    "recipe",
    "backbone",
    "head LR",
    "lowest LR",
    "layer decay",
    "epochs",
    "image px",
    "batch",
    "augment",
    "best val top-1 %",
    "val loss at best",
    "test top-1 %",
    "test 95% low",
    "test 95% high",
    "exported epoch",
    "wall s",
    "data sha256",
    "schedule",
    "seed",
    "tags",
    "device",
    "note",
]
STYLE = {
    "best val top-1 %": "{:.1f}%",
    "test top-1 %": "{:.1f}%",
    "test 95% low": "{:.1f}%",
    "test 95% high": "{:.1f}%",
    "exported epoch": "{:.0f}",
    "wall s": "{:,.1f}",
    "images": "{:,.0f}",
    "head LR": "{:.3g}",
    "lowest LR": "{:.3g}",
    "layer decay": "{:.2f}",
    "epochs": "{:.0f}",
    "image px": "{:.0f}",
    "batch": "{:.0f}",
    "seed": "{:.0f}",
    "val loss at best": "{:.4f}",
}


def coloured(frame: pd.DataFrame):
    """The runs table with each run's name in that run's colour (the colour of its curves)."""
    styled = frame.style.apply(
        lambda col: [f"color: {style.run_colour(i)}; font-weight: 600" for i in frame["id"]], subset=["name"]
    )
    # a Styler's formats win over column_config: one style for numbers here, "—" for an empty cell
    return styled.format({k: v for k, v in STYLE.items() if k in frame.columns}, na_rep="—")


def filtered(all_runs: list[runs.Run]) -> list[runs.Run]:
    """Filters by tag, recipe and backbone; each filter lives in the URL, so a link reproduces the view."""
    cols = st.columns(3)
    tags = cols[0].multiselect(
        "Tag",
        sorted({t for r in all_runs for t in r.tag_list}),
        key="runs.tag",
        bind="query-params",
        placeholder="any tag",
    )
    recipes = cols[1].multiselect(
        "Recipe",
        sorted({str(r.config.get("recipe")) for r in all_runs}),
        key="runs.recipe",
        bind="query-params",
        placeholder="any recipe",
    )
    models = cols[2].multiselect(
        "Backbone",
        sorted({str(r.config.get("model")) for r in all_runs}),
        key="runs.backbone",
        bind="query-params",
        placeholder="any backbone",
    )
    return [
        r
        for r in all_runs
        if (not tags or set(tags) & set(r.tag_list))
        and (not recipes or str(r.config.get("recipe")) in recipes)
        and (not models or str(r.config.get("model")) in models)
    ]


def compare_section(all_runs: list[runs.Run]) -> None:
    shown = filtered(all_runs)
    if not shown:
        st.info("No run matches these filters.")
        return
    frame = tracker.frame(shown, runs.epoch_values("val_loss"))
    st.caption(
        "Every run with what it was configured with and what it scored; click a column header to sort. "
        "Learning rates: the head's, and the lowest any trained group got (discriminative LRs)."
    )
    st.dataframe(
        coloured(frame[SHOWN]),
        hide_index=True,
        width="stretch",
        key="runs.table",
        placeholder="—",
        column_config={
            "id": st.column_config.NumberColumn("id", pinned=True, width=40),
            "name": st.column_config.TextColumn("name", width="medium"),
            "note": st.column_config.TextColumn("note", width="large"),
        },
    )
    failure_reasons(shown)
    by_id = {r.id: r for r in shown}
    chosen = st.multiselect(
        "Overlay curves of",
        list(by_id),
        default=tracker.default_overlay(shown),
        key="runs.overlay",
        format_func=lambda i: by_id[i].chip(),
        bind="query-params",
        help="Opens with the best finished runs (highest val top-1). Each run is its id and name "
        "here; the legends and the table give the rest.",
    )
    cols = st.columns([2, 1, 2])
    smoothing = cols[0].slider(
        "Smoothing (EMA, as TensorBoard)",
        0.0,
        0.99,
        0.6,
        0.01,
        key="runs.smooth",
        bind="query-params",
        help="Smooths the train loss; the raw curve stays faint behind.",
    )
    log_loss = cols[1].toggle("Log-scale loss", key="runs.log", bind="query-params")
    x = cols[2].radio("x-axis", list(run_plots.X_AXES), horizontal=True, key="runs.x", bind="query-params")
    if chosen:
        labels = {i: by_id[i].short_label() for i in chosen}
        chart(
            run_plots.training_curves(
                {labels[i]: runs.curves(i) for i in chosen},
                {labels[i]: style.run_colour(i) for i in chosen},
                x,
                smoothing,
                log_loss,
            ),
            "runs.curves",
        )
    diff_section(frame, by_id)
    hparams_section(frame)
    tensorboard_hint()
    manage(shown)


def tensorboard_hint() -> None:
    """Where every run's TensorBoard event files are, and the one command that opens them."""
    folder = tblog.root()
    with st.expander("Open these runs in TensorBoard (or W&B)"):
        st.markdown(
            f"Every run writes TensorBoard event files to its own folder under `{fmt.md(folder)}`, named "
            "*id name* (a rename renames the folder; deleting a run deletes it): train loss per step, the "
            "learning rate of every parameter group, val loss and top-1 and epoch times per epoch, and the "
            "configuration as text and as HParams with the final metrics. Open them with:"
        )
        st.code(f"tensorboard --logdir '{folder}'", language="bash")
        st.caption("W&B imports the same files: `wandb sync --sync-tensorboard` with a run's folder.")


def failure_reasons(shown: list[runs.Run]) -> None:
    """Every failed or stopped run's whole reason, one click away (the table cuts long text)."""
    ended = [r for r in shown if r.error and r.status in ("failed", "cancelled")]
    if not ended:
        return
    with st.expander(f"Why runs failed ({len(ended)})"):
        for r in ended:
            st.markdown(f"**{fmt.md(r.label())}**")  # the label already says failed or cancelled
            st.code(r.error, language=None, wrap_lines=True)


def diff_section(frame: pd.DataFrame, by_id: dict[int, runs.Run]) -> None:
    """Two runs side by side: configuration and final metrics, with what differs marked."""
    st.subheader("Compare two runs")
    if len(by_id) < 2:
        st.info("Two runs are needed for a diff.")
        return
    ids = list(by_id)
    overlay = tracker.default_overlay(list(by_id.values()), 2)
    pair = overlay if len(overlay) == 2 else ids[:2]
    cols = st.columns([2, 2, 1])
    a = cols[0].selectbox(
        "Run A", ids, index=ids.index(pair[0]), key="runs.diff.a", format_func=lambda i: by_id[i].label()
    )
    b = cols[1].selectbox(
        "Run B", ids, index=ids.index(pair[1]), key="runs.diff.b", format_func=lambda i: by_id[i].label()
    )
    only = cols[2].toggle("Only differences", value=True, key="runs.diff.only")
    if a == b:
        st.info("Pick two different runs.")
        return
    d = tracker.diff(frame, a, b, only)
    st.caption(
        f"{int(d['differs'].sum())} of the fields differ."
        if not only
        else f"{len(d)} field(s) differ; switch off 'Only differences' to see all."
    )
    st.dataframe(
        d.style.apply(
            lambda r: ["background-color: rgba(255, 196, 0, 0.18)" if r["differs"] else "" for _ in r], axis=1
        ),
        hide_index=True,
        width="stretch",
        key="runs.diff.table",
        column_config={"differs": st.column_config.CheckboxColumn("differs")},
    )


def hparams_section(frame: pd.DataFrame) -> None:
    """Hyper-parameters against best top-1, one line per finished run (TensorBoard's HParams view)."""
    st.subheader("Hyper-parameters against best val top-1")
    hp = tracker.hyper_parameters(frame)
    if len(hp) < 2:
        st.info("Waiting for a second finished run: each line is one finished run.")
        return
    # parallel coordinates need room: below 640 px a strip per hyper-parameter replaces them (CSS picks one)
    st.html(
        "<style>@media (max-width: 640px) { .st-key-runs-hp-wide { display: none; } }"
        "@media (min-width: 641px) { .st-key-runs-hp-narrow { display: none; } }</style>"
    )
    chart(run_plots.parallel_runs(hp), "runs.parcoords", where=st.container(key="runs-hp-wide"))
    narrow = st.container(key="runs-hp-narrow")
    narrow.caption(
        "Each strip: one hyper-parameter against best val top-1, a dot per finished run (tap one for "
        "its name)."
    )
    chart(run_plots.hparam_strips(hp), "runs.hpstrips", where=narrow)


def manage(shown: list[runs.Run]) -> None:
    """Rename, tag or delete one run (delete removes its folder too)."""
    with st.expander("Rename, tag or delete a run"):
        role_note("runs.edit")
        by_id = {r.id: r for r in shown}
        run = by_id[
            st.selectbox("Run", list(by_id), key="runs.manage", format_func=lambda i: by_id[i].label())
        ]
        with st.form(f"runs.edit.{run.id}"):
            name = st.text_input("Name", value=run.name, key=f"runs.name.{run.id}")
            tags = st.text_input(
                "Tags (comma-separated)", value=", ".join(run.tag_list), key=f"runs.tags.{run.id}"
            )
            if st.form_submit_button("Save", **lacks("runs.edit")) and not refused("runs.edit"):
                try:
                    runs.set_tags(run.id, tags)  # kept even when the rename is refused
                    if " ".join(name.split()) != run.name:
                        runs.rename(run.id, name)
                except (ValueError, StoreError, runs.EditRefused) as err:
                    st.error(fmt.md(err))
                else:
                    st.rerun()
        size = usage.folder_size(runs.folder(run))
        sure = st.checkbox(
            f"Delete {fmt.md(run.label())} and its folder ({fmt.bytes_(size)}), for good",
            key=f"runs.sure.{run.id}",
        )
        if st.button(
            "Delete run",
            key=f"runs.delete.{run.id}",
            **lacks("runs.edit", not sure or run.active, "Stop it first." if run.active else None),
        ):
            if refused("runs.edit"):
                return
            try:
                runs.delete(run.id)
            except (runs.LaunchError, runs.EditRefused, StoreError, OSError) as err:
                folder_sizes.clear()
                st.error(fmt.md(err))
            else:
                folder_sizes.clear()
                st.rerun()


def data_usage() -> None:
    """What the data directory holds, and a clean-up of the folders that only hold copies."""
    held = folder_sizes()
    st.caption(
        f"Data directory `{fmt.md(data_dir())}`: "
        + " · ".join(f"{name} {fmt.bytes_(n)}" for name, n in held.items())
    )
    with st.popover("Clean up"):
        st.markdown(
            "Delete copies that Archscope can do without. Runs, their exported bundles and the store are "
            "never touched. A stopped run needs its dataset again to resume: the demo set is regenerated, "
            "an uploaded zip must be uploaded again."
        )
        role_note("cleanup")
        chosen = st.multiselect(
            "Folders",
            list(usage.CLEANABLE),
            default=["cache"],
            key="usage.folders",
            format_func=lambda f: f"{f} ({fmt.bytes_(held[f])}): {usage.FOLDERS[f]}",
        )
        if st.button("Delete these", key="usage.clean", **lacks("cleanup", not chosen)):
            if refused("cleanup"):
                return
            busy = bool(runs.active_runs() or jobs.active_jobs())
            try:
                freed = usage.clean(chosen, busy)
                folder_sizes.clear()
            except (RuntimeError, ValueError) as err:
                st.error(fmt.md(err))
            else:
                st.success("Freed " + ", ".join(f"{fmt.bytes_(n)} in {f}" for f, n in freed.items()) + ".")


@st.cache_data(ttl=30, show_spinner=False)
def folder_sizes() -> dict[str, int]:
    """The data directory's usage: a walk over every file, so kept for 30 s rather than redone on every
    click."""
    return usage.usage()


@st.fragment(run_every=1.0)
def experiment_progress() -> None:
    job_progress_bar(experiment.KIND, "exp.stop", stop_label="Stop the experiment", stop=experiment.cancel)


def experiment_section() -> None:
    st.markdown(
        "Trains `linear_probe`, `finetune_top`, `finetune_full` and `scratch` on the same split of the "
        "demo dataset, one after another, and compares accuracy against wall time."
    )
    cols = st.columns(3)
    epochs = int(
        cols[0].number_input(
            "Epochs per recipe",
            1,
            50,
            3,
            key="exp.epochs",
            help="The same for every recipe, so they are compared on one budget.",
        )
    )
    size = int(cols[1].number_input("Image size (px)", 32, 256, 96, 16, key="exp.size"))
    per_class = int(cols[2].number_input("Demo images per class", 10, 200, 30, 10, key="exp.per_class"))
    job = jobs.latest(experiment.KIND)
    if job is not None and job.active:
        experiment_progress()
    elif st.button(
        "Run the freezing-depth experiment", key="exp.start", **lacks("experiment")
    ) and not refused("experiment"):
        settings = current_settings()
        base = TrainConfig(
            epochs=epochs,
            image_size=size,
            demo_per_class=per_class,
            threads=settings.threads,
            device=settings.device,
        )  # cuda:N keeps its index
        try:
            experiment.start(base)
        except RuntimeError as err:
            st.error(fmt.md(err))
        st.rerun()
    if job is not None and not job.active:
        frame = experiment.results(job)
        if not frame.empty:
            st.caption(experiment.budget(job.args["config"]))
            chart(run_plots.accuracy_vs_time(frame.dropna(subset=["val top-1 %"])), "exp.plot")
            pct = {
                c: st.column_config.NumberColumn(c, format="%.1f%%")
                for c in frame.columns
                if "%" in c or "95%" in c
            }
            st.dataframe(
                frame,
                hide_index=True,
                placeholder="—",
                column_config={**pct, "wall s": st.column_config.NumberColumn("wall s", format="%.1f")},
            )
            if frame["test top-1 %"].isna().all():
                st.caption("No test score: this experiment ran before held-out test splits were added.")
            for line in experiment.conclusion(frame):
                (st.warning if line.startswith("Negative") else st.markdown)(line)


def evaluate_section(all_runs: list[runs.Run]) -> None:
    """One picker for the whole area: evaluation, "try an image", the ONNX export and the bundle's download
    all follow it."""
    by_id = {r.id: r for r in run_export.exportable(all_runs)}
    if not by_id:
        st.info("No run with a finished epoch yet.")
        return
    chosen = st.selectbox(
        "Run",
        list(by_id),
        key="eval.run",
        format_func=lambda i: (
            by_id[i].label() + (" (training: its best epoch so far)" if by_id[i].active else "")
        ),
    )
    run = by_id[chosen]
    if run.status == "done":
        if run.result.get("best_epoch"):
            st.caption(
                f"Its bundle holds epoch {run.result['best_epoch']} of {run.result.get('epochs_done', '?')}, "
                f"chosen by {BEST_RULE}."
            )
        with run_files_shown(run):
            evaluation_view(run)
        with run_files_shown(run):
            try_image(run)
    else:
        st.caption(
            f"Run {run.id} is still training: its evaluation and “try an image” come when it ends. Its best "
            "epoch so far can be exported and downloaded below."
        )
    run_export.onnx_section(run)
    export_button(run)


@contextmanager
def run_files_shown(run: runs.Run) -> Iterator[None]:
    """A run whose files were moved or deleted (or whose dataset is gone) gets a message, not a traceback."""
    try:
        yield
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        st.warning(
            fmt.md(
                f"Run {run.id}'s files cannot be read ({type(err).__name__}: {first_line(err)}). "
                f"Its folder is {runs.folder(run)}."
            )
        )


def evaluation_view(run: runs.Run) -> None:
    ev = evaluate.evaluation(run)
    if ev is not None:
        left, right = st.columns([3, 2])
        chart(run_plots.confusion(ev["confusion"], ev["classes"]), "eval.conf", left)
        right.dataframe(
            ev["table"].style.format({"precision": "{:.1%}", "recall": "{:.1%}"}), hide_index=True
        )
    if st.toggle("Show the top losses (misclassified val images)", key="eval.losses"):
        losses = evaluate.top_losses(run)
        if not losses:
            st.success("No misclassified validation image.")
        for start in range(0, len(losses), 4):
            for col, item in zip(st.columns(4), losses[start : start + 4]):
                col.image(
                    thumbnail(item["path"]),
                    width=96,
                    caption=fmt.md(
                        f"true {item['true']} · predicted {item['predicted']} ({item['confidence']:.0%})"
                    ),
                )


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
    try:
        top = Predictor(run.result["export_dir"]).top_k(image, 5)
    except (ValueError, OSError) as err:  # the same limits as training (core.data.images), and a lost bundle
        st.error(f"That image cannot be classified: {fmt.md(first_line(err))}")
        return
    st.image(image, width=160)
    chart(
        run_plots.bars(
            pd.DataFrame(top, columns=["class", "probability"]),
            "class",
            "probability",
            "class",
            "probability",
            text="%{y:.1%}",
        ),
        "eval.top5",
    )


def export_button(run: runs.Run) -> None:
    """The whole bundle of the chosen run as one zip, built when the button is pressed (not on every
    rerun)."""
    folder = runs.folder(run) / "export"
    if not (folder / "bundle.json").is_file():
        return
    names = sorted(f.name for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
    onnx = [n for n in names if n.endswith(".onnx")]
    st.download_button(
        f"Download run {run.id}'s bundle (zip)",
        lambda: export.bundle_zip(run.id)[1],
        f"archscope-run{run.id}.zip",
        "application/zip",
        key=f"eval.export.{run.id}",
        on_click="ignore",
        type="primary" if onnx else "secondary",
        help="Everything in one folder, under the names its scripts and README expect: " + ", ".join(names),
    )
    st.caption(
        f"The zip holds {len(names)} files: {', '.join(names)}. "
        + (
            "Unzip it and follow its README: `python predict_onnx.py photo.jpg` needs only onnxruntime, "
            "numpy "
            "and Pillow."
            if onnx
            else "Export to ONNX above to add model.onnx and predict_onnx.py to it."
        )
    )


st.title("Runs")
with store_errors_shown():
    data_usage()
all_runs: list[runs.Run] = []
with store_errors_shown():
    all_runs = runs.all_runs()
lazy_tabs(
    "runs.tab",
    {
        "Compare runs": lambda: (
            compare_section(all_runs)
            if all_runs
            else st.info("No run yet: start one on the Transfer learning page.")
        ),
        "Effect of freezing depth": experiment_section,
        "Evaluate and export": lambda: evaluate_section(all_runs),
    },
)
