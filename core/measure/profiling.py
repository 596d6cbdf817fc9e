"""Profile a module: params, MACs/FLOPs (fvcore, cross-checked), latency, memory -> a frozen dataclass."""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from core.errors import first_line
from core.measure import budget
from core.measure.counting import CrossCheck, MacCount, cross_check, fvcore_macs
from core.measure.layercost import LayerCost, kind_of
from core.measure.settings import MEMORY_FORMATS, autocast_dtype, threads_for
from core.measure.timing import Interleaved, LatencyStats, time_call, time_interleaved


class ProfileError(RuntimeError):
    """A profile that cannot run here (no CUDA, an unsupported precision); the message says why."""


@dataclass(frozen=True)
class Env:
    """Where and how a measurement was taken."""

    device: str
    device_name: str
    torch_version: str
    threads: int
    precision: str
    memory_format: str
    batch: int
    input_shape: tuple[int, ...]

    def label(self) -> str:
        return (
            f"{self.device_name} · {self.precision} · {self.memory_format} · batch {self.batch} · "
            f"{self.threads} thread{'' if self.threads == 1 else 's'} · torch {self.torch_version}"
        )


@dataclass(frozen=True, eq=False)
class Profile:
    """Everything measured about one module at one input shape. MACs are for the whole batch."""

    params: int
    trainable_params: int
    macs: int
    flops: int
    macs_by_op: dict[str, int]
    uncounted_ops: dict[str, int]
    cross_check: CrossCheck | None  # None when not asked for (profile_module(check_counts=False))
    latency_ms: float | None
    latency_p10_ms: float | None
    latency_p90_ms: float | None
    latency: LatencyStats | None
    activation_bytes: int
    activation_precision: str  # the autocast the outputs were counted under (dtypes per layer follow it)
    peak_memory_bytes: int | None
    output_shape: tuple[int, ...]
    per_layer: tuple[LayerCost, ...]  # one record per leaf module, untimed
    env: Env

    @property
    def achieved_gflops(self) -> float | None:
        """FLOPs (= 2 x MACs) per second of median latency, in GFLOP/s."""
        if not self.latency_ms:
            return None
        return self.flops / (self.latency_ms / 1e3) / 1e9


def resolve_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ProfileError("CUDA was requested but this machine has no CUDA device; choose cpu.")
    if dev.type not in ("cpu", "cuda"):
        raise ProfileError(f"device {dev} is not supported; use cpu or cuda")
    return dev


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU ({platform.processor() or platform.machine()})"


def collect_env(dev: torch.device, precision: str, memory_format: str, input_shape: tuple[int, ...]) -> Env:
    return Env(
        dev.type,
        device_name(dev),
        torch.__version__,
        torch.get_num_threads(),
        precision,
        memory_format,
        int(input_shape[0]),
        tuple(int(s) for s in input_shape),
    )


@contextlib.contextmanager
def autocast_for(dev: torch.device, precision: str) -> Iterator[None]:
    """fp32 runs as is; bf16/fp16 run under torch.autocast on the device (mixed precision)."""
    try:
        dtype = autocast_dtype(precision)
    except ValueError as err:
        raise ProfileError(str(err)) from err
    with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
        yield


def _leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, m)
        for name, m in model.named_modules()
        if not list(m.children()) or any(True for _ in m.parameters(recurse=False))
    ]


