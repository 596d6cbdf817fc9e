"""Figures 1-4 of the fine-tune engine issue on this machine: trainer overhead against a bare loop, the
linear-probe fast path, the demo end to end (linear probe against scratch in the same time budget), and
the decoded-image cache. Each run uses a fresh data directory."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time

import timm
import torch
import torch.nn.functional as F
from _bare_loop import bare_loop_images_per_s
from _common import Collect, emit, environment, parser

os.environ["ARCHSCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix="archscope-ft-bench-")

from core.data.images import load_resized  # noqa: E402
from core.finetune.batches import Normalizer  # noqa: E402
from core.finetune.config import TrainConfig  # noqa: E402
from core.finetune.data import prepare  # noqa: E402
from core.finetune.trainer import train  # noqa: E402
from core.finetune.weights import create  # noqa: E402


def overhead(args, rounds: int = 5) -> dict:
    """Trainer images/s as a fraction of a bare loop (same model, batch and resolution), with the real
    store callbacks a run uses (metrics to SQLite, cancel polling). Trainer and bare rounds alternate in
    this one process, so a drift in the machine's speed hits both; the median and the spread of the
    per-round ratios."""
    import statistics

    from core.runs import record as runs
    from core.runs.session import StoreCallbacks

    cfg = TrainConfig(
        recipe="scratch",
        weights="random",
        epochs=2,
        batch_size=32,
        image_size=64,
        augment="light",
        demo_per_class=48,
        demo_size=64,
        device=args.device,
        precision="fp32",
        channels_last=False,
        threads=args.threads or 0,
    )
    data = prepare(cfg)
    ratios, trainer_ips, bare_ips = [], [], []
    for _ in range(rounds):
        run_id = runs.create(cfg.to_dict(), name="overhead benchmark")
        run_dir = runs.new_folder(run_id)
        cb = StoreCallbacks(run_id, run_dir, cfg.epochs, quiet=True)
        collect = Collect()
        cb_on_epoch = cb.on_epoch

        def on_epoch(epoch, step, values, details, _cb=cb_on_epoch, _c=collect):
            _c.on_epoch(epoch, step, values, details)
            _cb(epoch, step, values, details)

        cb.on_epoch = on_epoch
        with contextlib.redirect_stdout(sys.stderr):  # the epoch lines a run prints; stdout is the JSON
            train(cfg, run_dir, cb, prepared=data)
        trainer = collect.epochs[-1]["images_per_s"]  # epoch 2: epoch 1 warms up
        bare = bare_loop_images_per_s(
            "efficientnet_lite0", 32, 64, args.device, steps=len(data.train_x) // 32, warm=5
        )
        trainer_ips.append(trainer)
        bare_ips.append(bare)
        ratios.append(trainer / bare)
    return {
        "model": "efficientnet_lite0",
        "batch": 32,
        "resolution": 64,
        "callbacks": "StoreCallbacks (real store)",
        "rounds": rounds,
        "trainer_images_per_s": trainer_ips,
        "bare_loop_images_per_s": bare_ips,
        "fraction_per_round": [round(r, 3) for r in ratios],
        "fraction_median": statistics.median(ratios),
        "fraction_min": min(ratios),
        "fraction_max": max(ratios),
        "target": 0.9,
    }


def probe_fast_path(args) -> dict:
    """Epoch time of the linear probe on cached features against recomputing the frozen backbone each
    batch."""
    cfg = TrainConfig(recipe="linear_probe", epochs=4, image_size=128, demo_per_class=60, device=args.device)
    cb = Collect()
    t = time.perf_counter()
    result = train(cfg, tempfile.mkdtemp(), cb)
    total = time.perf_counter() - t
    cached = sum(e["epoch_s"] for e in cb.epochs[1:]) / len(cb.epochs[1:])
    data = prepare(cfg)
    model, _ = create("efficientnet_lite0", "offline", len(data.classes))
    model.eval()
    prep = Normalizer(model, torch.device(args.device), False)
    head = model.get_classifier()
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3)

    def recompute_epoch() -> float:
        t = time.perf_counter()
        for i in range(0, len(data.train_x), 32):
            with torch.no_grad():
                f = model.forward_head(
                    model.forward_features(prep(data.train_x[i : i + 32])), pre_logits=True
                )
            loss = F.cross_entropy(head(f), data.train_y[i : i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return time.perf_counter() - t

    recompute_epoch()  # warm-up pass: the baseline is a warm epoch, as the cached one
    recompute = recompute_epoch()
    return {
        "cached_feature_epoch_s": cached,
        "recompute_epoch_s_warm": recompute,
        "speedup": recompute / cached,
        "feature_extraction_s": result.extraction_s,
        "first_epoch_s_incl_feature_extraction": result.extraction_s + cb.epochs[0]["epoch_s"],
        "run_wall_s": total,
        "target": 10,
    }


def demo_end_to_end(args) -> dict:
    """Offline ImageNet Lite0, linear probe on the demo set at 128 px, then scratch with the same time
    budget."""
    out = {}
    for recipe, weights, epochs in (("linear_probe", "offline", 60), ("scratch", "random", 1000)):
        budget = 60.0
        cfg = TrainConfig(
            recipe=recipe,
            weights=weights,
            epochs=epochs,
            image_size=128,
            demo_per_class=60,
            lr=3e-3 if recipe == "linear_probe" else 1e-3,
            time_budget_s=budget,
            device=args.device,
        )
        cb = Collect()
        t = time.perf_counter()
        result = train(cfg, tempfile.mkdtemp(), cb)
        wall = time.perf_counter() - t
        first_90 = next((round(e["t"], 1) for e in cb.epochs if e["val_top1"] >= 0.9), None)
        out[recipe] = {
            "final_val_top1": result.last.get("val_top1"),
            "best_val_top1": result.best_top1,
            "epochs": len(cb.epochs),
            "wall_s": wall,
            "note": result.note,
            "curve_val_top1": [round(e["val_top1"], 3) for e in cb.epochs][:: max(1, len(cb.epochs) // 12)],
            "seconds_to_90pct_from_start_incl_setup": first_90,
        }
    out["target"] = "linear probe >= 0.90 val top-1 within 60 s"
    return out


def decoded_cache(args) -> dict:
    """One epoch of the data path (images to a normalised batch) from files with PIL against the uint8
    cache."""
    cfg = TrainConfig(image_size=96, demo_per_class=60)
    data = prepare(cfg)
    root = data.dataset.root
    prep = Normalizer(timm.create_model("efficientnet_lite0", pretrained=False), torch.device("cpu"), False)
    t = time.perf_counter()
    for i in range(0, len(data.split.train), 32):
        batch = torch.stack(
            [torch.from_numpy(load_resized(f"{root}/{p}", 96)) for p in data.split.train[i : i + 32]]
        )
        prep(batch)
    from_files = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(data.train_x), 32):
        prep(data.train_x[i : i + 32])
    cached = time.perf_counter() - t
    return {
        "images": len(data.train_x),
        "resolution": 96,
        "decode_every_epoch_s": from_files,
        "decoded_cache_epoch_s": cached,
        "speedup": from_files / cached,
    }


def main() -> None:
    args = parser(__doc__).parse_args()
    emit(
        {
            "env": environment(args, precision="fp32"),
            "trainer_overhead": overhead(args),
            "linear_probe_fast_path": probe_fast_path(args),
            "decoded_cache": decoded_cache(args),
            "demo_end_to_end": demo_end_to_end(args),
        }
    )


if __name__ == "__main__":
    main()
