"""What several test files need: calls started at the same moment, and a folder seen through a read-only mount."""
from __future__ import annotations

import os
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest


def at_once(fn: Callable[[], Any], n: int, expected: tuple[type[BaseException], ...]) -> tuple[list, list[str]]:
    """Runs ``fn`` in ``n`` threads released together by a barrier; returns (results, messages of the expected
    exceptions). Any other exception fails the test."""
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
    """``source`` seen read-only at ``mount`` (a bind mount: root, as CI runs, ignores file modes). Skipped, with
    the reason, where mount(8) cannot make one."""
    mount.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "--bind", str(source), str(mount)], capture_output=True).returncode or \
            subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], capture_output=True).returncode:
        subprocess.run(["umount", str(mount)], capture_output=True)
        if os.environ.get("CI"):           # CI runs as root: there the test must run, never skip
            pytest.fail("a read-only bind mount failed in CI (it needs root and mount(8))")
        pytest.skip("a read-only bind mount needs root and mount(8)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
