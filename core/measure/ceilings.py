"""This machine's ceilings, the two lines of the roofline: peak compute from a large GEMM, memory bandwidth
from a STREAM triad (``core.measure.roofline`` places each layer under them).

Cache-aware ceilings (on a CPU, like Intel Advisor's cache-aware roofline): the same triad at a working
set that fits each data cache level the OS lists (``core.measure.caches``), filling L1 to 3/4 of its
capacity, L2 to 1/2 and L3 to 1/4, and DRAM far above the last level. Beyond L1 a level's ceiling is the
best of three working sets from twice the level below's capacity up to that fill (a ceiling is what the
level can give). A triad that small is one op call like any layer's, so the fixed cost of a call (a
16-element triad, the same timer) is measured too and taken off before the bytes are divided:
    level bandwidth = triad bytes / (triad time - call time).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from core.errors import first_line
from core.measure.caches import data_caches, level_of
from core.measure.profiling import ProfileError, device_name, resolve_device
from core.measure.settings import Setting, threads_for
from core.measure.timing import time_call

ELEMENT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


# datasheet peaks of known GPUs: (dense TFLOP/s by precision, memory TB/s). fp32 is the non-tensor-core peak.
DATASHEETS: dict[str, tuple[dict[str, float], float]] = {
    "H100 80GB HBM3": ({"bf16": 989.4, "fp16": 989.4, "fp32": 66.9}, 3.35),  # H100 SXM5
    "H100 PCIe": ({"bf16": 756.0, "fp16": 756.0, "fp32": 51.2}, 2.0),
    "H200": ({"bf16": 989.4, "fp16": 989.4, "fp32": 66.9}, 4.8),
    "A100-SXM4-80GB": ({"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}, 2.039),
    "A100-SXM4-40GB": ({"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}, 1.555),
}


@dataclass(frozen=True)
class Ceilings:
    """Peak compute (GFLOP/s) and memory bandwidth (GB/s) measured here, with what they were measured on."""

    device: str
    device_name: str
    precision: str
    threads: int
    peak_gflops: float
    bandwidth_gbs: float
    gemm_n: int
    stream_mib: int
    seconds: float
    torch_version: str = torch.__version__
    levels: list[dict[str, Any]] = field(default_factory=list)  # per cache level, smallest first; DRAM last
    call_us: float = 0.0  # the fixed cost of one op call, timed here

    @property
    def ridge(self) -> float:
        """The intensity (FLOP/byte) where the two ceilings meet: below it a layer is memory-bound."""
        return self.peak_gflops / self.bandwidth_gbs

    def datasheet(self) -> tuple[float, float] | None:
        """(TFLOP/s, TB/s) from the datasheet for this GPU and precision, when the device name is known."""
        for name, (tflops, tbs) in DATASHEETS.items():
            if name in self.device_name and self.precision in tflops:
                return tflops[self.precision], tbs
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def by_level(self) -> bool:
        """Whether bandwidth was measured per cache level (CPUs whose OS lists their caches)."""
        return len(self.levels) > 1

    def level(self, nbytes: int) -> dict[str, Any]:
        """The level a working set of ``nbytes`` fits in, with its measured bandwidth (DRAM when unknown)."""
        if not self.by_level:
            return {"name": "DRAM" if self.device == "cpu" else "device memory", "gbs": self.bandwidth_gbs}
        return level_of(nbytes, self.levels)

    def bandwidth_for(self, nbytes: int) -> float:
        """The bandwidth ceiling of the level a working set fits in; where that level's figure could not be
        separated from the call cost, the next level out that has one."""
        if not self.by_level:
            return self.bandwidth_gbs
        start = self.levels.index(self.level(nbytes))
        return next((lv["gbs"] for lv in self.levels[start:] if lv.get("gbs")), self.bandwidth_gbs)

    @property
    def top_gbs(self) -> float:
        """The highest measured bandwidth of any level."""
        return max([lv["gbs"] for lv in self.levels if lv.get("gbs")] + [self.bandwidth_gbs])

    def levels_note(self) -> str:
        """What the memory ceilings are, in one sentence."""
        if self.device != "cpu":
            return (
                "On a GPU the bandwidth cannot be measured per cache level here: the one memory ceiling "
                "is the "
                "device memory's triad, and a layer that runs from L2 or shared memory can sit above it."
            )
        if not self.by_level:
            return (
                "The operating system lists no cache sizes here, so the one memory ceiling is DRAM's "
                "triad; a "
                "small layer that runs from cache can sit above it."
            )
        parts = [
            f"{lv['name']} {lv['gbs']:,.0f} GB/s ({_kib(lv['working_set_bytes'])} triad"
            + (f", {_kib(lv['capacity_bytes'])} cache)" if lv.get("capacity_bytes") else ")")
            if lv.get("gbs")
            else f"{lv['name']} not separable from the call cost"
            for lv in self.levels
        ]
        return (
            f"Memory ceilings per level: {'; '.join(parts)}. One op call costs {self.call_us:.1f} µs on "
            "its own; "
            "it is taken off the triads and added to every layer's attainable time."
        )


def _kib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


FILL = {"L1": 0.75, "L2": 0.5}  # the share of a level's capacity its triad uses (1/4 for L3 and beyond)


LEVEL_PROBES = 3  # working sets tried per level beyond L1; the best is its ceiling


def _level_probes(low: int, high: int, n: int = LEVEL_PROBES) -> list[int]:
    """Working sets (bytes) from just past the level below (``low``) up to this level's fill (``high``),
    spaced evenly on a log scale; one probe when the span is narrow."""
    if high <= 2 * low:
        return [high]
    ratio = (high / (2 * low)) ** (1 / max(n - 1, 1))
    return sorted({int(2 * low * ratio**i) for i in range(n - 1)} | {high})


def _measure_levels(
    dtype: torch.dtype, dev: torch.device, threads: int, dram_bytes: int, dram_gbs: float
) -> tuple[list[dict[str, Any]], float]:
    """The triad inside each data cache level, net of one op call's fixed cost; DRAM last. A level's
    ceiling is the best of a few working sets between twice the level below's capacity and its own fill:
    a large shared L3 (a whole socket's, seen from a 2-core VM) gives its nearer slices' bandwidth only
    to smaller working sets."""
    size = torch.empty((), dtype=dtype).element_size()
    call = _time_triad(16, dtype, dev, min_time_s=0.2).p10_ms
    levels, below = [], 0
    for cache in data_caches():
        capacity = cache.capacity(threads)
        high = int(capacity * FILL.get(cache.name, 0.25))
        best: dict[str, Any] | None = None
        for nbytes in _level_probes(below, high) if below else [high]:
            elems = nbytes // (3 * size)
            if elems < 64:
                continue
            took = _time_triad(elems, dtype, dev, min_time_s=0.3).p10_ms
            net = took - call
            gbs = 3 * elems * size / (net / 1e3) / 1e9 if net > 0.1 * took else None
            if best is None or (gbs or 0) > (best["gbs"] or 0):
                best = {"working_set_bytes": 3 * elems * size, "triad_us": took * 1e3, "gbs": gbs}
        below = capacity
        if best is not None:
            levels.append(
                {"name": cache.name, "cache_bytes": cache.size_bytes, "capacity_bytes": capacity, **best}
            )
    levels.append(
        {
            "name": "DRAM",
            "cache_bytes": None,
            "capacity_bytes": None,
            "working_set_bytes": dram_bytes,
            "gbs": dram_gbs,
        }
    )
    return levels, call * 1e3


def _gemm_n(dev: torch.device) -> int:
    return 8192 if dev.type == "cuda" else 1024


def measure_ceilings(setting: Setting, stream_mib: int | None = None, gemm_n: int | None = None) -> Ceilings:
    """Peak compute: an n×n×n matrix product (2n³ FLOPs) in the setting's precision, the best of its timed
    calls. Bandwidth: a STREAM triad a = b + s·c over three buffers far larger than the last-level
    cache, counting the bytes read (b, c) plus written (a), the best of its timed calls; on a CPU, the
    same per cache level (see the module docstring). A few seconds on a CPU."""
    dev = resolve_device(setting.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[setting.precision]
    n = gemm_n or _gemm_n(dev)
    mib = stream_mib or (1024 if dev.type == "cuda" else 256)
    t0 = time.perf_counter()
    elems = mib * 2**20 // ELEMENT_BYTES[setting.precision]
    with threads_for(setting.threads), torch.inference_mode():
        try:
            gemm = _time_gemm(n, dtype, dev)
            triad = _time_triad(elems, dtype, dev)
            threads = torch.get_num_threads()
            dram_bytes = 3 * elems * ELEMENT_BYTES[setting.precision]
            dram_gbs = dram_bytes / (triad.p10_ms / 1e3) / 1e9  # the machine's best, not its average
            levels, call_us = (
                _measure_levels(dtype, dev, threads, dram_bytes, dram_gbs) if dev.type == "cpu" else ([], 0.0)
            )
        except RuntimeError as err:
            raise ProfileError(
                f"the ceilings cannot be measured in {setting.precision} on {dev}: {first_line(err)}"
            ) from err
    return Ceilings(
        dev.type,
        device_name(dev),
        setting.precision,
        setting.threads or threads,
        2 * n**3 / (gemm.p10_ms / 1e3) / 1e9,
        dram_gbs,
        n,
        mib,
        time.perf_counter() - t0,
        levels=levels,
        call_us=call_us,
    )


def _time_gemm(n: int, dtype: torch.dtype, dev: torch.device):
    a, b = torch.randn(n, n, device=dev).to(dtype), torch.randn(n, n, device=dev).to(dtype)
    return time_call(lambda: torch.mm(a, b), dev, warmup=2, min_iters=5, min_time_s=0.5)


def _time_triad(elems: int, dtype: torch.dtype, dev: torch.device, min_time_s: float = 0.5):
    x, y, z = (torch.empty(elems, dtype=dtype, device=dev).fill_(1.0) for _ in range(3))
    return time_call(
        lambda: torch.add(y, z, alpha=2.0, out=x), dev, warmup=2, min_iters=5, min_time_s=min_time_s
    )
