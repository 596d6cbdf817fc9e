"""DistributedDataParallel plumbing in one place: rank and world from torchrun, the one init_process_group, and
decisions that rank 0 makes and every rank follows (so no rank waits for ever in a collective)."""
from __future__ import annotations

import os
from typing import Callable, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def dist_info() -> tuple[int, int]:
    """(rank, world size) as torchrun sets them; (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init(device: str) -> tuple[int, int]:
    """Joins the process group once (NCCL for CUDA, gloo for the CPU); returns (rank, world)."""
    rank, world = dist_info()
    if world > 1 and not dist.is_initialized():
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world


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
    """Runs ``fn`` on rank 0, then on the other ranks once it is done (shared preparation: extraction, caches).
    If rank 0 fails, the other ranks stop with an error instead of waiting for ever."""
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
