"""The pages' heavy imports (torch, timm, pandas, the measuring code), made once per server process in a
background thread that starts with the server, so a first visitor sees the navigation and the page's
skeleton at once instead of a blank page for the seconds torch takes to import (issue 30: the first page
in 3 s).

When they start matters on a small machine: importing torch holds the GIL for up to half a second at a
time, which stalls the server's own thread while a browser is loading the front end. So the thread waits
until the server has had ``QUIET_S`` without a request (nobody is loading a page: a visitor who comes
later finds everything imported), or until the first script run has painted its skeleton (``begin``),
whichever comes first. ``HoldWhileLoading`` is the ASGI middleware that tells it of requests.

Pure Python, no Streamlit: app.py starts it and draws the skeleton while ``wait`` polls. Which modules
are heavy is read from the page files' own top-level imports (``modules_of``), so a page that imports
something new is preloaded the day it does, with no list to keep in step."""

from __future__ import annotations

import ast
import importlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

# The imports yield the CPU to the browser and to the server's own thread while the first page's front end
# loads.
NICE = 5
QUIET_S = 2.0  # seconds without a request before the imports start on their own


@dataclass(frozen=True)
class Progress:
    done: int  # modules imported (or failed) so far
    total: int
    current: str  # the module being imported now ("" once finished)
    elapsed_s: float
    failed: tuple[
        str, ...
    ]  # modules whose import raised: the page's own import shows the error where it belongs


def modules_of(files: Iterable[str | Path]) -> list[str]:
    """The absolute modules that ``files`` import at their top level, in first-seen order: ``import a.b``
    gives ``a.b``; ``from a import b`` gives ``a`` and, where ``b`` is a submodule rather than a name,
    ``a.b`` (decided at import time by ``_import``). ``from __future__`` and relative imports are left
    out."""
    seen: dict[str, None] = {}
    for file in files:
        for node in ast.parse(Path(file).read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                seen.update((alias.name, None) for alias in node.names)
            elif (
                isinstance(node, ast.ImportFrom)
                and node.module
                and not node.level
                and node.module != "__future__"
            ):
                seen[node.module] = None
                seen.update((f"{node.module}:{alias.name}", None) for alias in node.names)
    return list(seen)


class _Loader:
    def __init__(self, modules: list[str], quiet_s: float, warm: tuple[Callable[[], Any], ...] = ()):
        self.modules = modules
        self.warm = warm
        self.warmed: list[str] = []
        self.quiet_s = quiet_s
        self.done = 0
        self.current = ""
        self.failed: list[str] = []
        self.last_request = time.monotonic()
        self.started = time.perf_counter()
        self.go = threading.Event()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name="archscope-preload", daemon=True)

    def _run(self) -> None:
        while not self.go.wait(0.05) and time.monotonic() - self.last_request < self.quiet_s:
            pass
        self.started = time.perf_counter()
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)  # this thread only (Linux)
        except (AttributeError, OSError):
            pass
        try:
            for name in self.modules:
                self.current = name.replace(":", ".")
                try:
                    _import(name)
                except Exception:  # noqa: BLE001 - the page's own import raises it again, in the page
                    self.failed.append(name)
                self.done += 1
        finally:
            self.current = ""
            self.finished.set()
        for step in self.warm:  # after ``finished``: no page waits for these
            try:
                step()
                self.warmed.append(step.__name__)
            except Exception:  # noqa: BLE001 - the page's own first call reports it where it belongs
                pass


def _import(name: str) -> None:
    """``pkg`` imports a module; ``pkg:attr`` (from ``from pkg import attr``) imports ``pkg.attr`` only
    when ``attr`` is not already a name in ``pkg``, i.e. when it is a submodule."""
    if ":" not in name:
        importlib.import_module(name)
        return
    package, attr = name.split(":", 1)
    if not hasattr(importlib.import_module(package), attr):
        importlib.import_module(f"{package}.{attr}")


_LOCK = threading.Lock()
_LOADER: _Loader | None = None


def start(modules: Iterable[str], quiet_s: float = 0.0, warm: Iterable[Callable[[], Any]] = ()) -> None:
    """Starts the background imports once per process, ``quiet_s`` after the last request (``touch``) or at
    ``begin``, then the ``warm`` steps (first-use costs, ``core.web.warm``), which no page waits for;
    later calls (every script run) change nothing."""
    global _LOADER
    with _LOCK:
        if _LOADER is None:
            _LOADER = _Loader(list(modules), quiet_s, tuple(warm))
            _LOADER.thread.start()


def begin() -> None:
    """The first script run has painted: import now, whatever the requests."""
    if _LOADER is not None:
        _LOADER.go.set()


def touch() -> None:
    """A request came in: a browser may be loading the front end, so waiting imports keep waiting."""
    if _LOADER is not None:
        _LOADER.last_request = time.monotonic()


class HoldWhileLoading:
    """ASGI middleware: each request (page, static file, websocket) but the health check is a ``touch``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket") and scope.get("path") != "/_stcore/health":
            touch()
        await self.app(scope, receive, send)


def ready() -> bool:
    """True once every module has been imported (or failed); False before ``start``."""
    return _LOADER is not None and _LOADER.finished.is_set()


def wait(timeout: float) -> bool:
    """Waits up to ``timeout`` seconds for the imports; True when they are done."""
    return _LOADER is not None and _LOADER.finished.wait(timeout)


def progress() -> Progress:
    loader = _LOADER
    if loader is None:
        return Progress(0, 0, "", 0.0, ())
    return Progress(
        loader.done,
        len(loader.modules),
        loader.current,
        time.perf_counter() - loader.started,
        tuple(loader.failed),
    )
