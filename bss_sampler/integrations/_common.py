"""What every framework integration needs: the scoring loader, finding the sampler, a summary.

Imports nothing beyond torch and this package.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any, Callable, cast

from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .. import _dist
from .._checks import check_int
from ..protocol import ScoredSampler

__all__ = ["BSSSampler", "find_sampler", "score_summary", "scoring_loader"]

BSSSampler = ScoredSampler
"""Any scored sampler (`bss_sampler.ScoredSampler`): what the integrations work with."""


def scoring_loader(
    dataset: Sized,
    batch_size: int,
    *,
    num_replicas: int | None = None,
    rank: int | None = None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    num_workers: int = 0,
) -> DataLoader[Any]:
    """An unshuffled loader over this rank's share of ``dataset``, for ``update_scores``.

    With more than one replica (``num_replicas``/``rank``, by default the initialised process
    group's) each rank gets its ``DistributedSampler(shuffle=False)`` share and ``update_scores``
    all-reduces the scores, so every rank ends with the same scores; with one, the whole
    dataset in order.

    >>> loader = scoring_loader(range(5), batch_size=2, num_replicas=2, rank=1)
    >>> [index for batch in loader for index in batch.tolist()]  # padded as DistributedSampler
    [1, 3, 0]
    """
    batch_size = check_int("batch_size", batch_size, 1)
    data = cast("Dataset[Any]", dataset)  # a map-style dataset; only Sized is needed to type it
    replicas = _dist.world_size() if num_replicas is None else num_replicas
    replicas = check_int("num_replicas", replicas, 1)
    rank = _dist.rank() if rank is None else rank
    sampler: DistributedSampler[Any] | None = None
    if replicas > 1:
        sampler = DistributedSampler(data, num_replicas=replicas, rank=rank, shuffle=False)
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
    )


def find_sampler(loader: Any) -> BSSSampler:
    """The scored sampler a ``DataLoader`` draws from (its ``sampler``, or its batch sampler's):
    whatever satisfies `bss_sampler.ScoredSampler`, not a fixed list of classes.

    Raises:
        TypeError: when neither is one.
    """
    candidates: list[Sampler[Any] | None] = [getattr(loader, "sampler", None)]
    batch_sampler = getattr(loader, "batch_sampler", None)
    candidates.append(getattr(batch_sampler, "sampler", None))
    for sampler in candidates:
        if isinstance(sampler, ScoredSampler):
            return sampler
    found = ", ".join(type(s).__name__ for s in candidates if s is not None) or "none"
    raise TypeError(
        "the training DataLoader must draw from a scored sampler such as LearnedBalanceSampler "
        "or HeuristicCurriculumSampler (DataLoader(dataset, sampler=sampler)), found "
        f"{found}"
    )


def score_summary(sampler: BSSSampler) -> dict[str, float]:
    """Mean, min and max of the sampler's newest scores and the epoch they were set for.

    Empty before any scores.
    """
    scores = sampler.scores
    if scores is None:
        return {}
    return {
        "score_mean": float(scores.mean()),
        "score_min": float(scores.min()),
        "score_max": float(scores.max()),
        "scores_epoch": float(sampler.scores_epoch or 0),
    }
