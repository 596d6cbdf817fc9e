"""Take a fine-tuned run home: its best epoch as ``model.onnx`` (and ``model.int8.onnx``), checked for
parity on the run's validation images, the int8 model calibrated on its training split only, each scored
on the run's own validation (and test) split, timed at batch 1 here, and written into the run's bundle
with ``bundle.json``'s record of how (exporter, opset, versions, preprocessing, figures, calibration,
SHA-256) and a snippet that needs only onnxruntime, numpy and Pillow."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from core.data.preprocess import embed_pixels
from core.deploy import DeployError, runtimes
from core.deploy import parity as par
from core.deploy.environment import versions
from core.deploy.export import INPUT, export
from core.deploy.quantize import quantize
from core.deploy.scratch import inside_data_dir
from core.finetune import bundle
from core.runs import record as runs
from core.runs.artifacts import Artifacts, NoArtifacts, Split, artifacts, sha256
from core.runs.evaluate import wilson

FP32, INT8 = "model.onnx", "model.int8.onnx"
PREDICT = "predict_onnx.py"
MIN_CALIBRATION = 32
LOGIT_TOLERANCE = 1e-3  # fp32 ONNX against PyTorch, on logits
MIN_AGREEMENT = 0.995


def preprocess(paths: list[Path], art: Artifacts) -> np.ndarray:
    """The run's images as its model saw them in training (the one preprocessing, ``art.preprocessing``)."""
    return art.preprocessing.batch(paths)


def _predict(call: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = 32) -> np.ndarray:
    return (
        np.concatenate([call(x[i : i + batch]) for i in range(0, len(x), batch)])
        if len(x)
        else np.zeros((0, 1))
    )


def score(
    logits: np.ndarray, labels: np.ndarray, reference: np.ndarray | None, classes: list[str]
) -> dict[str, Any]:
    """Top-1 with its Wilson interval, agreement with the reference's top-1, and per-class recall."""
    if not len(labels):
        return {}
    pred = logits.argmax(1)
    hits = int((pred == labels).sum())
    low, high = wilson(hits, len(labels))
    recall = {
        c: float((pred[labels == i] == i).mean()) if (labels == i).any() else None
        for i, c in enumerate(classes)
    }
    return {
        "top1": hits / len(labels),
        "hits": hits,
        "n": int(len(labels)),
        "wilson_95": [low, high],
        "agreement_with_pytorch": None if reference is None else float((pred == reference.argmax(1)).mean()),
        "per_class_recall": recall,
    }


class BundleDamaged(DeployError):
    """bundle.json cannot be read (truncated, not JSON); exporting again rewrites it."""


def read_meta(folder: Path) -> dict[str, Any] | None:
    """The bundle's bundle.json, None when there is none; BundleDamaged (one line, with the way out) when
    it cannot be read."""
    path = folder / "bundle.json"
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        return meta
    except (OSError, ValueError) as err:
        raise BundleDamaged(
            f"{path} is damaged ({type(err).__name__}: {str(err).splitlines()[0][:120]}); "
            "exporting the run again rewrites it"
        ) from None


def record_hash(meta: dict[str, Any]) -> str:
    """bundle.json's own checksum: every key but this one, canonical JSON. An edit by hand (classes
    reversed, a mean zeroed) changes it, so such a bundle is never reused."""
    body = json.dumps({k: v for k, v in meta.items() if k != "record_sha256"}, sort_keys=True, default=float)
    return hashlib.sha256(body.encode()).hexdigest()


def owner_problem(folder: Path, meta: dict[str, Any] | None, src: Artifacts) -> str:
    """Why ``folder`` is not this run's to write (it holds another run's export), or ''."""
    if not meta:
        return ""
    other = (meta.get("onnx") or {}).get("run")
    if other is None and meta.get("model") not in (None, src.arch):
        other = f"a {meta['model']}"
    if other is not None and other != src.run.id:
        who = f"run {other}'s" if isinstance(other, int) else f"{other}'s"
        return f"{folder} holds {who} export; choose another --out"
    return ""


