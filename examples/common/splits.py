"""Seeded stratified splits of a list of labels."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["stratified_split"]


def stratified_split(
    labels: Sequence[int] | torch.Tensor, fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Split positions into ``(rest, held_out)``, holding out ``round(fraction * n_c)`` per class.

    A pure function of ``(labels, fraction, seed)``; both lists are sorted.

    >>> stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.5, seed=0)[1].__len__()
    4
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must lie in [0, 1), got {fraction}")
    labels = torch.as_tensor(labels)
    gen = torch.Generator().manual_seed(seed)
    held: list[int] = []
    for c in torch.unique(labels):
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        held += members[: round(fraction * len(members))].tolist()
    held_set = set(held)
    rest = [i for i in range(len(labels)) if i not in held_set]
    return rest, sorted(held)
