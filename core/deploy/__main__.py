"""Deploy from the command line. ``python -m core.deploy measure MODEL [--resolution R] [--threads N]
[--runtimes eager,compile,onnx,onnx-int8] [--json OUT|-]`` shows its progress on stderr, then a short
table per runtime (median latency, speed-up against eager with its interval, parity, size); ``--json``
gives the whole object (to a file, or ``-`` for stdout instead of the table): per runtime the median,
p10 and p90 latency, the speed-up against eager with its interval, the prepare seconds, the size and the
parity, with the quantization config and the environment. An unknown model or runtime is one line on
stderr and exit 2. ``python -m core.deploy browser MODEL [--resolution R] [--precision fp32,int8]
[--setups wasm-1,wasm-N,webgpu] [--browser PATH] [--webgpu off|software] [--json OUT|-]`` runs the
model's ONNX in a headless browser's onnxruntime-web (served here, cross-origin isolated, on a loopback
port), with the parity check first, times native ONNX Runtime at the same thread counts in the same
call, stores each browser result like a visitor's, and prints a short table (``--json``: per setup
p50/p10/p90, runs, threads, cross_origin_isolated, cold start, parity, native median and the ratio; the
WebGPU adapter for webgpu). ``python -m core.deploy export ...`` (a fine-tuned run to ONNX) is now
``python -m core.runs export ...`` and is forwarded there."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.cli import OneLineParser, data_dir_error, emit, forward, quiet_library_warnings


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m core.deploy", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    m = sub.add_parser("measure", help="measure one timm model in every runtime")
    m.add_argument("model", help="a timm architecture, e.g. resnet50")
    m.add_argument("--resolution", type=int, default=None, help="input size in px (default: the model's own)")
    m.add_argument(
        "--threads", type=int, default=1, help="torch and ONNX Runtime intra-op threads (default 1)"
    )
    m.add_argument("--runtimes", default="eager,compile,onnx,onnx-int8", help="comma-separated runtimes")
    m.add_argument("--compile-timeout", type=float, default=300.0, help="seconds torch.compile may take")
    m.add_argument("--max-time", type=float, default=20.0, help="seconds of interleaved timing at most")
    m.add_argument(
        "--json",
        default=None,
        metavar="OUT",
        help="the whole result as JSON: to this file, or - for stdout instead of the table",
    )
    b = sub.add_parser("browser", help="measure one timm model in a headless browser's onnxruntime-web")
    b.add_argument("model", help="a timm architecture, e.g. mobilenetv3_small_100")
    b.add_argument("--resolution", type=int, default=None, help="input size in px (default: the model's own)")
    b.add_argument("--precision", default="fp32,int8", help="comma-separated: fp32, int8")
    b.add_argument("--setups", default="wasm-1,wasm-N", help="comma-separated: wasm-1, wasm-N, webgpu")
    b.add_argument("--browser", default=None, help="the browser to drive (default: /usr/bin/chromium)")
    b.add_argument(
        "--webgpu",
        choices=["off", "software"],
        default="off",
        help="the headless browser's WebGPU: off (no adapter, as on a machine without a GPU) or software "
        "(Chromium's SwiftShader adapter on the CPU: checks the WebGPU path and its parity; its "
        "times are an emulation, not a GPU's)",
    )
    b.add_argument(
        "--json",
        default=None,
        metavar="OUT",
        help="the whole result as JSON: to this file, or - for stdout instead of the table",
    )
    sub.add_parser("export", help="now `python -m core.runs export RUN_ID` (forwarded there)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if (argv if argv is not None else sys.argv[1:])[:1] == ["export"]:
        sys.argv = [sys.argv[0], *(argv if argv is not None else sys.argv[1:])[1:]]
        forward("python -m core.deploy export", "core.runs", ["export"])
        return 0
    args = parse(argv)
    if why := data_dir_error():
        print(f"error: {why}", file=sys.stderr)
        return 2
    quiet_library_warnings()
    import time

    from core.deploy import DeployError
    from core.deploy.deployable import Deployable
    from core.deploy.measure import measure
    from core.deploy.targets import parse_targets
    from core.measure.budget import BudgetError
    from core.zoo.catalog import BackboneError

    t0 = time.monotonic()

    def step(message: str) -> bool:
        print(f"[{time.monotonic() - t0:5.1f} s] {message}", file=sys.stderr, flush=True)
        return False

    if args.command == "browser":
        return browser_main(args, step)
    try:
        names = parse_targets(args.runtimes)
        check_arguments(args)
        target = Deployable.model(args.model, args.resolution)
        result = measure(
            target,
            names,
            args.threads,
            compile_timeout_s=args.compile_timeout,
            max_time_s=args.max_time,
            on_step=step,
        )
    except (ValueError, BackboneError, BudgetError, DeployError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return emit(result, args.json, table)


def browser_main(args: argparse.Namespace, step) -> int:
    from core.deploy import DeployError, browser
    from core.deploy.deployable import Deployable
    from core.measure.budget import BudgetError
    from core.zoo.catalog import BackboneError

    try:
        precisions = tuple(p.strip() for p in args.precision.split(",") if p.strip())
        setups = tuple(s.strip() for s in args.setups.split(",") if s.strip())
        if not precisions or not setups:
            raise ValueError("--precision and --setups each need at least one value")
        args.threads, args.compile_timeout, args.max_time = 1, 1.0, 1.0  # checked by the shared rule
        check_arguments(args)
        target = Deployable.model(args.model, args.resolution)
        result = browser.measure(target, precisions, setups, args.browser, step=step, webgpu=args.webgpu)
    except (ValueError, BackboneError, BudgetError, DeployError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return emit(result, args.json, browser_table)


def browser_table(result: dict) -> str:
    """One line per setup and precision: browser median, native median at the same threads, the ratio,
    parity."""
    import pandas as pd

    rows = []
    for setup, entry in result["setups"].items():
        if not entry.get("precisions"):
            rows.append({"setup": setup, "precision": "—", "status": entry.get("error") or "no result"})
        for precision, f in (entry.get("precisions") or {}).items():
            parity = f.get("parity") or {}
            rows.append(
                {
                    "setup": setup,
                    "threads": entry.get("threads"),
                    "precision": precision,
                    "browser p50 ms": f.get("p50_ms"),
                    "runs": f.get("runs"),
                    "native p50 ms": (f.get("native") or {}).get("p50_ms"),
                    "browser/native": f.get("browser_over_native"),
                    "max abs diff": parity.get("max_abs_diff"),
                    "top-1 agreement": parity.get("top1_agreement"),
                    "cold start ms": f.get("cold_start_ms"),
                    "status": f.get("refused") or f.get("error") or "ok",
                }
            )
    return pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep="—")


def table(result: dict) -> str:
    """One line per runtime: what a person reads first."""
    from core.deploy import report

    frame = report.frame([result])
    keep = [
        c
        for c in (
            "runtime",
            "median ms",
            "speed-up vs eager",
            "max abs diff",
            "top-1 agreement %",
            "size MiB",
            "status",
        )
        if c in frame
    ]
    return (frame[keep] if keep else frame).to_string(
        index=False, float_format=lambda v: f"{v:.3g}", na_rep="—"
    )


def check_arguments(args: argparse.Namespace) -> None:
    """Every number in its range (0 included) and the --json file's folder writable, before any work: a
    mistake is one line at once, never a traceback after minutes of measuring."""
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