def reusable(folder: Path, meta: dict[str, Any] | None, src: Artifacts, int8: bool) -> dict[str, Any] | None:
    """The recorded export when it provably belongs to this run and epoch and nothing of it changed: the
    run id and the best weights' SHA-256 match, bundle.json's own checksum holds, and every file and
    script it names is there with its recorded SHA-256. Anything less is exported again."""
    record = (meta or {}).get("onnx")
    if (
        not record
        or record.get("run") != src.run.id
        or record.get("checkpoint_sha256") != src.checkpoint_sha256
    ):
        return None
    if record.get("epoch") != src.epoch or (int8 and INT8 not in record["files"]):
        return None
    if meta.get("record_sha256") != record_hash(meta):  # type: ignore[union-attr]
        return None
    named = {**{n: e["sha256"] for n, e in record["files"].items()}, **record.get("scripts", {})}
    if PREDICT not in named:
        return None
    for name, digest in named.items():
        if not (folder / name).is_file() or sha256(folder / name) != digest:
            return None
    return record


def export_run(
    run_id: int,
    int8: bool = False,
    out: str | Path | None = None,
    on_step: Callable[[str], bool] | None = None,
    threads: int = 1,
    holder: str = "",
) -> dict[str, Any]:
    """Exports run ``run_id``'s best epoch into its bundle folder (or ``out``); returns the record that
    ``bundle.json`` keeps under "onnx". One writer per bundle: the run's bundle lock (and ``out``'s) is
    held throughout, so a second export, the trainer's final bundle and a delete wait or are refused.
    Bad input raises DeployError with the reason; nothing is half-written."""
    run_dir = runs.folder(runs.get(run_id))  # KeyError: there is no such run
    holder = holder or f"a command line (pid {os.getpid()})"
    folder = Path(out) if out else run_dir / "export"
    try:
        with (
            bundle.writer_lock(run_dir, holder),
            (
                bundle.writer_lock(folder, holder, lock_file=out_lock(folder))
                if out
                else contextlib.nullcontext()
            ),
        ):
            return _export_locked(run_id, folder, int8, on_step or (lambda _msg: False), threads)
    except bundle.BundleBusy as busy:
        raise DeployError(f"run {run_id} is being exported ({busy}); wait or stop it") from None


def bundle_zip(run_id: int) -> tuple[str, bytes]:
    """Run ``run_id``'s whole bundle as one zip (file name, bytes): weights, config, labels and
    preprocessing in bundle.json, the ONNX models when exported, predict.py, predict_onnx.py and the
    README, each under the name the scripts and the README expect, inside a folder named after the run.
    Read under the bundle lock, so an export or the trainer's final bundle is never caught half-written
    (it waits for them)."""
    import io
    import zipfile

    run = runs.get(run_id)
    run_dir = runs.folder(run)
    folder = run_dir / "export"
    if not (folder / "bundle.json").is_file():
        raise DeployError(f"run {run_id} has no bundle yet: it is written when the run's first epoch ends")
    top = f"archscope-run{run_id}"
    buf = io.BytesIO()
    with bundle.writer_lock(run_dir, f"a download (pid {os.getpid()})", wait=True):
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.iterdir()):
                if f.is_file() and not f.name.startswith("."):  # no lock file, no partial file
                    zf.write(f, f"{top}/{f.name}")
    return f"{top}.zip", buf.getvalue()


def out_lock(folder: Path) -> Path:
    """The lock of a bundle folder outside the run (``--out``): kept in the data directory, not in the
    folder."""
    from core.config import data_dir

    key = hashlib.sha256(str(folder.expanduser().resolve()).encode()).hexdigest()[:16]
    return data_dir() / "cache" / "locks" / f"out-{key}.lock"


