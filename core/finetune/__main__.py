"""Fine-tune from the command line: ``python -m core.finetune --data demo --recipe linear_probe --epochs 20``.

Everything is recorded in the run store. Bad input exits with code 2 and a one-line reason. The same command
under ``torchrun --nproc_per_node=N`` trains with DistributedDataParallel (rank 0 reports). ``--help`` answers
without importing torch."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from core.finetune.config import AUGMENTS, CACHES, PRECISIONS, RECIPES, SCHEDULES, TrainConfig

CHOICES = {"recipe": RECIPES, "schedule": SCHEDULES, "augment": AUGMENTS, "cache": CACHES, "precision": PRECISIONS}
HELP = {"data": "'demo', a .zip of class folders, a folder, or flowers102 / oxford_pets (online)",
        "weights": "'offline' (the packaged ImageNet EfficientNet-Lite0), 'hub' (timm, online), 'random', or a "
                   "state_dict file (.safetensors or a weights-only torch file)",
        "device": "'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'"}


def _flag(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, like every other bad input
        self.exit(2, f"error: {message} (see --help)\n")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m core.finetune", description=__doc__,
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        flag, text = f"--{f.name.replace('_', '-')}", HELP.get(f.name, f.name.replace('_', ' '))
        if isinstance(default, bool) or f.name == "channels_last":
            p.add_argument(flag, dest=f.name, default=default, type=_flag, help=text + " (true/false)")
        else:
            kind = type(default) if default is not None else str
            p.add_argument(flag, dest=f.name, type=kind, default=default, choices=CHOICES.get(f.name), help=text)
    p.add_argument("--name", default="", help="the run's name in the store")
    p.add_argument("--run-id", type=int, default=None, help="train into an existing queued run (the UI's)")
    p.add_argument("--resume", type=int, default=None, help="continue a cancelled or failed run")
    p.add_argument("--quiet", action="store_true", help="no progress bar (epoch lines are still printed)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from core.finetune.session import execute
    cfg = TrainConfig.from_dict(vars(args))
    if args.resume:
        config, problem = resumed_config(args.resume, args.device)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        cfg = TrainConfig.from_dict(config)
    return execute(cfg, args.resume or args.run_id, args.name, resume=bool(args.resume), quiet=args.quiet)


def resumed_config(run_id: int, device: str) -> tuple[dict, str]:
    """The configuration of the run to resume, read by global rank 0 (whose node holds the run store) and sent to
    every rank; (config, "") or ({}, why not), the same on every rank."""
    from core.finetune import runs
    from core.finetune.distributed import dist_info, from_rank0, init
    rank, world = dist_info()
    answer: tuple[dict, str] = ({}, "")
    if rank == 0:
        try:
            answer = (runs.get(run_id).config, "")
        except KeyError:
            answer = ({}, f"there is no run {run_id} to resume in {runs.data_dir()} (the data directory of global "
                          "rank 0's node, which keeps the run store)")
    if world > 1:
        init(device)
        answer = from_rank0(answer)
    return answer


if __name__ == "__main__":
    sys.exit(main())
