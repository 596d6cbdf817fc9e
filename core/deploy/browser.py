"""Measure in a browser: a target's ONNX (fp32 and int8, from this package's own export and quantization)
run by onnxruntime-web 1.30 (``assets/ort``, vendored) in the browser's WASM, with the same parity rule
as the server.

What is made (``prepare``): the .onnx files, the 32 real parity inputs of ``core.deploy.measure`` and
PyTorch eager's outputs for them, as raw little-endian float32, and a ``config.json`` for the bench page
(``assets/bench/bench.html`` + ``bench.mjs``). ``core.deploy.bench_server.serve`` hands them out on a
loopback port with COOP ``same-origin`` and COEP ``require-corp``, so the page is cross-origin isolated
and WASM may use threads. ``drive`` opens one page load per setup in a browser (Debian's chromium by
default, through Playwright): ONNX Runtime Web fixes its WASM thread count when it starts, so ``wasm-1``
and ``wasm-N`` are two loads.

``record`` hands what the pages sent to ``core.deploy.browser_checks``: checked as hostile input, set
beside native ONNX Runtime at the same thread counts (same protocol) and kept per device."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.deploy import DeployError
from core.deploy.bench_server import serve
from core.deploy.browser_checks import (
    MAX_RUNS,
    MAX_SECONDS,
    MAX_THREADS,
    ORT_WEB_VERSION,
    PRECISIONS,
    TOLERANCE,
    BrowserResultError,
    parse_user_agent,
    setup_keys,
    validate,
)
from core.deploy.deployable import Deployable, inputs, slug
from core.deploy.devices import save
from core.deploy.environment import versions
from core.deploy.native import native
from core.deploy.runtimes import onnx_fp32, onnx_int8
from core.deploy.scratch import given, inside_data_dir
from core.deploy.targets import get_target

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Chromium with WebGPU on its software adapter (SwiftShader, on the CPU): the WebGPU path and its parity can
# be
# checked on a machine without a GPU; its times are an emulation's
SOFTWARE_WEBGPU_FLAGS = [f for f in CHROMIUM_FLAGS if f != "--disable-gpu"] + [
    "--enable-unsafe-webgpu",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--use-webgpu-adapter=swiftshader",
]


@dataclass
class Bench:
    """What a browser needs to measure one target: its folder (config.json, inputs.f32, reference.f32, the
    .onnx files) and the server-side figures to set beside the browser's."""

    folder: Path
    label: str
    target_key: str
    resolution: int
    macs: int
    files: dict[str, Path]  # precision -> .onnx
    server_parity: dict[str, dict[str, Any]]  # precision -> ONNX Runtime (native) parity, as core.deploy
    inputs: np.ndarray = field(repr=False)
    detail: dict[str, dict[str, Any]] = field(default_factory=dict)


