"""Per-layer roofline profiles of backbones, as a background job (``python -m core.zoo.layers --job ID``),
and this machine's ceilings, both cached in the store with the setting they were measured in."""

from __future__ import annotations

import sys

import pandas as pd

from core import jobs
from core.jobs import store
from core.measure.ceilings import Ceilings, measure_ceilings
from core.measure.roofline import profile_layers, upgrade
from core.measure.settings import Setting
from core.zoo.catalog import build, check_resolution, default_resolution, resolve_name
from core.zoo.measure import setting_key, setting_meta

KIND = "layer-profile"
MODULE = "core.zoo.layers"


def ceilings(setting: Setting, refresh: bool = False) -> Ceilings:
    """This machine's peak compute and bandwidth for the setting, measured once and kept in the store."""
    key = setting_key("machine", 0, 1, setting, "ceilings")
    try:
        hit = None if refresh else store.get_measurement(key)
    except store.StoreError:
        hit, key = None, ""
    if hit is not None:
        return Ceilings(**hit)
    measured = measure_ceilings(setting)
    if key:
        try:
            store.put_measurement(key, "ceilings", setting_meta("machine", 0, 1, setting), measured.to_dict())
        except store.StoreError:
            pass  # read-only store: still right, just not kept
    return measured


def cached_profile(
    model: str, resolution: int | None, setting: Setting
) -> tuple[pd.DataFrame, Ceilings] | None:
    """A stored per-layer profile of this model, resolution and setting, with the ceilings it was drawn
    against."""
    arch = resolve_name(model)
    hit = store.get_measurement(
        setting_key(arch, resolution or default_resolution(arch), 1, setting, "layers")
    )
    if hit is None:
        return None
    frame = upgrade(pd.DataFrame(hit["rows"]))
    frame.attrs.update(hit["attrs"])
    return frame, Ceilings(**hit["ceilings"])


def start(model: str, resolution: int | None, setting: Setting) -> jobs.Job:
    running = jobs.latest(KIND)
    if running is not None and running.active:
        raise RuntimeError(f"a layer profile (#{running.id}) is already running; stop it or wait for it")
    arch = resolve_name(model)
    res = resolution or default_resolution(arch)
    check_resolution(res)
    args = {
        "model": arch,
        "resolution": res,
        "device": setting.device,
        "precision": setting.precision,
        "memory_format": setting.memory_format,
        "threads": setting.threads,
    }
    return jobs.start(KIND, MODULE, args, total=1, what="a layer profile")


def run(job_id: int) -> int:
    job = jobs.get(job_id)
    a = job.args
    setting = Setting(a["device"], a["precision"], a["memory_format"], a["threads"])
    jobs.mark_running(job_id)
    jobs.progress(job_id, 0, current="ceilings", message="measuring this machine's ceilings")
    roof = ceilings(setting)
    model = build(a["model"], a["resolution"])

    def on_layer(i: int, n: int, name: str) -> bool:
        if i == 0:
            jobs.set_total(job_id, n)
        return jobs.progress(job_id, i, current=name, message=f"timing layer {i + 1} of {n}: {name}")

    frame = profile_layers(model, (1, 3, a["resolution"], a["resolution"]), setting, roof, on_layer)
    if jobs.get(job_id).cancel:
        jobs.finish(job_id, "cancelled", message=f"stopped after {len(frame)} layers")
        return 0
    store.put_measurement(
        setting_key(a["model"], a["resolution"], 1, setting, "layers"),
        "layers",
        setting_meta(a["model"], a["resolution"], 1, setting),
        {
            **setting_meta(a["model"], a["resolution"], 1, setting),
            "rows": frame.to_dict("records"),
            "attrs": dict(frame.attrs),
            "ceilings": roof.to_dict(),
        },
    )
    jobs.progress(job_id, len(frame), current="", message="done")
    jobs.finish(job_id, "done", message=f"{a['model']}: {len(frame)} layers profiled")
    return 0


def main(argv: list[str] | None = None) -> int:
    return jobs.worker_main(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
