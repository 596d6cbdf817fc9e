"""A counting job gives way to pages while they load (issue 30: with compound scaling counting in the
background, the Runs page opens within 1.5x of its idle time).

Why priorities were not enough: the workers run at ``nice`` +10 (``lifecycle.WORKER_NICE``), and on this
2-core VM the Runs page still opened 1.8x slower while the count ran; at SCHED_IDLE too (1.82x). Its
server-side script run was not slowed at all (AppTest, 1.0x with the count running): the loss is in the
browser's share of the page load, which a busy core costs whatever its priority (the host's vCPU
scheduling, shared caches and memory bandwidth).

So the server marks each page load (``mark``: a request for a page, its static files or its websocket,
and each full script run) by touching one file in the data directory, at most every ``MARK_EVERY_S``. A
job whose results do not depend on time (a count of parameters and MACs: no timing, no wall clock kept)
runs under ``give_way``: before each module's forward it looks at the file (at most every
``LOOK_EVERY_S``) and, while the last mark is under ``HOLD_S`` old, naps. It never pauses more than
``MAX_PAUSE_S`` in a row, and then runs at least ``RUN_S`` whatever the marks, so a visitor who keeps
clicking slows a count to no less than a third of its speed. Nothing can leave a job stopped: if the
server dies, the file only ages. Jobs that time anything (a pause inside a timed call would be measured)
or keep wall time (a fine-tune's epochs) never give way. ``ARCHSCOPE_GIVE_WAY=off`` in the server's
environment turns it off (a count then runs flat out; ``benchmarks/busy_pages.py --give-way off``
compares)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

MARK_EVERY_S = 0.2
LOOK_EVERY_S = 0.05
HOLD_S = 1.5
MAX_PAUSE_S = 4.0
RUN_S = 2.0
NAP_S = 0.05
FILE = "pages-loading"
SWITCH = "ARCHSCOPE_GIVE_WAY"

_last_mark = 0.0


def mark_file() -> Path:
    from core.config import data_dir

    return data_dir() / "jobs" / FILE


def mark() -> bool:
    """A page is loading (called by the server, never by a worker): touches the mark file, at most every
    ``MARK_EVERY_S``; True when it did. A read-only or missing data directory is no reason to fail a
    page: then nothing is marked (False)."""
    global _last_mark
    now = time.monotonic()
    if now - _last_mark < MARK_EVERY_S:
        return False
    _last_mark = now
    try:
        path = mark_file()
        path.parent.mkdir(exist_ok=True)
        touch_here(path)
    except Exception:  # noqa: BLE001 - a page load never fails on this (DataDirError, OSError)
        return False
    return True


def touch_here(path: Path) -> None:
    """Creates ``path`` or sets its time to now, never through a link: a link put in its place (to a file
    outside the data directory) is replaced by a plain file, and what it pointed to is left alone."""
    import errno

    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        os.unlink(path)  # the link itself
        fd = os.open(path, flags | os.O_EXCL, 0o644)
    try:
        os.utime(fd)
    finally:
        os.close(fd)


@dataclass
class GiveWay:
    """The forward pre-hook: naps while a page is loading, within the bounds above. ``paused_s`` and
    ``pauses`` say how much it gave."""

    path: Path
    paused_s: float = 0.0
    pauses: int = 0
    _next_look: float = 0.0
    _run_until: float = 0.0

    def loading(self) -> bool:
        if os.environ.get(SWITCH, "on") == "off":
            return False
        try:
            age = time.time() - self.path.stat().st_mtime
        except OSError:
            return False
        return 0 <= age < HOLD_S  # a mark from the future (the clock stepped back) is stale

    def __call__(self, *_: Any) -> None:
        now = time.monotonic()
        if now < self._next_look or now < self._run_until:
            return
        self._next_look = now + LOOK_EVERY_S
        if not self.loading():
            return
        start = now
        while self.loading():
            if time.monotonic() - start >= MAX_PAUSE_S:
                self._run_until = time.monotonic() + RUN_S
                break
            time.sleep(NAP_S)
        self.paused_s += time.monotonic() - start
        self.pauses += 1


@contextmanager
def give_way() -> Iterator[GiveWay]:
    """Inside: every module forward in this process first gives way to loading pages (a global forward
    pre-hook, removed on the way out)."""
    import torch

    hook = GiveWay(mark_file())
    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield hook
    finally:
        handle.remove()
