"""What to deploy: a timm architecture at a resolution, or a registered block at an input shape, with the
real inputs its parity check and int8 calibration use (``inputs``) and the plain name its files get
(``slug``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from core.deploy import calibration
from core.finetune.weights import OFFLINE_ARCH

PARITY_INPUTS = 32
CALIBRATION_IMAGES = 64


@dataclass(frozen=True)
class Deployable:
    """What to deploy: a timm architecture at a resolution, or a registered block at an input shape."""

    kind: str  # 'model' or 'block'
    name: str
    shape: tuple[int, ...]
    cfg: tuple[tuple[str, Any], ...] = ()
    label: str = ""

    @classmethod
    def model(cls, name: str, resolution: int | None = None) -> "Deployable":
        from core.zoo.catalog import check_resolution, default_resolution, resolve_name

        arch = resolve_name(name)
        res = default_resolution(arch) if resolution is None else resolution  # 0 is checked, never replaced
        check_resolution(res)
        return cls("model", arch, (1, 3, res, res), label=arch)

    @classmethod
    def block(cls, name: str, cfg: dict[str, Any], shape: tuple[int, ...], label: str = "") -> "Deployable":
        from core.blocks import check_input, resolve_config

        resolved = resolve_config(name, **cfg)
        check_input(name, resolved, tuple(shape))
        return cls("block", name, tuple(shape), tuple(sorted(resolved.items())), label or name)

    @property
    def key(self) -> str:
        if self.kind == "model":
            return self.name
        return (
            f"block:{self.name}:"
            + json.dumps(dict(self.cfg), sort_keys=True)
            + ":"
            + "x".join(map(str, self.shape))
        )

    @property
    def resolution(self) -> int:
        return int(self.shape[-1])

    def build(self) -> nn.Module:
        if self.kind == "model":
            import timm

            from core.zoo.catalog import check_budget

            check_budget(self.name, self.resolution, lambda: timm.create_model(self.name, exportable=True))
            model = timm.create_model(self.name, pretrained=False, exportable=True).eval()
            if self.name == OFFLINE_ARCH:  # real ImageNet weights ship with a package: a real classifier
                from core.finetune.weights import WeightsError, offline_state_dict

                try:
                    model.load_state_dict(offline_state_dict())
                except WeightsError:
                    pass
            return model
        from core.blocks import create_block

        return create_block(self.name, **dict(self.cfg)).eval()

    def memory_needed(self) -> tuple[int, str]:
        """(bytes, what) a deployment job allocates beyond the model: its parity and calibration inputs,
        and every layer's output for each calibration input, which ONNX Runtime's calibrator keeps until
        it computes the ranges."""
        from core.measure.budget import footprint, on_meta

        n = PARITY_INPUTS + CALIBRATION_IMAGES
        per_input = int(np.prod(self.shape[1:])) * 4
        if self.kind == "block":
            from core.blocks import create_block

            acts = footprint(
                on_meta(lambda: create_block(self.name, **dict(self.cfg))), self.shape
            ).activation_bytes
        else:
            acts = 0  # a backbone's own footprint is checked when it is built (zoo.catalog)
        shape = " x ".join(map(str, self.shape[1:]))
        return n * per_input + CALIBRATION_IMAGES * acts, (
            f"{n} parity and calibration inputs of {shape} and the "
            f"layer outputs of {CALIBRATION_IMAGES} calibration passes"
        )

    def check_memory(self) -> None:
        """Refuses a target whose deployment would not fit the memory budget (core.measure.budget), in
        words."""
        from core.measure.budget import check_bytes

        nbytes, what = self.memory_needed()
        check_bytes(f"deploying {self.label}: {what}", nbytes, "Lower the channels or the spatial size.")

    def macs(self) -> int:
        if self.kind == "model":
            from core.zoo.measure import count

            return int(count(self.name, self.resolution)["macs"])
        from core.blocks import block_cost

        return int(block_cost(self.name, self.shape, **dict(self.cfg)).macs)


def inputs(target: Deployable) -> tuple[np.ndarray, np.ndarray, str]:
    """Parity inputs and calibration inputs (disjoint real images) and where they came from."""
    n = PARITY_INPUTS + CALIBRATION_IMAGES
    if target.kind == "model":
        data, source = calibration.images(n, target.resolution)
    else:
        data, source = calibration.feature_maps(n, tuple(target.shape[1:]))  # type: ignore[arg-type]
    return data[:PARITY_INPUTS], data[PARITY_INPUTS:], source


def slug(target: Deployable) -> str:
    return "".join(c if c.isalnum() else "_" for c in target.label)[:40] or "model"
