"""What a browser sends back from the bench (core/deploy/browser.py), and where it is kept.

A result from a browser is hostile input until ``validate`` has checked it: known setups and precisions, finite
non-negative times under an hour, a bounded number of runs, bounded strings and payload size; it is rebuilt from
the fields that passed. ``native`` times this server's ONNX Runtime with the bench's own protocol, so the ratio
browser / native compares like with like. Kept results are measurements of kind ``browser``, keyed by device,
target, resolution, precision, setup and threads; devices can be renamed and forgotten."""
from __future__ import annotations

import json
import math
import re
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

ORT_WEB_VERSION = "1.30.0"
SETUPS = ("wasm-1", "wasm-N", "webgpu")    # webgpu: fp32 only (ONNX Runtime Web's WebGPU int8 gives wrong results)
ADAPTER_FIELDS = ("vendor", "architecture", "device", "description")
PRECISIONS = ("fp32", "int8")
MAX_RUNS = 50
MAX_SECONDS = 20.0
MAX_THREADS = 8                      # wasm-N: navigator.hardwareConcurrency, capped here
MAX_PAYLOAD_BYTES = 64 * 1024        # one setup's result as JSON
KIND = "browser"
TOLERANCE = 1e-4                     # fp32 in the browser against eager: core.deploy.parity's (a test keeps them one)

class BrowserResultError(ValueError):
    """A result from a browser that is refused (nothing of it is stored)."""


# --- what a browser sends back: hostile until checked ------------------------------------------------------------

_TIME_FIELDS = ("download_ms", "session_ms", "first_run_ms", "cold_start_ms", "p10_ms", "p50_ms", "p90_ms")


def _number(value: Any, what: str, low: float, high: float, integer: bool = False) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BrowserResultError(f"{what} is not a finite number: {value!r}")
    if not low <= value <= high:
        raise BrowserResultError(f"{what} = {value!r} is outside {low:g} to {high:g}")
    if integer and int(value) != value:
        raise BrowserResultError(f"{what} = {value!r} is not a whole number")
    return int(value) if integer else float(value)


def _text(value: Any, what: str, limit: int = 400) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BrowserResultError(f"{what} is not text")
    return value[:limit]


