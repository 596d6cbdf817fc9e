"""Publishing a folder built under a temporary name: renamed into place whole, never over a finished one,
so two sessions that build the same dataset at once never delete what the other is reading."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path

MARKER = ".complete"


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).exists()


def publish(partial: Path, target: Path) -> Path:
    """Marks ``partial`` complete and renames it to ``target``. A finished ``target`` (another writer got
    there first) is kept and ``partial`` is left for the caller to remove; an unfinished one (left by a
    crash or an older version) is first renamed aside, then deleted, so no reader ever sees a folder
    disappear under it."""
    (partial / MARKER).write_text("ok")
    for _ in range(5):
        if is_complete(target):
            return target
        if target.exists():
            aside = target.parent / f".{target.name}.stale-{uuid.uuid4().hex[:8]}"
            try:
                os.replace(target, aside)
            except FileNotFoundError:
                pass
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.replace(partial, target)
            return target
        except OSError as err:  # another writer renamed theirs in between: look again
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    raise OSError(errno.EBUSY, f"{target} kept changing while it was being replaced")
