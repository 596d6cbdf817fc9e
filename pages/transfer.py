"""Transfer learning: a dataset in, a plan from the lecture's tables, a background fine-tune, watched live."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data.errors import DatasetError
from core.data.health import Health, health
from core.data.images import thumbnail
from core.data.ingest import Dataset, scan
from core.data.uploads import save_upload
from core.finetune import launch, planning, runs
from core.finetune.config import AUGMENTS, RECIPES, TrainConfig
from core.finetune.data import resolve_source
from core.finetune.weights import OFFLINE_ARCH, WeightsError, WeightsReport, check_file
from core.jobs.store import StoreError
from core.present import fmt, plots
from core.zoo.catalog import CURATED, BackboneError, resolve_name
from core.zoo.recommend import recipe_for
from pages._widgets import current_settings, route_through_app, store_errors_shown

route_through_app()

UPLOAD_CAP_MB = int(st.get_option("server.maxUploadSize"))


@st.cache_data(show_spinner="Reading the dataset…", max_entries=8)
def load_dataset(source: str, per_class: int, size: int) -> tuple[Dataset, Health]:
    cfg = TrainConfig(data=source, demo_per_class=per_class, demo_size=size)
    ds = scan(resolve_source(source, cfg))
    return ds, health(ds)


def data_section() -> tuple[str, TrainConfig, Dataset | None]:
    st.subheader("1 · Data")
    kind = st.radio("Source", ["Built-in demo dataset", "Upload a zip of class folders"], horizontal=True,
                    key="tr.source")
    base = TrainConfig()
    source, up = "demo", None
    if kind.startswith("Built-in"):
        cols = st.columns(2)
        base.demo_per_class = int(cols[0].slider("Images per class", 10, 200, 60, 10, key="tr.per_class"))
        base.demo_size = int(cols[1].select_slider("Image size (px)", [32, 48, 64, 96], 64, key="tr.demo_size"))
    else:
        up = st.file_uploader(f"Zip of class folders (class_name/image.jpg), up to {UPLOAD_CAP_MB} MB", type=["zip"],
                              key="tr.upload")
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
    left.plotly_chart(plots.bars(counts, "class", "images", "class", "images"), key="tr.counts")
    with right:
        st.markdown(f"**{sum(report.counts.values())} images in {len(ds.classes)} classes** · imbalance "
                    f"{report.imbalance:.1f}x · sizes {report.sizes['width'].min()}–{report.sizes['width'].max()} px wide")
        for w in report.warnings:
            st.warning(fmt.md(w))
        if not report.warnings:
            st.success("No imbalance, tiny classes, duplicates or skipped files.")
        if len(report.skipped):
            st.dataframe(report.skipped, hide_index=True, height=150)
    grid = st.columns(min(len(ds.classes), 6))
    for col, label in zip(grid, range(len(ds.classes))):
        paths = [s.path for s in ds.samples if s.label == label][:3]
        col.image([thumbnail(f"{ds.root}/{p}") for p in paths], caption=[fmt.md(ds.classes[label])] * len(paths),
                  width=64)


@st.cache_data(max_entries=32)
def stage_lrs(model: str, recipe: str, lr: float, layer_decay: float, freeze_stages: int, n_classes: int):
    """Per-stage trainable flags and LRs; built once per choice, not on every rerun."""
    cfg = TrainConfig(model=model, recipe=recipe, lr=lr, layer_decay=layer_decay, freeze_stages=freeze_stages)
    return planning.group_lrs(cfg, n_classes)


@st.cache_data(show_spinner="Checking the weights against the backbone…", max_entries=16)
def weights_report(arch: str, path: str, n_classes: int) -> WeightsReport:
    return check_file(arch, path, n_classes)


def show_weights_report(report: WeightsReport) -> None:
    st.caption(f"{report.matched_weights} of {report.backbone_weights} backbone weight tensors matched "
               f"({report.matched_fraction:.0%}) · {report.loaded} tensors load · {len(report.missing)} missing · "
               f"{len(report.unexpected)} unexpected · {len(report.mismatched)} of the wrong shape")
    with st.expander("Which tensors"):
        st.dataframe(pd.DataFrame(
            [("missing", k, "") for k in report.missing] + [("unexpected", k, "") for k in report.unexpected]
            + [("wrong shape", k, f"file {a} vs model {b}") for k, a, b in report.mismatched],
            columns=["kind", "tensor", "shapes"]), hide_index=True, height=200)


def uploaded_weights(base: TrainConfig, n_classes: int) -> str:
    """The uploaded state_dict, checked against the backbone before launch; returns why Start is blocked."""
    up = st.file_uploader("state_dict (.safetensors)", type=["safetensors"], key="tr.wfile")
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
    st.info(f"{n} labelled images: the lecture's table says **{rec.recipe}** ({rec.size_band}; what to freeze: "
            f"{rec.freeze}). Default backbone: {OFFLINE_ARCH} with the offline ImageNet weights.")
    cols = st.columns(4)
    options = list(dict.fromkeys([OFFLINE_ARCH, *CURATED]))
    base.model = cols[0].selectbox("Backbone", options, key="tr.model")
    other = cols[0].text_input("…or any timm name", key="tr.model_any", placeholder="e.g. regnety_008")
    if other.strip():
        try:
            base.model = resolve_name(other)
        except BackboneError as err:
            cols[0].error(fmt.md(err))
    weights = cols[1].selectbox("Weights", ["offline", "hub", "random", "upload safetensors"], key="tr.weights",
                                help="offline: the packaged ImageNet EfficientNet-Lite0; hub: timm download")
    base.recipe = cols[2].selectbox("Recipe", RECIPES, index=RECIPES.index(rec.engine_recipe), key="tr.recipe")
    base.augment = cols[3].selectbox("Augmentation", AUGMENTS, index=1, key="tr.augment")
    cols = st.columns(4)
    base.epochs = int(cols[0].number_input("Epochs", 1, 500, 20 if base.recipe == "linear_probe" else 5, key="tr.ep"))
    base.batch_size = int(cols[1].number_input("Batch", 1, 512, 32, key="tr.batch"))
    base.image_size = int(cols[2].number_input("Image size (px)", 32, 512, 96, 16, key="tr.size"))
    base.lr = float(cols[3].number_input("Head LR", 1e-6, 1.0, 1e-3, format="%.0e", key="tr.lr"))
    base.weights = weights
    blocked = ""
    if weights == "upload safetensors":
        blocked = uploaded_weights(base, len(ds.classes))
    if base.weights == "offline" and base.model != OFFLINE_ARCH:
        st.warning(f"Offline weights exist only for {OFFLINE_ARCH}; this run would fail. Pick hub or random.")
    settings = current_settings()
    base.device = settings.device                     # cuda:N keeps its index
    base.threads = settings.threads
    groups = stage_lrs(base.model, base.recipe, base.lr, base.layer_decay, base.freeze_stages, len(ds.classes))
    st.plotly_chart(plots.bars(groups.assign(lr=groups["lr"].where(groups["trainable"], None)), "stage", "lr",
                               "stage (stem to head)", "learning rate (log)", log_y=True), key="tr.lrs")
    st.dataframe(groups, hide_index=True)
    extras(base, n)
    return base, blocked


def extras(base: TrainConfig, n: int) -> None:
    cols = st.columns(2)
    try:
        if cols[0].button("Estimate time per epoch", key="tr.estimate"):
            secs = planning.estimate_epoch_s(base, int(n * (1 - base.val_fraction)))
            cols[0].success(f"About {secs:.1f} s per epoch on {base.device} (from 3 timed steps, "
                            f"batch {base.batch_size})")
        if cols[1].button("Run an LR range test", key="tr.lrtest"):
            with st.spinner("LR range test…"):
                frame, suggestion = planning.lr_range(base)
            st.plotly_chart(plots.lr_finder(frame, suggestion), key="tr.lrplot")
            st.caption(f"Suggested head LR {suggestion:.1e} (steepest fall of the smoothed loss).")
    except (WeightsError, DatasetError, ValueError) as err:
        st.error(f"Cannot run this with the chosen settings: {fmt.md(err)}")


def launch_section(cfg: TrainConfig, blocked: str) -> None:
    st.subheader("3 · Launch")
    name = st.text_input("Run name", value=f"{cfg.model} · {cfg.recipe}", key="tr.name")
    if blocked:
        st.caption(f"Start is disabled: {blocked}.")
    if st.button("Start fine-tuning", type="primary", key="tr.launch", disabled=bool(blocked)):
        try:
            run_id = launch.launch(cfg, name)
        except (runs.LaunchError, ValueError, StoreError) as err:
            st.error(fmt.md(err))
            return
        st.query_params["run"] = str(run_id)
        st.rerun()


@st.fragment(run_every=1.0)
def watch(run_id: int) -> None:
    with store_errors_shown():
        watch_body(run_id)


def watch_body(run_id: int) -> None:
    try:
        run = runs.get(run_id)
    except KeyError:
        st.error(f"There is no run {run_id}.")
        return
    colour = {"running": "blue", "queued": "orange", "done": "green", "failed": "red"}.get(run.status, "gray")
    st.markdown(f"**Run {run.id}** · {fmt.md(run.name)} · status :{colour}-background[{run.status}]")
    no_val = run.result.get("info", {}).get("no_val_classes")
    if no_val:
        st.warning(fmt.md(f"No validation image for class(es) {', '.join(no_val)}: val top-1 says nothing "
                          "about them (a class needs at least 2 images)."))
    prog = runs.progress(run)
    eta = f" · about {prog.eta_s:.0f} s left" if prog.eta_s is not None else ""
    st.progress(prog.fraction, text=f"epoch {prog.epoch}/{prog.epochs} · step {prog.step}/{prog.total_steps}{eta}")
    st.plotly_chart(plots.training_curves({f"run {run.id}": runs.curves(run.id)}), key=f"tr.curves.{run.id}")
    cols = st.columns(3)
    if run.active and cols[0].button("Stop", key=f"tr.stop.{run.id}"):
        runs.request_cancel(run.id)
    if run.status in ("cancelled", "failed") and cols[1].button("Resume", key=f"tr.resume.{run.id}"):
        try:
            launch.resume(run.id)
        except (runs.LaunchError, StoreError) as err:
            st.error(fmt.md(err))
    if run.error:
        st.error(f"The run failed: {fmt.md(run.error)}")
    if run.status == "done":
        best = run.result.get("best_top1")
        st.success(f"Finished: best val top-1 {best:.1%} in {run.result.get('wall_s') or 0:.1f} s. "
                   "Evaluate and export it on the Runs page.")


st.title("Transfer learning")
st.caption("The lecture's recipes on your images: linear probe, fine-tune top layers, fine-tune all with "
           "discriminative learning rates (and scratch for contrast). Runs train in a background process.")
requested = st.query_params.get("run")
source, base, dataset = data_section()
if dataset is not None:
    plan, blocked = plan_section(base, dataset)
    launch_section(plan, blocked)
st.subheader("4 · Watch")
run_id = runs.parse_id(requested)
if requested and run_id is None:
    st.error(f"?run={fmt.md(requested)} is not a run id: run ids are whole numbers such as ?run=3.")
elif run_id is not None:
    watch(run_id)
else:
    st.info("Launch a run above; its id goes into the address bar (?run=N), so a refresh or another browser "
            "shows the same run.")
