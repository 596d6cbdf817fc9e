"""Shared bits of the benchmark scripts: arguments, environment record, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.cli import quiet_library_warnings  # noqa: E402

quiet_library_warnings()  # the JSON on stdout is the answer; fvcore's import warns of torch.jit.script

from core.measure.profiling import collect_env, resolve_device  # noqa: E402
from core.measure.timing import pin_malloc_thresholds  # noqa: E402

pin_malloc_thresholds()  # every benchmark script imports this module first


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--threads", type=int, default=None)
    return p


def environment(args: argparse.Namespace, precision: str | None = None) -> dict[str, Any]:
    """Where the benchmark runs: the device, the torch that is imported (not the one pinned), threads, and
    the precision the measured code really runs in (``precision`` where the script fixes it, else
    --precision)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    env = collect_env(resolve_device(args.device), precision or args.precision, "contiguous", (1,))
    return {
        "device": env.device_name,
        "torch": env.torch_version,
        "threads": env.threads,
        "precision": env.precision,
    }


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2, default=float))


class Collect:
    """Trainer callbacks that keep each epoch's values, with seconds since construction as ``t``."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.t0 = time.perf_counter()

    def on_start(self, info: dict[str, Any]) -> None:
        self.info = info

    def on_step(
        self, epoch: int, step: int, values: dict[str, float], groups: dict[str, float] | None = None
    ) -> None:
        pass

    def on_end(self, status: str, metrics: dict[str, float]) -> None:
        pass

    def should_stop(self) -> bool:
        return False

    def on_epoch(self, epoch: int, step: int, values: dict[str, float], details: dict[str, Any]) -> None:
        self.epochs.append({"epoch": epoch + 1, "t": time.perf_counter() - self.t0, **values})
