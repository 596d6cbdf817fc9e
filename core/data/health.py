"""Health report of a dataset, returned as data for the UI to draw."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from core.data.ingest import Dataset
from core.data.split import Split

TINY_CLASS = 10
IMBALANCE_WARN = 3.0


@dataclass(frozen=True)
class Health:
    counts: dict[str, int]
    imbalance: float  # largest class / smallest class
    tiny_classes: tuple[str, ...]
    skipped: pd.DataFrame  # path, reason
    duplicates: pd.DataFrame  # sha256, paths, classes, where ('within train', 'across splits', ...)
    sizes: pd.DataFrame  # width, height per image
    warnings: tuple[str, ...]
    no_val_support: tuple[str, ...] = ()  # classes that get no validation image (fewer than 2 images)


def _duplicates(ds: Dataset, split: Split | None) -> pd.DataFrame:
    groups: dict[str, list] = defaultdict(list)
    for s in ds.samples:
        groups[s.sha256].append(s)
    where_of = {}
    if split is not None:
        where_of = {p: "train" for p in split.train} | {p: "val" for p in split.val}
    rows = []
    for digest, items in groups.items():
        if len(items) < 2:
            continue
        sides = {where_of.get(s.path, "dataset") for s in items}
        labels = {ds.classes[s.label] for s in items}
        rows.append(
            {
                "sha256": digest[:12],
                "copies": len(items),
                "paths": [s.path for s in items],
                "classes": sorted(labels),
                "where": "across splits" if sides == {"train", "val"} else f"within {sides.pop()}",
                "conflicting labels": len(labels) > 1,
            }
        )
    return pd.DataFrame(rows, columns=["sha256", "copies", "paths", "classes", "where", "conflicting labels"])


def health(ds: Dataset, split: Split | None = None) -> Health:
    counts = ds.counts()
    imbalance = max(counts.values()) / max(min(counts.values()), 1)
    tiny = tuple(c for c, n in counts.items() if n < TINY_CLASS)
    dups = _duplicates(ds, split)
    skipped = pd.DataFrame(
        [{"path": s.path, "reason": s.reason} for s in ds.skipped], columns=["path", "reason"]
    )
    sizes = pd.DataFrame([{"width": s.width, "height": s.height} for s in ds.samples])
    no_val = no_validation_classes(ds, split)
    notes = []
    if no_val:
        notes.append(
            f"no validation image for {len(no_val)} class(es) ({', '.join(no_val)}): a class needs at "
            "least 2 images to be validated, so val top-1 says nothing about these"
        )
    if imbalance >= IMBALANCE_WARN:
        notes.append(f"class imbalance {imbalance:.1f}x (largest / smallest class)")
    if tiny:
        notes.append(f"tiny classes (< {TINY_CLASS} images): {', '.join(tiny)}")
    if len(dups):
        across = int((dups["where"] == "across splits").sum())
        named = "; ".join(" = ".join(paths) for paths in dups["paths"][:5])
        more = f"; and {len(dups) - 5} more group(s)" if len(dups) > 5 else ""
        notes.append(
            f"{int(dups['copies'].sum() - len(dups))} duplicate image(s) by content"
            + (f", {across} group(s) across train and val (leakage)" if across else "")
            + f": {named}{more}"
        )
    if len(skipped):
        notes.append(f"{len(skipped)} file(s) skipped (not images, corrupt, truncated or refused)")
    return Health(counts, imbalance, tiny, skipped, dups, sizes, tuple(notes), no_val)


def no_validation_classes(ds: Dataset, split: Split | None = None) -> tuple[str, ...]:
    """Classes with no validation image: in ``split`` when given, else those too small to get one (< 2)."""
    if split is None:
        return tuple(c for c, n in ds.counts().items() if n < 2)
    label_of = {s.path: s.label for s in ds.samples}
    validated = {label_of[p] for p in split.val if p in label_of}
    return tuple(c for i, c in enumerate(ds.classes) if i not in validated)
