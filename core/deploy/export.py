"""A module to one ``.onnx`` file with a dynamic batch axis. ``dynamo=`` is always passed: the TorchScript
exporter first (1.5-3 s for a backbone here), the dynamo exporter when that one fails (12-14 s); which
one made the file, with its opset, is recorded."""

from __future__ import annotations

import io
import re
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.deploy import DeployError
from core.errors import first_line

OPSET = 18
INPUT, OUTPUT = "input", "output"


@dataclass(frozen=True)
class Exported:
    path: str
    exporter: str  # 'torchscript (dynamo=False)' or 'dynamo (dynamo=True)'
    opset: int
    seconds: float
    size_bytes: int
    input_shape: tuple[int, ...]
    torch_version: str = torch.__version__

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _export(model: nn.Module, x: torch.Tensor, path: Path, dynamo: bool) -> None:
    kwargs: dict[str, Any] = {"input_names": [INPUT], "output_names": [OUTPUT], "opset_version": OPSET}
    if dynamo:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    else:
        kwargs["dynamic_axes"] = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=dynamo, **kwargs)


def culprit(err: BaseException) -> str:
    """The operator or module an exporter failed on, from its message, in one line."""
    text = str(err)
    for pattern in (r"(aten::\w+)", r"operator '?([\w.:]+)'?", r"module '?([\w.]+)'?"):
        found = re.search(pattern, text)
        if found:
            return found.group(1)
    return first_line(err, 160)


def export(model: nn.Module, input_shape: tuple[int, ...], path: str | Path) -> Exported:
    """Exports ``model`` (in eval mode, on the CPU, fp32) for inputs of ``input_shape`` with a dynamic
    batch axis."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to("cpu")
    x = torch.randn(*input_shape)
    errors = []
    for dynamo in (False, True):
        t = time.perf_counter()
        tmp = path.with_name(f".{path.name}.partial")
        try:
            _export(model, x, tmp, dynamo)
            tmp.replace(path)
        except Exception as err:  # noqa: BLE001  each exporter fails in its own way; the next one is tried
            tmp.unlink(missing_ok=True)
            errors.append(f"{'dynamo' if dynamo else 'torchscript'} exporter: {culprit(err)}")
            continue
        name = "dynamo (dynamo=True)" if dynamo else "torchscript (dynamo=False)"
        return Exported(
            str(path), name, OPSET, time.perf_counter() - t, path.stat().st_size, tuple(input_shape)
        )
    raise DeployError(f"ONNX export failed: {'; '.join(errors)}")
