"""Where and how to measure: one settings type for every page and worker, and threads applied per
measurement."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MEMORY_FORMATS = ("contiguous", "channels_last")


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision name; None for fp32 (no autocast). The one precision -> dtype map."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    return None if precision == "fp32" else PRECISIONS[precision]


def default_threads(cores: int | None = None) -> int:
    """The thread count the app starts with: half the cores, at least one. On this project's 2-core VM one
    thread timed a block at a steady ~63 ms while two threads, sharing the cores with the server and the
    browser, ranged from 50 to 1,180 ms; leaving half the cores to everything else keeps timings steady
    (benchmarks/ratio_stability.py measures both). The sidebar still offers every core."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // 2)


@dataclass(frozen=True)
class Setting:
    """Device, precision, memory format and CPU threads (0 = leave torch's count as it is)."""

    device: str = "cpu"
    precision: str = "fp32"
    memory_format: str = "contiguous"
    threads: int = 0

    def resolved_threads(self) -> int:
        return self.threads or torch.get_num_threads()

    def profile_kwargs(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "dtype": self.precision,
            "threads": self.threads,
            "memory_format": self.memory_format,
        }


@contextlib.contextmanager
def threads_for(threads: int | None) -> Iterator[None]:
    """Runs the block with ``threads`` intra-op threads and restores the previous count after, so one
    user's choice never changes another's timings in the same server process."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