def _per_layer(
    model: nn.Module, x: torch.Tensor, macs: MacCount, precision: str = "fp32"
) -> tuple[tuple[LayerCost, ...], int]:
    """One record per leaf module (``LayerCost``, untimed): op, kind, output shape, own params, MACs, the
    bytes it moves (inputs, output and own weights once) and its output's bytes. Runs on the CPU under
    the precision's autocast, so each output has the dtype it would have there (bf16 convs, fp32 norms)."""
    seen: dict[str, tuple[int, torch.Tensor]] = {}  # module -> (input bytes, output)
    leaves = _leaf_modules(model)
    hooks = [
        m.register_forward_hook(
            lambda _m, args, out, name=name: seen.__setitem__(
                name, (sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor)), out)
            )
        )
        for name, m in leaves
        if name
    ]
    try:
        with torch.inference_mode(), autocast_for(torch.device("cpu"), precision):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    costs = []
    for name, m in leaves:
        in_bytes, out = seen.get(name, (0, None))
        out_bytes = out.numel() * out.element_size() if isinstance(out, torch.Tensor) else 0
        own = list(m.parameters(recurse=False))
        costs.append(
            LayerCost(
                name,
                type(m).__name__,
                kind_of(m),
                tuple(out.shape) if isinstance(out, torch.Tensor) else (),
                sum(p.numel() for p in own),
                macs.by_module.get(name, 0) if name else 0,
                in_bytes + out_bytes + sum(p.numel() * p.element_size() for p in own),
                out_bytes,
            )
        )
    activation = sum(o.numel() * o.element_size() for _, o in seen.values() if isinstance(o, torch.Tensor))
    return tuple(costs), int(activation)


def _peak_memory(model: nn.Module, x: torch.Tensor, dev: torch.device, precision: str) -> int | None:
    if dev.type != "cuda":
        return None
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    with torch.inference_mode(), autocast_for(dev, precision):
        model(x)
    torch.cuda.synchronize(dev)
    return int(torch.cuda.max_memory_allocated(dev))


def forward_peak_memory(
    module: nn.Module,
    input_shape: tuple[int, ...],
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    memory_format: str = "contiguous",
    **_: Any,
) -> int | None:
    """Peak CUDA memory of one forward (None on a CPU, which has no such counter): the memory half of
    ``profile_module`` alone, for a page that times with ``time_settled`` and has its counts already."""
    dev = resolve_device(device)
    if dev.type != "cuda":
        return None
    within_budget([module], [input_shape])
    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    model = module.eval().to(dev, memory_format=fmt)
    return _peak_memory(
        model, torch.randn(*input_shape, device=dev).contiguous(memory_format=fmt), dev, dtype
    )


def within_budget(modules: list[nn.Module], input_shapes: list[tuple[int, ...]]) -> None:
    """Every module's forward at its shape within the memory budget together (core.measure.budget), before
    any input is allocated; a refusal is a ProfileError with the limit in its message."""
    try:
        total = sum(budget.check_module(m, tuple(s)).total for m, s in zip(modules, input_shapes))
        if len(modules) > 1:
            budget.check_bytes(
                f"these {len(modules)} modules together", total, "Lower the batch or the sizes."
            )
    except budget.BudgetError as err:
        raise ProfileError(str(err)) from err


def profile_module(
    module: nn.Module,
    input_shape: tuple[int, ...],
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    memory_format: str = "contiguous",
    threads: int | None = None,
    time_it: bool = True,
    min_time_s: float = 0.25,
    check_counts: bool = True,
    **timing: Any,
) -> Profile:
    """Counts, times and sizes ``module`` on an input of ``input_shape`` (N, C, H, W), with ``threads`` CPU
    threads for this measurement only (the previous count is restored). ``check_counts`` cross-checks
    fvcore's MACs with torch's FlopCounterMode (whose first use imports torch._dynamo: about 1 s once
    per process)."""
    dev = resolve_device(device)
    if memory_format not in MEMORY_FORMATS:
        raise ProfileError(f"memory format {memory_format!r} is not one of {', '.join(MEMORY_FORMATS)}")
    within_budget([module], [input_shape])
    with threads_for(threads):
        return _profile(
            module, input_shape, dev, dtype, memory_format, time_it, min_time_s, check_counts, **timing
        )