def prepare(
    target: Deployable,
    precisions: tuple[str, ...],
    folder: Path,
    step: Callable[[str], Any] = lambda _: None,
    max_runs: int = MAX_RUNS,
) -> Bench:
    """The target's ONNX files (fp32 export with the server's parity refusal; int8 calibrated on real
    images, as the Deploy tab makes them), the parity inputs and eager's outputs, and the page's config
    (warm runs: at most ``max_runs`` or ``MAX_SECONDS`` per setup and precision)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    step(f"{target.label}: building")
    target.check_memory()
    model = target.build()
    parity_in, calib_in, source = inputs(target)
    name = slug(target)
    step(f"{target.label}: exporting to ONNX fp32")
    fp32, fp32_path = onnx_fp32(model, target.shape, folder, 1, parity_in, name=name)
    files = {"fp32": Path(fp32_path)}
    server = {"fp32": fp32.parity}
    detail = {"fp32": fp32.detail}
    if "int8" in precisions:
        step(f"{target.label}: quantizing to int8 (calibrated on {len(calib_in)} images)")
        q = onnx_int8(
            model,
            fp32_path,
            target.shape,
            folder,
            1,
            parity_in,
            calib_in,
            source,
            name=name,
            whole_network=target.kind == "model",
        )
        files["int8"] = folder / f"{name}.int8.onnx"
        server["int8"] = q.parity
        detail["int8"] = {k: q.detail.get(k) for k in ("convs_int8", "convs_total", "quantized_nodes")}
    with torch.inference_mode():
        reference = np.concatenate(
            [
                model(torch.from_numpy(parity_in[i : i + 8])).float().numpy()
                for i in range(0, len(parity_in), 8)
            ]
        )
    np.ascontiguousarray(parity_in, dtype="<f4").tofile(folder / "inputs.f32")
    np.ascontiguousarray(reference.reshape(len(parity_in), -1), dtype="<f4").tofile(folder / "reference.f32")
    out_len = int(np.prod(reference.shape[1:]))
    classifier = reference.ndim == 2 and reference.shape[1] > 1
    config = {
        "label": target.label,
        "precisions": {p: files[p].name for p in precisions if p in files},
        "inputs": "inputs.f32",
        "reference": "reference.f32",
        "shape": [len(parity_in), *map(int, target.shape[1:])],
        "outputLen": out_len,
        "classifier": classifier,
        "tolerance": TOLERANCE,
        "maxRuns": max_runs,
        "maxSeconds": MAX_SECONDS,
        "maxThreads": MAX_THREADS,
    }
    (folder / "config.json").write_text(json.dumps(config))
    bench = Bench(
        folder, target.label, target.key, target.resolution, target.macs(), files, server, parity_in, detail
    )
    (folder / "bench.json").write_text(
        json.dumps(
            {
                "label": bench.label,
                "target_key": bench.target_key,
                "resolution": bench.resolution,
                "macs": bench.macs,
                "files": {k: v.name for k, v in files.items()},
                "server_parity": server,
                "detail": detail,
            }
        )
    )
    return bench


def bench_root() -> Path:
    """Where the app keeps prepared benches: ``<data dir>/cache/browser`` (one folder each, named by
    ``bench_id``)."""
    from core.config import data_dir

    return data_dir() / "cache" / "browser"


def bench_id(target: Deployable) -> str:
    """A prepared bench's folder name: the target, its resolution and the library versions that made its
    files."""
    import hashlib

    basis = json.dumps([target.key, target.resolution, versions(), ORT_WEB_VERSION])
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def load(folder: Path) -> Bench | None:
    """A bench prepared earlier (its bench.json and files all there), or None."""
    try:
        meta = json.loads((folder / "bench.json").read_text())
        files = {k: folder / v for k, v in meta["files"].items()}
        if not all(f.is_file() for f in files.values()) or not (folder / "inputs.f32").is_file():
            return None
        shape = json.loads((folder / "config.json").read_text())["shape"]
        inputs = np.fromfile(folder / "inputs.f32", dtype="<f4").reshape(shape)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Bench(
        folder,
        meta["label"],
        meta["target_key"],
        int(meta["resolution"]),
        int(meta["macs"]),
        files,
        meta["server_parity"],
        inputs,
        meta.get("detail") or {},
    )


def prepared(
    target: Deployable, precisions: tuple[str, ...] = PRECISIONS, step: Callable[[str], Any] = lambda _: None
) -> Bench:
    """The app's bench for ``target``: read if made before, else made in ``bench_root()`` (written to a
    temporary folder, then moved in place, so a half-made bench is never served)."""
    folder = bench_root() / bench_id(target)

    def make(tmp: Path) -> None:
        with inside_data_dir():  # the exporters' and calibrator's temporaries stay in the data dir
            prepare(target, precisions, tmp, step)

    return cached_bench(folder, make, target.label)


def cached_bench(folder: Path, make: Callable[[Path], Any], what: str) -> Bench:
    """The bench in ``folder`` if it is whole, else ``make`` fills a temporary folder beside it, which is
    then moved in place (a half-made bench is never served; when two sessions make one, the first kept
    wins)."""
    import tempfile

    bench = load(folder)
    if bench is not None:
        return bench
    bench_root().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".making-", dir=bench_root()))
    try:
        make(tmp)
        try:
            tmp.rename(folder)
        except OSError:  # made meanwhile by another session: keep theirs
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bench = load(folder)
    if bench is None:
        raise DeployError(f"the browser bench for {what} could not be made in {folder}")
    return bench


def browser_path(path: str | None) -> str:
    found = path or CHROMIUM
    resolved = shutil.which(found) or (found if Path(found).is_file() else None)
    if not resolved:
        raise DeployError(
            f"no browser at {found}: install Debian's chromium (apt-get install -y chromium) or pass "
            "--browser PATH"
        )
    return resolved


def drive(
    url: str,
    setups: tuple[str, ...],
    browser: str | None = None,
    timeout_s: float = 600.0,
    step: Callable[[str], Any] = lambda _: None,
    webgpu: str = "off",
) -> list[dict[str, Any]]:
    """One page load per setup in a headless browser; returns what each page left in ``window.__result``.
    It runs in a thread of its own: Playwright's sync API refuses a thread whose asyncio loop is running
    (a caller's)."""
    exe = browser_path(browser)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["out"] = _drive(url, setups, exe, timeout_s, step, webgpu)
        except BaseException as err:  # noqa: BLE001  handed back to the caller's thread
            box["err"] = err

    thread = threading.Thread(target=work, name="bench-browser", daemon=True)
    thread.start()
    thread.join()
    if "err" in box:
        raise box["err"]
    return box["out"]


def _drive(
    url: str,
    setups: tuple[str, ...],
    exe: str,
    timeout_s: float,
    step: Callable[[str], Any],
    webgpu: str = "off",
) -> list[dict[str, Any]]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as pw:
        flags = SOFTWARE_WEBGPU_FLAGS if webgpu == "software" else CHROMIUM_FLAGS
        b = pw.chromium.launch(executable_path=exe, args=flags, headless=True)
        try:
            for setup in setups:
                page = b.new_page()
                page.set_default_timeout(timeout_s * 1000)
                step(f"browser: {setup}")
                try:
                    page.goto(f"{url}/bench/bench.html?{get_target(setup).adapter.query(setup)}")
                    page.wait_for_function("() => window.__result !== undefined", timeout=timeout_s * 1000)
                    out.append(page.evaluate("() => window.__result"))
                except PlaywrightError as err:
                    out.append(
                        {"setup": setup, "error": f"the page did not finish: {str(err).splitlines()[0]}"}
                    )
                finally:
                    page.close()
        finally:
            b.close()
    return out


# --- one call: prepare, serve, drive, time native, validate, store
# ------------------------------------------------


def measure(
    target: Deployable,
    precisions: tuple[str, ...] = PRECISIONS,
    setups: tuple[str, ...] | None = None,
    browser: str | None = None,
    workdir: Path | None = None,
    keep: bool = True,
    step: Callable[[str], Any] = lambda _: None,
    webgpu: str = "off",
    max_runs: int = MAX_RUNS,
) -> dict[str, Any]:
    """The target in a headless browser on each setup, native ONNX Runtime at the same thread counts (both
    timed for at most ``max_runs`` warm runs or ``MAX_SECONDS``), the ratios; each valid result is
    stored (``keep``). Returns one JSON-ready object."""

    setups = setups or setup_keys()
    bad = [p for p in precisions if p not in PRECISIONS] + [s for s in setups if s not in setup_keys()]
    if bad:
        raise ValueError(
            f"unknown precision or setup: {', '.join(bad)} (precisions {', '.join(PRECISIONS)}; "
            f"setups {', '.join(setup_keys())})"
        )
    browser_path(browser)  # before minutes of work
    with inside_data_dir() if workdir is None else given(workdir) as work:
        bench = prepare(target, precisions, work / "bench", step, max_runs)
        with serve(bench.folder) as url:
            pages = drive(url, setups, browser, step=step, webgpu=webgpu)
        out: dict[str, Any] = {
            "target": bench.target_key,
            "label": bench.label,
            "resolution": bench.resolution,
            "batch": 1,
            "macs": bench.macs,
            "ort_web_version": ORT_WEB_VERSION,
            "server_parity": bench.server_parity,
            "quantization": bench.detail.get("int8"),
        }
        out["setups"] = record(bench, pages, keep, step=step, max_runs=max_runs)
    return out


def record(
    bench: Bench,
    pages: list[Any],
    keep: bool = True,
    label: str | None = None,
    step: Callable[[str], Any] = lambda _: None,
    max_runs: int = MAX_RUNS,
) -> dict[str, dict[str, Any]]:
    """What the browser's pages sent back, validated (a refused one is one line, nothing of it stored),
    each timed precision set beside native ONNX Runtime at the same thread count (timed now, same
    protocol), and stored (``keep``). Returns one entry per setup."""
    out: dict[str, dict[str, Any]] = {}
    x = np.ascontiguousarray(bench.inputs[:1])
    for page in pages[: len(setup_keys())]:
        try:
            result = validate(page, tuple(bench.files))
        except BrowserResultError as err:
            setup = page.get("setup") if isinstance(page, dict) else None
            out[str(setup) if setup in setup_keys() else "refused"] = {"error": f"refused: {err}"}
            continue
        threads = result["threads"] or 1
        entry: dict[str, Any] = {
            k: result[k]
            for k in ("threads", "cross_origin_isolated", "hardware_concurrency", "user_agent", "error")
        }
        if "webgpu_adapter" in result:
            entry["webgpu_adapter"] = result["webgpu_adapter"]
        entry["device"] = parse_user_agent(result["user_agent"])
        entry["precisions"] = {}
        natives: dict[str, dict[str, Any]] = {}
        for row in result["results"]:
            figures = {
                k: row[k]
                for k in (
                    "p10_ms",
                    "p50_ms",
                    "p90_ms",
                    "runs",
                    "cold_start_ms",
                    "download_ms",
                    "session_ms",
                    "first_run_ms",
                    "top1",
                    "refused",
                    "error",
                )
            }
            figures["parity"] = row.get("parity")
            if row.get("p50_ms") is not None:
                step(f"native ONNX Runtime {row['precision']} at {threads} thread(s)")
                natives[row["precision"]] = nat = native(bench.files[row["precision"]], x, threads, max_runs)
                figures["native"] = nat
                figures["browser_over_native"] = row["p50_ms"] / nat["p50_ms"]
            entry["precisions"][row["precision"]] = figures
        if keep:
            try:
                save(bench, result, label, natives)
            except Exception as err:  # noqa: BLE001  a read-only store: shown, not kept
                entry["not_stored"] = f"{type(err).__name__}: {err}"
        out[result["setup"]] = entry
    return out
