"""The training loop, readable in one sitting (nanoGPT style). Set-up returns a state; each epoch is one
function and so is its end (evaluate, checkpoint, early stop). Progress leaves through callbacks, so the
loop knows nothing of SQLite or Streamlit. Under torchrun it trains with DistributedDataParallel: rank 0
alone reports and saves, and every stop (cancel, time budget, early stop) is decided on rank 0 and
broadcast, so all ranks take the same branch."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler

from core.data.health import no_validation_classes
from core.data.split import Split
from core.finetune import bundle, recipes
from core.finetune.batches import Normalizer, evaluate, wilson
from core.finetune.config import TrainConfig
from core.finetune.data import Prepared, prepare_everywhere, source_name
from core.finetune.distributed import (
    config_disagreement,
    decided_by_rank0,
    dist_info,
    from_everyone,
    from_rank0,
    init,
    where,
)
from core.finetune.schedule import make_scheduler
from core.finetune.strategies import Strategy, for_recipe
from core.finetune.weights import WeightsReport, create
from core.measure.settings import autocast_dtype

STOP_NONE, STOP_CANCEL, STOP_BUDGET = 0, 1, 2


class Diverged(ValueError):
    """The training loss became NaN or infinite; the message names the step and what to lower."""


class Callbacks(Protocol):
    def on_start(self, info: dict[str, Any]) -> None: ...
    def on_step(
        self, epoch: int, step: int, values: dict[str, float], groups: dict[str, float] | None = None
    ) -> None: ...
    def on_epoch(self, epoch: int, step: int, values: dict[str, float], details: dict[str, Any]) -> None: ...
    def on_end(self, status: str, metrics: dict[str, float]) -> None: ...
    def should_stop(self) -> bool: ...


class NoCallbacks:
    def on_start(self, info: dict[str, Any]) -> None:
        pass

    def on_step(
        self, epoch: int, step: int, values: dict[str, float], groups: dict[str, float] | None = None
    ) -> None:
        pass

    def on_epoch(self, epoch: int, step: int, values: dict[str, float], details: dict[str, Any]) -> None:
        pass

    def on_end(self, status: str, metrics: dict[str, float]) -> None:
        pass

    def should_stop(self) -> bool:
        return False


@dataclass
class Result:
    status: str  # done | cancelled
    epochs_done: int
    best_top1: float
    last: dict[str, float] = field(default_factory=dict)
    export_dir: str = ""
    wall_s: float = 0.0
    note: str = ""
    best_epoch: int = 0  # the epoch whose weights were exported (the best val top-1)
    test: dict[str, Any] = field(default_factory=dict)  # the exported epoch on the held-out test split
    extraction_s: float = 0.0


@dataclass
class State:
    """Everything the loop needs, built once by ``setup``; the counters move as it trains."""

    cfg: TrainConfig
    run_dir: Path
    rank: int
    world: int
    device: torch.device
    data: Prepared
    model: nn.Module
    prep: Normalizer
    strategy: Strategy
    opt: torch.optim.Optimizer
    sched: Any
    amp: Callable[[], Any]
    cb: Callbacks
    steps_per_epoch: int
    start_epoch: int = 0
    step: int = 0
    best: float = 0.0
    best_loss: float = float("inf")  # the val loss of the best epoch: the tie-break (see ``better``)
    stale: int = 0
    last: dict[str, float] = field(default_factory=dict)
    wall_offset: float = 0.0
    t_start: float = field(default_factory=time.perf_counter)
    extraction_s: float = 0.0  # linear probe: the one-off feature pass, before the first epoch

    def wall_s(self) -> float:
        return self.wall_offset + time.perf_counter() - self.t_start


def pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        if torch.cuda.is_available():
            import os

            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    return torch.device(cfg.device)


def build_model(cfg: TrainConfig, n_classes: int, device: torch.device, channels_last: bool):
    """The backbone with its weights and new head, frozen and grouped as the recipe says, on the device."""
    model, report = create(cfg.model, cfg.weights, n_classes)
    groups = recipes.plan(model, cfg.recipe, cfg.lr, cfg.layer_decay, cfg.freeze_stages)
    opt_groups = recipes.apply(model, groups, cfg.weight_decay)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return model, report, groups, opt_groups


def saved_split(ckpt: dict[str, Any] | None) -> Split | None:
    if ckpt is None:
        return None
    return Split(
        ckpt["split_seed"],
        ckpt["split_fraction"],
        tuple(ckpt["split_train"]),
        tuple(ckpt["split_val"]),
        tuple(ckpt.get("split_test", ())),
        ckpt.get("split_test_fraction", 0.0),
    )


def checkpoint(s: State, epoch: int) -> dict[str, Any]:
    """Everything a resume needs: weights, optimizer, scheduler, counters, RNG states, the split, wall
    time."""
    return {
        "model": s.model.state_dict(),
        "optimizer": s.opt.state_dict(),
        "scheduler": s.sched.state_dict(),
        "epoch": epoch,
        "step": s.step,
        "best": s.best,
        "best_loss": s.best_loss,
        "stale": s.stale,
        "rng": bundle.rng_state(),
        "split_seed": s.data.split.seed,
        "split_fraction": s.data.split.val_fraction,
        "split_train": list(s.data.split.train),
        "split_val": list(s.data.split.val),
        "split_test": list(s.data.split.test),
        "split_test_fraction": s.data.split.test_fraction,
        "classes": list(s.data.classes),
        "config": s.cfg.to_dict(),
        "wall_s": s.wall_s(),
    }


def setup(
    cfg: TrainConfig,
    run_dir: Path,
    callbacks: Callbacks | None,
    prepared: Prepared | None,
    wall_offset: float,
) -> State:
    """Process group, device, data (prepared once, on rank 0 first), model, optimizer, schedule, and the
    checkpoint to resume from; tells the callbacks what it is about to do."""
    t_start = time.perf_counter()
    rank, world = init(cfg.device)
    if world > 1 and (problem := config_disagreement(from_everyone({**where(), "config": cfg.to_dict()}))):
        raise ValueError(problem)  # every rank gathered the same list: every rank stops here
    if cfg.threads:
        torch.set_num_threads(cfg.threads)  # a training process is the run's own: set for good
    device = pick_device(cfg)
    use_cuda = device.type == "cuda"
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if use_cuda else "fp32")
    channels_last = cfg.channels_last if cfg.channels_last is not None else use_cuda
    # the checkpoint lives with the run record, on rank 0's node: the other ranks get it from rank 0
    ckpt = from_rank0(bundle.load_checkpoint(run_dir) if rank == 0 else None)
    torch.manual_seed(cfg.seed)
    data = prepared or prepare_everywhere(cfg, saved_split(ckpt))
    places = from_everyone(where())
    model, report, groups, opt_groups = build_model(cfg, len(data.classes), device, channels_last)
    dtype = autocast_dtype(precision)

    def amp():
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    prep = Normalizer(model, device, channels_last)
    opt = torch.optim.AdamW(opt_groups)
    steps_per_epoch = -(-len(data.train_x) // (cfg.batch_size * world))
    sched = make_scheduler(
        opt, cfg.schedule, cfg.epochs * steps_per_epoch, int(cfg.warmup_epochs * steps_per_epoch)
    )
    s = State(
        cfg,
        run_dir,
        rank,
        world,
        device,
        data,
        model,
        prep,
        None,
        opt,
        sched,
        amp,  # type: ignore[arg-type]
        (callbacks or NoCallbacks()) if rank == 0 else NoCallbacks(),
        steps_per_epoch,
        wall_offset=wall_offset,
        t_start=t_start,
    )
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        bundle.set_rng_state(ckpt["rng"])
        s.start_epoch, s.step, s.best, s.stale = (
            ckpt["epoch"],
            ckpt["step"],
            ckpt["best"],
            ckpt.get("stale", 0),
        )
        s.best_loss = ckpt.get("best_loss", float("inf"))
    s.cb.on_start(
        {
            **_info(s, precision, channels_last, report, groups),
            "nodes": len({(p["host"], p["node"]) for p in places}),
            "hosts": sorted({p["host"] for p in places}),
        }
    )
    t = time.perf_counter()
    s.strategy = for_recipe(cfg.recipe)(model, data, prep, device, world, amp)
    s.extraction_s = time.perf_counter() - t if cfg.recipe == "linear_probe" else 0.0
    return s


def _info(s: State, precision: str, channels_last: bool, report: WeightsReport, groups) -> dict[str, Any]:
    return {
        "classes": list(s.data.classes),
        "device": str(s.device),
        "precision": precision,
        "world": s.world,
        "channels_last": channels_last,
        "weights": report.source,
        "groups": recipes.table(groups).to_dict("records"),
        "train_images": len(s.data.train_x),
        "val_images": len(s.data.val_x),
        "test_images": len(s.data.split.test),
        "resumed_from_epoch": s.start_epoch,
        "resumed_from_step": s.step,
        "steps_per_epoch": s.steps_per_epoch,
        "dataset": dataset_identity(s.cfg, s.data.dataset),
        "no_val_classes": list(no_validation_classes(s.data.dataset, s.data.split)),
    }


def better(top1: float, loss: float, best_top1: float, best_loss: float) -> bool:
    """Whether an epoch beats the best so far: a higher val top-1, or the same top-1 with a val loss no
    higher (an equal loss goes to the later, more-trained epoch). 100% at every epoch no longer exports
    epoch 1."""
    return top1 > best_top1 or (top1 == best_top1 and loss <= best_loss)


def dataset_identity(cfg: TrainConfig, ds: Any) -> dict[str, Any]:
    """What the runs table shows of the data (a name a person recognises, the content hash and the image
    count), and the class folders' root the split's paths are relative to, so nothing after training
    resolves it again."""
    return {
        "name": source_name(cfg.to_dict()),
        "sha256": ds.content_hash(),
        "images": len(ds.samples),
        "classes": len(ds.classes),
        "root": str(ds.root),
    }


def stop_now(s: State) -> int:
    """Rank 0 decides whether to stop before the next step (cancel, time budget); every rank gets its
    answer."""
    reason = STOP_NONE
    if s.rank == 0:
        if s.cb.should_stop():
            reason = STOP_CANCEL
        elif s.cfg.time_budget_s and time.perf_counter() - s.t_start > s.cfg.time_budget_s:
            reason = STOP_BUDGET
    return decided_by_rank0(reason)


def run_epoch(s: State, epoch: int) -> tuple[str, str, int, float]:
    """One pass over this rank's share of the training set; returns (status, note, images seen, seconds)."""
    sampler = DistributedSampler(
        range(len(s.data.train_x)), num_replicas=s.world, rank=s.rank, shuffle=True, seed=s.cfg.seed
    )
    sampler.set_epoch(epoch)
    gen = torch.Generator().manual_seed(s.cfg.seed * 1000 + epoch)
    order = torch.tensor(list(sampler))
    s.strategy.train_mode()
    t_epoch, seen = time.perf_counter(), 0
    for i in range(0, len(order), s.cfg.batch_size):
        if (why := stop_now(s)) == STOP_CANCEL:
            return (
                "cancelled",
                f"stopped by request in epoch {epoch + 1}",
                seen,
                time.perf_counter() - t_epoch,
            )
        if why == STOP_BUDGET:
            return (
                "done",
                f"time budget of {s.cfg.time_budget_s:.0f} s reached in epoch {epoch + 1}",
                seen,
                time.perf_counter() - t_epoch,
            )
        idx = order[i : i + s.cfg.batch_size]
        x = s.strategy.batch(idx, s.cfg.augment, gen)
        y = s.data.train_y[idx].to(s.device)
        with s.amp():
            loss = F.cross_entropy(s.strategy.forward(x).float(), y)
        if not torch.isfinite(loss):
            raise Diverged(
                f"the loss diverged at step {s.step + 1} (it became {loss.item()}); lower the learning "
                f"rate (it was {s.cfg.lr:g} for the head)"
            )
        s.opt.zero_grad(set_to_none=True)
        loss.backward()
        s.opt.step()
        s.sched.step()
        s.step += 1
        seen += len(idx)
        s.cb.on_step(
            epoch,
            s.step,
            {"loss": loss.item(), "lr": s.opt.param_groups[-1]["lr"]},
            {g.get("name", str(i)): g["lr"] for i, g in enumerate(s.opt.param_groups)},
        )
    if s.device.type == "cuda":
        torch.cuda.synchronize(s.device)
    return "done", "", seen, time.perf_counter() - t_epoch


