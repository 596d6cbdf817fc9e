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
    test: tuple[str, ...] = ()  # held out from training and from epoch selection (empty: none)
    test_fraction: float = 0.0


def stratified_split(
    ds: Dataset, val_fraction: float = 0.2, seed: int = 0, test_fraction: float = 0.0
) -> Split:
    """Per class: shuffle with ``seed``; hold out round(n · test_fraction) test images (at least 1 when n
    >= 3 and a test split is asked for), then round(n · val_fraction) validation images (at least 1 when
    2 are left); training keeps at least one image."""
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(
            "val_fraction and test_fraction must be between 0 and 1 and leave images to train on"
        )
    rng = np.random.default_rng(seed)
    train: list[str] = []
    val: list[str] = []
    test: list[str] = []
    for label in range(len(ds.classes)):
        paths = sorted(s.path for s in ds.samples if s.label == label)
        order = rng.permutation(len(paths))
        n = len(paths)
        n_test = min(n - 2, max(1, round(n * test_fraction))) if test_fraction and n >= 3 else 0
        n_val = min(n - n_test - 1, max(1, round(n * val_fraction))) if n - n_test >= 2 else 0
        test += [paths[i] for i in order[:n_test]]
        val += [paths[i] for i in order[n_test : n_test + n_val]]
        train += [paths[i] for i in order[n_test + n_val :]]
    return Split(
        seed, val_fraction, tuple(sorted(train)), tuple(sorted(val)), tuple(sorted(test)), test_fraction
    )
