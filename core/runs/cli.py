"""Runs from the command line.

``python -m core.runs train --data demo --recipe linear_probe --epochs 20`` fine-tunes and records the
run in the store; under ``torchrun --nproc_per_node=N`` the same command trains with
DistributedDataParallel (rank 0 reports). ``python -m core.runs export RUN_ID [--int8] [--out DIR]``
takes a run home as ONNX (and int8) with its scores. Bad input exits with code 2 and a one-line reason.
``--help`` answers without importing torch."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from core.cli import OneLineParser, data_dir_error, quiet_library_warnings
from core.finetune.config import AUGMENTS, CACHES, PRECISIONS, RECIPES, SCHEDULES, TrainConfig

CHOICES = {
    "recipe": RECIPES,
    "schedule": SCHEDULES,
    "augment": AUGMENTS,
    "cache": CACHES,
    "precision": PRECISIONS,
}
HELP = {
    "data": "'demo', a .zip of class folders, a folder, or flowers102 / oxford_pets (online)",
    "weights": "'offline' (the packaged ImageNet EfficientNet-Lite0), 'hub' (timm, online), 'random', or a "
    "state_dict file (.safetensors or a weights-only torch file)",
    "device": "'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'",
}


def _flag(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(
        prog="python -m core.runs train",
        description="Fine-tune a backbone; the run is recorded in the store the app reads.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        flag, text = f"--{f.name.replace('_', '-')}", HELP.get(f.name, f.name.replace('_', ' '))
        if isinstance(default, bool) or f.name == "channels_last":
            p.add_argument(flag, dest=f.name, default=default, type=_flag, help=text + " (true/false)")
        else:
            kind = type(default) if default is not None else str
            p.add_argument(
                flag, dest=f.name, type=kind, default=default, choices=CHOICES.get(f.name), help=text
            )
    p.add_argument("--name", default="", help="the run's name in the store")
    p.add_argument("--run-id", type=int, default=None, help="train into an existing queued run (the UI's)")
    p.add_argument("--resume", type=int, default=None, help="continue a cancelled or failed run")
    p.add_argument("--quiet", action="store_true", help="no progress bar (epoch lines are still printed)")
    return p.parse_args(argv)


def train(argv: list[str] | None = None) -> int:
    """``python -m core.runs train ...``: one fine-tune, recorded in the store; returns the exit code."""
    args = parse(argv)
    from core.runs.session import execute

    cfg = TrainConfig.from_dict(vars(args))
    if args.resume:
        config, problem = resumed_config(args.resume, args.device)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        cfg = TrainConfig.from_dict(config)
    return execute(cfg, args.resume or args.run_id, args.name, resume=bool(args.resume), quiet=args.quiet)


def resumed_config(run_id: int, device: str) -> tuple[dict, str]:
    """The configuration of the run to resume, read by global rank 0 (whose node holds the run store) and
    sent to every rank; (config, "") or ({}, why not), the same on every rank."""
    from core.finetune.distributed import dist_info, from_rank0, init
    from core.runs import record as runs

    rank, world = dist_info()
    answer: tuple[dict, str] = ({}, "")
    if rank == 0:
        try:
            answer = (runs.get(run_id).config, "")
        except KeyError:
            answer = (
                {},
                f"there is no run {run_id} to resume in {runs.data_dir()} (the data directory of global "
                "rank 0's node, which keeps the run store)",
            )
    if world > 1:
        init(device)
        answer = from_rank0(answer)
    return answer


def export(argv: list[str] | None = None) -> int:
    """``python -m core.runs export RUN_ID [--int8] [--out DIR] [--json OUT|-]``: progress on stderr, a
    short table of what each model scores and costs, then the paths written; the whole record as JSON
    with ``--json``."""
    p = OneLineParser(
        prog="python -m core.runs export",
        description="Export a fine-tuned run's best epoch to "
        "ONNX (and int8) into its bundle, scored on the run's own splits.",
    )
    p.add_argument("run_id", type=int, help="the run's id (Runs page, or the train command's output)")
    p.add_argument(
        "--int8", action="store_true", help="also a static int8 model, calibrated on the training split"
    )
    p.add_argument("--out", default=None, help="write the files here instead of the run's bundle folder")
    p.add_argument(
        "--json",
        default=None,
        metavar="OUT",
        help="the export's whole record as JSON, to a file or - (stdout, instead of the table)",
    )
    args = p.parse_args(argv)
    quiet_library_warnings()
    import json
    import time
    from pathlib import Path

    from core.deploy.report import export_table
    from core.runs import record as runs
    from core.runs.export import export_run
    from core.runs.export_job import friendly

    t0 = time.monotonic()

    def step(message: str) -> bool:
        print(f"[{time.monotonic() - t0:5.1f} s] {message}", file=sys.stderr, flush=True)
        return False

    try:
        record = export_run(args.run_id, args.int8, args.out, on_step=step)
        folder = Path(args.out) if args.out else runs.folder(runs.get(args.run_id)) / "export"
    except KeyError:
        print(f"error: there is no run {args.run_id}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001  one line, like every other bad input
        print(f"error: {friendly(err)}", file=sys.stderr)
        return 2
    text = json.dumps(record, indent=2, default=float)
    if args.json == "-":
        print(text)
        return 0
    if args.json:
        try:
            Path(args.json).write_text(text + "\n")
        except OSError as err:
            print(f"error: cannot write {args.json}: {err.strerror or err}", file=sys.stderr)
            return 2
    frame = export_table(record)[
        ["model", "val top-1 %", "test top-1 %", "agreement with PyTorch %", "latency ms", "size MiB"]
    ]
    frame = frame.assign(model=frame["model"].str.ljust(int(frame["model"].str.len().max())))
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep="—", justify="left"))
    written = [folder / name for name in (*record["files"], "predict_onnx.py", "bundle.json", "README.md")]
    if args.json:
        written.append(Path(args.json))
    print(
        ("reused, unchanged:" if record.get("reused") else "written:") + "".join(f"\n  {w}" for w in written)
    )
    return 0


COMMANDS = {"train": train, "export": export}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        usage = "usage: python -m core.runs {train,export} ...   (each takes --help)"
        if argv and argv[0] in ("-h", "--help"):
            print(f"{usage}\n\n{__doc__}")
            return 0
        print(f"{usage}\nerror: choose a command: train or export (see --help)", file=sys.stderr)
        return 2
    if not {"-h", "--help"} & set(argv) and (why := data_dir_error()):
        print(f"error: {why}", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])
