"""Figure 5 of the fine-tune engine issue (GPU): a full fine-tune of efficientnet_lite0 at 224 px, batch
128, bf16 autocast, channels_last, through the trainer, against a bare loop in the same run."""

from __future__ import annotations

import os
import tempfile
import time

import torch
from _bare_loop import bare_loop_images_per_s
from _common import Collect, emit, environment, parser

os.environ["ARCHSCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix="archscope-ft-gpu-")

from core.finetune.config import TrainConfig  # noqa: E402
from core.finetune.trainer import train  # noqa: E402


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--per-class", type=int, default=600)
    args = p.parse_args()
    cfg = TrainConfig(
        recipe="finetune_full",
        weights="offline",
        epochs=4,
        batch_size=128,
        image_size=224,
        demo_per_class=args.per_class,
        demo_size=64,
        device=args.device,
        precision="bf16",
        channels_last=True,
        augment="light",
    )
    cb = Collect()
    t = time.perf_counter()
    result = train(cfg, tempfile.mkdtemp(), cb)
    wall = time.perf_counter() - t
    trainer = sum(e["images_per_s"] for e in cb.epochs[1:]) / len(cb.epochs[1:])
    bare = bare_loop_images_per_s(
        "efficientnet_lite0", 128, 224, args.device, steps=40, warm=10, precision="bf16", channels_last=True
    )
    emit(
        {
            "env": environment(args, precision=cb.info["precision"]),
            "config": {
                k: getattr(cfg, k)
                for k in ("recipe", "batch_size", "image_size", "precision", "channels_last", "epochs")
            },
            "train_images": cb.info["train_images"],
            "per_epoch_images_per_s": [e["images_per_s"] for e in cb.epochs],
            "trainer_images_per_s_epochs_2plus": trainer,
            "bare_loop_images_per_s": bare,
            "fraction": trainer / bare,
            "target_fraction": 0.8,
            "final_val_top1": result.last.get("val_top1"),
            "wall_s": wall,
            "peak_memory_GiB": torch.cuda.max_memory_allocated() / 2**30
            if torch.cuda.is_available()
            else None,
            "gpus": torch.cuda.device_count(),
            "ddp_2gpu": "not run: this machine has one GPU"
            if torch.cuda.device_count() < 2
            else "see ddp run",
        }
    )


if __name__ == "__main__":
    main()
