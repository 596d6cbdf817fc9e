"""Pareto frontiers: the points no other point beats on cost and accuracy together."""

from __future__ import annotations

import numpy as np


def pareto_front(cost: np.ndarray | list[float], accuracy: np.ndarray | list[float]) -> np.ndarray:
    """Mask of points no other point beats: lower-or-equal cost with higher-or-equal accuracy, one
    strictly."""
    c, a = np.asarray(cost, dtype=float), np.asarray(accuracy, dtype=float)
    mask = np.zeros(len(c), dtype=bool)
    for i in range(len(c)):
        if np.isnan(c[i]) or np.isnan(a[i]):
            continue
        dominated = (c <= c[i]) & (a >= a[i]) & ((c < c[i]) | (a > a[i]))
        mask[i] = not dominated.any()
    return mask
