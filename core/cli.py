"""What every Archscope command line shares: an argument parser whose errors are one line and exit 2 (like
every other bad input), and the forwarding of an old command spelling to its new one."""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from typing import Any, Callable


class OneLineParser(argparse.ArgumentParser):
    """argparse, except that a bad argument is one line (pointing at --help) and exit 2, like every other
    bad input of Archscope's commands."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


LIBRARY_NOISE = (
    r".*torch\.jit\.script.*deprecated",
    r".*TypedStorage is deprecated",
    r".*onnxscript",
    r".*Removing initializer",
)


def quiet_library_warnings() -> None:
    """A command line shows its own progress and answer, not the deprecation notes of the libraries under
    it."""
    import warnings

    for pattern in LIBRARY_NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def forward(old: str, new_module: str, prefix: list[str]) -> None:
    """Runs ``python -m new_module *prefix *argv`` in this process after a one-line notice on stderr: the
    spelling ``old`` keeps working, under torchrun too. The module is run by name, so the old package
    imports nothing of the new one."""
    print(
        f"note: `{old}` is now `python -m {new_module} {' '.join(prefix)}`; forwarding",
        file=sys.stderr,
        flush=True,
    )
    sys.argv = [sys.argv[0], *prefix, *sys.argv[1:]]
    runpy.run_module(new_module, run_name="__main__", alter_sys=True)


def emit(result: Any, json_arg: str | None, table: Callable[[Any], str]) -> int:
    """How a command ends: ``--json -`` prints the whole result as JSON instead of the table; otherwise the
    short table, and with ``--json FILE`` the file too, its path printed last. Returns the exit code."""
    text = json.dumps(result, indent=2, default=float)
    if json_arg == "-":
        print(text)
        return 0
    print(table(result))
    if json_arg:
        try:
            Path(json_arg).write_text(text + "\n")
        except OSError as err:
            print(f"error: cannot write {json_arg}: {err.strerror or err}", file=sys.stderr)
            return 2
        print(f"written:\n  {Path(json_arg).resolve()}")
    return 0


def data_dir_error() -> str:
    """Why the data directory cannot be used (a file, no permission, …), in words; empty when it can. A
    command checks it before any work, so a bad ``ARCHSCOPE_DATA_DIR`` is one line and exit 2."""
    from core.config import DataDirError, data_dir

    try:
        data_dir()
    except DataDirError as err:
        return str(err)
    return ""
