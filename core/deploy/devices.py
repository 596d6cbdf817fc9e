"""The devices store: what browsers measured, kept as measurements of kind ``browser`` keyed by device,
deployable, resolution, precision, setup and threads; a device can be renamed and forgotten. And the
tables the pages draw from it: one row per measurement, the browser rows as more targets beside the
server's, and a pair of blocks per device and setup."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from core.deploy.browser_checks import ORT_WEB_VERSION, parse_user_agent
from core.deploy.report import COLUMNS
from core.deploy.targets import BROWSER
from core.jobs import store as jobs_store

KIND = "browser"


def device_label(result: dict[str, Any]) -> str:
    ua = parse_user_agent(result.get("user_agent", ""))
    return (
        f"{ua['browser']} {ua['browser_version']} on {ua['os']}, "
        f"{result.get('hardware_concurrency') or '?'} cores"
    )


def device_id(result: dict[str, Any]) -> str:
    import hashlib

    basis = "|".join(
        str(v)
        for v in (
            result.get("user_agent", ""),
            result.get("hardware_concurrency"),
            result.get("device_memory_gb"),
        )
    )
    return hashlib.sha256(basis.encode()).hexdigest()[:12]


def save(
    bench: Any,
    result: dict[str, Any],
    label: str | None = None,
    natives: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Each precision of one validated setup as a measurement (kind ``browser``), keyed by device, target,
    resolution, precision and setup; returns the keys."""

    keys = []
    device = device_id(result)
    for row in result["results"]:
        if row.get("p50_ms") is None and not row.get("refused"):
            continue
        key = jobs_store.measurement_key(
            KIND,
            bench.target_key,
            bench.resolution,
            1,
            f"browser:{device}",
            row["precision"],
            result["setup"],
            result["threads"] or 1,
            f"onnxruntime-web {result['ort_version'] or ORT_WEB_VERSION}",
        )
        meta = {
            "model": bench.target_key,
            "resolution": bench.resolution,
            "batch": 1,
            "device": f"browser:{device}",
            "precision": row["precision"],
            "memory_format": result["setup"],
            "threads": result["threads"] or 1,
            "torch_version": f"onnxruntime-web {result['ort_version'] or ORT_WEB_VERSION}",
        }
        nat = (natives or {}).get(row["precision"])
        payload = {
            "label": bench.label,
            "macs": bench.macs,
            "setup": result["setup"],
            "row": row,
            "native": nat,
            "browser_over_native": row["p50_ms"] / nat["p50_ms"] if nat and row.get("p50_ms") else None,
            "device": {
                "id": device,
                "label": label or device_label(result),
                **parse_user_agent(result.get("user_agent", "")),
                **{
                    k: result.get(k)
                    for k in (
                        "user_agent",
                        "hardware_concurrency",
                        "device_memory_gb",
                        "cross_origin_isolated",
                        "secure_context",
                        "threads",
                        "webgpu_adapter",
                    )
                },
            },
        }
        jobs_store.put_measurement(key, KIND, meta, payload)
        keys.append(key)
    return keys


def stored(target_key: str | None = None) -> list[dict[str, Any]]:
    """Every browser measurement kept (of one target, or all), newest first."""

    with jobs_store.connect() as conn:
        rows = conn.execute(
            "SELECT key, model, resolution, precision, threads, payload, created FROM measurements "
            "WHERE kind = ?" + (" AND model = ?" if target_key else "") + " ORDER BY created DESC",
            (KIND, target_key) if target_key else (KIND,),
        ).fetchall()
    return [
        {
            "key": r["key"],
            "model": r["model"],
            "resolution": r["resolution"],
            "precision": r["precision"],
            "threads": r["threads"],
            "created": r["created"],
            **json.loads(r["payload"]),
        }
        for r in rows
    ]


def rename_device(device_id: str, label: str) -> int:
    """A device's results get a new name ("my Pixel 7"); returns how many rows."""

    label = label.strip()[:60]
    if not label:
        raise ValueError("a device needs a name")
    with jobs_store.connect() as conn:
        rows = conn.execute(
            "SELECT key, payload FROM measurements WHERE kind = ? AND device = ?",
            (KIND, f"browser:{device_id}"),
        ).fetchall()
        for r in rows:
            payload = json.loads(r["payload"])
            payload["device"]["label"] = label
            conn.execute("UPDATE measurements SET payload = ? WHERE key = ?", (json.dumps(payload), r["key"]))
    return len(rows)


