"""Safe zip extraction: refuse path traversal, links, encryption, duplicates and zip bombs.

Sizes are counted while streaming, never taken from the archive's headers, and nothing is
written outside the target folder.
"""
from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.data.errors import DatasetError


@dataclass(frozen=True)
class Limits:
    max_entries: int = 50_000
    max_total_bytes: int = 2 * 2**30
    max_ratio: float = 200.0           # uncompressed / compressed, per entry and overall
    chunk: int = 1 << 16


def _check_name(info: zipfile.ZipInfo) -> PurePosixPath:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(f"refused: {info.filename!r} has an absolute path")
    if ".." in path.parts:
        raise DatasetError(f"refused: {info.filename!r} climbs out of the archive with '..'")
    if info.flag_bits & 0x1:
        raise DatasetError(f"refused: {info.filename!r} is encrypted")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DatasetError(f"refused: {info.filename!r} is a symbolic link")
    return path


def safe_extract(archive: str | Path, target: str | Path, limits: Limits = Limits()) -> Path:
    """Extracts ``archive`` into the empty or new folder ``target``; on refusal nothing is left behind."""
    target = Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            _extract_all(zf, target, limits)
    except zipfile.BadZipFile as err:
        shutil.rmtree(target, ignore_errors=True)
        raise DatasetError(f"not a readable zip archive: {err}") from err
    except DatasetError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def _extract_all(zf: zipfile.ZipFile, target: Path, limits: Limits) -> None:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise DatasetError(f"refused: {len(infos):,} entries is over the cap of {limits.max_entries:,}")
    seen: set[str] = set()
    written = compressed = 0
    for info in infos:
        path = _check_name(info)
        key = str(path).rstrip("/").lower()
        if key in seen:
            raise DatasetError(f"refused: {info.filename!r} appears twice in the archive")
        seen.add(key)
        dest = (target / path).resolve()
        if target not in dest.parents and dest != target:
            raise DatasetError(f"refused: {info.filename!r} would be written outside the dataset folder")
        if info.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        compressed += max(info.compress_size, 1)
        written += _copy_counted(zf, info, dest, limits, written)
        if written / compressed > limits.max_ratio and written > 1 << 20:
            raise DatasetError(f"refused: the archive expands {written / compressed:.0f}x, over the "
                               f"compression-ratio cap of {limits.max_ratio:.0f}x (a zip bomb?)")


def _copy_counted(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, limits: Limits, so_far: int) -> int:
    n = 0
    budget = max(info.compress_size, 1) * limits.max_ratio
    with zf.open(info) as src, open(dest, "wb") as out:
        while chunk := src.read(limits.chunk):
            n += len(chunk)
            if so_far + n > limits.max_total_bytes:
                raise DatasetError(f"refused: the archive unpacks to over {limits.max_total_bytes / 2**30:.1f} GiB")
            if n > budget and n > 1 << 20:
                raise DatasetError(f"refused: {info.filename!r} expands over {limits.max_ratio:.0f}x "
                                   "(compression-ratio cap; a zip bomb?)")
            out.write(chunk)
    return n
