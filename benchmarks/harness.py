"""What the browser tests and the benchmarks share: the real app started on a free local port, Debian's
Chromium with the project's one list of flags, and waiting for a page's script run to end."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core.deploy.browser import CHROMIUM  # noqa: F401  (the bench's own browser and flags: one list for both)
from core.deploy.browser import CHROMIUM_FLAGS as FLAGS  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS: dict[str, int] = {}  # url -> the server's pid (a benchmark reads its memory)


@contextmanager
def serve(data_dir: str | Path, root: Path = ROOT, address: str = "127.0.0.1") -> Iterator[str]:
    """The real app (``streamlit run app.py`` in ``root``) on a free local port over ``data_dir``, bound to
    ``address`` (``0.0.0.0``: open to the network, as the LAN mode is); yields its loopback URL."""
    port = free_port()
    env = {**os.environ, "ARCHSCOPE_DATA_DIR": str(data_dir)}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--browser.serverAddress",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    SERVERS[url] = proc.pid
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("streamlit did not become healthy in 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def wait_idle(page) -> None:
    """Waits until Streamlit has finished the current script run."""
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
    page.wait_for_timeout(300)


def full_screenshot(page, path: str | Path, max_height: int = 12_000) -> None:
    """The whole page at its current width: Streamlit scrolls inside its main container, so the viewport is
    grown to that container's height first (the layout depends on the width alone), then put back."""
    size = page.viewport_size
    height = page.evaluate(
        "() => { const m = document.querySelector(\"[data-testid='stMain']\");"
        " return Math.max(m ? m.scrollHeight : 0, document.body.scrollHeight); }"
    )
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), max_height)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


# a fine-tune small enough for a test or a benchmark's warm-up: the demo set at 64 px, one thread
TINY = [
    "--data",
    "demo",
    "--demo-per-class",
    "8",
    "--demo-size",
    "64",
    "--image-size",
    "64",
    "--batch-size",
    "16",
    "--threads",
    "1",
    "--quiet",
]
