"""What several test files need: calls started at the same moment, and a folder seen through a read-only
mount."""

from __future__ import annotations

import os
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest


def at_once(
    fn: Callable[[], Any], n: int, expected: tuple[type[BaseException], ...]
) -> tuple[list, list[str]]:
    """Runs ``fn`` in ``n`` threads released together by a barrier; returns (results, messages of the
    expected exceptions). Any other exception fails the test."""
    barrier, results, refused = threading.Barrier(n), [], []

    def run() -> None:
        barrier.wait()
        try:
            results.append(fn())
        except expected as err:
            refused.append(str(err))

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) + len(refused) == n, "a thread raised an unexpected exception"
    return results, refused


@contextmanager
def read_only_mount(source: Path, mount: Path) -> Iterator[Path]:
    """``source`` seen read-only at ``mount``. As root (CI) a read-only bind mount, since root ignores file
    modes; where it cannot be made the test fails with the reason. As any other user, the tree's write
    bits are taken off (``mount`` becomes a link to ``source`` when they differ) and given back
    afterwards."""
    if os.geteuid() != 0:
        with _modes_read_only(source, mount) as seen:
            yield seen
        return
    mount.mkdir(parents=True, exist_ok=True)
    if (
        subprocess.run(["mount", "--bind", str(source), str(mount)], capture_output=True).returncode
        or subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], capture_output=True).returncode
    ):
        subprocess.run(["umount", str(mount)], capture_output=True)
        pytest.fail("a read-only bind mount failed: as root the test needs mount(8) and CAP_SYS_ADMIN")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@contextmanager
def _modes_read_only(source: Path, mount: Path) -> Iterator[Path]:
    linked = mount != source
    if linked:
        if mount.exists():
            mount.rmdir()  # an empty mount point, as for a bind mount
        mount.symlink_to(source, target_is_directory=True)
    paths = [source, *source.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths if not p.is_symlink()}
    for p, mode in modes.items():
        p.chmod(mode & ~0o222)
    try:
        yield mount
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
        if linked:
            mount.unlink()
            mount.mkdir()
