"""What a deployment figure was measured with: the CPU's instruction sets, the threads, and the versions of
the libraries that made and ran its files (part of every stored key, so an upgrade measures again)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from core.deploy.quantize import cpu_isa


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("torch", "timm", "onnx", "onnxruntime", "onnxscript"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def versions_key() -> str:
    return " ".join(f"{k} {v}" for k, v in versions().items())


def environment(threads: int) -> dict[str, Any]:
    return {
        **cpu_isa(),
        "threads": threads,
        "inter_op_threads": 1,
        "device": "cpu",
        "precision": "fp32 input",
        "batch": 1,
        "versions": versions(),
    }
