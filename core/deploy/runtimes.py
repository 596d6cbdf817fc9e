"""A runtime is a pair: prepare (export, compile, quantize; timed apart), then call. Every runtime runs with the
same thread count: torch's intra-op threads = ONNX Runtime's intra-op threads, inter-op 1.

Runtimes live in a registry keyed by name (as the blocks do, and as ONNX Runtime's quantizer keeps its op registry):
``register_runtime`` refuses a duplicate, ``prepare(name, context)`` prepares one, ``RUNTIMES`` lists them in the
order they are shown and ``LABELS`` names them for people."""
from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from core.deploy import DeployError
from core.deploy import parity as par
from core.deploy.export import export
from core.deploy.quantize import quantize
from core.present.fmt import first_line

COMPILE_TIMEOUT_S = 300.0


@dataclass
class Context:
    """What preparing a runtime may use: the eager model, its input, the scratch folder, the threads, the parity
    and calibration inputs; ``artifacts`` holds what one runtime made for another (the fp32 .onnx for int8)."""

    model: nn.Module
    x: torch.Tensor
    shape: tuple[int, ...]
    workdir: Path
    threads: int
    parity_inputs: np.ndarray
    calibration: np.ndarray
    source: str
    name: str = "model"
    compile_timeout_s: float = COMPILE_TIMEOUT_S
    whole_network: bool = True          # a backbone keeps its stem and classifier in float for int8; a block not
    artifacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Runtime:
    name: str
    label: str
    prepare: "Preparer"


REGISTRY: dict[str, Runtime] = {}
RUNTIMES: tuple[str, ...] = ()              # registration order: the order every table and chart shows them
LABELS: dict[str, str] = {}


Preparer = Callable[[Context], "Prepared"]


def register_runtime(name: str, label: str) -> Callable[[Preparer], Preparer]:
    """Adds a runtime's prepare function under ``name``; a name registered twice is refused."""
    def add(fn: Preparer) -> Preparer:
        global RUNTIMES
        if name in REGISTRY:
            raise ValueError(f"runtime {name!r} is already registered")
        REGISTRY[name] = Runtime(name, label, fn)
        RUNTIMES = (*RUNTIMES, name)
        LABELS[name] = label
        return fn
    return add


def prepare(name: str, ctx: Context) -> "Prepared":
    """Runtime ``name`` prepared for ``ctx`` (a ValueError names the known runtimes when it is not one)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown runtime {name}: choose from {', '.join(RUNTIMES)}")
    return REGISTRY[name].prepare(ctx)


@dataclass
class Prepared:
    """A runtime ready to call, or the reason it is not."""

    runtime: str
    call: Callable[[], Any] | None = None
    prepare_s: float = 0.0
    first_call_ms: float | None = None
    size_bytes: int | None = None
    parity: dict[str, Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def label(self) -> str:
        return LABELS[self.runtime]


def parse_runtimes(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in RUNTIMES]
    if unknown or not names:
        raise ValueError(f"unknown runtime {', '.join(unknown) or '(none)'}: choose from {', '.join(RUNTIMES)}")
    return names if names[0] == "eager" else ("eager", *(n for n in names if n != "eager"))


def compiler() -> str | None:
    """The C++ compiler torch.compile's inductor would use on a CPU, or None."""
    return shutil.which(os.environ.get("CXX") or "g++") or shutil.which("c++") or shutil.which("clang++")


def _first_call(call: Callable[[], Any]) -> float:
    t = time.perf_counter()
    call()
    return (time.perf_counter() - t) * 1e3


def eager(model: nn.Module, x: torch.Tensor) -> Prepared:
    model = model.eval()
    t = time.perf_counter()
    first = _first_call(lambda: model(x))
    return Prepared("eager", lambda: model(x), time.perf_counter() - t - first / 1e3, first,
                    sum(p.numel() * p.element_size() for p in model.parameters()))


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raises TimeoutError in the main thread after ``seconds`` (a no-op elsewhere: jobs call it on their main one)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_sig: int, _frame: Any) -> None:
        raise TimeoutError(f"torch.compile did not finish within {seconds:.0f} s")
    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def compiled(model: nn.Module, x: torch.Tensor, timeout_s: float = COMPILE_TIMEOUT_S) -> Prepared:
    """torch.compile (inductor); its compile seconds are the first two calls'. Needs a C++ compiler on a CPU."""
    if x.device.type == "cpu" and compiler() is None:
        return Prepared("compile", error="torch.compile needs a C++ compiler (g++) on a CPU, and none was found on "
                                         "PATH: install one (Debian: apt-get install g++) to measure this runtime")
    t = time.perf_counter()
    try:
        with _deadline(timeout_s):
            fn = torch.compile(model.eval())
            fn(x)
            fn(x)                              # inductor may recompile once for the second call's guards
    except TimeoutError as err:
        torch._dynamo.reset()
        return Prepared("compile", prepare_s=time.perf_counter() - t, error=f"{err}; it was stopped")
    except Exception as err:  # noqa: BLE001  dynamo and inductor raise many kinds; one line for the page
        torch._dynamo.reset()
        return Prepared("compile", prepare_s=time.perf_counter() - t,
                        error=f"torch.compile failed: {type(err).__name__}: {first_line(err, 200)}")
    prep = time.perf_counter() - t
    return Prepared("compile", lambda: fn(x), prep, _first_call(lambda: fn(x)),
                    detail={"backend": "inductor", "mode": "default", "compile_s": round(prep, 2)})


