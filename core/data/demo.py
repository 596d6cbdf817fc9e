"""The built-in demo dataset: shapes with random colour, size, rotation, position and a noisy background.

Generated offline and deterministically from a seed, in ImageFolder layout (class/image.png).
"""

from __future__ import annotations

import math
import shutil
import uuid
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.config import data_dir
from core.data.folders import publish

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "square":
        pts = [
            (math.cos(angle + k * math.pi / 2 + math.pi / 4), math.sin(angle + k * math.pi / 2 + math.pi / 4))
            for k in range(4)
        ]
    elif kind == "triangle":
        pts = [
            (math.cos(angle + k * 2 * math.pi / 3), math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)
        ]
    elif kind == "star":
        pts = [
            (
                (1.0 if k % 2 == 0 else 0.45) * math.cos(angle + k * math.pi / 5),
                (1.0 if k % 2 == 0 else 0.45) * math.sin(angle + k * math.pi / 5),
            )
            for k in range(10)
        ]
    else:  # cross: a plus sign of width 0.35 r
        w = 0.35
        base = [
            (-w, -1),
            (w, -1),
            (w, -w),
            (1, -w),
            (1, w),
            (w, w),
            (w, 1),
            (-w, 1),
            (-w, w),
            (-1, w),
            (-1, -w),
            (-w, -w),
        ]
        c, s = math.cos(angle), math.sin(angle)
        pts = [(x * c - y * s, x * s + y * c) for x, y in base]
    return [(cx + r * x, cy + r * y) for x, y in pts]


def _colour(rng: np.random.Generator, avoid: tuple[int, ...] | None = None) -> tuple[int, int, int]:
    while True:
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        if avoid is None or sum(abs(a - b) for a, b in zip(c, avoid)) > 180:
            return c  # type: ignore[return-value]


def render(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One image of ``kind`` on a noisy two-colour background."""
    bg = _colour(rng)
    noise = rng.normal(0, 18, (size, size, 3))
    grad = (
        np.linspace(0, 1, size)[None, :, None] * (np.array(_colour(rng)) - np.array(bg))[None, None, :] * 0.5
    )
    base = np.clip(np.array(bg)[None, None, :] + grad + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    fg = _colour(rng, avoid=bg)
    r = size * rng.uniform(0.16, 0.34)
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    angle = rng.uniform(0, 2 * math.pi)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=max(2, int(r * 0.3)))
    else:
        draw.polygon(_polygon(kind, cx, cy, r, angle), fill=fg)
    return img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0, 0.8))))


def generate(
    root: str | Path | None = None,
    per_class: int = 60,
    size: int = 64,
    seed: int = 0,
    classes: tuple[str, ...] = CLASSES,
) -> Path:
    """Writes the demo set (or reuses an identical one) and returns its folder."""
    if per_class < 1 or size < 16:
        raise ValueError("the demo set needs at least 1 image per class and 16 px images")
    root = (
        Path(root)
        if root
        else data_dir() / "datasets" / f"demo-s{seed}-n{per_class}-px{size}-c{len(classes)}"
    )
    if (root / ".complete").exists():
        return root
    partial = (
        root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:8]}"
    )  # one per writer, renamed when whole
    try:
        for k, kind in enumerate(classes):
            (partial / kind).mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng([seed, k])
            for i in range(per_class):
                render(kind, size, rng).save(partial / kind / f"{kind}_{i:04d}.png")
        publish(partial, root)  # another writer may have finished first: keep theirs
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


def generate_zip(path: str | Path, per_class: int = 20, size: int = 48, seed: int = 0) -> Path:
    """The demo set as a zip of class folders (what a user would upload)."""
    folder = generate(Path(path).with_suffix(""), per_class, size, seed)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.rglob("*.png")):
            zf.write(file, file.relative_to(folder))
    return Path(path)
