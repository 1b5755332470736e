"""Pacing functions of the heuristic scheduler (paper Eq. 7) and their registry.

A pacing function maps a 0-based epoch ``t`` to the fraction ``lambda(t)`` in ``(0, 1]`` of the
most balanced samples available at that epoch. All three start at ``lambda0`` and reach 1 at
``t_grow``:

* ``root`` (Eq. 7, the paper's choice): fast growth early, slow later.
* ``linear``: a constant number of new samples per epoch.
* ``baby_step``: discrete steps of about ``lambda0`` each (Bengio et al., 2009); the subset stays
  fixed between steps, so the model sees the same data for several epochs.

>>> round(root_pacing(0, lambda0=0.1, t_grow=40), 4)
0.1
>>> root_pacing(40, lambda0=0.1, t_grow=40)
1.0
>>> round(linear_pacing(20, lambda0=0.1, t_grow=40), 4)
0.55
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

__all__ = [
    "PACING_FUNCTIONS",
    "EpochFraction",
    "PacingFunction",
    "baby_step_pacing",
    "linear_pacing",
    "root_pacing",
]


class PacingFunction(Protocol):
    """Signature shared by the registered pacing functions."""

    def __call__(self, epoch: int, *, lambda0: float, t_grow: float) -> float: ...


def root_pacing(epoch: int, *, lambda0: float, t_grow: float) -> float:
    """``min(1, sqrt((1 - lambda0^2) / t_grow * t + lambda0^2))`` (Eq. 7)."""
    if epoch >= t_grow:  # exactly 1, whatever the rounding
        return 1.0
    return min(1.0, math.sqrt((1.0 - lambda0**2) / t_grow * epoch + lambda0**2))


def linear_pacing(epoch: int, *, lambda0: float, t_grow: float) -> float:
    """``min(1, lambda0 + (1 - lambda0) * t / t_grow)``."""
    if epoch >= t_grow:
        return 1.0
    return min(1.0, lambda0 + (1.0 - lambda0) * epoch / t_grow)


def baby_step_pacing(epoch: int, *, lambda0: float, t_grow: float) -> float:
    """``min(1, lambda0 + (1 - lambda0) * floor(K t / t_grow) / K)``.

    ``K = ceil((1 - lambda0) / lambda0)`` equal steps of at most ``lambda0`` each, the last one at
    ``t_grow``.
    """
    if epoch >= t_grow:
        return 1.0
    steps = max(1, math.ceil((1.0 - lambda0) / lambda0 - 1e-9))
    return min(1.0, lambda0 + (1.0 - lambda0) * math.floor(steps * epoch / t_grow) / steps)


PACING_FUNCTIONS: dict[str, PacingFunction] = {
    "root": root_pacing,
    "linear": linear_pacing,
    "baby_step": baby_step_pacing,
}
"""Registry of named pacing functions; ``HeuristicCurriculumSampler(pacing=...)`` takes a key."""

EpochFraction = Callable[[int], float]
"""A custom pacing function: ``epoch -> fraction in (0, 1]`` (``HeuristicCurriculumSampler``)."""