def session(path: str | Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and one inter-op thread."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _ort(runtime: str, sess: Any, x: np.ndarray, prepare_s: float, size: int, parity: par.Parity,
         detail: dict[str, Any]) -> Prepared:
    name = sess.get_inputs()[0].name

    def call() -> Any:
        return sess.run(None, {name: x})
    t = time.perf_counter()
    call()
    first = (time.perf_counter() - t) * 1e3
    return Prepared(runtime, call, prepare_s, first, size, parity.to_dict(), detail)


def onnx_fp32(model: nn.Module, shape: tuple[int, ...], workdir: Path, threads: int, inputs: np.ndarray,
              name: str = "model") -> tuple[Prepared, str]:
    """Export, parity on ``inputs`` (refused over tolerance), session. Returns the runtime and the .onnx path."""
    t = time.perf_counter()
    ex = export(model, shape, workdir / f"{name}.onnx")
    sess = session(ex.path, threads)
    parity = par.check(par.compare(model, sess, inputs), "the ONNX export")
    prep = time.perf_counter() - t
    x = inputs[:shape[0]] if len(inputs) >= shape[0] else np.random.default_rng(0).standard_normal(shape, np.float32)
    return _ort("onnx", sess, np.ascontiguousarray(x), prep, ex.size_bytes, parity,
                {"exporter": ex.exporter, "opset": ex.opset, "export_s": round(ex.seconds, 2)}), ex.path


def onnx_int8(model: nn.Module, fp32_path: str, shape: tuple[int, ...], workdir: Path, threads: int,
              inputs: np.ndarray, calibration: np.ndarray, source: str, name: str = "model",
              whole_network: bool = True) -> Prepared:
    """Static int8 from the fp32 export, calibrated on real images; parity is reported (int8 approximates), and
    the nodes that stayed in float are counted. A block (``whole_network=False``) keeps nothing in float on
    purpose."""
    t = time.perf_counter()
    q = quantize(fp32_path, workdir / f"{name}.int8.onnx", calibration, source, keep_ends=whole_network)
    sess = session(q.path, threads)
    parity = par.compare(model, sess, inputs, tolerance=None)
    prep = time.perf_counter() - t
    x = np.ascontiguousarray(inputs[:shape[0]])
    return _ort("onnx-int8", sess, x, prep, q.size_bytes, parity,
                {"quantization": q.config.to_dict(), "quantize_s": round(q.seconds, 2), "float_nodes": q.float_nodes,
                 "quantized_nodes": q.quantized_nodes, "convs_int8": q.convs_int8, "convs_total": q.convs_total})


def failed(runtime: str, err: BaseException, prepare_s: float = 0.0) -> Prepared:
    """A runtime that could not be prepared, with the reason in one line."""
    text = str(err) if isinstance(err, DeployError) else f"{type(err).__name__}: {first_line(err, 200)}"
    return Prepared(runtime, prepare_s=prepare_s, error=text)


@register_runtime("eager", "PyTorch eager")
def _eager(ctx: Context) -> Prepared:
    return eager(ctx.model, ctx.x)


@register_runtime("compile", "torch.compile")
def _compile(ctx: Context) -> Prepared:
    return compiled(ctx.model, ctx.x, ctx.compile_timeout_s)


def _fp32(ctx: Context) -> tuple[Prepared, str]:
    """The fp32 export, made once per context and shared by the fp32 and int8 runtimes."""
    if "onnx" not in ctx.artifacts:
        try:
            ctx.artifacts["onnx"] = onnx_fp32(ctx.model, ctx.shape, ctx.workdir, ctx.threads, ctx.parity_inputs,
                                              name=ctx.name)
        except Exception as err:  # noqa: BLE001  a refused export is refused for int8 too, without a second try
            ctx.artifacts["onnx"] = err
    if isinstance(ctx.artifacts["onnx"], Exception):
        raise ctx.artifacts["onnx"]
    return ctx.artifacts["onnx"]


@register_runtime("onnx", "ONNX Runtime fp32")
def _onnx(ctx: Context) -> Prepared:
    return _fp32(ctx)[0]


@register_runtime("onnx-int8", "ONNX Runtime int8")
def _onnx_int8(ctx: Context) -> Prepared:
    return onnx_int8(ctx.model, _fp32(ctx)[1], ctx.shape, ctx.workdir, ctx.threads, ctx.parity_inputs,
                     ctx.calibration, ctx.source, name=ctx.name, whole_network=ctx.whole_network)
