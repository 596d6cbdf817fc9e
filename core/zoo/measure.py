"""Backbone measurements on this machine, cached in the store: params and MACs, batch-1 latency, throughput
sweeps until out-of-memory or a time cap, and the table that joins them with published accuracy."""

from __future__ import annotations

import time
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn

from core.errors import first_line
from core.jobs import store
from core.measure import budget
from core.measure.profiling import ProfileError, autocast_for, profile_module, resolve_device
from core.measure.settings import Setting, threads_for
from core.measure.timing import time_call
from core.zoo.catalog import (
    BackboneError,
    build,
    check_resolution,
    default_accuracy,
    default_resolution,
    resolve_name,
)

KIND = "backbone"


def setting_key(name: str, resolution: int, batch: int, s: Setting, kind: str = KIND) -> str:
    """The store key of one measurement of ``kind`` (latency, count, sweep, layers, ceilings) in a setting."""
    return store.measurement_key(
        kind,
        name,
        resolution,
        batch,
        s.device,
        s.precision,
        s.memory_format,
        s.resolved_threads(),
        torch.__version__,
    )


def setting_meta(name: str, resolution: int, batch: int, s: Setting) -> dict[str, Any]:
    return {
        "model": name,
        "resolution": resolution,
        "batch": batch,
        "device": s.device,
        "precision": s.precision,
        "memory_format": s.memory_format,
        "threads": s.resolved_threads(),
        "torch_version": torch.__version__,
    }


def cached(name: str, resolution: int | None = None, setting: Setting = Setting()) -> dict[str, Any] | None:
    """An earlier measurement of this model at this resolution and setting, or None."""
    arch = resolve_name(name)
    return store.get_measurement(setting_key(arch, resolution or default_resolution(arch), 1, setting))


def measure(
    name: str,
    resolution: int | None = None,
    setting: Setting = Setting(),
    refresh: bool = False,
    min_time_s: float = 0.3,
    time_it: bool = True,
) -> dict[str, Any]:
    """Params, MACs and batch-1 latency of one backbone; cached in the store unless ``refresh``. With
    ``time_it=False`` the latency is left for ``time_together`` to fill in."""
    arch = resolve_name(name)
    res = resolution or default_resolution(arch)
    check_resolution(res)
    key = setting_key(arch, res, 1, setting)
    if not refresh and (hit := store.get_measurement(key)) is not None:
        return hit
    t0 = time.perf_counter()
    model = build(arch, res)
    try:
        prof = profile_module(
            model,
            (1, 3, res, res),
            **setting.profile_kwargs(),
            min_time_s=min_time_s,
            min_iters=5,
            warmup=2,
            time_it=time_it,
        )
    except ProfileError:
        raise
    except Exception as err:  # a resolution the architecture cannot take fails inside its forward
        raise BackboneError(f"{arch} cannot take a {res}x{res} input: {first_line(err)}") from err
    payload = {
        **setting_meta(arch, res, 1, setting),
        "default_resolution": default_resolution(arch),
        "params": prof.params,
        "macs": prof.macs,
        "flops": prof.flops,
        "latency_ms": prof.latency_ms,
        "latency_p10_ms": prof.latency_p10_ms,
        "latency_p90_ms": prof.latency_p90_ms,
        "iters": prof.latency.iters if prof.latency else 0,
        "latency_wall_ms": prof.latency.wall_median_ms if prof.latency else None,
        "launch_bound": bool(prof.latency and prof.latency.launch_bound),
        "activation_bytes": prof.activation_bytes,
        "activation_precision": prof.activation_precision,
        "peak_memory_bytes": prof.peak_memory_bytes,
        "device_name": prof.env.device_name,
        "uncounted_ops": prof.uncounted_ops,
        "counters_agree": prof.cross_check.agree,
        "measure_s": round(time.perf_counter() - t0, 3),
        "measured_at": time.time(),
    }
    store.put_measurement(key, KIND, setting_meta(arch, res, 1, setting), payload)
    return payload


