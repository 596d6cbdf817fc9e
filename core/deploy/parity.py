"""ONNX against eager on the same inputs: the largest absolute difference of the outputs and, for a
classifier, how often the two agree on the top-1 class. An artifact over tolerance is refused with both
figures, never timed as if it were the same model (exporters have shipped silently wrong models:
pytorch/pytorch#169178)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.deploy import DeployError

TOLERANCE = 1e-4  # fp32 ONNX against fp32 eager
INT8_MIN_AGREEMENT = 0.0  # int8 is an approximation: its agreement is reported, not refused


@dataclass(frozen=True)
class Parity:
    n_inputs: int
    max_abs_diff: float
    top1_agreement: float | None  # None for outputs that are not class scores
    tolerance: float | None

    @property
    def ok(self) -> bool:
        return self.tolerance is None or self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    eager: nn.Module, session: Any, inputs: np.ndarray, tolerance: float | None = TOLERANCE, batch: int = 8
) -> Parity:
    """Both on every input (in batches of ``batch``): max |ONNX - eager| and, for (N, classes) outputs, the
    top-1 agreement."""
    name = session.get_inputs()[0].name
    diffs, agree, total = [], 0, 0
    classifier = True
    for start in range(0, len(inputs), batch):
        x = inputs[start : start + batch]
        got = session.run(None, {name: x})[0]
        with torch.inference_mode():
            ref = eager(torch.from_numpy(x)).float().numpy()
        diffs.append(float(np.abs(got - ref).max()))
        classifier = classifier and got.ndim == 2 and got.shape[1] > 1
        if classifier:
            agree += int((got.argmax(1) == ref.argmax(1)).sum())
            total += len(x)
    return Parity(len(inputs), max(diffs), agree / total if classifier and total else None, tolerance)


def check(parity: Parity, what: str) -> Parity:
    """Refuses an artifact over tolerance, with both figures."""
    if not parity.ok:
        top1 = f", top-1 agreement {parity.top1_agreement:.1%}" if parity.top1_agreement is not None else ""
        raise DeployError(
            f"refused: {what} does not match the PyTorch model: max abs difference "
            f"{parity.max_abs_diff:.3g} over {parity.n_inputs} inputs (tolerance {parity.tolerance:g})"
            f"{top1}; it is not timed"
        )
    return parity
