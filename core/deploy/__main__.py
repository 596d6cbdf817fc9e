"""Deploy from the command line. ``python -m core.deploy export RUN_ID [--int8] [--out DIR]`` exports a fine-tuned
run's best epoch to ONNX (and int8) with its scores; ``python -m core.deploy measure MODEL [--resolution R] [--threads N]
[--runtimes eager,compile,onnx,onnx-int8] [--json OUT]`` prints one JSON object: per runtime the median, p10 and
p90 latency, the speed-up against eager with its interval, the prepare seconds, the size and the parity, with the
quantization config and the environment. An unknown model or runtime is one line on stderr and exit 2."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, like every other bad input
        self.exit(2, f"error: {message} (see --help)\n")


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
    m.add_argument("--json", default=None, help="also write the JSON object to this file")
    e = sub.add_parser("export", help="export a fine-tuned run's best epoch to ONNX (and int8) into its bundle")
    e.add_argument("run_id", type=int, help="the run's id (Runs page, or the fine-tune CLI's output)")
    e.add_argument("--int8", action="store_true", help="also a static int8 model, calibrated on the training split")
    e.add_argument("--out", default=None, help="write the files here instead of the run's bundle folder")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.command == "export":
        return export_command(args)
    from core.deploy import DeployError
    from core.deploy.measure import Target, measure
    from core.deploy.runtimes import parse_runtimes
    from core.measure.budget import BudgetError
    from core.zoo.catalog import BackboneError
    try:
        names = parse_runtimes(args.runtimes)
        if not 1 <= args.threads <= 256:
            raise ValueError(f"threads must be 1 to 256, not {args.threads}")
        target = Target.model(args.model, args.resolution)
        result = measure(target, names, args.threads, compile_timeout_s=args.compile_timeout,
                         max_time_s=args.max_time)
    except (ValueError, BackboneError, BudgetError, DeployError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2, default=float)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


def export_command(args: argparse.Namespace) -> int:
    from core.deploy.export_job import friendly
    from core.deploy.run_export import export_run
    try:
        record = export_run(args.run_id, args.int8, args.out)
    except KeyError:
        print(f"error: there is no run {args.run_id}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001  one line, like every other bad input
        print(f"error: {friendly(err)}", file=sys.stderr)
        return 2
    print(json.dumps(record, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