def end_epoch(s: State, epoch: int, seen: int, train_s: float, t_epoch: float) -> bool:
    """Evaluate (rank 0), report, checkpoint; returns whether early stopping ends the run (rank 0 decides)."""
    if s.rank == 0:
        ev = s.strategy.evaluate()
        improved = (
            better(ev["top1"], ev["loss"], s.best, s.best_loss) or not (s.run_dir / bundle.BEST).exists()
        )
        s.stale = 0 if improved else s.stale + 1
        if improved:
            s.best, s.best_loss = ev["top1"], ev["loss"]
        s.last = {
            "val_loss": ev["loss"],
            "val_top1": ev["top1"],
            "epoch_s": time.perf_counter() - t_epoch,
            "train_s": train_s,
            "images_per_s": seen * s.world / max(train_s, 1e-9),
        }
        val_paths = s.strategy.data.split.val  # the misses by file (relative to the dataset's root)
        misses = [
            {**m, "path": val_paths[m["index"]]} for m in ev.get("misses", []) if m["index"] < len(val_paths)
        ]
        s.cb.on_epoch(
            epoch,
            s.step,
            s.last,
            {"per_class": ev["per_class"], "confusion": ev["confusion"], "misses": misses},
        )
        if improved:
            bundle.save_best(
                s.run_dir, s.model, epoch + 1, ev["top1"], ev["loss"]
            )  # what the export will hold
        bundle.save_checkpoint(s.run_dir, checkpoint(s, epoch + 1))
    early = bool(s.cfg.early_stopping and s.stale >= s.cfg.early_stopping)
    if s.world > 1:
        dist.barrier()
    return bool(decided_by_rank0(int(early)))