def forget_device(device_id: str) -> int:
    """Deletes every result of one device; returns how many rows."""

    with jobs_store.connect() as conn:
        return conn.execute(
            "DELETE FROM measurements WHERE kind = ? AND device = ?", (KIND, f"browser:{device_id}")
        ).rowcount


# --- the tables the pages draw from it ---------------------------------------------------------------


def device_frame(rows: list[dict[str, Any]], budget_ms: float) -> pd.DataFrame:
    """One row per stored browser measurement: device, model, setup, precision, latency, the ratio to
    native ONNX Runtime here at the same threads, parity, and whether it fits the budget."""
    out = []
    for r in rows:
        row, dev, parity = r["row"], r["device"], r["row"].get("parity") or {}
        gpu = dev.get("webgpu_adapter") or {}
        out.append(
            {
                "device": dev.get("label"),
                "model": f"{r['label']} @{r['resolution']}",
                "setup": r["setup"],
                "WebGPU adapter": " ".join(
                    v for v in (gpu.get("vendor"), gpu.get("architecture"), gpu.get("description")) if v
                )
                + (" (software fallback)" if gpu.get("fallback") else ""),
                "threads": r["threads"],
                "precision": r["precision"],
                "cross-origin isolated": bool(dev.get("cross_origin_isolated")),
                "median ms": row.get("p50_ms"),
                "p10 ms": row.get("p10_ms"),
                "p90 ms": row.get("p90_ms"),
                "runs": row.get("runs"),
                "cold start ms": row.get("cold_start_ms"),
                "native median ms": (r.get("native") or {}).get("p50_ms"),
                "× native here": r.get("browser_over_native"),
                "max abs diff": parity.get("max_abs_diff"),
                "top-1 agreement %": None
                if parity.get("top1_agreement") is None
                else 100 * parity["top1_agreement"],
                f"fits {budget_ms:g} ms": None if row.get("p50_ms") is None else row["p50_ms"] <= budget_ms,
                "MACs": r.get("macs"),
                "status": row.get("refused") or row.get("error") or "ok",
            }
        )
    return pd.DataFrame(out)


def as_targets(devices: pd.DataFrame) -> pd.DataFrame:
    """The stored browser figures as rows of ``core.deploy.report.frame``: each device, setup and precision
    is one more "runtime" beside the server's, on the same chart and in the same budget table."""
    timed = devices[devices["median ms"].notna()] if len(devices) else devices
    if timed.empty:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame(
        {
            "target": timed["model"].str.rsplit(" @", n=1).str[0],
            "runtime": timed["device"] + " · " + timed["setup"] + " · " + timed["precision"],
            "median ms": timed["median ms"],
            "p10 ms": timed["p10 ms"],
            "p90 ms": timed["p90 ms"],
            "MACs": timed["MACs"].astype(float),
            "status": timed["status"],
            "where": BROWSER,
        }
    ).reindex(columns=COLUMNS)


def pair_rows(rows: list[dict[str, Any]], a_key: str, b_key: str, mac_ratio: float) -> pd.DataFrame:
    """B against A in each browser setup measured for both on one device (per device, setup and precision),
    as rows of ``core.deploy.report.pair``: how many times faster B runs there, beside the MAC ratio. A
    device is its id, never its name: blocks timed on two devices that share a name give no speed-up."""
    timed = [r for r in rows if r["model"] in (a_key, b_key) and r["row"].get("p50_ms")]
    latest: dict[tuple[str, str, str, str], float] = {}
    names: dict[str, str] = {}
    for r in sorted(timed, key=lambda r: r["created"]):
        device = r["device"].get("id") or r["device"]["label"]
        names[device] = r["device"]["label"]
        latest[(r["model"], device, r["setup"], r["precision"])] = r["row"]["p50_ms"]
    out = []
    for (model, device, setup, precision), a_ms in latest.items():
        b_ms = latest.get((b_key, device, setup, precision))
        if model == a_key and b_ms:
            out.append(
                {
                    "runtime": f"{names[device]} · {setup} · {precision}",
                    "measured speed-up": a_ms / b_ms,
                    "MAC ratio": mac_ratio,
                    "where": BROWSER,
                }
            )
    return pd.DataFrame(out, columns=["runtime", "measured speed-up", "MAC ratio", "where"])
