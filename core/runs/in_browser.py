"""A fine-tuned run tried in the browser: its exported ``model.onnx`` and ``model.int8.onnx``, run by
onnxruntime-web on the run's own validation images (core/deploy/browser.py's bench). The reference of
each precision is this server's ONNX Runtime on the same files and images, so the browser is checked
against the server's own ONNX: the same top-1 on the same images, the logits within the fp32 tolerance."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from core.deploy import DeployError, browser
from core.deploy import browser_checks as results
from core.runs import record
from core.runs.export import preprocess, read_meta

MAX_IMAGES = 256  # the validation images the browser scores at most (the first, in split order)
FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def bench(run_id: int) -> browser.Bench:
    """The run's browser bench, made once per exported model (its SHA-256) and kept in the bench cache."""
    from core.runs.artifacts import artifacts

    run = record.get(run_id)
    export = record.folder(run) / "export"
    meta = read_meta(export) or {}
    onnx = meta.get("onnx")
    files = {p: export / name for p, name in FILES.items() if onnx and (export / name).is_file()}
    if "fp32" not in files:
        raise DeployError(
            f"run {run_id} has no ONNX export yet: export it first (Take it home → Export to ONNX)"
        )
    digest = hashlib.sha256(b"".join(hashlib.sha256(f.read_bytes()).digest() for f in files.values()))
    folder = (
        browser.bench_root() / hashlib.sha256(f"run:{run_id}:{digest.hexdigest()}".encode()).hexdigest()[:16]
    )

    def make(tmp: Path) -> None:
        art = artifacts(run)
        if art.splits is None or not art.splits["val"].paths:
            raise DeployError(f"run {run_id}'s validation images cannot be read: {art.why_no_data or 'none'}")
        val = art.splits["val"]
        x = np.ascontiguousarray(preprocess(val.paths[:MAX_IMAGES], art), dtype="<f4")
        _write(tmp, run, files, x, np.asarray(val.labels[:MAX_IMAGES], dtype="<f4"), art.classes)

    return browser.cached_bench(folder, make, f"run {run_id}")


def _write(
    folder: Path,
    run: record.Run,
    files: dict[str, Path],
    x: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
) -> None:
    from core.deploy.runtimes import session

    server: dict[str, dict[str, Any]] = {}
    for precision, path in files.items():
        shutil.copyfile(path, folder / path.name)
        sess = session(path, 1)
        name = sess.get_inputs()[0].name
        logits = np.concatenate([sess.run(None, {name: x[i : i + 32]})[0] for i in range(0, len(x), 32)])
        np.ascontiguousarray(logits, dtype="<f4").tofile(folder / f"server_{precision}.f32")
        server[precision] = {"top1": float((logits.argmax(1) == labels).mean()), "images": int(len(x))}
    x.tofile(folder / "inputs.f32")
    labels.tofile(folder / "labels.f32")
    config = {
        "label": f"run {run.id} ({run.config.get('model')})",
        "precisions": {p: f.name for p, f in files.items()},
        "inputs": "inputs.f32",
        "labels": "labels.f32",
        "references": {p: f"server_{p}.f32" for p in files},
        "shape": [int(v) for v in x.shape],
        "outputLen": len(classes),
        "classifier": True,
        "tolerance": results.TOLERANCE,
        "maxRuns": results.MAX_RUNS,
        "maxSeconds": results.MAX_SECONDS,
        "maxThreads": results.MAX_THREADS,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "bench.json").write_text(
        json.dumps(
            {
                "label": config["label"],
                "target_key": f"run:{run.id}",
                "resolution": int(x.shape[-1]),
                "macs": 0,
                "files": {p: f.name for p, f in files.items()},
                "server_parity": server,
                "detail": {},
            }
        )
    )


def agreement(bench: browser.Bench, entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setup and precision: the browser's top-1 beside the server's ONNX top-1 on the same images,
    whether they are equal, the logits' largest difference from the server's, and the latency."""
    rows = []
    for setup, entry in entries.items():
        for precision, f in (entry.get("precisions") or {}).items():
            server = (bench.server_parity.get(precision) or {}).get("top1")
            top1 = f.get("top1")
            rows.append(
                {
                    "setup": setup,
                    "threads": entry.get("threads"),
                    "precision": precision,
                    "images": (bench.server_parity.get(precision) or {}).get("images"),
                    "browser top-1 %": None if top1 is None else 100 * top1,
                    "server ONNX top-1 %": None if server is None else 100 * server,
                    "same top-1": None if top1 is None or server is None else abs(top1 - server) < 1e-9,
                    "max abs diff vs server": (f.get("parity") or {}).get("max_abs_diff"),
                    "browser median ms": f.get("p50_ms"),
                    "status": f.get("refused") or f.get("error") or "ok",
                }
            )
    return rows