def finish(s: State, status: str, note: str) -> Result:
    """The export (rank 0, finished runs) and the result."""
    export_dir, best, test = "", bundle.load_best(s.run_dir) if s.rank == 0 else None, {}
    if status == "done" and best is not None:
        s.model.load_state_dict(best["model"])  # export the best epoch: the one whose top-1 is reported
        test = score_test(s)  # scored once, with the exported weights
        mean = tuple(s.prep.mean.flatten().tolist())
        std = tuple(s.prep.std.flatten().tolist())
        with bundle.writer_lock(s.run_dir, f"the training worker (pid {os.getpid()})", wait=True):
            export_dir = str(
                bundle.export(
                    s.run_dir,
                    s.model,
                    s.cfg.model,
                    s.data.classes,
                    s.cfg.image_size,
                    mean,
                    std,
                    best["epoch"],
                    best["val_top1"],
                    best.get("val_loss"),
                    test=test,
                )
            )
    epochs_done = (bundle.load_checkpoint(s.run_dir) or {}).get("epoch", 0) if s.rank == 0 else 0
    final = {
        "best val top-1": s.best,
        "best val loss": s.best_loss,
        "epochs done": float(epochs_done),
        "wall s": s.wall_s(),
    }
    if test:  # a run without a test split logs no test figure (never NaN)
        final |= {
            "test top-1": test["top1"],
            "test top-1 low": test["wilson_95"][0],
            "test top-1 high": test["wilson_95"][1],
        }
    s.cb.on_end(status, final)
    return Result(
        status,
        epochs_done,
        s.best,
        s.last,
        export_dir,
        s.wall_s(),
        note,
        best["epoch"] if best is not None else 0,
        test,
        s.extraction_s,
    )


