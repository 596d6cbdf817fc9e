"""What the data directory holds, by folder, and clearing the folders that only hold copies: uploads,
extracted datasets and the decoded-image cache (never runs, their bundles or the store)."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.config import data_dir

FOLDERS: dict[str, str] = {
    "uploads": "uploaded zips and weight files",
    "datasets": "extracted zips and generated demo sets",
    "cache": "decoded-image cache and torch.compile's kernel cache (rebuilt when needed)",
    "runs": "checkpoints and exported bundles",
    "jobs": "background workers' logs",
}
CLEANABLE = ("uploads", "datasets", "cache")


def folder_size(path: Path) -> int:
    """Bytes in a file or a folder's files (0 when it does not exist)."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def usage() -> dict[str, int]:
    """Bytes held in each of the data directory's folders (0 for one that does not exist yet)."""
    root = data_dir()
    return {name: folder_size(root / name) for name in FOLDERS}


def clean(folders: list[str], busy: bool) -> dict[str, int]:
    """Empties the chosen cleanable folders and returns the bytes freed in each. Refused while a run or a
    measurement is active (it may be reading them); runs, their exported bundles and the store are never
    touched. A stopped run needs its dataset again to resume: a demo set is regenerated, an uploaded zip
    must be uploaded again."""
    wrong = [f for f in folders if f not in CLEANABLE]
    if wrong:
        raise ValueError(f"only {', '.join(CLEANABLE)} can be cleaned, not {', '.join(wrong)}")
    if busy:
        raise RuntimeError("a run or a measurement is active and may be reading these files: stop it or wait")
    root = data_dir()
    freed = {}
    for name in folders:
        folder = root / name
        freed[name] = folder_size(folder)
        if folder.exists():
            shutil.rmtree(folder)
    return freed
