"""Where Archscope writes: one data directory for runs, caches and uploads."""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ARCHSCOPE_DATA_DIR"


def data_dir() -> Path:
    """The app's data directory, from ``ARCHSCOPE_DATA_DIR`` or ``~/.archscope``; created on first use."""
    path = Path(os.environ.get(ENV_VAR) or Path.home() / ".archscope").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
