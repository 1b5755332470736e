"""Checkpoints: everything needed to resume training at an epoch boundary, bit for bit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "load_checkpoint",
    "load_training_state",
    "rng_state",
    "save_checkpoint",
    "save_training_state",
    "set_rng_state",
]


def rng_state() -> dict[str, Any]:
    """The global torch generators' states (CPU, and CUDA when available)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (to a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def save_training_state(path: Path, epoch: int, stateful: Mapping[str, Any], **extra: Any) -> None:
    """Write ``last.pt``: each of ``stateful``'s ``state_dict()`` under its key (``None`` for an
    absent object, e.g. no scheduler), ``epoch``, the RNG states and ``extra``, atomically."""
    state = {k: None if v is None else v.state_dict() for k, v in stateful.items()}
    save_checkpoint(path, {**state, "epoch": epoch, "rng": rng_state(), **extra})


def load_training_state(path: str | Path, stateful: Mapping[str, Any]) -> dict[str, Any]:
    """Restore what `save_training_state` wrote into the objects of ``stateful`` (skipping absent
    ones) and the RNG states; returns the checkpoint (``epoch`` and the ``extra`` entries)."""
    ckpt = load_checkpoint(path)
    for key, obj in stateful.items():
        if obj is not None and ckpt[key] is not None:
            obj.load_state_dict(ckpt[key])
    set_rng_state(ckpt["rng"])
    return ckpt
