"""Take a fine-tuned run home: its best epoch as ``model.onnx`` (and ``model.int8.onnx``), checked for parity on the
run's validation images, the int8 model calibrated on its training split only, each scored on the run's own
validation (and test) split, timed at batch 1 here, and written into the run's bundle with ``bundle.json``'s
record of how (exporter, opset, versions, preprocessing, figures, calibration, SHA-256) and a snippet that needs only
onnxruntime, numpy and Pillow."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from core.deploy import DeployError, runtimes
from core.deploy import parity as par
from core.deploy.export import INPUT, export
from core.deploy.measure import inside_data_dir, versions
from core.deploy.quantize import quantize
from core.finetune import bundle, runs
from core.finetune.evaluate import wilson

FP32, INT8 = "model.onnx", "model.int8.onnx"
PREDICT = "predict_onnx.py"
MIN_CALIBRATION = 32
LOGIT_TOLERANCE = 1e-3        # fp32 ONNX against PyTorch, on logits
MIN_AGREEMENT = 0.995


@dataclass
class Source:
    """The weights to export and how the run saw its images."""

    run: runs.Run
    arch: str
    classes: list[str]
    image_size: int
    mean: list[float]
    std: list[float]
    epoch: int
    val_top1: float | None
    state: dict[str, torch.Tensor]
    label: str


def source(run: runs.Run) -> Source:
    """The run's best epoch (the one whose top-1 is reported); while it trains, the best epoch so far."""
    best = bundle.load_best(runs.folder(run))
    if best is None:
        raise DeployError(f"run {run.id} has no checkpoint yet: it must finish at least one epoch before it can be "
                          "exported")
    import timm
    info = run.result.get("info", {})
    classes = list(info.get("classes") or (bundle.load_checkpoint(runs.folder(run)) or {}).get("classes", []))
    arch = run.config["model"]
    cfg = timm.get_pretrained_cfg(arch)
    mean = list(getattr(cfg, "mean", None) or (0.485, 0.456, 0.406))
    std = list(getattr(cfg, "std", None) or (0.229, 0.224, 0.225))
    label = (f"epoch {best['epoch']}, the best val top-1 so far (the run is {run.status})" if run.active
             else f"epoch {best['epoch']}, the best val top-1")
    return Source(run, arch, classes, int(run.config["image_size"]), mean, std, int(best["epoch"]),
                  best.get("val_top1"), best["model"], label)


def build(src: Source) -> nn.Module:
    import timm
    model = timm.create_model(src.arch, pretrained=False, num_classes=len(src.classes), exportable=True)
    model.load_state_dict(src.state)
    return model.eval()


@dataclass
class Splits:
    train: tuple[list[Path], np.ndarray]
    val: tuple[list[Path], np.ndarray]
    test: tuple[list[Path], np.ndarray]


def splits(src: Source) -> tuple[Splits | None, str]:
    """The run's own image files and labels per split, or (None, why) when its dataset is gone."""
    from core.data.errors import DatasetError
    from core.data.ingest import class_root, scan
    from core.finetune.config import TrainConfig
    from core.finetune.data import resolve_source
    ckpt = bundle.load_checkpoint(runs.folder(src.run))
    if ckpt is None:
        return None, "the run has no checkpoint with its split"
    try:
        root = class_root(resolve_source(src.run.config["data"], TrainConfig.from_dict(src.run.config)))
        label_of = {s.path: s.label for s in scan(root).samples}
    except (DatasetError, OSError) as err:
        return None, f"its dataset cannot be read ({err})"
    out = []
    for key in ("split_train", "split_val", "split_test"):
        paths = list(ckpt.get(key, []))
        missing = [p for p in paths if p not in label_of]
        if missing:
            return None, f"{len(missing)} image(s) of its split are no longer in the dataset"
        out.append(([root / p for p in paths], np.asarray([label_of[p] for p in paths], dtype=np.int64)))
    return Splits(*out), ""


def preprocess(paths: list[Path], src: Source) -> np.ndarray:
    """What training did: upright, shorter side to image_size (bilinear), centre crop, [0, 1], mean/std."""
    from core.data.images import load_resized
    if not paths:
        return np.zeros((0, 3, src.image_size, src.image_size), np.float32)
    arr = np.stack([load_resized(p, src.image_size) for p in paths]).astype(np.float32) / 255.0
    arr = (arr - np.asarray(src.mean, np.float32)[:, None, None]) / np.asarray(src.std, np.float32)[:, None, None]
    return np.ascontiguousarray(arr)


