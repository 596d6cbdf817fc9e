"""Backbone catalog (timm), measurements cached in the store, accuracy table, Pareto frontier."""
from __future__ import annotations

import difflib
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import timm
import torch
from torch import nn

from core.fmt import first_line
from core import store
from core.profiling import ProfileError, autocast_for, profile_module, resolve_device
from core.timing import time_call

CURATED: tuple[str, ...] = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "mobilenetv2_100", "mobilenetv3_large_100", "mobilenetv3_small_100",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_lite0",
    "convnext_tiny", "vit_base_patch16_224", "inception_v3", "vit_small_patch14_dinov2",
)
ACCURACY_CSV = Path(__file__).resolve().parents[1] / "assets" / "imagenet_accuracy.csv"
MIN_RES, MAX_RES = 32, 1024
KIND = "backbone"


class BackboneError(ValueError):
    """An unknown model or an input the model cannot take; the message says why in plain words."""


@dataclass(frozen=True)
class Setting:
    """Where a backbone is measured."""

    device: str = "cpu"
    precision: str = "fp32"
    memory_format: str = "contiguous"
    threads: int = 0

    def resolved_threads(self) -> int:
        return self.threads or torch.get_num_threads()


@lru_cache(maxsize=1)
def all_models() -> tuple[str, ...]:
    return tuple(timm.list_models())


def search_models(query: str, limit: int = 50) -> list[str]:
    """timm architectures whose name contains ``query`` (case-insensitive)."""
    q = query.strip().lower()
    return [m for m in all_models() if q in m][:limit] if q else []


