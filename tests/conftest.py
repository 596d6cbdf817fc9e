import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1" under -n; "" in one process
# never a user's data directory, and under -n each worker one of its own (the workers inherit the controller's
# env)
os.environ["ARCHSCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix=f"archscope-test-{WORKER}-".replace("--", "-"))

from core.measure.timing import pin_malloc_thresholds  # noqa: E402

pin_malloc_thresholds()  # the test process times blocks too, as the app's processes do


SLOW_FIXTURES = {
    "seeded_dir",
    "app_url",
    "browser",
    "page",
    "seeded_url",
}  # each starts a process or a browser
SPAWNERS = ("python", "torchrun", "chromium", "streamlit")  # what a fast test may never start


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every browser test, and every test on the seeded week (made by a process), is slow; the rest say so
    themselves with ``@pytest.mark.slow``: a test that starts a process (``_no_process_in_a_fast_test``
    holds them to it), and one that fine-tunes a network or exports a whole one to ONNX (seconds each)."""
    for item in items:
        if "e2e" in item.path.parts or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if "seeded_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(
                pytest.mark.xdist_group("week")
            )  # under -n, one worker builds the week and uses it
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _tokens_stay_in_their_test(monkeypatch):
    """The server's code sets the access tokens in the environment when it makes them (so its pages can show
    the links): each is recorded in monkeypatch's undo list first, so whatever a test leaves there is put
    back when monkeypatch unwinds (last of all), and no later test runs as a visitor by accident."""
    names = ("ARCHSCOPE_TOKEN", "ARCHSCOPE_VISITOR_TOKEN", "ARCHSCOPE_ALLOWED_HOSTS", "ARCHSCOPE_PUBLIC_URL")
    for name in names:
        before = os.environ.get(name)
        monkeypatch.setenv(name, "recorded")  # records the value before (or its absence) for the undo
        if before is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, before)


@pytest.fixture(autouse=True)
def _no_process_in_a_fast_test(request, monkeypatch):
    """A test not marked slow that starts a Python process, torchrun, a browser or a server fails and says
    to mark it: the fast loop (``-m "not slow"``) stays free of processes by construction, not by a list
    kept by hand."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    import subprocess

    started: list[str] = []
    real = subprocess.Popen.__init__

    def watch(self, args, *a, **kw):
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        name = os.path.basename(str(argv[0])) if argv else ""
        if name.startswith(SPAWNERS) or str(argv[0]) == sys.executable:
            started.append(" ".join(map(str, argv[:4])))
        real(self, args, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", watch)
    yield
    if started:
        pytest.fail(
            f"this test started {started[0]!r} ({len(started)} process(es)) but is not marked "
            "@pytest.mark.slow"
        )


WORKER_MARKS = ("--job", "core.runs")  # a job's worker (``-m MODULE --job N``) or a run's (``-m core.runs``)


def _ticks_now() -> int:
    """Clock ticks since boot, the unit of /proc/PID/stat's start time."""
    with open("/proc/uptime") as fh:
        return int(float(fh.read().split()[0]) * os.sysconf("SC_CLK_TCK"))


def _workers_started_since(root: int, ticks: int) -> list[int]:
    """Background workers below ``root`` (directly, or under a server it started) that started after
    ``ticks``."""
    children: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        started[pid] = int(fields[19])
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if started.get(child, 0) >= ticks and any(m.encode() in a for a in argv for m in WORKER_MARKS):
                out.append(child)
    return out


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test(request):
    """A slow test that starts a background job or run (a compound-scaling count, a measurement, a
    fine-tune) and checks only its first moments leaves no worker running into the next tests: each is
    killed, with its process group, at the test's end. The suite's time is then the tests' own."""
    if not request.node.get_closest_marker("slow"):
        yield
        return
    import signal

    ticks = _ticks_now()
    yield
    for pid in _workers_started_since(os.getpid(), ticks):
        for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                kill()
                break
            except (ProcessLookupError, PermissionError):
                continue


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory) -> Path:
    """A data directory as a week of use leaves it (tests/seed.py), made once per session in its own
    process."""
    import json
    import subprocess

    folder = tmp_path_factory.mktemp("week-of-use")
    env = {k: v for k, v in os.environ.items() if k != "ARCHSCOPE_DATA_DIR"}
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.seed", str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["cli_exit_codes"] == {"probe": 0, "top": 0, "scratch": 0, "hub": 2}, summary
    assert sorted(summary["runs"].values()).count("done") == 7 and "cancelled" in summary["runs"].values(), (
        summary
    )
    assert sorted(summary["browser"].values()) == [["wasm-1"], ["wasm-1", "wasm-N"], ["wasm-1", "wasm-N"]], (
        summary["browser"]
    )
    return folder
