"""Decoded-image cache: every image resized once to the training resolution and kept as uint8 (N, 3, S, S),
in memory or memory-mapped on disk, so no epoch after the first decodes a JPEG again."""
from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.config import data_dir
from core.data.images import to_rgb8


def resize_crop(img: Image.Image, size: int) -> np.ndarray:
    """RGB, shorter side resized to ``size`` (bilinear), centre-cropped to size x size; (3, S, S) uint8."""
    img = to_rgb8(img)
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


def load_resized(path: str | Path, size: int) -> np.ndarray:
    with Image.open(path) as img:
        return resize_crop(img, size)


def _key(root: str, paths: list[str], size: int) -> str:
    h = hashlib.sha256(f"{root}|{size}|".encode())
    for p in paths:
        h.update(p.encode())
    return h.hexdigest()[:20]


def decoded(root: str | Path, paths: list[str], size: int, on_disk: bool = True) -> torch.Tensor:
    """The images as a uint8 tensor; on disk the cache is a memory-mapped .npy reused across runs."""
    if not on_disk:
        return torch.from_numpy(np.stack([load_resized(Path(root) / p, size) for p in paths]))
    folder = data_dir() / "cache"
    folder.mkdir(parents=True, exist_ok=True)
    key = _key(str(root), paths, size)
    file, meta = folder / f"{key}.npy", folder / f"{key}.json"
    if not meta.exists():
        tmp = folder / f"{key}.{uuid.uuid4().hex[:8]}.tmp.npy"     # one per writer: two processes never collide
        try:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), 3, size, size))
            for i, p in enumerate(paths):
                arr[i] = load_resized(Path(root) / p, size)
            arr.flush()
            del arr
            tmp.replace(file)
        finally:
            tmp.unlink(missing_ok=True)
        meta_tmp = folder / f"{key}.{uuid.uuid4().hex[:8]}.tmp.json"
        meta_tmp.write_text(json.dumps({"root": str(root), "size": size, "n": len(paths)}))
        meta_tmp.replace(meta)
    return torch.from_numpy(np.load(file, mmap_mode="c"))  # copy-on-write: the cache file is never modified