def resolve_name(name: str) -> str:
    """A timm architecture name; 'resnet50.a1_in1k' keeps its architecture part. Unknown names fail clearly."""
    arch = name.strip().split(".")[0]
    if arch in all_models():
        return arch
    close = difflib.get_close_matches(arch, all_models(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else " Search the catalog for a timm name."
    raise BackboneError(f"unknown model {name!r}: timm has no architecture of that name.{hint}")


def default_resolution(name: str) -> int:
    cfg = timm.get_pretrained_cfg(resolve_name(name))
    return int(cfg.input_size[-1]) if cfg is not None else 224


def build(name: str, resolution: int | None = None) -> nn.Module:
    """The architecture with random weights (profiling never downloads); ViTs are built for ``resolution``."""
    arch = resolve_name(name)
    kwargs: dict[str, Any] = {}
    if resolution and resolution != default_resolution(arch) and _is_vit(arch):
        kwargs["img_size"] = resolution
    try:
        return timm.create_model(arch, pretrained=False, **kwargs).eval()
    except Exception as err:  # timm raises assorted errors for impossible sizes
        raise BackboneError(f"{arch} cannot be built for {resolution} px: {first_line(err)}") from err


def _is_vit(arch: str) -> bool:
    return arch.startswith(("vit_", "deit", "eva", "beit"))


def check_resolution(resolution: int) -> None:
    if not MIN_RES <= resolution <= MAX_RES:
        raise BackboneError(f"resolution {resolution} px is out of range: use {MIN_RES} to {MAX_RES} px")


def _key(name: str, resolution: int, batch: int, s: Setting, kind: str = KIND) -> str:
    return store.measurement_key(kind, name, resolution, batch, s.device, s.precision, s.memory_format,
                                 s.resolved_threads(), torch.__version__)


def _meta(name: str, resolution: int, batch: int, s: Setting) -> dict[str, Any]:
    return {"model": name, "resolution": resolution, "batch": batch, "device": s.device, "precision": s.precision,
            "memory_format": s.memory_format, "threads": s.resolved_threads(), "torch_version": torch.__version__}


def cached(name: str, resolution: int | None = None, setting: Setting = Setting()) -> dict[str, Any] | None:
    """An earlier measurement of this model at this resolution and setting, or None."""
    arch = resolve_name(name)
    return store.get_measurement(_key(arch, resolution or default_resolution(arch), 1, setting))


def measure(name: str, resolution: int | None = None, setting: Setting = Setting(), refresh: bool = False,
            min_time_s: float = 0.3) -> dict[str, Any]:
    """Params, MACs and batch-1 latency of one backbone; cached in the store unless ``refresh``."""
    arch = resolve_name(name)
    res = resolution or default_resolution(arch)
    check_resolution(res)
    key = _key(arch, res, 1, setting)
    if not refresh and (hit := store.get_measurement(key)) is not None:
        return hit
    if setting.threads:
        torch.set_num_threads(setting.threads)
    t0 = time.perf_counter()
    model = build(arch, res)
    try:
        prof = profile_module(model, (1, 3, res, res), device=setting.device, dtype=setting.precision,
                              memory_format=setting.memory_format, min_time_s=min_time_s, min_iters=5, warmup=2)
    except ProfileError:
        raise
    except Exception as err:  # a resolution the architecture cannot take fails inside its forward
        raise BackboneError(f"{arch} cannot take a {res}x{res} input: {first_line(err)}") from err
    payload = {**_meta(arch, res, 1, setting), "default_resolution": default_resolution(arch),
               "params": prof.params, "macs": prof.macs, "flops": prof.flops, "latency_ms": prof.latency_ms,
               "latency_p10_ms": prof.latency_p10_ms, "latency_p90_ms": prof.latency_p90_ms,
               "iters": prof.latency.iters if prof.latency else 0, "activation_bytes": prof.activation_bytes,
               "peak_memory_bytes": prof.peak_memory_bytes, "device_name": prof.env.device_name,
               "uncounted_ops": prof.uncounted_ops, "counters_agree": prof.cross_check.agree,
               "measure_s": round(time.perf_counter() - t0, 3), "measured_at": time.time()}
    store.put_measurement(key, KIND, _meta(arch, res, 1, setting), payload)
    return payload


def count(name: str, resolution: int | None = None) -> dict[str, Any]:
    """Params and MACs only (no timing, device-independent), cached in the store."""
    from core.counting import fvcore_macs
    arch = resolve_name(name)
    res = resolution or default_resolution(arch)
    check_resolution(res)
    cpu = Setting("cpu", "fp32", "contiguous", 1)
    key = _key(arch, res, 1, cpu, kind="count")
    try:
        if (hit := store.get_measurement(key)) is not None:
            return hit
    except store.StoreError:
        key = ""                       # counting needs no store: count, and skip the cache
    model = build(arch, res)
    try:
        macs = fvcore_macs(model, (torch.randn(1, 3, res, res),)).total
    except Exception as err:  # noqa: BLE001
        raise BackboneError(f"{arch} cannot take a {res}x{res} input: {first_line(err)}") from err
    payload = {"model": arch, "resolution": res, "params": sum(p.numel() for p in model.parameters()), "macs": macs}
    try:
        if key:
            store.put_measurement(key, "count", _meta(arch, res, 1, cpu), payload)
    except store.StoreError:
        pass                           # a read-only store: the count is still right, just not kept

    return payload


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)) or "out of memory" in str(err).lower()


