"""A runtime is a pair: prepare (export, compile, quantize; timed apart), then call. Every runtime runs
with the same thread count: torch's intra-op threads = ONNX Runtime's intra-op threads, inter-op 1.

The server's runtimes are entries of the one registry of targets (``core.deploy.targets``), each with
its label, colour and adapter (``server_target``); ``prepare(name, context)`` prepares one."""

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
from core.deploy.targets import SERVER, get_target, keys, label_of, register_target
from core.errors import first_line

COMPILE_TIMEOUT_S = 300.0


@dataclass
class Context:
    """What preparing a runtime may use: the eager model, its input, the scratch folder, the threads, the
    parity and calibration inputs; ``artifacts`` holds what one runtime made for another (the fp32 .onnx
    for int8)."""

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
    whole_network: bool = True  # a backbone keeps its stem and classifier in float for int8; a block not
    artifacts: dict[str, Any] = field(default_factory=dict)


Preparer = Callable[[Context], "Prepared"]


@dataclass(frozen=True)
class ServerAdapter:
    """How a server target is prepared (``prepare(context)``: export, compile, quantize, timed apart) and
    timed: the ``call`` it returns is timed by ``core.deploy.measure`` with the one timer, interleaved
    round by round against PyTorch eager, at the same threads."""

    prepare: Preparer


def server_target(
    key: str, label: str, colour: str, precisions: tuple[str, ...] = ("fp32",), help: str = ""
) -> Callable[[Preparer], Preparer]:
    """Registers the decorated prepare function as a server target of the one registry
    (``core.deploy.targets.register_target``: a key taken, no label or no colour is refused there)."""

    def add(fn: Preparer) -> Preparer:
        register_target(key, label, colour, SERVER, precisions, ServerAdapter(fn), help)
        return fn

    return add


