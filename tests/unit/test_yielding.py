"""A counting job gives way to loading pages (core/jobs/yielding.py): the server's mark, the hook's naps
and their bounds, the hook only inside ``give_way``, the middleware's marks, and the compound-scaling
job under it."""

import asyncio
import os
import threading
import time

import pytest
import torch
from torch import nn

from core.jobs import yielding
from core.web.server import MarkPageLoads


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(yielding, "_last_mark", 0.0)
    return tmp_path


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_server_marks_a_page_load_in_the_data_directory_at_most_every_0_2_s(data):
    assert yielding.mark()
    path = data / "jobs" / "pages-loading"
    assert path.exists() and yielding.mark_file() == path
    age(path, 10)
    assert not yielding.mark()  # within MARK_EVERY_S of the last: not touched again
    assert time.time() - path.stat().st_mtime > 9
    yielding._last_mark -= yielding.MARK_EVERY_S
    assert yielding.mark()
    assert time.time() - path.stat().st_mtime < 1


def test_a_read_only_or_missing_data_directory_never_fails_a_page(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setattr(yielding, "_last_mark", 0.0)
    assert yielding.mark() is False  # a file where the data directory should be: nothing marked
    assert (tmp_path / "file").read_text() == "not a folder"


def test_the_hook_naps_while_a_page_loads_and_not_otherwise(data, monkeypatch):
    monkeypatch.setattr(yielding, "HOLD_S", 0.3)
    way = yielding.GiveWay(yielding.mark_file())
    way()  # no mark at all: no nap
    assert (way.pauses, way.paused_s) == (0, 0.0)
    yielding.mark()
    way()  # looked 0 s ago: at most every LOOK_EVERY_S
    assert way.pauses == 0
    way._next_look = 0.0
    way()
    assert way.pauses == 1 and 0.2 <= way.paused_s < yielding.MAX_PAUSE_S  # until the mark is HOLD_S old
    way._next_look = 0.0
    way()  # the mark has aged: goes on at once
    assert way.pauses == 1


def test_a_page_that_keeps_loading_stops_the_count_for_max_pause_s_then_lets_it_run_run_s(data, monkeypatch):
    monkeypatch.setattr(yielding, "MAX_PAUSE_S", 0.3)
    monkeypatch.setattr(yielding, "RUN_S", 60.0)
    stop = threading.Event()

    def clicking():  # a visitor who never stops: a mark every 50 ms
        while not stop.is_set():
            yielding._last_mark = 0.0
            yielding.mark()
            time.sleep(0.05)

    thread = threading.Thread(target=clicking)
    thread.start()
    try:
        time.sleep(0.1)
        way = yielding.GiveWay(yielding.mark_file())
        way()
        assert way.pauses == 1 and 0.3 <= way.paused_s < 1.5
        for _ in range(5):  # then it runs, marks or not
            way._next_look = 0.0
            way()
        assert way.pauses == 1
    finally:
        stop.set()
        thread.join()


def test_the_hook_sees_every_forward_inside_give_way_and_none_after(data, monkeypatch):
    monkeypatch.setattr(yielding, "HOLD_S", 0.2)
    layer = nn.Linear(4, 4)
    with yielding.give_way() as way:
        yielding.mark()
        layer(torch.zeros(1, 4))
        assert way.pauses == 1
    yielding._last_mark = 0.0
    yielding.mark()
    layer(torch.zeros(1, 4))  # outside: the global hook is gone
    assert way.pauses == 1


def test_the_middleware_marks_pages_static_files_and_the_websocket_but_not_the_health_check(data):
    async def inner(scope, receive, send):
        pass

    mw = MarkPageLoads(inner)
    path = data / "jobs" / "pages-loading"

    def call(p: str, kind: str = "http") -> bool:
        yielding._last_mark = 0.0
        if path.exists():
            path.unlink()
        thread = threading.Thread(target=lambda: asyncio.run(mw({"type": kind, "path": p}, None, None)))
        thread.start()  # its own loop: a browser test may hold this thread's
        thread.join()
        return path.exists()

    assert not call("/_stcore/health")
    assert call("/runs") and call("/static/js/index.js") and call("/_stcore/stream", "websocket")


def test_the_compound_scaling_count_gives_way_and_says_so(data, monkeypatch):
    from core import jobs
    from core.jobs import lifecycle
    from core.zoo import lecture, scaling

    monkeypatch.setattr(yielding, "HOLD_S", 0.3)
    monkeypatch.setattr(lecture, "EFFICIENTNET_OFFICIAL", lecture.EFFICIENTNET_OFFICIAL.iloc[:0])  # B0 only
    monkeypatch.setattr(lifecycle, "spawn", lambda args, log: os.getpid())  # this process is the worker
    job = scaling.start([0.0], 1.2, 1.1, 1.15)
    assert job.total == 2  # φ = 0, then B0 at 224
    yielding.mark()
    assert scaling.run(job.id) == 0
    done = jobs.get(job.id)
    assert done.status == "done" and done.message.startswith(
        "2 networks counted; it gave way to loading pages 1 "
    )
    assert scaling.scaled_count(1.0, 1.0, 224, compute=False)["params"] == 5_288_548  # the counts are kept


def test_archscope_give_way_off_lets_a_count_run_through_page_loads(data, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_GIVE_WAY", "off")
    yielding.mark()
    way = yielding.GiveWay(yielding.mark_file())
    way()
    assert way.pauses == 0 and not way.loading()
