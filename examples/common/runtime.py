"""Where training runs: seeding, device choice, torchrun/DDP set-up, autocast and progress bars."""

from __future__ import annotations

import contextlib
import gc
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.nn.functional  # before init_process_group: see teardown_runtime

__all__ = [
    "Runtime",
    "autocast",
    "progress",
    "seed_everything",
    "setup_runtime",
    "teardown_runtime",
]

T = TypeVar("T")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (model initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Runtime:
    """The device and the process group of this process (``world_size == 1`` without torchrun)."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    owns_process_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_runtime(device: str = "auto") -> Runtime:
    """Pick the device and, under ``torchrun`` (``WORLD_SIZE > 1``), join the process group.

    ``device="auto"`` means CUDA when available (``cuda:LOCAL_RANK`` under torchrun), else CPU.
    The backend is NCCL on CUDA and gloo on CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and world_size > 1:
        device = f"cuda:{local_rank}"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size <= 1:
        return Runtime(dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(dev, dist.get_rank(), dist.get_world_size(), owns)


def teardown_runtime(runtime: Runtime) -> None:
    """Leave the process group if :func:`setup_runtime` created it.

    Call it once the DDP model is gone (``fit`` calls it after ``_fit`` returned):
    ``destroy_process_group`` frees the gloo backend, joining its worker threads, only when
    nothing else holds the group. Left running into interpreter exit, such a thread can abort
    the process (SIGABRT, "terminate called without an active exception"). The module-level
    import of ``torch.distributed.nn.functional`` keeps that module's ``group=group.WORLD``
    defaults from holding the group (they would if it were first imported after
    ``init_process_group``, as DDP does). No barrier: this also runs on the error path.
    """
    if runtime.owns_process_group and dist.is_initialized():
        gc.collect()  # DDP objects in reference cycles
        dist.destroy_process_group()


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """float16 autocast on CUDA, bfloat16 autocast on CPU, or nothing when ``enabled`` is false."""
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def progress(
    items: Iterable[T], *, enabled: bool, desc: str, total: int | None = None
) -> Iterator[T]:
    """``tqdm(items)`` when tqdm is installed and ``enabled``, else ``items`` unchanged."""
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            yield from tqdm(items, desc=desc, total=total, leave=False, dynamic_ncols=True)
            return
    yield from items
