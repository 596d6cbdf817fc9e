"""What a browser sends back from the bench (``core/deploy/browser.py``), checked as hostile input before
anything of it is kept: known setups (the browser targets of ``core.deploy.targets``) and the precisions
each runs, finite non-negative times under an hour, a bounded number of runs, bounded strings and
payload size; each result is rebuilt from the fields that passed, and a refused one raises
``BrowserResultError`` with one line."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from core.deploy.targets import BROWSER, get_target, keys

ORT_WEB_VERSION = "1.30.0"
ADAPTER_FIELDS = ("vendor", "architecture", "device", "description")
PRECISIONS = ("fp32", "int8")
MAX_RUNS = 50
MAX_SECONDS = 20.0
MAX_THREADS = 8  # wasm-N: navigator.hardwareConcurrency, capped here
MAX_PAYLOAD_BYTES = 64 * 1024  # one setup's result as JSON
TOLERANCE = 1e-4  # fp32 in the browser against eager: core.deploy.parity's (a test keeps them one)


class BrowserResultError(ValueError):
    """A result from a browser that is refused (nothing of it is stored)."""


def setup_keys() -> tuple[str, ...]:
    """The browser targets' keys (wasm-1, wasm-N, webgpu), read from the registry when called."""
    return keys(BROWSER)


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


def parse(payload: Any, limit: int) -> Any:
    """A browser's JSON as Python values, its size bounded before parsing (``limit`` bytes, counted as it
    is or as it would be sent); whatever its shape or depth, a bad one is a ``BrowserResultError`` in
    one line."""
    try:
        raw = payload if isinstance(payload, (str, bytes)) else json.dumps(payload, default=str)
    except (ValueError, TypeError, RecursionError):
        raise BrowserResultError("the result cannot be read as JSON") from None
    if len(raw) > limit:
        raise BrowserResultError(f"the result is {len(raw):,} bytes, over the {limit:,} allowed")
    if not isinstance(payload, (str, bytes)):
        return payload
    try:
        return json.loads(raw)
    except RecursionError:
        raise BrowserResultError("the result is nested too deeply to be a bench's") from None
    except ValueError as err:  # not JSON, or a number too long to read
        raise BrowserResultError(f"the result is not JSON the bench sends ({str(err)[:80]})") from None


