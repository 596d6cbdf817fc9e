"""A model's preprocessing as a value: its input size and its mean and std (timm's ``pretrained_cfg``, or
ImageNet's), applied by ``core.data.pixels`` (the one definition of the steps). Training, evaluation,
"try an image", the bundle, the ONNX export and the plain scripts all take it from here or from the
record it writes."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.data import pixels
from core.data.images import open_checked

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STEPS = {
    "exif_orientation": "applied",
    "color": "8-bit RGB (16-bit scaled, palette, CMYK and alpha converted)",
    "resize": "shorter side to image_size, bilinear",
    "crop": "centre, image_size x image_size",
    "scale": "1/255",
    "channel_order": "RGB",
    "layout": "NCHW float32",
}


@dataclass(frozen=True)
class Preprocessing:
    image_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def for_model(cls, model: Any, image_size: int) -> "Preprocessing":
        """From a timm model (its ``pretrained_cfg``) or an architecture name; ImageNet's mean and std when
        the model names none."""
        if isinstance(model, str):
            import timm

            cfg = timm.get_pretrained_cfg(model)
            mean, std = getattr(cfg, "mean", None), getattr(cfg, "std", None)
        else:
            cfg = getattr(model, "pretrained_cfg", {}) or {}
            mean, std = cfg.get("mean"), cfg.get("std")
        return cls(
            int(image_size),
            tuple(float(v) for v in (mean or IMAGENET_MEAN)),  # type: ignore[arg-type]
            tuple(float(v) for v in (std or IMAGENET_STD)),
        )  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Preprocessing":
        """From what ``to_dict`` wrote (bundle.json keeps it; older bundles kept the same three keys at the
        top)."""
        return cls(int(record["image_size"]), tuple(record["mean"]), tuple(record["std"]))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std), **STEPS}

    def uint8(self, image: str | Path | Image.Image) -> np.ndarray:
        """(3, S, S) uint8 before normalisation: what the decoded-image cache keeps for training. A file is
        opened within the limits of ``core.data.images``."""
        img = image if isinstance(image, Image.Image) else open_checked(image)
        return pixels.resize_crop(img, self.image_size)

    def array(self, image: str | Path | Image.Image) -> np.ndarray:
        """(3, S, S) float32: the model's input for one image."""
        return pixels.normalize(self.uint8(image), self.mean, self.std)

    def batch(self, images: list[str | Path] | list[Path]) -> np.ndarray:
        """(N, 3, S, S) float32 for a list of image files."""
        if not images:
            return np.zeros((0, 3, self.image_size, self.image_size), np.float32)
        return np.ascontiguousarray(np.stack([self.array(p) for p in images]))


BEGIN, END = "# BEGIN pixels", "# END pixels"


def embed_pixels(template: str) -> str:
    """A plain script's text with the lines between its ``# BEGIN pixels`` and ``# END pixels`` markers
    replaced by ``core/data/pixels.py`` itself (its docstring dropped): the bundle's scripts carry the
    one preprocessing verbatim, so they run without Archscope and preprocess exactly as training did."""
    source = inspect.getsource(pixels)
    body = source.split('"""', 2)[2].lstrip("\n")
    head, rest = template.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    note = f"{BEGIN}: Archscope's core/data/pixels.py, copied verbatim (the one preprocessing)\n"
    return head + note + body + END + tail
