"""Rank and world helpers and the one all-reduce; no-ops without a process group."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_initialized() -> bool:
    """True under an initialised default process group (of any size)."""
    return dist.is_available() and dist.is_initialized()


def is_distributed() -> bool:
    """True under an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks of the default process group (1 without one)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank in the default process group (0 without one)."""
    return dist.get_rank() if is_distributed() else 0


def all_reduce_sum_(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all ranks, in place; returns it. Without a process group: a no-op.

    NCCL reduces on the current CUDA device, every other backend (gloo) on the CPU; a tensor
    elsewhere goes through a copy on that device.
    """
    if not is_distributed():
        return tensor
    comm_device = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    if tensor.device == comm_device:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    else:
        buffer = tensor.to(comm_device)
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        tensor.copy_(buffer)
    return tensor
