"""Compare backbones: measured here, with published accuracy, Pareto frontiers, compound scaling,
recommender."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from core import jobs
from core.deploy import devices as devices_table
from core.deploy import job as deploy_job
from core.deploy import report
from core.deploy.deployable import Deployable
from core.measure.settings import Setting
from core.present import deploy_plots, fmt, plots
from core.zoo import layers, lecture
from core.zoo import worker as measure_worker
from core.zoo.catalog import (
    CURATED,
    MAX_RES,
    MIN_RES,
    BackboneError,
    check_resolution,
    close_models,
    default_resolution,
    is_model,
    search_models,
)
from core.zoo.measure import one_per_model, results_frame, sweeps
from core.zoo.pareto import pareto_front
from pages import _browser as browser_view
from pages import _choose as choose
from pages import _deploy as deploy_view
from pages import _scaling as scaling_view
from pages._roofline import show_ceilings, show_profile
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
    table,
)

route_through_app()

TABLE_COLUMNS = [
    "model",
    "top1",
    "resolution",
    "params (M)",
    "GMACs",
    "latency_ms",
    "latency_p10_ms",
    "latency_p90_ms",
    "latency_wall_ms",
    "timing",
    "top5",
    "tag",
    "eval_resolution",
    "device_name",
    "precision",
    "memory_format",
    "threads",
    "torch_version",
    "measure_s",
]


RENAMES = {
    "resolution": "resolution (px)",
    "latency_ms": "latency ms (median)",
    "latency_wall_ms": "host wall ms (GPU)",
    "latency_p10_ms": "p10 ms",
    "latency_p90_ms": "p90 ms",
    "top1": "top-1 % (timm)",
    "top5": "top-5 % (timm)",
    "tag": "weights tag",
    "eval_resolution": "eval px",
    "device_name": "device",
    "measure_s": "measure s",
}


def pick_models() -> list[str]:
    query = st.text_input(
        "Add any timm model (search by name)",
        key="bb.query",
        placeholder="e.g. regnet, deit",
        help="Press Enter: an exact name is added to the models below; else the matches are listed "
        "and offered there.",
    ).strip()
    extra = search_models(query) if query else []
    if query and not extra:
        near = close_models(query)
        st.warning(
            f"No timm model matches {fmt.md(repr(query))}"
            + (f"; did you mean {', '.join(fmt.md(m) for m in near)}?" if near else ".")
        )
    elif query.lower() in extra:
        exact = query.lower()
        chosen_now = st.session_state.get("bb.models")
        if chosen_now is not None and exact not in chosen_now:
            st.session_state["bb.models"] = [*chosen_now, exact]  # before the widget is drawn: allowed
        st.caption(
            f"{fmt.md(exact)} is in the models below"
            + (f"; {len(extra) - 1} other name(s) contain it too." if len(extra) > 1 else ".")
        )
    elif extra:
        shown = ", ".join(fmt.md(m) for m in extra[:8])
        st.caption(
            f"{len(extra)}{'+' if len(extra) == 50 else ''} timm model(s) contain {fmt.md(repr(query))}: "
            f"{shown}{' …' if len(extra) > 8 else ''}. Pick them in the Models list below."
        )
    linked = [
        m for m in st.query_params.get_all("bb.models") if m not in CURATED and is_model(m)
    ]  # a shared link
    options = list(
        dict.fromkeys(
            [
                *CURATED,
                *st.session_state.get("bb.extra", []),
                *linked,
                *extra,
                *st.session_state.get("bb.models", []),
            ]
        )
    )
    first = "bb.models" not in st.session_state  # a default only on the first draw: never beside a value
    chosen = st.multiselect(
        "Models", options, default=list(CURATED) if first else None, key="bb.models", bind="query-params"
    )
    st.session_state["bb.extra"] = [m for m in chosen if m not in CURATED]
    return chosen


def launch_controls(models: list[str], setting: Setting) -> None:
    cols = st.columns([1, 1, 1, 1])
    custom = cols[0].toggle(
        "Custom resolution",
        key="bb.custom_res",
        help="Off: each model at its own default input size (timm's pretrained config).",
    )
    res = (
        int(
            cols[1].number_input(
                "Resolution (px)", MIN_RES, MAX_RES, 224, 16, key="bb.res", disabled=not custom
            )
        )
        if custom
        else None
    )
    sweep = cols[2].toggle(
        "Throughput sweep too", key="bb.sweep", help="Batch 1, 2, 4, ... until OOM or the cap."
    )
    refresh = cols[3].toggle("Re-measure cached", key="bb.refresh", help="Ignore earlier measurements.")
    role_note("measure")
    if st.button(
        f"Measure {len(models)} model(s) on {setting.device}",
        type="primary",
        key="bb.launch",
        **lacks("measure", not models),
    ):
        if refused("measure"):
            return
        try:
            if res is not None:
                check_resolution(res)
            measure_worker.start(models, setting, res, sweep=sweep, refresh=refresh)
        except (RuntimeError, BackboneError) as err:
            st.error(fmt.md(err))


@st.fragment(run_every=1.0)
def job_progress() -> None:
    """Polls the running measurement job in the store; reruns the page once when it ends."""
    job = job_progress_bar(measure_worker.KIND, "bb.stop", describe=lambda j: f"Measuring {j.current or '…'}")
    if job is None:
        return
    if job.cancel:
        st.caption("Stopping after the current model…")
    with store_errors_shown():
        results_table(current_settings(), key="live")


def job_summary() -> None:
    job = jobs.latest(measure_worker.KIND)
    if job is None or job.active:
        return
    text = {
        "done": "Last measurement finished",
        "cancelled": "Last measurement was stopped",
        "failed": "Last measurement failed",
    }.get(job.status, job.status)
    (st.error if job.status == "failed" else st.caption)(
        f"{text} (job #{job.id}): {fmt.md(job.error or job.message)}"
    )


def results_table(setting: Setting, key: str = "static") -> None:
    frame = results_frame(setting)
    if frame.empty:
        st.info("Nothing measured yet for this device, precision, memory format and thread count.")
        return
    shown = frame[[c for c in TABLE_COLUMNS if c in frame.columns]].rename(columns=RENAMES)
    table(shown, width="stretch", key=f"bb.table.{key}")
    if frame["timing"].str.contains("busy").any():
        st.warning(
            "This machine was busy while some of these were timed: the figure is uncertain (see 'timing')."
        )
    if frame["timing"].nunique() > 1 or (frame["timing"] == "timed alone").any():
        st.caption(
            "Models timed in the same job are timed interleaved, round by round, so their ratios hold "
            "while the machine's speed drifts; rows from different jobs were not. Turn on 'Re-measure "
            "cached' and measure them together for a fair comparison."
        )
    if "launch_bound" in frame and frame["launch_bound"].fillna(False).astype(bool).any():
        names = ", ".join(frame.loc[frame["launch_bound"].fillna(False).astype(bool), "model"])
        st.caption(
            f"Launch-bound at batch 1: {names}. The host's wall time per call is over 10% above the GPU's "
            "own time: the CPU issuing kernels, not the GPU, sets their latency (a CUDA graph or "
            "torch.compile would remove most of it)."
        )
    if shown["top-1 % (timm)"].isna().any():
        st.caption(
            "An empty top-1 cell: timm publishes no ImageNet-1k figure for that model's default weights "
            "in assets/imagenet_accuracy.csv, so it is left out of the accuracy plots."
        )
    st.download_button(
        "Download CSV",
        shown.to_csv(index=False).encode(),
        "archscope-backbones.csv",
        "text/csv",
        key=f"bb.csv.{key}",
    )


def accuracy_tab(setting: Setting) -> None:
    frame = one_per_model(results_frame(setting), "eval_resolution")
    scored = frame.dropna(subset=["top1", "latency_ms"]) if not frame.empty else frame
    if scored.empty:
        st.info("Measure some backbones first: the plots use this machine's latencies.")
    else:
        mismatched = scored[~scored["resolution matches"]]
        if len(mismatched):
            st.warning(
                "Open markers: cost measured at another resolution than the accuracy. "
                + "; ".join(
                    f"{m}: cost at {r} px, top-1 at {e:.0f} px"
                    for m, r, e in zip(
                        mismatched["model"], mismatched["resolution"], mismatched["eval_resolution"]
                    )
                )
                + ". Measure those at their evaluation resolution (Custom resolution) to pair them fairly."
            )
        for x, title in (("latency_ms", "batch-1 latency on this device (ms)"), ("GMACs", "GMACs per image")):
            front = pd.Series(pareto_front(scored[x], scored["top1"]), index=scored.index)
            chart(plots.accuracy_vs_cost(scored, x, title, front), f"bb.acc.{x}")
            names = ", ".join(scored.loc[front, "model"])
            st.caption(f"Pareto frontier by {title}: {names}.")
        st.caption(
            "Accuracy is timm's published ImageNet-1k top-1 at its own evaluation resolution "
            "(assets/imagenet_accuracy.csv names the source); cost is measured here at the resolution shown."
        )
    st.markdown("#### The lecture's tables (the lecture's numbers, as printed)")
    for frame in (
        lecture.RESNET_FAMILY,
        lecture.MOBILE_FLOPS,
        lecture.EFFICIENTNET_TABLE,
        lecture.MOBILENET_VARIANTS,
    ):
        table(frame, width="stretch")  # full width: no column of the lecture's tables is cut off


def throughput_tab(setting: Setting) -> None:
    latest = sweeps(setting)
    if not latest:
        st.info("No throughput sweep yet: tick 'Throughput sweep too' on the Measure tab.")
        return
    chart(plots.throughput(latest), "bb.sweep.chart")
    rows = [
        {
            "model": s["model"],
            "resolution": s["resolution"],
            "saturation batch": s["saturation_batch"],
            "stopped by": s["stop_reason"],
            "best images/s": max((x["images_per_s"] for x in s["rows"]), default=math.nan),
        }
        for s in latest
    ]
    table(pd.DataFrame(rows))


def layers_tab(setting: Setting) -> None:
    """Where the time goes in one backbone: a per-layer roofline, profiled by a background job and kept."""
    frame = results_frame(setting)
    measured = list(dict.fromkeys(frame["model"])) if not frame.empty else []
    cols = st.columns([2, 1])
    model = cols[0].selectbox(
        "Model",
        measured or list(CURATED),
        key="roof.model",
        bind="query-params",
        help="The models measured on the Measure tab come first; any curated one works.",
    )
    mine = frame[frame["model"] == model] if not frame.empty else frame
    start = (
        int(mine.sort_values("measured_at")["resolution"].iloc[-1])
        if len(mine)
        else default_resolution(model)
    )
    res = int(
        cols[1].number_input(
            "Resolution (px)",
            32,
            1024,
            start,
            16,
            key=f"roof.res.{model}",
            bind="query-params",
            help="Starts at the resolution this model was last measured at.",
        )
    )
    job = jobs.latest(layers.KIND)
    if job is not None and job.active:
        layers_progress()
        return
    if job is not None and job.status == "failed":
        st.error(f"The last layer profile failed (job #{job.id}): {fmt.md(job.error or job.message)}")
    hit = layers.cached_profile(model, res, setting)
    label = "Profile again" if hit else f"Profile every layer of {model} at {res} px"
    if st.button(
        label,
        key="roof.start",
        type="secondary" if hit else "primary",
        **lacks(
            "profile", help="Times each layer alone on the input it gets in a real forward; a background job."
        ),
    ):
        if refused("profile"):
            return
        try:
            layers.start(model, res, setting)
        except (RuntimeError, BackboneError) as err:
            st.error(fmt.md(err))
        else:
            st.rerun()
    if hit is None:
        st.info("Not profiled yet for this device, precision and thread count.")
        return
    profile, c = hit
    show_ceilings(c)
    show_profile({model: profile}, c, "roof.bb")


@st.fragment(run_every=1.0)
def layers_progress() -> None:
    job_progress_bar(layers.KIND, "roof.stop")


def measure_tab(setting: Setting) -> None:
    models = pick_models()
    launch_controls(models, setting)
    running = jobs.latest(measure_worker.KIND)
    if running is not None and running.active:
        job_progress()
    else:
        job_summary()
        results_table(setting)


DEPLOY_DEFAULT = ["resnet50", "mobilenetv2_100", "mobilenetv3_small_100", "efficientnet_lite0"]


def deployment_tab(setting: Setting) -> None:
    """Backbones in every runtime, against MACs and the 30 ms budget, beside published phone figures."""
    models = st.multiselect(
        "Models",
        list(CURATED),
        default=DEPLOY_DEFAULT,
        key="dep.models",
        bind="query-params",
        max_selections=deploy_job.MAX_TARGETS,
    )
    names = deploy_view.pick_runtimes("dep.runtimes")
    budget = st.number_input(
        "Latency budget (ms)",
        1.0,
        1000.0,
        report.BUDGET_MS,
        5.0,
        key="dep.budget",
        help="The lecture: real-time on-device tasks need 30 ms or less.",
    )
    threads = setting.resolved_threads()
    try:
        targets = [Deployable.model(m) for m in models]
    except BackboneError as err:
        st.error(fmt.md(err))
        return
    running = deploy_view.controls(targets, threads, names, "bbdep")
    results = [r for r in deploy_view.results_of(targets, threads) if r is not None]
    st.markdown(
        "**In this browser** (laptop or phone): the same ONNX files in onnxruntime-web, beside the server"
    )
    browser_view.measure_in_browser(targets, "dep.browser")
    browser_view.phone_help()
    devices = browser_view.devices_section(budget, "dep.browser", targets)
    browsers = devices_table.as_targets(devices)
    if not results and browsers.empty:
        if not running:
            st.info(
                "Nothing measured in these runtimes yet at this thread count: press the button. The "
                "lecture's and the published phone figures are below meanwhile."
            )
        phone_tables()
        return
    frame = pd.concat(
        [f for f in (report.frame(results) if results else None, browsers) if f is not None and not f.empty],
        ignore_index=True,
    )
    phones = report.published_phone_latency()
    chart(deploy_plots.deploy_latency(frame, budget, phones[phones["timm"].isin(models)]), "dep.latency")
    st.caption(
        "Grey crosses: other people's phones as published (device, runtime and precision on hover; the "
        "tables below), at the MACs their sources state."
    )
    fits = report.fits(frame, budget)
    st.markdown(f"**Within {budget:g} ms**, per runtime: this server's, then each browser measured")
    if fits.empty:
        st.caption("None of the measured models fits the budget in any runtime.")
    else:
        table(fits, width="stretch")
    if results:
        deploy_view.show_results(results, "bbdep")
    phone_tables()


def phone_tables() -> None:
    st.markdown("**The lecture's iPhone table beside published phone measurements**")
    st.caption("The lecture (no device, runtime or precision given)")
    table(
        lecture.MOBILE_FLOPS.rename(
            columns={
                "timm": "timm name",
                "G(MACs), lecture's 'FLOPS'": "GMACs (the lecture's “FLOPS”)",
                "iPhone inference ms, lecture": "iPhone latency (ms)",
            }
        ),
        width="stretch",
    )
    st.caption("Published, with their device, runtime, precision and threads (assets/phone_latency.csv)")
    table(report.published_phone_table(), width="stretch")
    st.warning(
        "The lecture's ~90 ms against ~15 ms for ResNet-50 against MobileNetV2 (6×) is not what published "
        "Core ML measurements show: 27 ms against 21 ms on an iPhone XS (1.3×), as the phone's neural engine "
        "and GPU run large convolutions well. On a phone CPU (TF-Lite, Pixel 1) MobileNetV2 takes 73.8 ms: "
        "the runtime and the hardware move the answer as much as the MACs do."
    )


setting = current_settings()
st.title("Compare backbones")
st.caption(
    f"Measured on {setting.device} · {setting.precision} · {setting.memory_format} · "
    f"{setting.threads} thread{'' if setting.threads == 1 else 's'} · batch 1 for latency. Models are "
    "built with random weights "
    "(pretrained=False): profiling never downloads."
)
lazy_tabs(
    "bb.tab",
    {
        "Measure": lambda: measure_tab(setting),
        "Leaderboard": lambda: choose.leaderboard_tab(setting),
        "Accuracy vs cost": lambda: accuracy_tab(setting),
        "Throughput": lambda: throughput_tab(setting),
        "Where the time goes": lambda: layers_tab(setting),
        "Compound scaling": scaling_view.scaling_tab,
        "Recommender": lambda: choose.recommender_tab(setting),
        "Deployment": lambda: deployment_tab(setting),
    },
)
