"""Safe zip extraction: refuse path traversal, links, encryption, duplicates and zip bombs.

Sizes are counted while streaming, never taken from the archive's headers, and nothing is written
outside the target folder.
"""

from __future__ import annotations

import errno
import shutil
import stat
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.data.errors import DatasetError
from core.data.folders import publish
from core.data.names import Register
from core.errors import first_line


@dataclass(frozen=True)
class Limits:
    max_entries: int = 50_000
    max_total_bytes: int = 2 * 2**30
    max_ratio: float = 200.0  # uncompressed / compressed, per entry and overall
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
    """Extracts ``archive`` into ``target`` atomically: members go into a temporary sibling folder of a
    unique name, which is renamed to ``target`` (and marked complete) only when every member is out; a
    complete ``target`` that another session published meanwhile is kept. On any refusal or failure
    nothing is left behind."""
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        with zipfile.ZipFile(archive) as zf:
            _extract_all(zf, partial, limits)
        publish(partial, target)  # never over a finished extraction another session is reading
    except zipfile.BadZipFile as err:
        raise DatasetError(f"not a readable zip archive: {first_line(err)}") from err
    except OSError as err:  # opening the archive, or the final rename
        raise DatasetError(_os_reason(err, Path(archive).name)) from err
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _os_reason(err: OSError, name: str) -> str:
    if err.errno == errno.ENOSPC:
        return (
            f"the disk filled up while unpacking {name!r}; nothing was kept. Free some space (the data "
            "directory's cache/ and datasets/ can be cleaned) and try again"
        )
    if err.errno == errno.ENAMETOOLONG:
        return f"refused: the member name {name[:60]!r}… is longer than this file system allows"
    if isinstance(err, (FileExistsError, NotADirectoryError, IsADirectoryError)):
        return f"refused: {name!r} is both a file and a folder in the archive"
    return f"could not unpack {name!r}: {err.strerror or first_line(err)}"


def _member_reason(err: Exception, name: str) -> str:
    if isinstance(err, zlib.error) or (isinstance(err, zipfile.BadZipFile) and "CRC" in str(err)):
        return f"refused: {name!r} is corrupt (its compressed data does not unpack: {first_line(err)})"
    if isinstance(err, NotImplementedError):
        return (
            f"refused: {name!r} uses a compression method this app cannot read ({first_line(err)}); "
            "zip it again with the standard Deflate method"
        )
    if isinstance(err, EOFError):
        return f"refused: {name!r} is cut short (the archive is truncated)"
    if isinstance(err, OSError):
        return _os_reason(err, name)
    return f"refused: {name!r} cannot be unpacked ({type(err).__name__}: {first_line(err)})"


def _extract_all(zf: zipfile.ZipFile, target: Path, limits: Limits) -> None:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise DatasetError(f"refused: {len(infos):,} entries is over the cap of {limits.max_entries:,}")
    seen: set[str] = set()
    folders = Register()
    written = compressed = 0
    for info in infos:
        path = _check_name(info)
        key = str(path).rstrip("/")
        if key in seen:
            raise DatasetError(f"refused: {info.filename!r} appears twice in the archive")
        seen.add(key)
        parts = path.parts if info.is_dir() else path.parts[:-1]
        for i in range(1, len(parts) + 1):  # 'Cat/' and 'cat/', or NFC and NFD 'café/': one folder
            folders.add("/".join(parts[:i]))
        dest = (target / path).resolve()
        if target not in dest.parents and dest != target:
            raise DatasetError(f"refused: {info.filename!r} would be written outside the dataset folder")
        try:
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            compressed += max(info.compress_size, 1)
            written += _copy_counted(zf, info, dest, limits, written)
        except (zlib.error, zipfile.BadZipFile, NotImplementedError, EOFError, OSError) as err:
            raise DatasetError(_member_reason(err, info.filename)) from err
        if written / compressed > limits.max_ratio and written > 1 << 20:
            raise DatasetError(
                f"refused: the archive expands {written / compressed:.0f}x, over the "
                f"compression-ratio cap of {limits.max_ratio:.0f}x (a zip bomb?)"
            )


def _copy_counted(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, limits: Limits, so_far: int) -> int:
    n = 0
    budget = max(info.compress_size, 1) * limits.max_ratio
    with zf.open(info) as src, open(dest, "wb") as out:
        while chunk := src.read(limits.chunk):
            n += len(chunk)
            if so_far + n > limits.max_total_bytes:
                raise DatasetError(
                    f"refused: the archive unpacks to over {limits.max_total_bytes / 2**30:.1f} GiB"
                )
            if n > budget and n > 1 << 20:
                raise DatasetError(
                    f"refused: {info.filename!r} expands over {limits.max_ratio:.0f}x "
                    "(compression-ratio cap; a zip bomb?)"
                )
            out.write(chunk)
    return n
