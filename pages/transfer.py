"""Transfer learning: a dataset in, a plan from the lecture's tables, a background fine-tune, watched live."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core.data.errors import DatasetError
from core.data.health import Health, health
from core.data.images import thumbnail
from core.data.ingest import Dataset, scan
from core.data.split import stratified_split
from core.data.uploads import save_upload
from core.finetune import bundle, planning
from core.finetune.config import AUGMENTS, RECIPES, TrainConfig
from core.finetune.data import resolve_source
from core.finetune.weights import OFFLINE_ARCH, WeightsError, WeightsReport, check_file, hub_reachable
from core.jobs.store import StoreError
from core.present import fmt, mdtable, run_plots, style
from core.runs import launch
from core.runs import record as runs
from core.zoo.catalog import CURATED, BackboneError, resolve_name
from core.zoo.recommend import recipe_for
from pages._widgets import (
    chart,
    current_settings,
    derived,
    lacks,
    refused,
    role_note,
    route_through_app,
    store_errors_shown,
    table,
)

route_through_app()


UPLOAD_CAP_MB = int(st.get_option("server.maxUploadSize"))
# What a visitor sees first (the data's health, the plan) draws no Plotly chart: the first chart of a browser
# session loads plotly.js, about 0.7 s of the browser's main thread here, which kept a new visitor's page from
# being whole within 2 s (issue 30). Nor a data grid, which costs it about 0.25 s more (core.present.mdtable):
# the class counts (up to a dozen classes) and the per-stage LRs are Markdown tables with bars; the LR chart
# on a
# log axis is a toggle away, and the run's curves (a run's own view) stay Plotly charts.


@st.cache_data(show_spinner="Reading the dataset…", max_entries=8)
def load_dataset(source: str, per_class: int, size: int) -> tuple[Dataset, Health]:
    cfg = TrainConfig(data=source, demo_per_class=per_class, demo_size=size)
    ds = scan(resolve_source(source, cfg))
    return ds, health(ds)


def data_section() -> tuple[str, TrainConfig, Dataset | None]:
    st.subheader("1 · Data")
    kind = st.radio(
        "Source", ["Built-in demo dataset", "Upload a zip of class folders"], horizontal=True, key="tr.source"
    )
    base = TrainConfig()
    source, up = "demo", None
    if kind.startswith("Built-in"):
        cols = st.columns(2)
        base.demo_per_class = int(cols[0].slider("Images per class", 10, 200, 60, 10, key="tr.per_class"))
        base.demo_size = int(
            cols[1].select_slider(
                "Demo images drawn at (px)",
                [32, 48, 64, 96],
                64,
                key="tr.demo_size",
                help="The size the demo generator draws its images at, on disk. Training resizes them to the "
                "'Training input size' below.",
            )
        )
    else:
        up = st.file_uploader(
            f"Zip of class folders (class_name/image.jpg), up to {UPLOAD_CAP_MB} MB",
            type=["zip"],
            key="tr.upload",
            **lacks("upload"),
        )
        if up is not None and refused("upload"):
            up = None
        if up is None:
            st.info("Upload a zip to continue, or pick the demo dataset.")
            return source, base, None
    base.data = source
    try:
        if up is not None:
            source = base.data = str(save_upload(up.getvalue(), ".zip"))
        ds, report = load_dataset(source, base.demo_per_class, base.demo_size)
    except DatasetError as err:
        st.error(f"This dataset cannot be used: {fmt.md(err)}")
        return source, base, None
    show_health(ds, report)
    return source, base, ds


def show_health(ds: Dataset, report: Health) -> None:
    counts = pd.DataFrame({"class": list(report.counts), "images": list(report.counts.values())})
    left, right = st.columns([1, 1])
    with left:  # bars in the table, no chart (see the top)
        top = max(int(counts["images"].max()), 1)
        if len(counts) <= mdtable.MAX_ROWS:
            st.markdown(
                mdtable.table(
                    ["class", "images", "against the largest class"],
                    [
                        (c, fmt.count(int(n)), mdtable.bar(int(n), top))
                        for c, n in zip(counts["class"], counts["images"])
                    ],
                    [False, True, False],
                )
            )
        else:  # many classes: a grid that scrolls and sorts
            table(
                counts,
                height=300,
                column_config={
                    "images": st.column_config.ProgressColumn(
                        "images",
                        format="%d",
                        min_value=0,
                        max_value=top,
                        help="Images in the class; the bar is its size against the largest class.",
                    )
                },
            )
    with right:
        st.markdown(
            f"**{sum(report.counts.values())} images in {len(ds.classes)} classes** · imbalance "
            f"{report.imbalance:.1f}x · sizes "
            f"{report.sizes['width'].min()}–{report.sizes['width'].max()} px wide"
        )
        for w in report.warnings:
            st.warning(fmt.md(w))
        if not report.warnings:
            st.success("No imbalance, tiny classes, duplicates or skipped files.")
        if len(report.skipped):
            st.dataframe(report.skipped, hide_index=True, height=150)
        if len(report.duplicates):
            st.dataframe(
                report.duplicates.assign(paths=report.duplicates["paths"].map(" = ".join)),
                hide_index=True,
                height=150,
            )
    grid = st.columns(min(len(ds.classes), 6))
    for col, label in zip(grid, range(len(ds.classes))):
        paths = [s.path for s in ds.samples if s.label == label][:3]
        col.image(
            [thumbnail(f"{ds.root}/{p}") for p in paths],
            caption=[fmt.md(ds.classes[label])] * len(paths),
            width=64,
        )


@st.cache_data(max_entries=32)
def stage_lrs(model: str, recipe: str, lr: float, layer_decay: float, freeze_stages: int, n_classes: int):
    """Per-stage trainable flags and LRs; built once per choice, not on every rerun."""
    cfg = TrainConfig(model=model, recipe=recipe, lr=lr, layer_decay=layer_decay, freeze_stages=freeze_stages)
    return planning.group_lrs(cfg, n_classes)


@st.cache_data(show_spinner="Checking the weights against the backbone…", max_entries=16)
def weights_report(arch: str, path: str, n_classes: int) -> WeightsReport:
    return check_file(arch, path, n_classes)


def show_weights_report(report: WeightsReport) -> None:
    st.caption(
        f"{report.matched_weights} of {report.backbone_weights} backbone weight tensors matched "
        f"({report.matched_fraction:.0%}) · {report.loaded} tensors load · {len(report.missing)} missing · "
        f"{len(report.unexpected)} unexpected · {len(report.mismatched)} of the wrong shape"
    )
    with st.expander("Which tensors"):
        st.dataframe(
            pd.DataFrame(
                [("missing", k, "") for k in report.missing]
                + [("unexpected", k, "") for k in report.unexpected]
                + [("wrong shape", k, f"file {a} vs model {b}") for k, a, b in report.mismatched],
                columns=["kind", "tensor", "shapes"],
            ),
            hide_index=True,
            height=200,
        )


def uploaded_weights(base: TrainConfig, n_classes: int) -> str:
    """The uploaded state_dict, checked against the backbone before launch; returns why Start is blocked."""
    up = st.file_uploader(
        "state_dict (.safetensors)", type=["safetensors"], key="tr.wfile", **lacks("upload")
    )
    if up is not None and refused("upload"):
        up = None
    if up is None:
        st.warning("Upload a .safetensors state_dict, or pick other weights.")
        return "no weights file uploaded"
    try:
        base.weights = str(save_upload(up.getvalue(), ".safetensors"))
        report = weights_report(base.model, base.weights, n_classes)
    except (WeightsError, DatasetError) as err:
        st.error(f"These weights are refused: {fmt.md(err)}")
        if isinstance(err, WeightsError) and err.report is not None:
            show_weights_report(err.report)
        return "the uploaded weights were refused"
    st.success(f"{fmt.md(up.name)} fits {base.model}.")
    show_weights_report(report)
    return ""


def plan_section(base: TrainConfig, ds: Dataset) -> tuple[TrainConfig, str]:
    st.subheader("2 · Plan")
    n = len(ds.samples)
    rec = recipe_for(n)
    st.info(
        f"{n} labelled images: the lecture's table says **{rec.recipe}** ({rec.size_band}; what to freeze: "
        f"{rec.freeze}). Default backbone: {OFFLINE_ARCH} with the offline ImageNet weights."
    )
    cols = st.columns(4)
    options = list(dict.fromkeys([OFFLINE_ARCH, *CURATED]))
    base.model = cols[0].selectbox("Backbone", options, key="tr.model")
    other = cols[0].text_input("…or any timm name", key="tr.model_any", placeholder="e.g. regnety_008")
    if other.strip():
        try:
            base.model = resolve_name(other)
        except BackboneError as err:
            cols[0].error(fmt.md(err))
    weights = cols[1].selectbox(
        "Weights",
        ["offline", "hub", "random", "upload safetensors"],
        key="tr.weights",
        help="offline: the packaged ImageNet EfficientNet-Lite0; hub: timm download",
    )
    base.recipe = cols[2].selectbox(
        "Recipe", RECIPES, index=RECIPES.index(rec.engine_recipe), key="tr.recipe"
    )
    base.augment = cols[3].selectbox("Augmentation", AUGMENTS, index=1, key="tr.augment")
    cols = st.columns(4)
    derived("tr.ep", SUGGESTED_EPOCHS[base.recipe])
    base.epochs = int(
        cols[0].number_input(
            "Epochs",
            1,
            500,
            key="tr.ep",
            help="Follows the recipe (the probe's epochs are cheap) until you edit it.",
        )
    )
    base.batch_size = int(cols[1].number_input("Batch", 1, 512, 32, key="tr.batch"))
    base.image_size = int(
        cols[2].number_input(
            "Training input size (px)",
            32,
            512,
            96,
            16,
            key="tr.size",
            help="Every image is resized to this before it enters the network (the estimate, LR test "
            "and run use it).",
        )
    )
    st.session_state.setdefault("tr.lr", 1e-3)
    base.lr = float(cols[3].number_input("Head LR", 1e-6, 1.0, format="%.1e", key="tr.lr"))
    base.weights = weights
    blocked = ""
    if weights == "upload safetensors":
        blocked = uploaded_weights(base, len(ds.classes))
    if base.weights == "offline" and base.model != OFFLINE_ARCH:
        blocked = f"offline ImageNet weights exist only for {OFFLINE_ARCH}; pick hub, random or an upload"
        st.warning(f"Offline weights exist only for {OFFLINE_ARCH}. Pick hub, random or upload a file.")
    if base.weights == "hub" and not hub_reachable_cached():
        blocked = (
            "hub weights must be downloaded from the Hugging Face hub, which this machine cannot reach; "
            f"pick offline ({OFFLINE_ARCH}), random, or upload a .safetensors file"
        )
        st.warning(
            f"The Hugging Face hub cannot be reached from this machine, so {fmt.md(base.model)}'s pretrained "
            "weights cannot be downloaded."
        )
    settings = current_settings()
    base.device = settings.device  # cuda:N keeps its index
    base.threads = settings.threads
    show_stage_lrs(
        stage_lrs(base.model, base.recipe, base.lr, base.layer_decay, base.freeze_stages, len(ds.classes))
    )
    extras(base, ds)
    return base, blocked


def show_stage_lrs(groups: pd.DataFrame) -> None:
    """Each stage's learning rate: a table whose bars set it against the head's (a linear bar: the stem's
    share of the head's LR is what it is), and on request the lecture's chart on a log axis, where each
    step of the layer decay is the same height. A frozen stage has no LR. The chart waits for its toggle
    (see the top)."""
    frame = groups.assign(lr=groups["lr"].where(groups["trainable"], None))
    top = float(frame["lr"].max()) if frame["lr"].notna().any() else None
    st.markdown(
        mdtable.table(
            ["stage", "params", "LR", "vs the head's LR"],  # params in K and M, short headers: it fits 390 px
            [
                (
                    r.stage,
                    fmt.si(int(r.params)),
                    f"{r.lr:.3g}" if pd.notna(r.lr) else "frozen",
                    mdtable.bar(r.lr, top),
                )
                for r in frame.itertuples()
            ],
            [False, True, True, False],
        )
    )
    if st.toggle(
        "Show the learning rates on a log axis",
        key="tr.lrs.log",
        help="The lecture's picture of discriminative learning rates: each stage's LR is the layer decay "
        "times the next one's, so on a log axis the steps are equal.",
    ):
        chart(
            run_plots.bars(
                frame,
                "stage",
                "lr",
                "stage (stem to head)",
                "learning rate (log)",
                log_y=True,
                text="%{y:.3~g}",
            ),
            "tr.lrs",
        )


SUGGESTED_EPOCHS = {"linear_probe": 20, "finetune_top": 5, "finetune_full": 5, "scratch": 5}


@st.cache_data(ttl=60, show_spinner=False)
def hub_reachable_cached() -> bool:
    return hub_reachable(timeout=1.5)


def _plan_key(base: TrainConfig) -> tuple:
    return (
        base.data,
        base.model,
        base.weights,
        base.recipe,
        base.batch_size,
        base.image_size,
        base.device,
        base.threads,
        base.demo_per_class,
        base.demo_size,
    )


def extras(base: TrainConfig, ds: Dataset) -> None:
    """The epoch estimate and the LR range test. Their results stay on the page (with the settings they
    were made for) until the next one replaces them; a result made for other settings says so."""
    state, key = st.session_state, _plan_key(base)
    cols = st.columns(2)
    try:
        if cols[0].button("Estimate time per epoch", key="tr.estimate", **lacks("finetune")) and not refused(
            "finetune"
        ):
            split = stratified_split(ds, base.val_fraction, base.seed)
            bar = cols[0].progress(0.0, text=f"Timing a few real steps on {base.device}…")
            state["tr.estimate.result"] = (
                key,
                planning.estimate_epoch(
                    base,
                    len(split.train),
                    len(split.val),
                    on_stage=lambda f, what: bar.progress(f, text=f"Estimating the epoch: {what}…"),
                ),
            )
            bar.empty()
        if cols[1].button("Run an LR range test", key="tr.lrtest", **lacks("finetune")) and not refused(
            "finetune"
        ):
            bar = st.progress(0.0, text="LR range test: preparing the data and the model…")
            started = time.monotonic()

            def step(i: int, n: int) -> None:
                left = (time.monotonic() - started) / i * (n - i) if i else None
                bar.progress(
                    i / n,
                    text=f"LR range test: step {i} of at most {n}"
                    + (f" · about {left:.0f} s left" if left is not None else ""),
                )

            state["tr.lrtest.result"] = (key, *planning.lr_range(base, on_step=step))
            bar.empty()
    except (WeightsError, DatasetError, ValueError) as err:
        st.error(f"Cannot run this with the chosen settings: {fmt.md(err)}")
    if "tr.estimate.result" in state:
        made_for, est = state["tr.estimate.result"]
        cols[0].success(est.text())
        if made_for != key:
            cols[0].caption("Made for other settings than those above: estimate again to update it.")
    if "tr.lrtest.result" in state:
        made_for, frame, suggestion = state["tr.lrtest.result"]
        chart(run_plots.lr_finder(frame, suggestion), "tr.lrplot")
        st.caption(
            f"Suggested head LR {suggestion:.1e} (steepest fall of the smoothed loss)"
            + ("" if made_for == key else "; made for other settings than those above")
            + "."
        )
        st.button(
            f"Use {suggestion:.1e} as the head LR", key="tr.apply_lr", on_click=_apply_lr, args=(suggestion,)
        )


def _apply_lr(lr: float) -> None:
    st.session_state["tr.lr"] = float(f"{lr:.1e}")


def launch_section(cfg: TrainConfig, blocked: str) -> None:
    st.subheader("3 · Launch")
    derived("tr.name", runs.default_name(cfg.to_dict()))
    name = st.text_input("Run name", key="tr.name", help="Follows the backbone and recipe until you edit it.")
    if blocked:
        st.caption(f"Start is disabled: {blocked}.")
    role_note("finetune", "upload")
    if st.button("Start fine-tuning", type="primary", key="tr.launch", **lacks("finetune", bool(blocked))):
        if refused("finetune"):
            return
        try:
            run_id = launch.launch(cfg, name)
        except (runs.LaunchError, ValueError, StoreError) as err:
            st.error(fmt.md(err))
            return
        st.query_params["run"] = str(run_id)
        st.rerun()


def find_run(run_id: int) -> runs.Run | None:
    try:
        return runs.get(run_id)
    except KeyError:
        st.error(f"There is no run {run_id}.")
        return None


def watch(run_id: int) -> None:
    """A live run is polled once a second; a finished, failed or cancelled one is drawn once and costs
    nothing."""
    with store_errors_shown():
        run = find_run(run_id)
        if run is not None and run.active:
            watch_live(run_id)
        elif run is not None:
            watch_body(run)


@st.fragment(run_every=1.0)
def watch_live(run_id: int) -> None:
    with store_errors_shown():
        run = find_run(run_id)
        if run is None:
            return
        if not run.active:  # it ended: one full rerun draws it still, and polling stops
            st.rerun()
        watch_body(run)


def watch_body(run: runs.Run) -> None:
    colour = {"running": "blue", "queued": "orange", "done": "green", "failed": "red"}.get(run.status, "gray")
    st.markdown(f"**Run {run.id}** · {fmt.md(run.name)} · status :{colour}-background[{run.status_word}]")
    no_val = run.result.get("info", {}).get("no_val_classes")
    if no_val:
        st.warning(
            fmt.md(
                f"No validation image for class(es) {', '.join(no_val)}: val top-1 says nothing "
                "about them (a class needs at least 2 images)."
            )
        )
    prog = runs.progress(run)
    if run.status == "queued" or not prog.total_steps:
        st.progress(
            0.0,
            text="queued: waiting for a free slot and for the worker to start"
            if run.status == "queued"
            else f"{run.status_word} before the first step",
        )
    else:
        eta = (
            ""
            if run.status != "running"
            else " · estimating time left…"
            if prog.eta_s is None
            else f" · about {fmt.duration(prog.eta_s)} left"
        )
        st.progress(
            prog.fraction, text=f"epoch {prog.epoch}/{prog.epochs} · step {prog.step}/{prog.total_steps}{eta}"
        )
    legend = run.short_label()  # the Runs page's legend label: a phone's chart cuts no more than its end
    chart(
        run_plots.training_curves({legend: runs.curves(run.id)}, {legend: style.run_colour(run.id)}),
        f"tr.curves.{run.id}",
    )
    cols = st.columns(3)
    if run.active and cols[0].button("Stop this run", key=f"tr.stop.{run.id}", **lacks("finetune")):
        if not refused("finetune"):
            runs.request_cancel(run.id)
    if run.status in ("cancelled", "failed") and cols[1].button(
        "Resume", key=f"tr.resume.{run.id}", **lacks("finetune")
    ):
        if refused("finetune"):
            return
        try:
            launch.resume(run.id)
        except (runs.LaunchError, StoreError) as err:
            st.error(fmt.md(err))
        else:
            st.rerun()  # queued again: the live view takes over
    if run.error:
        st.error(f"The run failed: {fmt.md(run.error)}")
    if run.status == "done":
        best, epoch = run.result.get("best_top1"), run.result.get("best_epoch")
        kept = (
            f" at epoch {epoch}, chosen by {bundle.BEST_RULE}; the exported bundle holds that epoch's weights"
            if epoch
            else ""
        )
        st.success(
            f"Finished: best val top-1 {best:.1%}{kept} ({run.result.get('wall_s') or 0:.1f} s). "
            "Evaluate and export it on the Runs page."
        )


st.title("Transfer learning")
st.caption(
    "The lecture's recipes on your images: linear probe, fine-tune top layers, fine-tune all with "
    "discriminative learning rates (and scratch for contrast). Runs train in a background process."
)
requested = st.query_params.get("run")
run_id = runs.parse_id(requested)
if requested:  # a link to a run: the run first, the form below it
    st.subheader(f"Run {run_id}" if run_id is not None else "Watch")
    if run_id is None:
        st.error(f"?run={fmt.md(requested)} is not a run id: run ids are whole numbers such as ?run=3.")
    else:
        watch(run_id)
    form = st.expander("Start another run", expanded=False)
else:
    form = st.container()
with form:
    source, base, dataset = data_section()
    if dataset is not None:
        plan, blocked = plan_section(base, dataset)
        launch_section(plan, blocked)
if not requested:
    st.subheader("4 · Watch")
    st.info(
        "Launch a run above; its id goes into the address bar (?run=N), so a refresh or another browser "
        "shows the same run."
    )