def validate(payload: Any, precisions: tuple[str, ...] = PRECISIONS) -> dict[str, Any]:
    """One setup's result from a browser, checked field by field and rebuilt from what passed (nothing else is
    kept); a bad one raises ``BrowserResultError`` with one line."""
    raw = json.dumps(payload, default=str) if not isinstance(payload, (str, bytes)) else payload
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise BrowserResultError(f"the result is {len(raw):,} bytes, over the {MAX_PAYLOAD_BYTES:,} allowed")
    data = json.loads(raw) if isinstance(raw, (str, bytes)) else payload
    if not isinstance(data, dict):
        raise BrowserResultError("the result is not an object")
    setup = data.get("setup")
    if setup not in SETUPS:
        raise BrowserResultError(f"unknown setup {setup!r}: one of {', '.join(SETUPS)}")
    out: dict[str, Any] = {
        "setup": setup,
        "ort_version": _text(data.get("ort_version"), "ort_version", 20),
        "user_agent": _text(data.get("user_agent"), "user_agent"),
        "hardware_concurrency": _number(data.get("hardware_concurrency"), "hardware_concurrency", 1, 1024, True),
        "device_memory_gb": _number(data.get("device_memory_gb"), "device_memory_gb", 0, 4096),
        "cross_origin_isolated": bool(data.get("cross_origin_isolated") is True),
        "secure_context": bool(data.get("secure_context") is True),
        "threads": _number(data.get("threads"), "threads", 1, 1024, True),
        "error": _text(data.get("error"), "error"),
        "results": [],
    }
    adapter = data.get("webgpu_adapter")
    if adapter is not None:
        if setup != "webgpu" or not isinstance(adapter, dict):
            raise BrowserResultError("a WebGPU adapter belongs to the webgpu setup, as an object")
        out["webgpu_adapter"] = {**{f: _text(adapter.get(f), f"adapter {f}", 100) for f in ADAPTER_FIELDS},
                                 "fallback": adapter.get("fallback") is True}
    elif setup == "webgpu" and data.get("results"):
        raise BrowserResultError("a webgpu result without its adapter")
    results = data.get("results", [])
    if not isinstance(results, list) or len(results) > len(precisions):
        raise BrowserResultError("results is not a list of one entry per precision")
    seen = set()
    for row in results:
        if not isinstance(row, dict) or row.get("precision") not in precisions or row["precision"] in seen:
            raise BrowserResultError(f"a result names an unknown or repeated precision: {row!r:.80}")
        seen.add(row["precision"])
        clean: dict[str, Any] = {"precision": row["precision"]}
        for f in _TIME_FIELDS:
            clean[f] = _number(row.get(f), f, 0, 3_600_000)
        clean["model_bytes"] = _number(row.get("model_bytes"), "model_bytes", 0, 2**34, True)
        clean["runs"] = _number(row.get("runs"), "runs", 0, 10 * MAX_RUNS, True)
        p = row.get("parity")
        if p is not None:
            if not isinstance(p, dict):
                raise BrowserResultError("parity is not an object")
            clean["parity"] = {"max_abs_diff": _number(p.get("max_abs_diff"), "max_abs_diff", 0, 1e30),
                               "top1_agreement": _number(p.get("top1_agreement"), "top1_agreement", 0, 1),
                               "inputs": _number(p.get("inputs"), "parity inputs", 1, 10_000, True)}
        clean["top1"] = _number(row.get("top1"), "top1", 0, 1)
        clean["refused"] = _text(row.get("refused"), "refused")
        clean["error"] = _text(row.get("error"), "error")
        if clean["p50_ms"] is not None:
            if not clean["runs"]:
                raise BrowserResultError("a latency without any run")
            if not (clean["p10_ms"] or 0) <= clean["p50_ms"] <= (clean["p90_ms"] or math.inf):
                raise BrowserResultError("p10 ≤ p50 ≤ p90 does not hold")
            if setup == "webgpu" and clean["precision"] != "fp32":
                raise BrowserResultError("a WebGPU int8 latency: ONNX Runtime Web's WebGPU int8 is known to give "
                                         "wrong results, so none is kept")
            if clean["precision"] == "fp32" and not clean.get("parity"):
                raise BrowserResultError("an fp32 latency without its parity")
            if (clean["precision"] == "fp32" and clean["parity"]["max_abs_diff"] is not None
                    and clean["parity"]["max_abs_diff"] > TOLERANCE):
                raise BrowserResultError("an fp32 latency over the parity tolerance: it would not be the same model")
        out["results"].append(clean)
    return out


def parse_user_agent(ua: str) -> dict[str, str]:
    """OS, browser and its major version from a user-agent string (the common ones; 'unknown' otherwise)."""
    os_name = next((name for pat, name in ((r"Android", "Android"), (r"iPhone|iPad|iOS", "iOS"),
                                           (r"CrOS", "ChromeOS"), (r"Windows", "Windows"), (r"Mac OS X", "macOS"),
                                           (r"Linux", "Linux")) if re.search(pat, ua)), "unknown")
    for pat, name in ((r"Edg/(\d+)", "Edge"), (r"SamsungBrowser/(\d+)", "Samsung Internet"),
                      (r"HeadlessChrome/(\d+)", "Chromium (headless)"), (r"Chrom(?:e|ium)/(\d+)", "Chrome"),
                      (r"Firefox/(\d+)", "Firefox"), (r"Version/(\d+).*Safari", "Safari")):
        m = re.search(pat, ua)
        if m:
            return {"os": os_name, "browser": name, "browser_version": m.group(1)}
    return {"os": os_name, "browser": "unknown", "browser_version": ""}


# --- native ONNX Runtime, same protocol ----------------------------------------------------------------------------

def native(path: Path, x: np.ndarray, threads: int, max_runs: int = MAX_RUNS,
           max_seconds: float = MAX_SECONDS) -> dict[str, Any]:
    """ONNX Runtime on this machine at ``threads`` intra-op threads: one warm-up, then warm runs of ``x`` until
    ``max_runs`` or ``max_seconds``; p10, p50, p90 (ms)."""
    from core.deploy.runtimes import session
    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x})
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and time.perf_counter() - start < max_seconds:
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t) * 1e3)
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return {"threads": threads, "runs": len(times), "p10_ms": q[0], "p50_ms": statistics.median(times),
            "p90_ms": q[-1]}


