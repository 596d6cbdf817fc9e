"""Real images for calibration and parity: the user's dataset when there is one, else the generated demo
set, never random tensors alone. Preprocessed as the model expects (resize, centre crop, mean/std); a
block gets the same images as feature maps (a fixed 1x1 projection of RGB to its channels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _paths(n: int, dataset: str | Path | None) -> tuple[list[Path], str]:
    from core.data import demo
    from core.data.ingest import scan

    if dataset:
        ds = scan(dataset)
        source = f"the dataset {Path(ds.root).name} ({len(ds.samples)} images)"
    else:
        ds = scan(demo.generate())
        source = f"the generated demo set ({len(ds.samples)} images)"
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds.samples))[:n]
    return [Path(ds.root) / ds.samples[i].path for i in order], source


def images(
    n: int,
    size: int,
    dataset: str | Path | None = None,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> tuple[np.ndarray, str]:
    """(n, 3, size, size) float32 images and where they came from."""
    from core.data.images import load_resized

    paths, source = _paths(n, dataset)
    arr = np.stack([load_resized(p, size) for p in paths]).astype(np.float32) / 255.0
    arr = (arr - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]
    return np.ascontiguousarray(arr), source


def feature_maps(
    n: int, shape: tuple[int, int, int], dataset: str | Path | None = None
) -> tuple[np.ndarray, str]:
    """(n, C, H, W) inputs for a block: real images resized to H x W, projected to C channels by a fixed
    random 1x1 map (seed 0) and standardised per channel, so their spatial statistics are an image's."""
    c, h, w = shape
    rgb, source = images(n, max(h, w), dataset)
    rgb = rgb[:, :, :h, :w]
    proj = np.random.default_rng(0).standard_normal((c, 3)).astype(np.float32)
    maps = np.einsum("ck,nkhw->nchw", proj, rgb)
    maps = (maps - maps.mean(axis=(0, 2, 3), keepdims=True)) / (
        maps.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    )
    return np.ascontiguousarray(maps.astype(np.float32)), f"{source}, projected to {c} channels"