def _export_locked(
    run_id: int, folder: Path, int8: bool, step: Callable[[str], bool], threads: int
) -> dict[str, Any]:
    try:
        src = artifacts(run_id)  # read once, under the lock: what the run is now
    except NoArtifacts as err:
        raise DeployError(str(err)) from None
    if src.run.active:
        raise DeployError(
            f"run {run_id} is still {src.run.status}: export it when it ends (its bundle is written "
            "again then)"
        )
    try:
        meta = read_meta(folder)
    except BundleDamaged:
        meta = None  # exporting again rewrites it
    if problem := owner_problem(folder, meta, src):
        raise DeployError(problem)
    if (record := reusable(folder, meta, src, int8)) is not None:
        return {**record, "reused": True}
    step("reading the run's images")
    data, why_no_data = src.splits, src.why_no_data
    if int8 and data is None:
        raise DeployError(
            f"int8 needs the run's training images to calibrate, and {why_no_data}; export fp32 "
            "without them instead"
        )
    if int8 and data is not None and len(data["train"]) < MIN_CALIBRATION:
        raise DeployError(
            f"int8 calibration needs at least {MIN_CALIBRATION} training images, and this run has "
            f"{len(data['train'])}; export fp32 only, or train on more images"
        )
    model = src.model()
    with inside_data_dir() as scratch, torch.inference_mode():
        record = _export(src, model, data, why_no_data, int8, scratch, step, threads)
        step("writing the bundle")
        try:
            runs.get(run_id)
        except KeyError:
            raise DeployError(f"run {run_id} was deleted during its export; nothing was written") from None
        _publish(folder, scratch, record, src, meta)
    return record


def _export(
    src: Artifacts,
    model: nn.Module,
    data: dict[str, Split] | None,
    why_no_data: str,
    int8: bool,
    scratch: Path,
    step: Callable[[str], bool],
    threads: int,
) -> dict[str, Any]:
    size = src.preprocessing.image_size
    shape = (1, 3, size, size)
    step("exporting to ONNX")
    ex = export(model, shape, scratch / FP32)
    sessions = {FP32: runtimes.session(ex.path, threads)}
    val_x = preprocess(data["val"].paths, src) if data else np.zeros((0,) + shape[1:], np.float32)
    if len(val_x) == 0:  # no dataset: parity on the demo images, said so
        from core.deploy.calibration import images

        val_x = images(32, size, mean=src.preprocessing.mean, std=src.preprocessing.std)[0]
    parity = par.compare(model, sessions[FP32], val_x, tolerance=LOGIT_TOLERANCE)
    if not parity.ok or (parity.top1_agreement is not None and parity.top1_agreement < MIN_AGREEMENT):
        raise DeployError(
            f"refused: the ONNX export does not match the PyTorch model on the validation images: max "
            f"abs logit difference {parity.max_abs_diff:.3g} (tolerance {LOGIT_TOLERANCE:g}), top-1 "
            f"agreement {parity.top1_agreement:.1%} (needs {MIN_AGREEMENT:.1%}); nothing was written"
        )
    files: dict[str, dict[str, Any]] = {
        FP32: {
            "exporter": ex.exporter,
            "opset": ex.opset,
            "parity": parity.to_dict(),
            "export_s": round(ex.seconds, 2),
        }
    }
    if int8 and data is not None:
        step(f"calibrating int8 on {len(data['train'])} training images")
        q = quantize(
            ex.path, scratch / INT8, preprocess(data["train"].paths, src), "the run's training split"
        )
        sessions[INT8] = runtimes.session(q.path, threads)
        files[INT8] = {
            "quantization": q.config.to_dict(),
            "quantize_s": round(q.seconds, 2),
            "float_nodes": q.float_nodes,
            "parity": par.compare(model, sessions[INT8], val_x, tolerance=None).to_dict(),
        }
    step("scoring on the run's splits")
    scores = _scores(model, sessions, data, src) if data else {}
    step("timing at batch 1")
    latency = _latency(model, sessions, val_x[:1], threads)
    for name, entry in files.items():
        entry.update(
            scores=scores.get(name, {}), latency=latency[name], size_bytes=(scratch / name).stat().st_size
        )
    return {
        "run": src.run.id,
        "epoch": src.epoch,
        "checkpoint_sha256": src.checkpoint_sha256,
        "weights": src.label,
        "val_top1_reported": src.val_top1,
        "pytorch": {"scores": scores.get("pytorch", {}), "latency": latency["pytorch"]},
        "files": files,
        "scored": bool(data),
        "not_scored_because": why_no_data,
        "preprocessing": preprocessing(src),
        "versions": versions(),
        "threads": threads,
        "exported_at": time.time(),
    }