def score_test(s: State) -> dict[str, Any]:
    """The exported weights, once, on the held-out test split (no epoch was chosen on it): hits, n and
    top-1."""
    if s.data.test_x is None or not len(s.data.test_x):
        return {}
    s.model.eval()
    with s.amp():
        ev = evaluate(s.model, s.data.test_x, s.data.test_y, len(s.data.classes), 256, s.prep)
    n = len(s.data.test_x)
    hits = round(ev["top1"] * n)
    return {"top1": ev["top1"], "hits": hits, "n": n, "wilson_95": list(wilson(hits, n))}


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    callbacks: Callbacks | None = None,
    prepared: Prepared | None = None,
    wall_offset: float = 0.0,
) -> Result:
    """Fine-tunes ``cfg.model`` with ``cfg.recipe``; resumes from run_dir's checkpoint when there is one.
    ``wall_offset``: seconds earlier segments of this run took, so ``wall_s`` spans every resume."""
    cfg.validate()
    run_dir = Path(run_dir)
    if dist_info()[0] == 0:  # the run folder is rank 0's: the other ranks write nothing there
        run_dir.mkdir(parents=True, exist_ok=True)
    s = setup(cfg, run_dir, callbacks, prepared, wall_offset)
    status, note = "done", ""
    for epoch in range(s.start_epoch, cfg.epochs):
        t_epoch = time.perf_counter()
        status, note, seen, train_s = run_epoch(s, epoch)
        if status == "cancelled":
            break
        if end_epoch(s, epoch, seen, train_s, t_epoch) and not note:
            note = f"early stopping: no better epoch (val top-1, then val loss) for {s.stale} epochs"
        if note:
            break
    return finish(s, status, note)
