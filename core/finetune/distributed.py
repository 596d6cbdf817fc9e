"""DistributedDataParallel plumbing in one place: rank and world from torchrun, the one init_process_group,
and decisions that rank 0 makes and every rank follows (so no rank waits for ever in a collective).

Several nodes: ``torchrun --nnodes N --nproc_per_node P --rdzv-backend c10d --rdzv-endpoint HOST:PORT -m
core.finetune ...`` on each node. Global rank 0 alone reads and writes the run store; what the other
ranks need from it (the run's configuration on a resume, its checkpoint) reaches them by broadcast.
Every collective times out after ``ARCHSCOPE_DIST_TIMEOUT_S`` seconds (default 300), so a node that
stops answering without closing its connections ends the others within that bound; a node that dies
closes them, and the others end at once."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def dist_info() -> tuple[int, int]:
    """(rank, world size) as torchrun sets them; (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


TIMEOUT_ENV = "ARCHSCOPE_DIST_TIMEOUT_S"


def timeout_s() -> float:
    """How long any collective waits for the other ranks before it fails (``ARCHSCOPE_DIST_TIMEOUT_S``,
    default 300 s: it must cover rank 0's validation pass, which the others wait for at a barrier)."""
    return float(os.environ.get(TIMEOUT_ENV, "300"))


def init(device: str) -> tuple[int, int]:
    """Joins the process group once (NCCL for CUDA, gloo for the CPU), with the bounded timeout; returns
    (rank, world)."""
    rank, world = dist_info()
    if world > 1 and not dist.is_initialized():
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s()))
    return rank, world


def from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object: a config, a checkpoint) on every rank; the value itself
    when not distributed. The other ranks pass a placeholder."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return value
    box = [value if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0, device=_tensor_device())
    return box[0]


def from_everyone(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank (``[value]`` when not distributed)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def where() -> dict[str, Any]:
    """This process's place: global rank, host name, and the node (torchrun's GROUP_RANK)."""
    return {
        "rank": dist_info()[0],
        "host": socket.gethostname(),
        "node": int(os.environ.get("GROUP_RANK", 0)),
    }


def lost_peer(err: BaseException) -> bool:
    """Whether an error is a collective failing because another rank (another node) went away or timed out."""
    if not dist.is_initialized():
        return False
    kinds = tuple(
        k
        for k in (
            getattr(dist, "DistError", None),
            getattr(dist, "DistBackendError", None),
            getattr(dist, "DistNetworkError", None),
        )
        if k is not None
    )
    text = str(err).lower()
    return isinstance(err, kinds) or any(
        w in text
        for w in ("gloo", "connection closed", "connection reset", "timed out", "nccl", "broken pipe")
    )


def _tensor_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def decided_by_rank0(value: int) -> int:
    """Rank 0's ``value`` on every rank (a broadcast); the value itself when not distributed."""
    if not dist.is_initialized():
        return value
    box = torch.tensor([value], dtype=torch.long, device=_tensor_device())
    dist.broadcast(box, src=0)
    return int(box.item())


def rank0_first(fn: Callable[[], T]) -> T:
    """Runs ``fn`` on rank 0, then on the other ranks once it is done (shared preparation: extraction,
    caches). If rank 0 fails, the other ranks stop with an error instead of waiting for ever."""
    if not dist.is_initialized():
        return fn()
    rank, _ = dist_info()
    error: BaseException | None = None
    if rank == 0:
        try:
            result = fn()
        except BaseException as err:  # noqa: BLE001  re-raised below, after telling the other ranks
            error = err
    dist.barrier()
    if decided_by_rank0(int(error is None)) == 0:
        if error is not None:
            raise error
        raise RuntimeError("rank 0 failed to prepare the data; see its error")
    return result if rank == 0 else fn()


PER_NODE = ("device", "threads", "cache", "data")  # where and how a node runs, not what it trains (the data's
# content is compared by its hash when it is read)


def config_disagreement(ranks: list[dict[str, Any]]) -> str:
    """Why the ranks cannot train one run (empty when they can): the first setting that shapes training
    (image size, batch, recipe, model, weights, seed, augmentation, learning rates, ...) in which a node
    differs from rank 0, in one line. Each entry is ``where()`` plus ``config``
    (``TrainConfig.to_dict()``)."""
    ref = ranks[0]["config"]
    for r in ranks[1:]:
        diff = [k for k in ref if k not in PER_NODE and r["config"].get(k) != ref[k]]
        if diff:
            key, more = diff[0], f" (and {', '.join(diff[1:])})" if len(diff) > 1 else ""
            return (
                f"node {r['node']} (host {r['host']}, rank {r['rank']}) has {key} {r['config'].get(key)!r}, "
                f"rank 0 has {ref[key]!r}{more}: start every node with the same flags"
            )
    return ""