def _profile(
    module: nn.Module,
    input_shape: tuple[int, ...],
    dev: torch.device,
    dtype: str,
    memory_format: str,
    time_it: bool,
    min_time_s: float,
    check_counts: bool,
    **timing: Any,
) -> Profile:
    module = module.eval().to("cpu", memory_format=torch.contiguous_format)  # count on CPU, wherever it was
    x_cpu = torch.randn(*input_shape)
    macs = fvcore_macs(module, (x_cpu,))
    check = cross_check(macs, module, (x_cpu,)) if check_counts else None
    try:
        per_layer, activation = _per_layer(module, x_cpu, macs, dtype)
        activation_precision = dtype
    except RuntimeError:  # a precision this CPU cannot autocast: count in fp32 and say so
        per_layer, activation = _per_layer(module, x_cpu, macs)
        activation_precision = "fp32"
    params = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)

    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    module = module.to(dev, memory_format=fmt)
    x = x_cpu.to(dev).contiguous(memory_format=fmt)
    try:
        with torch.inference_mode(), autocast_for(dev, dtype):
            out = module(x)
        stats = None
        if time_it:  # contexts entered once, outside the timed calls (as timm's benchmark does)
            with torch.inference_mode(), autocast_for(dev, dtype):
                stats = time_call(lambda: module(x), dev, min_time_s=min_time_s, **timing)
        peak = _peak_memory(module, x, dev, dtype)
    except RuntimeError as err:
        if isinstance(err, ProfileError):
            raise
        raise ProfileError(f"running in {dtype} on {dev} failed: {first_line(err)}") from err
    return Profile(
        params=params,
        trainable_params=trainable,
        macs=macs.total,
        flops=2 * macs.total,
        macs_by_op=macs.by_operator,
        uncounted_ops=macs.uncounted_ops,
        cross_check=check,
        latency_ms=stats.median_ms if stats else None,
        latency_p10_ms=stats.p10_ms if stats else None,
        latency_p90_ms=stats.p90_ms if stats else None,
        latency=stats,
        activation_bytes=activation,
        activation_precision=activation_precision,
        peak_memory_bytes=peak,
        output_shape=tuple(out.shape),
        per_layer=per_layer,
        env=collect_env(dev, dtype, memory_format, input_shape),
    )


def time_modules(
    modules: list[nn.Module],
    input_shapes: list[tuple[int, ...]],
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    memory_format: str = "contiguous",
    threads: int | None = None,
    **timing: Any,
) -> Interleaved:
    """Times several modules interleaved, round by round (core.measure.timing.time_interleaved), each on a
    random input of its shape, on one device, precision, memory format and thread count."""
    return _timed(
        modules,
        input_shapes,
        device,
        dtype,
        memory_format,
        threads,
        lambda calls, dev: time_interleaved(calls, dev, **timing),
    )


def time_settled(module: nn.Module, input_shape: tuple[int, ...], **setting: Any) -> Interleaved:
    """One module by Compare's protocol (rounds until the figure settles, or a busy warning): what Explore
    shows, so a block's latency on Explore and on Compare come from one rule."""
    return time_modules([module], [input_shape], **setting)


def time_module(
    module: nn.Module,
    input_shape: tuple[int, ...],
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    memory_format: str = "contiguous",
    threads: int | None = None,
    **timing: Any,
) -> LatencyStats:
    """Batch latency of one module alone (the same timer and setting as profile_module, without the
    counting)."""
    return _timed(
        [module],
        [input_shape],
        device,
        dtype,
        memory_format,
        threads,
        lambda calls, dev: time_call(calls[0], dev, **timing),
    )


def _timed(
    modules: list[nn.Module],
    input_shapes: list[tuple[int, ...]],
    device: str | torch.device,
    dtype: str,
    memory_format: str,
    threads: int | None,
    timer: Any,
) -> Any:
    dev = resolve_device(device)
    if memory_format not in MEMORY_FORMATS:
        raise ProfileError(f"memory format {memory_format!r} is not one of {', '.join(MEMORY_FORMATS)}")
    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    within_budget(modules, input_shapes)
    with threads_for(threads):
        calls = []
        for module, shape in zip(modules, input_shapes):
            m = module.eval().to(dev, memory_format=fmt)
            x = torch.randn(*shape).to(dev).contiguous(memory_format=fmt)
            calls.append(lambda m=m, x=x: m(x))
        try:
            with torch.inference_mode(), autocast_for(dev, dtype):
                return timer(calls, dev)
        except RuntimeError as err:
            if isinstance(err, ProfileError):
                raise
            raise ProfileError(f"running in {dtype} on {dev} failed: {first_line(err)}") from err
