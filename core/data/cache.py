"""Decoded-image cache: every image resized once to the training resolution and kept as uint8 (N, 3, S, S),
in memory or memory-mapped on disk, so no epoch after the first decodes a JPEG again."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import numpy as np
import torch

from core.config import data_dir
from core.data.images import load_resized


def _key(root: str, paths: list[str], size: int) -> str:
    """The cache's name: the folder, the resolution, and every file's path, size and modification time, so
    an image edited (or replaced) in place is decoded again instead of training on stale pixels."""
    h = hashlib.sha256(f"{root}|{size}|".encode())
    for p in paths:
        st = (Path(root) / p).stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
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
        tmp = folder / f"{key}.{uuid.uuid4().hex[:8]}.tmp.npy"  # one per writer: two processes never collide
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