def validate(payload: Any, precisions: tuple[str, ...] = PRECISIONS) -> dict[str, Any]:
    """One setup's result from a browser, checked field by field and rebuilt from what passed (nothing else
    is kept); a bad one raises ``BrowserResultError`` with one line."""
    data = parse(payload, MAX_PAYLOAD_BYTES)
    if not isinstance(data, dict):
        raise BrowserResultError("the result is not an object")
    setup = data.get("setup")
    if setup not in setup_keys():
        raise BrowserResultError(f"unknown setup {setup!r}: one of {', '.join(setup_keys())}")
    out: dict[str, Any] = {
        "setup": setup,
        "ort_version": _text(data.get("ort_version"), "ort_version", 20),
        "user_agent": _text(data.get("user_agent"), "user_agent"),
        "hardware_concurrency": _number(
            data.get("hardware_concurrency"), "hardware_concurrency", 1, 1024, True
        ),
        "device_memory_gb": _number(data.get("device_memory_gb"), "device_memory_gb", 0, 4096),
        "cross_origin_isolated": bool(data.get("cross_origin_isolated") is True),
        "secure_context": bool(data.get("secure_context") is True),
        "threads": _number(data.get("threads"), "threads", 1, MAX_THREADS, True),
        "error": _text(data.get("error"), "error"),
        "results": [],
    }
    if out["threads"] and out["hardware_concurrency"] and out["threads"] > out["hardware_concurrency"]:
        raise BrowserResultError(
            f"threads = {out['threads']} is more than the {out['hardware_concurrency']} cores the "
            "browser reports"
        )
    adapter = data.get("webgpu_adapter")
    if adapter is not None:
        if setup != "webgpu" or not isinstance(adapter, dict):
            raise BrowserResultError("a WebGPU adapter belongs to the webgpu setup, as an object")
        out["webgpu_adapter"] = {
            **{f: _text(adapter.get(f), f"adapter {f}", 100) for f in ADAPTER_FIELDS},
            "fallback": adapter.get("fallback") is True,
        }
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
            clean["parity"] = {
                "max_abs_diff": _number(p.get("max_abs_diff"), "max_abs_diff", 0, 1e30),
                "top1_agreement": _number(p.get("top1_agreement"), "top1_agreement", 0, 1),
                "inputs": _number(p.get("inputs"), "parity inputs", 1, 10_000, True),
            }
        clean["top1"] = _number(row.get("top1"), "top1", 0, 1)
        clean["refused"] = _text(row.get("refused"), "refused")
        clean["error"] = _text(row.get("error"), "error")
        if clean["p50_ms"] is not None:
            if not clean["runs"]:
                raise BrowserResultError("a latency without any run")
            if not (clean["p10_ms"] or 0) <= clean["p50_ms"] <= (clean["p90_ms"] or math.inf):
                raise BrowserResultError("p10 ≤ p50 ≤ p90 does not hold")
            target = get_target(setup)
            if clean["precision"] not in target.precisions:
                raise BrowserResultError(
                    f"a {target.label} {clean['precision']} latency: that setup runs only "
                    f"{', '.join(target.precisions)} ({target.help}), so none is kept"
                )
            parity = clean.get("parity") or {}
            if clean["precision"] == "fp32" and (
                parity.get("max_abs_diff") is None or not parity.get("inputs")
            ):
                raise BrowserResultError(
                    "an fp32 latency without its whole parity (max abs diff on the inputs checked)"
                )
            if (
                clean["precision"] == "fp32"
                and clean["parity"]["max_abs_diff"] is not None
                and clean["parity"]["max_abs_diff"] > TOLERANCE
            ):
                raise BrowserResultError(
                    "an fp32 latency over the parity tolerance: it would not be the same model"
                )
        out["results"].append(clean)
    return out


def parse_user_agent(ua: str) -> dict[str, str]:
    """OS, browser and its major version from a user-agent string (the common ones; 'unknown' otherwise)."""
    os_name = next(
        (
            name
            for pat, name in (
                (r"Android", "Android"),
                (r"iPhone|iPad|iOS", "iOS"),
                (r"CrOS", "ChromeOS"),
                (r"Windows", "Windows"),
                (r"Mac OS X", "macOS"),
                (r"Linux", "Linux"),
            )
            if re.search(pat, ua)
        ),
        "unknown",
    )
    for pat, name in (
        (r"Edg/(\d+)", "Edge"),
        (r"SamsungBrowser/(\d+)", "Samsung Internet"),
        (r"HeadlessChrome/(\d+)", "Chromium (headless)"),
        (r"Chrom(?:e|ium)/(\d+)", "Chrome"),
        (r"Firefox/(\d+)", "Firefox"),
        (r"Version/(\d+).*Safari", "Safari"),
    ):
        m = re.search(pat, ua)
        if m:
            return {"os": os_name, "browser": name, "browser_version": m.group(1)}
    return {"os": os_name, "browser": "unknown", "browser_version": ""}


def split_sent(sent_json: Any, token: str, benches: int) -> list[list[Any]]:
    """What the page's bench component sent (``{"token", "results": [{"bench": i, "result": {...}}]}``), as
    one list of page results per bench, in order: the token must be this page's, every result name one
    of its ``benches``, and at most one result per setup of each; anything else is a
    ``BrowserResultError``. The results themselves are checked by ``validate``."""
    sent = parse(sent_json, benches * len(setup_keys()) * (MAX_PAYLOAD_BYTES + 256) + 256)
    if not isinstance(sent, dict) or sent.get("token") != token or not isinstance(sent.get("results"), list):
        raise BrowserResultError("the result does not answer this page's bench")
    split: list[list[Any]] = [[] for _ in range(benches)]
    for item in sent["results"][: benches * len(setup_keys())]:
        index = item.get("bench") if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < benches:
            raise BrowserResultError("a result names no bench of this page")
        split[index].append(item.get("result"))
    return split
