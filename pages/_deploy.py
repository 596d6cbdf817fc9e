"""The deployment view shared by the Block explorer's Deploy tab and Compare backbones' Deployment tab: the
runtimes to measure, the background job with its progress, and the per-runtime table with what parity
and int8 say."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import jobs
from core.deploy import job as deploy_job
from core.deploy import report
from core.deploy.deployable import Deployable
from core.deploy.measure import cached
from core.deploy.runtimes import compiler
from core.deploy.targets import SERVER, keys, label_of
from core.present import fmt
from pages._widgets import job_progress_bar, lacks, role_note
from pages._widgets import refused as refused_for

FORMATS = {
    "median ms": "{:.3f}",
    "p10 ms": "{:.3f}",
    "p90 ms": "{:.3f}",
    "speed-up vs eager": "{:.2f}×",
    "first call ms": "{:.2f}",
    "prepare s": "{:.2f}",
    "size MiB": "{:.2f}",
    "max abs diff": "{:.2e}",
    "top-1 agreement %": "{:.1f}%",
    "MACs": "{:,.0f}",
}


def pick_runtimes(key: str) -> tuple[str, ...]:
    chosen = st.multiselect(
        "Runtimes",
        list(keys(SERVER)),
        default=list(keys(SERVER)),
        key=key,
        bind="query-params",
        format_func=label_of,
        help="Each is prepared (exported, compiled, quantized: timed apart) and then timed "
        "interleaved, round by round, against PyTorch eager with the same threads.",
    )
    if "compile" in chosen:
        st.caption(
            "torch.compile compiles for a minute or more on a small CPU; its seconds are shown as its "
            "prepare time."
            + ("" if compiler() else " No C++ compiler was found here, so its row will say how to get one.")
        )
    return tuple(chosen) or ("eager",)


def memory_refusals(targets: list[Deployable]) -> list[str]:
    """Why a target cannot be deployed within this server's memory budget (parity and calibration inputs
    included), checked before the button is live; the job checks again."""
    out = []
    for t in targets:
        try:
            t.check_memory()
        except ValueError as err:
            out.append(str(err))
    return out


def results_of(targets: list[Deployable], threads: int) -> list[dict[str, Any] | None]:
    return [cached(t.key, t.resolution, threads) for t in targets]


def controls(targets: list[Deployable], threads: int, names: tuple[str, ...], key: str) -> bool:
    """The job's progress while one runs, else a button that measures what is not stored yet; True while
    running."""
    running = jobs.latest(deploy_job.KIND)
    if running is not None and running.active:
        progress(key)
        return True
    if running is not None and running.status in ("failed", "cancelled"):
        (st.error if running.status == "failed" else st.caption)(
            f"The last deployment job {running.status} (#{running.id}): "
            f"{fmt.md(running.error or running.message)}"
        )
    missing = [
        t
        for t, r in zip(targets, results_of(targets, threads))
        if r is None or any(n not in r["runtimes"] for n in names)
    ]
    label = f"Measure {len(missing)} target(s) in {len(names)} runtime(s)" if missing else "Measure again"
    refused = memory_refusals(targets)
    for line in refused:
        st.error(fmt.md(line))
    role_note("deploy")
    if st.button(
        label,
        key=f"{key}.start",
        type="primary" if missing else "secondary",
        **lacks("deploy", bool(refused)),
    ):
        if refused_for("deploy"):
            return False
        try:
            deploy_job.start(targets, threads, names, refresh=True)
            st.rerun()
        except (RuntimeError, ValueError) as err:
            st.error(fmt.md(err))
    return False


@st.fragment(run_every=1.0)
def progress(key: str) -> None:
    job_progress_bar(deploy_job.KIND, f"{key}.stop")


def show_results(results: list[dict[str, Any]], key: str) -> None:
    """The per-runtime table, then what each result says beyond it (refusals, int8 slower than fp32, busy)."""
    frame = report.frame(results).drop(columns=["speed-up low", "speed-up high", "where", "colour"])
    # a Styler: an empty cell (eager has no parity, a failed runtime no latency) reads "—", never "None"
    st.dataframe(
        frame.style.format(FORMATS, na_rep="—"),
        hide_index=True,
        width="stretch",
        key=f"{key}.table",
        placeholder="—",
    )
    busy: dict[str, list[str]] = {}
    for r in results:
        if r["timing"]["busy"]:
            busy.setdefault(r["timing"]["note"], []).append(r["label"])
    if busy:  # one box, naming the models each note is about
        st.warning(fmt.md("\n\n".join(f"{', '.join(labels)}: {note}" for note, labels in busy.items())))
    for r in results:
        if r["int8_explanation"]:
            st.warning(fmt.md(f"{r['label']}: {r['int8_explanation']}"))
        for row in r["runtimes"].values():
            if row["error"]:
                st.info(fmt.md(f"{r['label']} · {row['label']}: {row['error']}"))
    env = results[0]["environment"]
    flags = (
        ", ".join(f for f in ("avx512_vnni", "avx_vnni", "amx_int8", "avx512f", "avx2") if env.get(f))
        or "none"
    )
    versions = " · ".join(f"{k} {v}" for k, v in env["versions"].items())
    st.caption(
        f"Measured on {fmt.md(env['cpu'])} (ISA: {flags}) · {env['threads']} intra-op thread(s) for "
        "torch and "
        f"ONNX Runtime, 1 inter-op · batch 1 · fp32 input · {versions}. Speed-up = the median of the "
        "per-round "
        "ratios against this target's eager, with a ~95% interval; parity on 32 real images (ONNX fp32 is "
        "refused above 1e-4), int8 calibrated on 64 others, "
        + fmt.md(results[0]["calibration_source"])
        + ". "
        + "; ".join(
            dict.fromkeys(
                fmt.md(f"{r['label']}: weights {r['weights']}") for r in results if r.get("weights")
            )
        )
    )
