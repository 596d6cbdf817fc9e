"""Saving a browser upload into the data directory: under its content hash, written whole or not at all."""

from __future__ import annotations

import errno
import hashlib
import os
import uuid
from pathlib import Path

from core.config import data_dir
from core.data.errors import DatasetError
from core.errors import first_line


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def save_upload(data: bytes, suffix: str) -> Path:
    """``uploads/<sha256[:16]><suffix>``. The bytes go to a temporary name that is renamed only when
    complete, so a full disk never leaves a truncated file that a later upload of the same bytes would
    reuse; a file of the wrong size at the final name (left by an older version) is replaced."""
    folder = data_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    if path.is_file() and path.stat().st_size == len(data):
        return path
    tmp = folder / f".{path.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        _write(tmp, data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno == errno.ENOSPC:
            raise DatasetError(
                f"the disk is full: the {len(data) / 2**20:.1f} MiB upload could not be saved in "
                f"{folder}. Free some space and upload again"
            ) from err
        raise DatasetError(f"the upload could not be saved in {folder}: {first_line(err)}") from err
    return path