def throughput_sweep(name: str, resolution: int | None = None, setting: Setting = Setting(),
                     batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256), time_cap_s: float = 20.0,
                     train: bool = False, should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Images/s per batch size until out-of-memory, the time cap or a stop request; marks saturation."""
    arch = resolve_name(name)
    res = resolution or default_resolution(arch)
    check_resolution(res)
    dev = resolve_device(setting.device)
    fmt = torch.channels_last if setting.memory_format == "channels_last" else torch.contiguous_format
    model = build(arch, res).to(dev, memory_format=fmt)
    model.train(train)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3) if train else None
    rows, stop_reason, start = [], "all batch sizes done", time.perf_counter()
    for batch in batches:
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
            stats = time_call(_step(model, x, dev, setting.precision, opt), dev, warmup=1, min_iters=3,
                              min_time_s=0.2, warmup_time_s=0.0)
        except Exception as err:  # noqa: BLE001  OOM ends the sweep; anything else is reported
            if _is_oom(err):
                stop_reason = f"out of memory at batch {batch}"
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                break
            raise BackboneError(f"{arch} failed at batch {batch}: {first_line(err)}") from err
        peak = int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None
        rows.append({"batch": batch, "step_ms": stats.median_ms, "images_per_s": batch / (stats.median_ms / 1e3),
                     "peak_memory_bytes": peak})
    payload = {**_meta(arch, res, 0, setting), "mode": "train" if train else "inference", "rows": rows,
               "stop_reason": stop_reason, "saturation_batch": saturation_batch(rows), "measured_at": time.time()}
    kind = "sweep-train" if train else "sweep"
    store.put_measurement(_key(arch, res, 0, setting, kind), kind, _meta(arch, res, 0, setting), payload)
    return payload


def _step(model: nn.Module, x: torch.Tensor, dev: torch.device, precision: str,
          opt: torch.optim.Optimizer | None) -> Callable[[], None]:
    if opt is None:
        def infer() -> None:
            with torch.inference_mode(), autocast_for(dev, precision):
                model(x)
        return infer

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast_for(dev, precision):
            loss = model(x).float().logsumexp(dim=1).mean()
        loss.backward()
        opt.step()
    return train_step


def saturation_batch(rows: list[dict[str, Any]], fraction: float = 0.95) -> int | None:
    """The smallest batch whose throughput reaches ``fraction`` of the best one."""
    if not rows:
        return None
    best = max(r["images_per_s"] for r in rows)
    return next(r["batch"] for r in rows if r["images_per_s"] >= fraction * best)


def accuracy_table() -> pd.DataFrame:
    """timm's published ImageNet accuracy for the catalog (see the CSV header for the source)."""
    return pd.read_csv(ACCURACY_CSV, comment="#")


def default_accuracy() -> pd.DataFrame:
    """One row per architecture: the tag that timm loads by default where listed, else the first listed."""
    table = accuracy_table()
    preferred = {arch: (timm.get_pretrained_cfg(arch).tag if timm.get_pretrained_cfg(arch) else None)
                 for arch in table["model"].unique()}
    table["default"] = [tag == preferred.get(m) for m, tag in zip(table["model"], table["tag"])]
    table = table.sort_values(["model", "default"], ascending=[True, False])
    return table[~table["tag"].str.startswith("tv_") | table["default"]].drop_duplicates("model")


def pareto_front(cost: np.ndarray | list[float], accuracy: np.ndarray | list[float]) -> np.ndarray:
    """Mask of points no other point beats: lower-or-equal cost with higher-or-equal accuracy, one strictly."""
    c, a = np.asarray(cost, dtype=float), np.asarray(accuracy, dtype=float)
    mask = np.zeros(len(c), dtype=bool)
    for i in range(len(c)):
        if np.isnan(c[i]) or np.isnan(a[i]):
            continue
        dominated = (c <= c[i]) & (a >= a[i]) & ((c < c[i]) | (a > a[i]))
        mask[i] = not dominated.any()
    return mask


def results_frame(setting: Setting) -> pd.DataFrame:
    """Every cached batch-1 measurement for this setting, joined with published accuracy."""
    rows = store.list_measurements(KIND, device=setting.device, precision=setting.precision,
                                   memory_format=setting.memory_format, threads=setting.resolved_threads(),
                                   torch_version=torch.__version__)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values("measured_at").drop_duplicates(["model", "resolution"], keep="last")
    acc = default_accuracy()[["model", "tag", "top1", "top5", "img_size"]]
    frame = frame.merge(acc.rename(columns={"img_size": "eval_resolution"}), on="model", how="left")
    frame["GMACs"] = frame["macs"] / 1e9
    frame["params (M)"] = frame["params"] / 1e6
    return frame.reset_index(drop=True)