# --- the store ------------------------------------------------------------------------------------------------------

def device_label(result: dict[str, Any]) -> str:
    ua = parse_user_agent(result.get("user_agent", ""))
    return f"{ua['browser']} {ua['browser_version']} on {ua['os']}, {result.get('hardware_concurrency') or '?'} cores"


def _device_id(result: dict[str, Any]) -> str:
    import hashlib
    basis = f"{result.get('user_agent', '')}|{result.get('hardware_concurrency')}|{result.get('device_memory_gb')}"
    return hashlib.sha256(basis.encode()).hexdigest()[:12]


def save(bench: Any, result: dict[str, Any], label: str | None = None,
         natives: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Each precision of one validated setup as a measurement (kind ``browser``), keyed by device, target,
    resolution, precision and setup; returns the keys."""
    from core.jobs import store
    keys = []
    device = _device_id(result)
    for row in result["results"]:
        if row.get("p50_ms") is None and not row.get("refused"):
            continue
        key = store.measurement_key(KIND, bench.target_key, bench.resolution, 1, f"browser:{device}",
                                    row["precision"], result["setup"], result["threads"] or 1,
                                    f"onnxruntime-web {result['ort_version'] or ORT_WEB_VERSION}")
        meta = {"model": bench.target_key, "resolution": bench.resolution, "batch": 1, "device": f"browser:{device}",
                "precision": row["precision"], "memory_format": result["setup"], "threads": result["threads"] or 1,
                "torch_version": f"onnxruntime-web {result['ort_version'] or ORT_WEB_VERSION}"}
        nat = (natives or {}).get(row["precision"])
        payload = {"label": bench.label, "macs": bench.macs, "setup": result["setup"], "row": row, "native": nat,
                   "browser_over_native": row["p50_ms"] / nat["p50_ms"] if nat and row.get("p50_ms") else None,
                   "device": {"id": device, "label": label or device_label(result),
                              **parse_user_agent(result.get("user_agent", "")),
                              **{k: result.get(k) for k in ("user_agent", "hardware_concurrency", "device_memory_gb",
                                                            "cross_origin_isolated", "secure_context", "threads",
                                                            "webgpu_adapter")}}}
        store.put_measurement(key, KIND, meta, payload)
        keys.append(key)
    return keys


def stored(target_key: str | None = None) -> list[dict[str, Any]]:
    """Every browser measurement kept (of one target, or all), newest first."""
    from core.jobs.store import connect
    with connect() as conn:
        rows = conn.execute("SELECT key, model, resolution, precision, threads, payload, created FROM measurements "
                            "WHERE kind = ?" + (" AND model = ?" if target_key else "") + " ORDER BY created DESC",
                            (KIND, target_key) if target_key else (KIND,)).fetchall()
    return [{"key": r["key"], "model": r["model"], "resolution": r["resolution"], "precision": r["precision"],
             "threads": r["threads"], "created": r["created"], **json.loads(r["payload"])} for r in rows]


def rename_device(device_id: str, label: str) -> int:
    """A device's results get a new name ("my Pixel 7"); returns how many rows."""
    from core.jobs.store import connect
    label = label.strip()[:60]
    if not label:
        raise ValueError("a device needs a name")
    with connect() as conn:
        rows = conn.execute("SELECT key, payload FROM measurements WHERE kind = ? AND device = ?",
                            (KIND, f"browser:{device_id}")).fetchall()
        for r in rows:
            payload = json.loads(r["payload"])
            payload["device"]["label"] = label
            conn.execute("UPDATE measurements SET payload = ? WHERE key = ?", (json.dumps(payload), r["key"]))
    return len(rows)


def forget_device(device_id: str) -> int:
    """Deletes every result of one device; returns how many rows."""
    from core.jobs.store import connect
    with connect() as conn:
        return conn.execute("DELETE FROM measurements WHERE kind = ? AND device = ?",
                            (KIND, f"browser:{device_id}")).rowcount
