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
from fractions import Fraction
from typing import Callable, Protocol

__all__ = [
    "PACING_FUNCTIONS",
    "EpochFraction",
    "PacingFunction",
    "baby_step_pacing",
    "linear_pacing",
    "paced_count",
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


def _exact(value: float) -> Fraction:
    """The decimal a float was written as (its shortest repr): ``0.29``, not 0.28999999999999998."""
    return Fraction(repr(float(value)))


def paced_count(pacing: str | EpochFraction, epoch: int, num_samples: int, **kwargs: float) -> int:
    """``max(1, floor(N * lambda(t)))`` of Eq. 8, computed in exact arithmetic.

    In floats ``0.29 * 100`` is ``28.999999999999996``, so a float floor loses a sample; here
    ``lambda0``, ``t_grow`` (and a callable's return value) are taken as the decimals they were
    written as and the floor is exact (Eq. 7's square root through an integer square root:
    ``floor(N sqrt(q)) = isqrt(floor(N^2 q))``).

    Args:
        pacing: a key of `PACING_FUNCTIONS` (then ``lambda0`` and ``t_grow`` are keywords) or an
            ``epoch -> fraction`` callable whose value was already checked to lie in ``(0, 1]``.

    >>> paced_count("root", 0, 100, lambda0=0.29, t_grow=40)
    29
    """
    if callable(pacing):
        count = math.floor(num_samples * _exact(pacing(epoch)))
    elif epoch >= kwargs["t_grow"]:
        count = num_samples
    else:
        lambda0, t_grow = _exact(kwargs["lambda0"]), _exact(kwargs["t_grow"])
        if pacing == "root":
            squared = (1 - lambda0**2) / t_grow * epoch + lambda0**2
            count = math.isqrt(math.floor(num_samples**2 * squared))
        elif pacing == "linear":
            count = math.floor(num_samples * (lambda0 + (1 - lambda0) * epoch / t_grow))
        else:
            steps = max(1, math.ceil((1 - lambda0) / lambda0))
            done = Fraction(math.floor(steps * epoch / t_grow), steps)
            count = math.floor(num_samples * (lambda0 + (1 - lambda0) * done))
    return max(1, min(num_samples, count))
