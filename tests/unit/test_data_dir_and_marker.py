"""The data directory as a user can get it wrong, and the page-load marker as a hostile folder could make
it: a data directory that is a file is a message in words on every page and in every command line (never
a traceback); the marker is written without following a link, and a marker from the future counts as
stale."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import DataDirError, data_dir
from core.jobs import yielding

ROOT = Path(__file__).resolve().parents[2]


def test_a_data_directory_that_is_a_file_is_refused_in_words(tmp_path, monkeypatch):
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(afile))
    with pytest.raises(DataDirError, match="is a file, not a folder: point ARCHSCOPE_DATA_DIR at a folder"):
        data_dir()
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(afile / "below"))
    with pytest.raises(DataDirError, match="cannot be made: Not a directory"):
        data_dir()


@pytest.mark.parametrize(
    "page", ["pages/blocks.py", "pages/backbones.py", "pages/transfer.py", "pages/runs.py"]
)
def test_every_page_says_so_and_keeps_working(page, tmp_path, monkeypatch):
    from tests.app._util import open_page, texts

    afile = tmp_path / "data.txt"
    afile.write_text("x")
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(afile))
    at = open_page(page)
    assert not at.exception
    assert any("is a file, not a folder" in e for e in texts(at, "error")), texts(at, "error")


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["core.deploy", "measure", "mobilenetv3_small_100"],
        ["core.deploy", "browser", "mobilenetv3_small_100"],
        ["core.runs", "train", "--data", "demo"],
        ["core.runs", "export", "1"],
    ],
    ids=["measure", "browser", "train", "export"],
)
def test_every_command_line_says_so_in_one_line(command, tmp_path):
    afile = tmp_path / "data.txt"
    afile.write_text("x")
    env = {**os.environ, "ARCHSCOPE_DATA_DIR": str(afile), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (
        out.stderr.strip().splitlines()[-1].startswith("error: the data directory")
        and "is a file" in out.stderr
    )


def test_the_page_load_marker_never_follows_a_link(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path / "data"))
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    before = outside.stat().st_mtime_ns
    marker = yielding.mark_file()
    marker.parent.mkdir(parents=True)
    marker.symlink_to(outside)
    time.sleep(0.01)
    monkeypatch.setattr(yielding, "_last_mark", 0.0)
    assert yielding.mark()
    assert outside.read_text() == "keep me" and outside.stat().st_mtime_ns == before
    assert marker.is_file() and not marker.is_symlink()  # the link was replaced by a plain file
    missing = tmp_path / "made-by-a-link.txt"
    marker.unlink()
    marker.symlink_to(missing)
    monkeypatch.setattr(yielding, "_last_mark", 0.0)
    assert yielding.mark() and not missing.exists()


def test_a_marker_from_the_future_is_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    marker = yielding.mark_file()
    marker.parent.mkdir(parents=True)
    marker.write_text("")
    watch = yielding.GiveWay(marker)
    assert watch.loading()  # just marked: a page is loading
    future = time.time() + 3600  # the clock stepped back an hour
    os.utime(marker, (future, future))
    assert not watch.loading()
    start = time.monotonic()
    watch()  # a counting job's forward: no nap
    assert time.monotonic() - start < 0.5 and watch.pauses == 0