def _scores(
    model: nn.Module, sessions: dict[str, Any], data: dict[str, Split], src: Artifacts
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for split in ("val", "test"):
        paths, labels = data[split].paths, data[split].labels
        if not paths:
            continue
        x = preprocess(paths, src)
        ref = _predict(lambda b: model(torch.from_numpy(b)).float().numpy(), x)
        out.setdefault("pytorch", {})[split] = score(ref, labels, None, src.classes)
        for name, sess in sessions.items():
            logits = _predict(lambda b, s=sess: s.run(None, {INPUT: b})[0], x)
            out.setdefault(name, {})[split] = score(logits, labels, ref, src.classes)
    return out


def _latency(
    model: nn.Module, sessions: dict[str, Any], x: np.ndarray, threads: int
) -> dict[str, dict[str, Any]]:
    from core.measure.settings import threads_for
    from core.measure.timing import time_interleaved

    t = torch.from_numpy(x.copy())
    calls = [lambda: model(t)] + [lambda s=s: s.run(None, {INPUT: x}) for s in sessions.values()]
    with threads_for(threads):
        timed = time_interleaved(calls, "cpu", round_time_s=0.05, min_rounds=9, max_time_s=8.0)
    names = ["pytorch", *sessions]
    return {
        n: {
            "median_ms": lat.median_ms,
            "p10_ms": lat.p10_ms,
            "p90_ms": lat.p90_ms,
            "speedup_vs_pytorch": r.ratio,
            "interval": [r.low, r.high],
        }
        for n, lat, r in zip(names, timed.latency, timed.ratios)
    }


def preprocessing(src: Artifacts) -> dict[str, Any]:
    """What predict_onnx.py reads: the one preprocessing's record, the ONNX input's name and the class
    names."""
    return {"input_name": INPUT, **src.preprocessing.to_dict(), "classes": src.classes}


def predict_script() -> str:
    """predict_onnx.py as the bundle holds it: the template with the one preprocessing copied in."""
    return embed_pixels(resources.files("core.runs").joinpath("predict_onnx.py").read_text())


def fresh_meta(src: Artifacts) -> dict[str, Any]:
    """bundle.json as the trainer writes it, from the run's artifacts (for a bundle folder that has none,
    or whose bundle.json was damaged)."""
    pre = src.preprocessing
    return {
        "model": src.arch,
        "classes": src.classes,
        "image_size": pre.image_size,
        "mean": list(pre.mean),
        "std": list(pre.std),
        "resize": "shorter side to image_size, bilinear, centre crop",
        "preprocessing": pre.to_dict(),
        "epoch": src.epoch,
        "val_top1": src.val_top1,
        "val_loss": src.val_loss,
        "epoch_rule": bundle.BEST_RULE,
    }


def _publish(
    folder: Path, scratch: Path, record: dict[str, Any], src: Artifacts, meta: dict[str, Any] | None
) -> None:
    """Moves the files into the bundle under temporary names first (unique to this writer), then renames
    each into place, and rewrites bundle.json last (atomically, with its own checksum): a failure leaves
    the bundle as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = []
    tag = uuid.uuid4().hex[:8]
    script = predict_script()
    try:
        for name in (*record["files"], PREDICT):
            tmp = folder / f".{name}.{tag}.partial"
            staged.append((tmp, folder / name))
            if name == PREDICT:
                tmp.write_text(script)
            else:
                shutil.copyfile(scratch / name, tmp)
        for name in record["files"]:
            record["files"][name]["sha256"] = sha256(folder / f".{name}.{tag}.partial")
        record["scripts"] = {PREDICT: hashlib.sha256(script.encode()).hexdigest()}
        for tmp, final in staged:
            os.replace(tmp, final)
        meta = {**(meta or fresh_meta(src)), "onnx": record}
        meta["record_sha256"] = record_hash(json.loads(json.dumps(meta, default=float)))
        bundle.write_text_atomic(folder / "bundle.json", json.dumps(meta, indent=2, default=float))
        readme = folder / "README.md"
        text = readme.read_text() if readme.exists() else ""
        if "## Without PyTorch" not in text:
            full = f"\nThe script in full:\n\n```python\n{script}```\n"
            bundle.write_text_atomic(readme, text + bundle.ONNX_README + full)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