def prepare(name: str, ctx: Context) -> "Prepared":
    """Server target ``name`` prepared for ``ctx`` (a ValueError names the known ones when it is not one)."""
    target = get_target(name)
    if target.where != SERVER:
        raise ValueError(f"{target.label} runs in a browser, not on this server: {', '.join(keys(SERVER))}")
    return target.adapter.prepare(ctx)


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
        return label_of(self.runtime)


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
    return Prepared(
        "eager",
        lambda: model(x),
        time.perf_counter() - t - first / 1e3,
        first,
        sum(p.numel() * p.element_size() for p in model.parameters()),
    )


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raises TimeoutError in the main thread after ``seconds`` (a no-op elsewhere: jobs call it on their
    main one)."""
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
    """torch.compile (inductor); its compile seconds are the first two calls'. Needs a C++ compiler on a
    CPU."""
    if x.device.type == "cpu" and compiler() is None:
        return Prepared(
            "compile",
            error="torch.compile needs a C++ compiler (g++) on a CPU, and none was found on "
            "PATH: install one (Debian: apt-get install g++) to measure this runtime",
        )
    t = time.perf_counter()
    try:
        with _deadline(timeout_s):
            fn = torch.compile(model.eval())
            fn(x)
            fn(x)  # inductor may recompile once for the second call's guards
    except TimeoutError as err:
        torch._dynamo.reset()
        return Prepared("compile", prepare_s=time.perf_counter() - t, error=f"{err}; it was stopped")
    except Exception as err:  # noqa: BLE001  dynamo and inductor raise many kinds; one line for the page
        torch._dynamo.reset()
        return Prepared(
            "compile",
            prepare_s=time.perf_counter() - t,
            error=f"torch.compile failed: {type(err).__name__}: {first_line(err, 200)}",
        )
    prep = time.perf_counter() - t
    return Prepared(
        "compile",
        lambda: fn(x),
        prep,
        _first_call(lambda: fn(x)),
        detail={"backend": "inductor", "mode": "default", "compile_s": round(prep, 2)},
    )


def session(path: str | Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and one inter-op thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _ort(
    runtime: str,
    sess: Any,
    x: np.ndarray,
    prepare_s: float,
    size: int,
    parity: par.Parity,
    detail: dict[str, Any],
) -> Prepared:
    name = sess.get_inputs()[0].name

    def call() -> Any:
        return sess.run(None, {name: x})

    t = time.perf_counter()
    call()
    first = (time.perf_counter() - t) * 1e3
    return Prepared(runtime, call, prepare_s, first, size, parity.to_dict(), detail)


def onnx_fp32(
    model: nn.Module,
    shape: tuple[int, ...],
    workdir: Path,
    threads: int,
    inputs: np.ndarray,
    name: str = "model",
) -> tuple[Prepared, str]:
    """Export, parity on ``inputs`` (refused over tolerance), session. Returns the runtime and the .onnx
    path."""
    t = time.perf_counter()
    ex = export(model, shape, workdir / f"{name}.onnx")
    sess = session(ex.path, threads)
    parity = par.check(par.compare(model, sess, inputs), "the ONNX export")
    prep = time.perf_counter() - t
    x = (
        inputs[: shape[0]]
        if len(inputs) >= shape[0]
        else np.random.default_rng(0).standard_normal(shape, np.float32)
    )
    return _ort(
        "onnx",
        sess,
        np.ascontiguousarray(x),
        prep,
        ex.size_bytes,
        parity,
        {"exporter": ex.exporter, "opset": ex.opset, "export_s": round(ex.seconds, 2)},
    ), ex.path


def onnx_int8(
    model: nn.Module,
    fp32_path: str,
    shape: tuple[int, ...],
    workdir: Path,
    threads: int,
    inputs: np.ndarray,
    calibration: np.ndarray,
    source: str,
    name: str = "model",
    whole_network: bool = True,
) -> Prepared:
    """Static int8 from the fp32 export, calibrated on real images; parity is reported (int8 approximates),
    and the nodes that stayed in float are counted. A block (``whole_network=False``) keeps nothing in
    float on purpose."""
    t = time.perf_counter()
    q = quantize(fp32_path, workdir / f"{name}.int8.onnx", calibration, source, keep_ends=whole_network)
    sess = session(q.path, threads)
    parity = par.compare(model, sess, inputs, tolerance=None)
    prep = time.perf_counter() - t
    x = np.ascontiguousarray(inputs[: shape[0]])
    return _ort(
        "onnx-int8",
        sess,
        x,
        prep,
        q.size_bytes,
        parity,
        {
            "quantization": q.config.to_dict(),
            "quantize_s": round(q.seconds, 2),
            "float_nodes": q.float_nodes,
            "quantized_nodes": q.quantized_nodes,
            "convs_int8": q.convs_int8,
            "convs_total": q.convs_total,
        },
    )


def failed(runtime: str, err: BaseException, prepare_s: float = 0.0) -> Prepared:
    """A runtime that could not be prepared, with the reason in one line."""
    text = str(err) if isinstance(err, DeployError) else f"{type(err).__name__}: {first_line(err, 200)}"
    return Prepared(runtime, prepare_s=prepare_s, error=text)


@server_target("eager", "PyTorch eager", "#31a354", help="the model as it is: the baseline of every speed-up")
def prepare_eager(ctx: Context) -> Prepared:
    return eager(ctx.model, ctx.x)


@server_target("compile", "torch.compile", "#756bb1", help="inductor, default mode; needs a C++ compiler")
def prepare_compile(ctx: Context) -> Prepared:
    return compiled(ctx.model, ctx.x, ctx.compile_timeout_s)


def _fp32(ctx: Context) -> tuple[Prepared, str]:
    """The fp32 export, made once per context and shared by the fp32 and int8 runtimes."""
    if "onnx" not in ctx.artifacts:
        try:
            ctx.artifacts["onnx"] = onnx_fp32(
                ctx.model, ctx.shape, ctx.workdir, ctx.threads, ctx.parity_inputs, name=ctx.name
            )
        except Exception as err:  # noqa: BLE001  a refused export is refused for int8 too, without a second try
            ctx.artifacts["onnx"] = err
    if isinstance(ctx.artifacts["onnx"], Exception):
        raise ctx.artifacts["onnx"]
    return ctx.artifacts["onnx"]


@server_target("onnx", "ONNX Runtime fp32", "#e6550d", help="the ONNX export, refused over 1e-4 of eager")
def prepare_onnx(ctx: Context) -> Prepared:
    return _fp32(ctx)[0]


@server_target(
    "onnx-int8", "ONNX Runtime int8", "#de9ed6", ("int8",), help="static int8, calibrated on real images"
)
def prepare_onnx_int8(ctx: Context) -> Prepared:
    return onnx_int8(
        ctx.model,
        _fp32(ctx)[1],
        ctx.shape,
        ctx.workdir,
        ctx.threads,
        ctx.parity_inputs,
        ctx.calibration,
        ctx.source,
        name=ctx.name,
        whole_network=ctx.whole_network,
    )
