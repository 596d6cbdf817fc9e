"""Scratch folders for exports, quantization and torch.compile: inside the data directory's cache/, removed
after, and cleaned up after a killed process by the next one; reached through a plain name when the data
directory's path would break g++'s unquoted command line."""

from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core.config import data_dir
from core.deploy import DeployError

SCRATCH_OWNER = ".owner"


def _clear_stale(root: Path) -> None:
    """Removes the scratch folders of exports and measurements whose process is gone (killed, crashed): the
    next one to start cleans up after it. A folder without an owner (older versions) goes after an hour."""
    import shutil

    from core.jobs.lifecycle import pid_alive

    for work in root.glob("work-*"):
        try:
            owner = json.loads((work / SCRATCH_OWNER).read_text())
            alive = pid_alive(int(owner["pid"]), owner.get("pid_start"))
        except (OSError, ValueError, KeyError, TypeError):
            try:
                alive = time.time() - work.stat().st_mtime < 3600
            except OSError:
                continue
        if not alive:
            shutil.rmtree(work, ignore_errors=True)


def scratch_root() -> Path:
    """``<data dir>/cache/deploy``, made and checked writable before any work: a read-only cache is one
    line."""

    root = data_dir() / "cache" / "deploy"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        why = (
            "read-only"
            if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
            else (err.strerror or str(err))
        )
        raise DeployError(
            f"cannot write deploy scratch in {root.parent} ({why}); make it writable, or set "
            "ARCHSCOPE_DATA_DIR to a writable folder"
        ) from None
    return root


@contextmanager
def inside_data_dir() -> Iterator[Path]:
    """A scratch folder under the data directory's cache/ for the artifacts (exported and quantized
    models), which is also where the exporters' and ONNX Runtime's calibration temporaries and
    torch.compile's inductor cache go: nothing is written outside the data directory, and the folder is
    removed after. Scratch left by a killed process is removed first."""
    from core.jobs.lifecycle import owner

    root = scratch_root()
    _clear_stale(root)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", inductor_cache())
    before = tempfile.tempdir
    with tempfile.TemporaryDirectory(dir=root, prefix="work-") as work:
        (Path(work) / SCRATCH_OWNER).write_text(json.dumps(owner(os.getpid())))
        plain = plain_path(Path(work))
        tempfile.tempdir = plain
        try:
            yield Path(work)
        finally:
            tempfile.tempdir = before
            if plain != work:
                Path(plain).unlink(missing_ok=True)  # the link, not the folder it names


UNQUOTED = set(" '\"$`\\()&;|<>*?[]{}!#~\t")


def plain_path(path: Path) -> str:
    """``path`` as a name g++ can take unquoted. Inductor hands its cache and temporary folders to g++
    without quoting them, so a data directory whose path has a space, a quote or non-ASCII characters
    would break every compile; such a path is reached through a link with a plain name in the system's
    temporary folder (only the link lives there; every file stays in the data directory)."""
    text = str(path)
    if text.isascii() and not UNQUOTED & set(text):
        return text
    import hashlib

    base = tempfile.gettempdir()
    if not base.isascii() or UNQUOTED & set(base):
        base = "/tmp"
    link = Path(base) / f"archscope-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    try:
        if link.is_symlink() and os.readlink(link) != text:
            link.unlink()
        if not link.is_symlink():
            link.symlink_to(path, target_is_directory=True)
    except OSError:
        return text
    return str(link)


def inductor_cache() -> str:
    """torch.compile's cache folder: inside the data directory, by a plain name (``plain_path``)."""
    target = data_dir() / "cache" / "torchinductor"
    target.mkdir(parents=True, exist_ok=True)
    return plain_path(target)


@contextmanager
def given(folder: Path) -> Iterator[Path]:
    """A folder the caller chose, made if needed, in place of a scratch folder (kept after)."""
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
