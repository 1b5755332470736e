"""The shared sampler lists: every ordering method on the core, built and valued alike.

Adding a method to the library adds one entry here (its class in `SAMPLERS`, and in `valuation`
the shape of a valuation it accepts); the contract tests (resume, workers, shards, checkpoints)
then run on it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler, SMVSampler
from bss_sampler.balance import BalanceSampler
from bss_sampler.core import PolicySampler

SAMPLERS: list[type[PolicySampler]] = [
    HeuristicCurriculumSampler,
    LearnedBalanceSampler,
    SMVSampler,
]
BSS_SAMPLERS = [HeuristicCurriculumSampler, LearnedBalanceSampler]
IDS = range(2**31)
"""A dataset for loaders over any sampler: item ``i`` is ``i`` (SMV's stream ids exceed ``N``)."""


def make(cls: type[PolicySampler], n: int, **kwargs: Any) -> Any:
    if cls is HeuristicCurriculumSampler:
        kwargs.setdefault("lambda0", 0.4)
        kwargs.setdefault("t_grow", 3)
    elif "lambda0" in kwargs:  # the heuristic's own setting
        del kwargs["lambda0"]
    return cls(range(n), **kwargs)


def schedule(cls: type[PolicySampler], every: int) -> dict[str, int]:
    """The keyword that re-values every ``every`` epochs."""
    return {"rescore_every" if cls is HeuristicCurriculumSampler else "update_every": every}


def valuation(cls: type[PolicySampler], n: int, seed: int = 0) -> Tensor:
    """A valid seeded valuation: scores in [-1, 1], or SMV's two-modality contributions (values
    -0.5 to 1.5, so that epochs hold copies)."""
    g = torch.Generator().manual_seed(seed)
    if cls is SMVSampler:
        return torch.randint(0, 5, (n, 2), generator=g).float() * 0.5 - 0.5
    return torch.rand(n, generator=g) * 2 - 1


def value(sampler: Any, values: Tensor) -> Tensor:
    """Give ``sampler`` a valuation through its public method."""
    if isinstance(sampler, BalanceSampler):
        return sampler.set_scores(values)
    return sampler.set_values(values)


def newest(sampler: Any) -> Tensor | None:
    """The newest valuation, by the method's own name for it."""
    return sampler.scores if isinstance(sampler, BalanceSampler) else sampler.contributions


def scored(cls: type[PolicySampler], n: int, seed: int = 0, **kwargs: Any) -> Any:
    sampler = make(cls, n, **kwargs)
    value(sampler, valuation(cls, n, seed))
    return sampler
