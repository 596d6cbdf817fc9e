"""This machine's data caches as the operating system lists them, and which level a working set fits in.

Linux lists every cache of a CPU under ``/sys/devices/system/cpu/cpuN/cache/indexK/``: its ``level``,
``type`` (Data, Instruction or Unified), ``size`` ("32K", "1M") and ``shared_cpu_list`` (the CPUs that
share one instance). Instruction caches hold no tensors, so only Data and Unified caches are kept. A
private cache (one instance per core) gives a multi-threaded op one instance per thread, so a level's
capacity for ``threads`` threads is
    capacity = size per instance x min(threads, instances).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SYSFS = Path("/sys/devices/system/cpu/cpu0/cache")
UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}


@dataclass(frozen=True)
class CacheLevel:
    """One data cache level: its name ("L1", "L2", "L3"), bytes per instance and how many instances there
    are."""

    name: str
    size_bytes: int
    instances: int

    def capacity(self, threads: int) -> int:
        """Bytes an op on ``threads`` threads can keep in this level (see the module docstring)."""
        return self.size_bytes * max(1, min(threads, self.instances))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_size(text: str) -> int:
    """sysfs's "32K", "1024K", "32M" (or a plain byte count) in bytes."""
    text = text.strip().upper()
    if text[-1:] in UNITS:
        return int(text[:-1]) * UNITS[text[-1]]
    return int(text)


def cpus_in(cpu_list: str) -> int:
    """How many CPUs a sysfs list such as "0-3,8,10-11" names."""
    count = 0
    for part in cpu_list.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


def data_caches(root: Path = SYSFS, cpus: int | None = None) -> list[CacheLevel]:
    """The data (and unified) cache levels of CPU 0, smallest first; [] where the OS does not list them
    (not Linux, or a container that hides sysfs)."""
    cpus = cpus or os.cpu_count() or 1
    levels: dict[int, CacheLevel] = {}
    try:
        entries = sorted(root.glob("index*"))
    except OSError:
        return []
    for entry in entries:
        try:
            kind = (entry / "type").read_text().strip()
            level = int((entry / "level").read_text())
            size = parse_size((entry / "size").read_text())
            shared = cpus_in((entry / "shared_cpu_list").read_text())
        except (OSError, ValueError):
            continue
        if kind not in ("Data", "Unified") or size <= 0:
            continue
        levels[level] = CacheLevel(f"L{level}", size, max(1, cpus // max(shared, 1)))
    return [levels[k] for k in sorted(levels)]


def level_of(working_set: int, levels: list[dict[str, Any]]) -> dict[str, Any]:
    """The smallest measured level (dicts with ``name`` and ``capacity_bytes``, smallest first, DRAM last
    with no capacity) whose capacity holds ``working_set`` bytes."""
    for lv in levels:
        if lv.get("capacity_bytes") is None or working_set <= lv["capacity_bytes"]:
            return lv
    return levels[-1]
