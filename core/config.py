"""Where Archscope writes: one data directory for runs, caches and uploads."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ARCHSCOPE_DATA_DIR"
MARKER = (
    ".archscope-data"  # made on first use: a new folder at the same path (even with a reused inode) lacks it
)
_SEEN: dict[Path, tuple[int, int, bool]] = {}  # each data directory this process used: device, inode, marker


class DataDirError(RuntimeError):
    """The data directory cannot be used (a file, not a folder; no permission), or was moved, deleted or
    replaced while Archscope ran; the message says what to do."""


def _make(path: Path) -> None:
    """Makes the data directory (and its parents), or a DataDirError that says why it cannot be one."""
    if path.exists() and not path.is_dir():
        raise DataDirError(
            f"the data directory {path} ({ENV_VAR}) is a file, not a folder: point {ENV_VAR} at a folder "
            "(it is made if it does not exist)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        why = err.strerror or type(err).__name__
        raise DataDirError(
            f"the data directory {path} ({ENV_VAR}) cannot be made: {why}. Point {ENV_VAR} at a folder you "
            "can write"
        ) from None


def data_dir() -> Path:
    """The app's data directory, from ``ARCHSCOPE_DATA_DIR`` or ``~/.archscope``. It is created on this
    process's first use only: one that disappears (renamed or deleted) or is replaced later raises
    DataDirError instead of being made again empty, so no run or measurement goes silently into a new
    store elsewhere."""
    path = Path(os.environ.get(ENV_VAR) or Path.home() / ".archscope").expanduser()
    marker = path / MARKER
    known = _SEEN.get(path)
    if known is None:
        _make(path)
        try:
            marker.touch(exist_ok=True)
        except OSError:  # a read-only data directory: known by its inode alone
            pass
        st = path.stat()
        _SEEN[path] = (st.st_dev, st.st_ino, marker.exists())
        return path
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataDirError(
            f"the data directory {path} was moved or deleted while Archscope was running; put it "
            "back (or restart Archscope to start a new, empty one)"
        ) from None
    if (st.st_dev, st.st_ino) != known[:2] or (known[2] and not marker.exists()):
        raise DataDirError(
            f"the data directory {path} was replaced by another folder while Archscope was running; "
            "restart Archscope to use the new one"
        ) from None
    return path
