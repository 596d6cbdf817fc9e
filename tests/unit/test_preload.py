"""The server's background imports (core/web/preload.py): which modules the pages need, read from their own
imports; when the imports start (a quiet spell without requests, or the first script run); what a failed
import leaves; and the middleware that tells the loader of requests."""

import asyncio
import sys
import threading
import time

import pytest

import app
from core.web import preload


def test_the_modules_are_read_from_the_pages_own_imports(tmp_path):
    page = tmp_path / "page.py"
    page.write_text(
        "from __future__ import annotations\nimport os, a.b\nfrom c import d as e\nfrom . import rel\n"
        "x = 1\nimport later\n",
        encoding="utf-8",
    )
    assert preload.modules_of([page]) == ["os", "a.b", "c", "c:d", "later"]
    heavy = app.heavy_modules()
    for needed in ("torch", "pandas", "core.blocks", "core.runs:record", "core.present:plots"):
        assert needed in heavy, needed
    # the pages' own helpers are left to the script run (they register Streamlit components)
    assert not [m for m in heavy if m.startswith("pages")] and "__future__" not in heavy


@pytest.fixture()
def fresh(monkeypatch):
    """A loader of this test's own, in place of the process's (which the app's other tests share)."""
    monkeypatch.setattr(preload, "_LOADER", None)
    yield
    loader = preload._LOADER
    if loader is not None:
        loader.go.set()
        loader.thread.join(30)


def test_the_imports_wait_while_requests_come_and_start_at_the_first_script_run(fresh, tmp_path, monkeypatch):
    (tmp_path / "archscope_test_slowmod.py").write_text("import time\ntime.sleep(0.3)\nVALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "archscope_test_slowmod", raising=False)
    assert not preload.ready() and not preload.wait(0.01) and preload.progress().total == 0
    preload.start(
        ["archscope_test_slowmod", "archscope_test_slowmod:VALUE", "archscope_no_such_module_xyz"],
        quiet_s=0.5,
    )
    for _ in range(8):  # a browser loading the front end: a request every 0.1 s
        preload.touch()
        time.sleep(0.1)
    assert preload.progress().done == 0 and "archscope_test_slowmod" not in sys.modules  # still waiting
    preload.begin()  # the skeleton has painted
    assert preload.wait(30) and preload.ready()
    p = preload.progress()
    assert (p.done, p.total, p.current) == (3, 3, "") and p.failed == ("archscope_no_such_module_xyz",)
    assert sys.modules["archscope_test_slowmod"].VALUE == 7
    preload.start(["json"])  # once per process: a second start changes nothing
    assert preload.progress().total == 3


def test_the_imports_start_on_their_own_after_a_quiet_spell(fresh):
    preload.start(["json"], quiet_s=0.2)
    assert preload.wait(10) and preload.progress().failed == ()


def test_the_middleware_touches_for_pages_and_the_websocket_but_not_the_health_check(fresh):
    preload.start(["json"], quiet_s=60)
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["path"])

    hold = preload.HoldWhileLoading(inner)

    def call(path: str, kind: str = "http") -> float:
        preload._LOADER.last_request = 0.0
        thread = threading.Thread(target=lambda: asyncio.run(hold({"type": kind, "path": path}, None, None)))
        thread.start()
        thread.join()
        return preload._LOADER.last_request

    assert call("/_stcore/health") == 0.0
    assert call("/") > 0 and call("/_stcore/stream", "websocket") > 0 and call("/static/js/x.js") > 0
    assert seen == ["/_stcore/health", "/", "/_stcore/stream", "/static/js/x.js"]  # every request passes on


def test_the_warm_steps_run_after_the_imports_in_order_and_a_failing_one_is_skipped(fresh):
    order = []

    def first():
        order.append(("first", preload.ready()))

    def broken():
        raise OSError("read-only data directory")

    def last():
        order.append(("last", preload.ready()))

    preload.start(["json"], quiet_s=0.0, warm=[first, broken, last])
    preload._LOADER.thread.join(30)
    assert order == [("first", True), ("last", True)]  # the pages never wait for them
    assert preload._LOADER.warmed == ["first", "last"]


def test_the_servers_warm_steps_leave_the_transfer_pages_demo_set_ready(tmp_path, monkeypatch):
    from core.data.ingest import scan
    from core.finetune.config import TrainConfig
    from core.finetune.data import resolve_source
    from core.web import warm

    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    assert [s.__name__ for s in warm.STEPS] == [
        "fvcore_trace",
        "first_convolutions",
        "plotly_json",
        "demo_dataset",
    ]
    for step in warm.STEPS:
        step()
    made = sorted((tmp_path / "datasets").iterdir())
    assert [p.name for p in made] == ["demo-s0-n60-px64-c6"] and (made[0] / ".complete").exists()
    assert (
        resolve_source("demo", TrainConfig()) == made[0]
    )  # the page's own call finds it: nothing drawn again
    assert len(scan(made[0]).samples) == 6 * 60
