"""Issue 10: the Transfer page's epoch estimate against what the trainer then measures, for each recipe on
the demo set, on the chosen device and precision. For the linear probe the one-off feature extraction
and the per-epoch head training are compared separately. Deployable: every figure within ±30%."""

from __future__ import annotations

import os
import tempfile

from _common import Collect, emit, environment, parser

os.environ["ARCHSCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix="archscope-estimate-bench-")

from core.finetune.config import RECIPES, TrainConfig  # noqa: E402
from core.finetune.data import prepare  # noqa: E402
from core.finetune.planning import estimate_epoch  # noqa: E402
from core.finetune.trainer import train  # noqa: E402


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--image-size", type=int, default=96)
    args = p.parse_args()
    result = {"env": environment(args), "image_size": args.image_size, "target_pct": 30, "recipes": {}}
    for recipe in RECIPES:
        cfg = TrainConfig(
            recipe=recipe,
            weights="random" if recipe == "scratch" else "offline",
            epochs=args.epochs,
            image_size=args.image_size,
            demo_per_class=60,
            device=args.device,
            precision=args.precision,
            threads=args.threads or 0,
        )
        data = prepare(cfg)
        est = estimate_epoch(cfg, len(data.train_x), len(data.val_x))
        cb = Collect()
        res = train(cfg, tempfile.mkdtemp(), cb, prepared=data)
        measured = sum(e["epoch_s"] for e in cb.epochs[1:]) / len(cb.epochs[1:])  # epoch 1 warms up
        row = {
            "estimate_epoch_s": round(est.epoch_s, 3),
            "measured_epoch_s": round(measured, 3),
            "epoch_error_pct": round((est.epoch_s / measured - 1) * 100, 1),
            "estimate_text": est.text(),
        }
        if recipe == "linear_probe":
            row.update(
                estimate_extraction_s=round(est.extraction_s, 3),
                measured_extraction_s=round(res.extraction_s, 3),
                extraction_error_pct=round((est.extraction_s / res.extraction_s - 1) * 100, 1),
            )
        row["within_target"] = all(abs(v) <= 30 for k, v in row.items() if k.endswith("error_pct"))
        result["recipes"][recipe] = row
    emit(result)


if __name__ == "__main__":
    main()
