"""Scan an ImageFolder tree: decode with Pillow (allow-listed formats), skip and report bad files, hash."""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

from core.data.errors import DatasetError
from core.data.images import to_rgb8
from core.present.fmt import first_line

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF"})
MAX_PIXELS = 50_000_000
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

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in self.classes}
        for s in self.samples:
            out[self.classes[s.label]] += 1
        return out


def class_root(root: Path) -> Path:
    """Descends through single wrapper folders (a zip of 'mydata/cat/…' is common)."""
    while True:
        dirs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in IGNORED]
        files = [f for f in root.iterdir() if f.is_file() and not f.name.startswith(".")]
        if len(dirs) == 1 and not files and any(p.is_dir() for p in dirs[0].iterdir()):
            root = dirs[0]
        else:
            return root


def check_image(path: Path | IO[bytes], max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) of a fully decodable, allow-listed image; raises ValueError with the reason. Pillow checks
    the pixel count against ``max_pixels`` from the header, when the file is opened, before anything is decoded."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.format not in ALLOWED_FORMATS:
                    raise ValueError(f"format {img.format} is not allowed")
                img.load()
                if img.mode == "F":
                    to_rgb8(img)          # refuses NaN / infinite values
                return img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(f"decompression bomb refused ({err}); it was not decoded") from err
    except UnidentifiedImageError as err:
        raise ValueError("not an image") from err
    except OSError as err:
        raise ValueError(f"truncated or corrupt image ({first_line(err)})") from err
    finally:
        Image.MAX_IMAGE_PIXELS = old


def scan(root: str | Path, max_pixels: int = MAX_PIXELS) -> Dataset:
    """Reads ``root/<class>/<image>``; one bad file never stops the scan, a bad dataset stops it clearly."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"no folder at {root}")
    base = class_root(base)
    class_dirs = sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")
                        and d.name not in IGNORED)
    if not class_dirs:
        raise DatasetError("no class folders found: use the ImageFolder layout, class_name/image.jpg")
    samples: list[Sample] = []
    skipped: list[Skipped] = []
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
    ds = Dataset(str(base), tuple(d.name for d in class_dirs), tuple(samples), tuple(skipped))
    empty = [c for c, n in ds.counts().items() if n == 0]
    if empty:
        raise DatasetError(f"class {', '.join(repr(c) for c in empty)} has no usable images "
                           f"({len(skipped)} file(s) skipped); remove the folder or add images")
    if len(ds.classes) < 2:
        raise DatasetError(f"only one class ({ds.classes[0]!r}): a classifier needs at least 2 classes")
    return ds
