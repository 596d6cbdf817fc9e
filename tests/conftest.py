import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ARCHSCOPE_DATA_DIR", tempfile.mkdtemp(prefix="archscope-test-"))

from core.measure.timing import pin_malloc_thresholds  # noqa: E402

pin_malloc_thresholds()      # the test process times blocks too, as the app's processes do


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one")
    config.addinivalue_line("markers", "e2e: drives the real app in headless Chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory) -> Path:
    """A data directory as a week of use leaves it (tests/seed.py), made once per session in its own process."""
    import json
    import subprocess
    folder = tmp_path_factory.mktemp("week-of-use")
    env = {k: v for k, v in os.environ.items() if k != "ARCHSCOPE_DATA_DIR"}
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", "tests.seed", str(folder)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["cli_exit_codes"] == {"probe": 0, "top": 0, "scratch": 0, "hub": 2}, summary
    assert sorted(summary["runs"].values()).count("done") == 7 and "cancelled" in summary["runs"].values(), summary
    return folder