def time_together(
    names: list[str],
    resolution: int | None,
    setting: Setting,
    on_round: Callable[[int], bool] | None = None,
    max_time_s: float = 60.0,
) -> dict[str, Any]:
    """Batch-1 latency of several backbones timed interleaved, round by round (each model once per round,
    the order reversed every other round), so that one table's models share the machine's drifts; each
    stored measurement gets its latency and the group it was timed with."""
    from core.measure.profiling import time_modules

    archs = [resolve_name(n) for n in names]
    resolutions = [resolution or default_resolution(a) for a in archs]
    models = [build(a, r) for a, r in zip(archs, resolutions)]
    kw = setting.profile_kwargs()
    timed = time_modules(
        models,
        [(1, 3, r, r) for r in resolutions],
        kw["device"],
        kw["dtype"],
        kw["memory_format"],
        kw["threads"],
        round_time_s=0.0,
        min_rounds=9,
        max_rounds=60,
        max_time_s=max_time_s,
        on_round=on_round,
    )
    group = {"models": archs, "rounds": timed.rounds, "busy": timed.busy, "note": timed.note()}
    for arch, res, lat in zip(archs, resolutions, timed.latency):
        key = setting_key(arch, res, 1, setting)
        payload = store.get_measurement(key)
        if payload is None:
            continue
        payload.update(
            latency_ms=lat.median_ms,
            latency_p10_ms=lat.p10_ms,
            latency_p90_ms=lat.p90_ms,
            iters=lat.iters,
            latency_wall_ms=lat.wall_median_ms,
            launch_bound=lat.launch_bound,
            timed_with=group,
            measured_at=time.time(),
        )
        store.put_measurement(key, KIND, setting_meta(arch, res, 1, setting), payload)
    return group


COUNTED = Setting("cpu", "fp32", "contiguous", 1)  # counts are device-independent: kept under one setting


def counted(name: str, resolution: int | None = None) -> dict[str, Any] | None:
    """A stored ``count`` of this model at this resolution, or None (nothing is built)."""
    arch = resolve_name(name)
    try:
        return store.get_measurement(
            setting_key(arch, resolution or default_resolution(arch), 1, COUNTED, "count")
        )
    except store.StoreError:
        return None


def count(name: str, resolution: int | None = None) -> dict[str, Any]:
    """Params and MACs only (no timing, device-independent), cached in the store."""
    from core.measure.counting import fvcore_macs

    arch = resolve_name(name)
    res = resolution or default_resolution(arch)
    check_resolution(res)
    key = setting_key(arch, res, 1, COUNTED, kind="count")
    try:
        if (hit := store.get_measurement(key)) is not None:
            return hit
    except store.StoreError:
        key = ""  # counting needs no store: count, and skip the cache
    model = build(arch, res, initialise=False)  # counting needs shapes, not values
    try:
        macs = fvcore_macs(model, (torch.randn(1, 3, res, res),)).total
    except Exception as err:  # noqa: BLE001
        raise BackboneError(f"{arch} cannot take a {res}x{res} input: {first_line(err)}") from err
    payload = {
        "model": arch,
        "resolution": res,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": macs,
    }
    try:
        if key:
            store.put_measurement(key, "count", setting_meta(arch, res, 1, COUNTED), payload)
    except store.StoreError:
        pass  # a read-only store: the count is still right, just not kept

    return payload


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)) or "out of memory" in str(err).lower()


