"""Deploy from the command line. ``python -m core.deploy measure MODEL [--resolution R] [--threads N]
[--runtimes eager,compile,onnx,onnx-int8] [--json OUT|-]`` shows its progress on stderr, then a short table per
runtime (median latency, speed-up against eager with its interval, parity, size); ``--json`` gives the whole
object (to a file, or ``-`` for stdout instead of the table): per runtime the median, p10 and p90 latency, the
speed-up against eager with its interval, the prepare seconds, the size and the parity, with the quantization
config and the environment. An unknown model or runtime is one line on stderr and exit 2.
``python -m core.deploy export ...`` (a fine-tuned run to ONNX) is now ``python -m core.runs export ...`` and is
forwarded there."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.cli import OneLineParser, forward, quiet_library_warnings


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m core.deploy", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    m = sub.add_parser("measure", help="measure one timm model in every runtime")
    m.add_argument("model", help="a timm architecture, e.g. resnet50")
    m.add_argument("--resolution", type=int, default=None, help="input size in px (default: the model's own)")
    m.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime intra-op threads (default 1)")
    m.add_argument("--runtimes", default="eager,compile,onnx,onnx-int8", help="comma-separated runtimes")
    m.add_argument("--compile-timeout", type=float, default=300.0, help="seconds torch.compile may take")
    m.add_argument("--max-time", type=float, default=20.0, help="seconds of interleaved timing at most")
    m.add_argument("--json", default=None, metavar="OUT", help="the whole result as JSON: to this file, or - for "
                   "stdout instead of the table")
    sub.add_parser("export", help="now `python -m core.runs export RUN_ID` (forwarded there)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if (argv if argv is not None else sys.argv[1:])[:1] == ["export"]:
        sys.argv = [sys.argv[0], *(argv if argv is not None else sys.argv[1:])[1:]]
        forward("python -m core.deploy export", "core.runs", ["export"])
        return 0
    args = parse(argv)
    quiet_library_warnings()
    import time

    from core.deploy import DeployError
    from core.deploy.measure import Target, measure
    from core.deploy.runtimes import parse_runtimes
    from core.measure.budget import BudgetError
    from core.zoo.catalog import BackboneError
    t0 = time.monotonic()

    def step(message: str) -> bool:
        print(f"[{time.monotonic() - t0:5.1f} s] {message}", file=sys.stderr, flush=True)
        return False
    try:
        names = parse_runtimes(args.runtimes)
        check_arguments(args)
        target = Target.model(args.model, args.resolution)
        result = measure(target, names, args.threads, compile_timeout_s=args.compile_timeout,
                         max_time_s=args.max_time, on_step=step)
    except (ValueError, BackboneError, BudgetError, DeployError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2, default=float)
    if args.json == "-":
        print(text)
        return 0
    print(table(result))
    if args.json:
        Path(args.json).write_text(text)
        print(f"written:\n  {Path(args.json).resolve()}")
    return 0


def table(result: dict) -> str:
    """One line per runtime: what a person reads first."""
    from core.deploy import report
    frame = report.frame([result])
    keep = [c for c in ("runtime", "median ms", "speed-up vs eager", "max abs diff", "top-1 agreement %",
                        "size MiB", "status") if c in frame]
    return (frame[keep] if keep else frame).to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep="—")


def check_arguments(args: argparse.Namespace) -> None:
    """Every number in its range (0 included) and the --json file's folder writable, before any work: a mistake is
    one line at once, never a traceback after minutes of measuring."""
    if not 1 <= args.threads <= 256:
        raise ValueError(f"--threads must be 1 to 256, not {args.threads}")
    if not 1 <= args.compile_timeout <= 3600:
        raise ValueError(f"--compile-timeout must be 1 to 3600 s, not {args.compile_timeout:g}")
    if not 0.5 <= args.max_time <= 600:
        raise ValueError(f"--max-time must be 0.5 to 600 s, not {args.max_time:g}")
    if args.json and args.json != "-":
        folder = Path(args.json).expanduser().resolve().parent
        if not folder.is_dir():
            raise ValueError(f"--json {args.json}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise ValueError(f"--json {args.json}: the folder {folder} cannot be written")


if __name__ == "__main__":
    sys.exit(main())
