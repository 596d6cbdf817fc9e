"""Scan an ImageFolder tree: decode with Pillow (allow-listed formats), skip and report bad files, hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from core.data.errors import DatasetError
from core.data.images import MAX_PIXELS, check_image
from core.data.names import Register, nfc

IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db")


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    """The usable images of a folder, their classes, and every file that was skipped and why."""

    root: str
    classes: tuple[str, ...]
    samples: tuple[Sample, ...]
    skipped: tuple[Skipped, ...] = field(default_factory=tuple)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def content_hash(self) -> str:
        """One SHA-256 over every usable image's bytes, class and relative path (order-free): two copies of
        a dataset on two machines hash the same, and one changed, added or relabelled image changes it."""
        h = hashlib.sha256()
        for line in sorted(f"{self.classes[s.label]}\t{s.path}\t{s.sha256}" for s in self.samples):
            h.update(line.encode() + b"\n")
        return h.hexdigest()

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in self.classes}
        for s in self.samples:
            out[self.classes[s.label]] += 1
        return out


def class_root(root: Path) -> Path:
    """Descends through single wrapper folders (a zip of 'mydata/cat/…' is common)."""
    while True:
        dirs = [
            d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in IGNORED
        ]
        files = [f for f in root.iterdir() if f.is_file() and not f.name.startswith(".")]
        if len(dirs) == 1 and not files and any(p.is_dir() for p in dirs[0].iterdir()):
            root = dirs[0]
        else:
            return root


def scan(root: str | Path, max_pixels: int = MAX_PIXELS) -> Dataset:
    """Reads ``root/<class>/<image>``; one bad file never stops the scan, a bad dataset stops it clearly."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"no folder at {root}")
    base = class_root(base)
    folders = [d for d in base.iterdir() if d.is_dir() and d.name not in IGNORED]
    class_dirs = sorted((d for d in folders if not d.name.startswith(".")), key=lambda d: nfc(d.name))
    if not class_dirs:
        raise DatasetError("no class folders found: use the ImageFolder layout, class_name/image.jpg")
    names = Register()
    for d in class_dirs:
        names.add(d.name)
    samples: list[Sample] = []
    skipped = [
        Skipped(
            str(f.relative_to(base)),
            f"inside the folder {d.name!r}, whose name starts with a dot "
            "(hidden folders are not classes); rename it to train on these images",
        )
        for d in sorted(folders)
        if d.name.startswith(".")
        for f in sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))
    ]
    for label, d in enumerate(class_dirs):
        for f in sorted(p for p in d.rglob("*") if p.is_file()):
            if f.name.startswith(".") or any(part in IGNORED for part in f.parts):
                continue
            rel = str(f.relative_to(base))
            try:
                w, h = check_image(f, max_pixels)
            except ValueError as err:
                skipped.append(Skipped(rel, str(err)))
                continue
            samples.append(Sample(rel, label, hashlib.sha256(f.read_bytes()).hexdigest(), w, h))
    ds = Dataset(str(base), tuple(nfc(d.name) for d in class_dirs), tuple(samples), tuple(skipped))
    empty = [c for c, n in ds.counts().items() if n == 0]
    if empty:
        raise DatasetError(
            f"class {', '.join(repr(c) for c in empty)} has no usable images "
            f"({len(skipped)} file(s) skipped); remove the folder or add images"
        )
    if len(ds.classes) < 2:
        raise DatasetError(f"only one class ({ds.classes[0]!r}): a classifier needs at least 2 classes")
    return ds
