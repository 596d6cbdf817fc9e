"""Stratified, seeded train/val split, saved with the run so it can be reproduced."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.ingest import Dataset


@dataclass(frozen=True)
class Split:
    seed: int
    val_fraction: float
    train: tuple[str, ...]
    val: tuple[str, ...]


def stratified_split(ds: Dataset, val_fraction: float = 0.2, seed: int = 0) -> Split:
    """Per class: shuffle with ``seed`` and hold out round(n · fraction) images, at least 1 when n >= 2."""
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be between 0 and 1")
    rng = np.random.default_rng(seed)
    train: list[str] = []
    val: list[str] = []
    for label in range(len(ds.classes)):
        paths = sorted(s.path for s in ds.samples if s.label == label)
        order = rng.permutation(len(paths))
        n_val = min(len(paths) - 1, max(1, round(len(paths) * val_fraction))) if len(paths) >= 2 else 0
        val += [paths[i] for i in order[:n_val]]
        train += [paths[i] for i in order[n_val:]]
    return Split(seed, val_fraction, tuple(sorted(train)), tuple(sorted(val)))