def throughput_sweep(
    name: str,
    resolution: int | None = None,
    setting: Setting = Setting(),
    batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256),
    time_cap_s: float = 20.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Inference images/s per batch size until out-of-memory, the time cap or a stop request; marks
    saturation."""
    arch = resolve_name(name)
    res = resolution or default_resolution(arch)
    check_resolution(res)
    dev = resolve_device(setting.device)
    fmt = torch.channels_last if setting.memory_format == "channels_last" else torch.contiguous_format
    model = build(arch, res)
    one = budget.footprint(model, (1, 3, res, res))
    model = model.to(dev, memory_format=fmt)
    with threads_for(setting.threads):
        rows, stop_reason = _sweep(
            model,
            res,
            dev,
            fmt,
            setting.precision,
            batches,
            time_cap_s,
            should_stop,
            arch,
            lambda b: one.param_bytes + b * (one.input_bytes + one.activation_bytes),
        )
    payload = {
        **setting_meta(arch, res, 0, setting),
        "mode": "inference",
        "rows": rows,
        "stop_reason": stop_reason,
        "saturation_batch": saturation_batch(rows),
        "measured_at": time.time(),
    }
    store.put_measurement(
        setting_key(arch, res, 0, setting, "sweep"), "sweep", setting_meta(arch, res, 0, setting), payload
    )
    return payload


def _sweep(
    model: nn.Module,
    res: int,
    dev: torch.device,
    fmt: torch.memory_format,
    precision: str,
    batches: tuple[int, ...],
    time_cap_s: float,
    should_stop: Callable[[], bool],
    arch: str,
    needs: Callable[[int], int] = lambda b: 0,
) -> tuple[list[dict[str, Any]], str]:
    """Each batch in turn; it stops before a batch whose forward (``needs(batch)`` bytes, found on the meta
    device) is over the memory budget, at the time cap, on a stop request or out of memory."""
    rows, stop_reason, start = [], "all batch sizes done", time.perf_counter()
    for batch in batches:
        try:
            budget.check_bytes(f"batch {batch}", needs(batch), "")
        except budget.BudgetError:
            stop_reason = (
                f"memory budget: batch {batch} would need about {needs(batch) / 2**30:.2f} GiB, over "
                f"{budget.memory_budget()[0] / 2**30:.2f} GiB ({budget.memory_budget()[1]})"
            )
            break
        left = time_cap_s - (time.perf_counter() - start)
        if rows and rows[-1]["step_ms"] / 1e3 * 2 * 5 > left:  # the next batch would overrun the cap
            stop_reason = f"time cap of {time_cap_s:.0f} s"
            break
        if should_stop():
            stop_reason = "stopped"
            break
        try:
            x = torch.randn(batch, 3, res, res, device=dev).contiguous(memory_format=fmt)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            with (
                torch.inference_mode(),
                autocast_for(dev, precision),
            ):  # entered once, outside the timed calls
                stats = time_call(
                    lambda: model(x), dev, warmup=1, min_iters=3, min_time_s=0.2, warmup_time_s=0.0
                )
        except Exception as err:  # noqa: BLE001  OOM ends the sweep; anything else is reported
            if _is_oom(err):
                stop_reason = f"out of memory at batch {batch}"
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                break
            raise BackboneError(f"{arch} failed at batch {batch}: {first_line(err)}") from err
        peak = int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None
        rows.append(
            {
                "batch": batch,
                "step_ms": stats.median_ms,
                "images_per_s": batch / (stats.median_ms / 1e3),
                "peak_memory_bytes": peak,
            }
        )
    return rows, stop_reason


def saturation_batch(rows: list[dict[str, Any]], fraction: float = 0.95) -> int | None:
    """The smallest batch whose throughput reaches ``fraction`` of the best one."""
    if not rows:
        return None
    best = max(r["images_per_s"] for r in rows)
    return next(r["batch"] for r in rows if r["images_per_s"] >= fraction * best)


def results_frame(setting: Setting) -> pd.DataFrame:
    """Every cached batch-1 measurement for this setting, joined with published accuracy."""
    rows = store.list_measurements(
        KIND,
        device=setting.device,
        precision=setting.precision,
        memory_format=setting.memory_format,
        threads=setting.resolved_threads(),
        torch_version=torch.__version__,
    )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values("measured_at").drop_duplicates(["model", "resolution"], keep="last")
    acc = default_accuracy()[["model", "tag", "top1", "top5", "img_size"]]
    frame = frame.merge(acc.rename(columns={"img_size": "eval_resolution"}), on="model", how="left")
    frame["GMACs"] = frame["macs"] / 1e9
    frame["params (M)"] = frame["params"] / 1e6
    groups = (
        frame["timed_with"] if "timed_with" in frame else pd.Series([None] * len(frame), index=frame.index)
    )
    frame["timing"] = [
        f"interleaved with {len(g['models']) - 1} other(s), {g['rounds']} rounds"
        + (" (machine busy)" if g.get("busy") else "")
        if isinstance(g, dict) and len(g["models"]) > 1
        else "timed alone"
        if isinstance(g, dict) or pd.notna(lat)
        else "latency follows"
        for g, lat in zip(groups, frame["latency_ms"])
    ]
    return frame.reset_index(drop=True)


def one_per_model(frame: pd.DataFrame, prefer: str) -> pd.DataFrame:
    """One row per model from a results frame: the measurement at the resolution in column ``prefer``
    ('eval_resolution': where its accuracy was measured; 'default_resolution': timm's input size) when
    there is one, else the latest. ``resolution matches`` says whether the preferred resolution was
    found."""
    if frame.empty:
        return frame.assign(**{"resolution matches": pd.Series(dtype=bool)})
    frame = frame.assign(**{"resolution matches": frame["resolution"] == frame[prefer]})
    ordered = frame.sort_values(["resolution matches", "measured_at"])
    return ordered.drop_duplicates("model", keep="last").sort_index().reset_index(drop=True)


def sweeps(setting: Setting, kind: str = "sweep") -> list[dict[str, Any]]:
    """The latest stored throughput sweep per (model, resolution) for this setting."""
    rows = [
        s
        for s in store.list_measurements(kind, device=setting.device, precision=setting.precision)
        if s.get("memory_format") == setting.memory_format
    ]
    return list({(s["model"], s["resolution"]): s for s in rows}.values())