def _predict(call: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = 32) -> np.ndarray:
    return np.concatenate([call(x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) else np.zeros((0, 1))


def score(logits: np.ndarray, labels: np.ndarray, reference: np.ndarray | None, classes: list[str]) -> dict[str, Any]:
    """Top-1 with its Wilson interval, agreement with the reference's top-1, and per-class recall."""
    if not len(labels):
        return {}
    pred = logits.argmax(1)
    hits = int((pred == labels).sum())
    low, high = wilson(hits, len(labels))
    recall = {c: float((pred[labels == i] == i).mean()) if (labels == i).any() else None
              for i, c in enumerate(classes)}
    return {"top1": hits / len(labels), "hits": hits, "n": int(len(labels)), "wilson_95": [low, high],
            "agreement_with_pytorch": None if reference is None else float((pred == reference.argmax(1)).mean()),
            "per_class_recall": recall}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def reusable(folder: Path, src: Source, int8: bool) -> dict[str, Any] | None:
    """The recorded export of this epoch when its files are all there, unchanged: a second export reuses them."""
    meta_path = folder / "bundle.json"
    if not meta_path.exists():
        return None
    record = json.loads(meta_path.read_text()).get("onnx")
    if not record or record.get("epoch") != src.epoch or (int8 and INT8 not in record["files"]):
        return None
    for name, entry in record["files"].items():
        if not (folder / name).exists() or sha256(folder / name) != entry["sha256"]:
            return None
    return record


def export_run(run_id: int, int8: bool = False, out: str | Path | None = None,
               on_step: Callable[[str], bool] | None = None, threads: int = 1) -> dict[str, Any]:
    """Exports run ``run_id``'s best epoch (see ``source``) into its bundle folder (or ``out``); returns the record
    that ``bundle.json`` keeps under "onnx". Bad input raises DeployError with the reason; nothing is half-written."""
    step = on_step or (lambda _msg: False)
    run = runs.get(run_id)
    src = source(run)
    folder = Path(out) if out else runs.folder(run) / "export"
    if (record := reusable(folder, src, int8)) is not None:
        return {**record, "reused": True}
    step("reading the run's images")
    data, why_no_data = splits(src)
    if int8 and data is None:
        raise DeployError(f"int8 needs the run's training images to calibrate, and {why_no_data}; export fp32 "
                          "without them instead")
    if int8 and data is not None and len(data.train[0]) < MIN_CALIBRATION:
        raise DeployError(f"int8 calibration needs at least {MIN_CALIBRATION} training images, and this run has "
                          f"{len(data.train[0])}; export fp32 only, or train on more images")
    model = build(src)
    with inside_data_dir() as scratch, torch.inference_mode():
        record = _export(src, model, data, why_no_data, int8, scratch, step, threads)
        step("writing the bundle")
        _publish(folder, scratch, record, src)
    return record


def _export(src: Source, model: nn.Module, data: Splits | None, why_no_data: str, int8: bool, scratch: Path,
            step: Callable[[str], bool], threads: int) -> dict[str, Any]:
    shape = (1, 3, src.image_size, src.image_size)
    step("exporting to ONNX")
    ex = export(model, shape, scratch / FP32)
    sessions = {FP32: runtimes.session(ex.path, threads)}
    val_x = preprocess(data.val[0], src) if data else np.zeros((0,) + shape[1:], np.float32)
    if len(val_x) == 0:                            # no dataset: parity on the demo images, said so
        from core.deploy.calibration import images
        val_x = images(32, src.image_size, mean=tuple(src.mean), std=tuple(src.std))[0]
    parity = par.compare(model, sessions[FP32], val_x, tolerance=LOGIT_TOLERANCE)
    if not parity.ok or (parity.top1_agreement is not None and parity.top1_agreement < MIN_AGREEMENT):
        raise DeployError(f"refused: the ONNX export does not match the PyTorch model on the validation images: max "
                          f"abs logit difference {parity.max_abs_diff:.3g} (tolerance {LOGIT_TOLERANCE:g}), top-1 "
                          f"agreement {parity.top1_agreement:.1%} (needs {MIN_AGREEMENT:.1%}); nothing was written")
    files: dict[str, dict[str, Any]] = {FP32: {"exporter": ex.exporter, "opset": ex.opset, "parity": parity.to_dict(),
                                               "export_s": round(ex.seconds, 2)}}
    if int8 and data is not None:
        step(f"calibrating int8 on {len(data.train[0])} training images")
        q = quantize(ex.path, scratch / INT8, preprocess(data.train[0], src), "the run's training split")
        sessions[INT8] = runtimes.session(q.path, threads)
        files[INT8] = {"quantization": q.config.to_dict(), "quantize_s": round(q.seconds, 2),
                       "float_nodes": q.float_nodes, "parity": par.compare(model, sessions[INT8], val_x,
                                                                            tolerance=None).to_dict()}
    step("scoring on the run's splits")
    scores = _scores(model, sessions, data, src) if data else {}
    step("timing at batch 1")
    latency = _latency(model, sessions, val_x[:1], threads)
    for name, entry in files.items():
        entry.update(scores=scores.get(name, {}), latency=latency[name], size_bytes=(scratch / name).stat().st_size)
    return {"epoch": src.epoch, "weights": src.label, "val_top1_reported": src.val_top1,
            "pytorch": {"scores": scores.get("pytorch", {}), "latency": latency["pytorch"]},
            "files": files, "scored": bool(data), "not_scored_because": why_no_data,
            "preprocessing": preprocessing(src), "versions": versions(), "threads": threads,
            "exported_at": time.time()}


def _scores(model: nn.Module, sessions: dict[str, Any], data: Splits, src: Source) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for split in ("val", "test"):
        paths, labels = getattr(data, split)
        if not paths:
            continue
        x = preprocess(paths, src)
        ref = _predict(lambda b: model(torch.from_numpy(b)).float().numpy(), x)
        out.setdefault("pytorch", {})[split] = score(ref, labels, None, src.classes)
        for name, sess in sessions.items():
            logits = _predict(lambda b, s=sess: s.run(None, {INPUT: b})[0], x)
            out.setdefault(name, {})[split] = score(logits, labels, ref, src.classes)
    return out


def _latency(model: nn.Module, sessions: dict[str, Any], x: np.ndarray, threads: int) -> dict[str, dict[str, Any]]:
    from core.measure.settings import threads_for
    from core.measure.timing import time_interleaved
    t = torch.from_numpy(x.copy())
    calls = [lambda: model(t)] + [lambda s=s: s.run(None, {INPUT: x}) for s in sessions.values()]
    with threads_for(threads):
        timed = time_interleaved(calls, "cpu", round_time_s=0.05, min_rounds=9, max_time_s=8.0)
    names = ["pytorch", *sessions]
    return {n: {"median_ms": lat.median_ms, "p10_ms": lat.p10_ms, "p90_ms": lat.p90_ms,
                "speedup_vs_pytorch": r.ratio, "interval": [r.low, r.high]}
            for n, lat, r in zip(names, timed.latency, timed.ratios)}


def preprocessing(src: Source) -> dict[str, Any]:
    return {"input_name": INPUT, "image_size": src.image_size, "resize": "shorter side to image_size, bilinear",
            "crop": "centre, image_size x image_size", "scale": "1/255", "mean": src.mean, "std": src.std,
            "channel_order": "RGB", "layout": "NCHW float32", "exif_orientation": "applied",
            "classes": src.classes}


def _publish(folder: Path, scratch: Path, record: dict[str, Any], src: Source) -> None:
    """Moves the files into the bundle under temporary names first, then renames each into place, and rewrites
    bundle.json last (atomically): a failure leaves the bundle as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for name in (*record["files"], PREDICT):
            tmp = folder / f".{name}.partial"
            staged.append((tmp, folder / name))
            if name == PREDICT:
                tmp.write_text(resources.files("core.deploy").joinpath("predict_onnx.py").read_text())
            else:
                shutil.copyfile(scratch / name, tmp)
        for name in record["files"]:
            record["files"][name]["sha256"] = sha256(folder / f".{name}.partial")
        for tmp, final in staged:
            os.replace(tmp, final)
        meta_path = folder / "bundle.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"model": src.arch,
                                                                             "classes": src.classes}
        meta["onnx"] = record
        bundle.write_text_atomic(meta_path, json.dumps(meta, indent=2, default=float))
        readme = folder / "README.md"
        text = readme.read_text() if readme.exists() else ""
        if "## Without PyTorch" not in text:
            script = resources.files("core.deploy").joinpath("predict_onnx.py").read_text()
            full = f"\nThe script in full:\n\n```python\n{script}```\n"
            bundle.write_text_atomic(readme, text + bundle.ONNX_README + full)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
