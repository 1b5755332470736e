"""Test oracles of the integration recipes: what the ranks trained, against one process.

* `reference_order`: one epoch's global order recomputed in a *single* process from the scores
  a run recorded, the ground truth the distributed runs must match.
* `interleave` / `check_shards`: the ranks' shares, put back together the way the framework split
  them, are exactly the epoch's order, every sample once, followed only by the padding that
  repeats the order's beginning.
* `load_records` / `verify_run`: the per-rank records a recipe writes, checked epoch by epoch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _toy import ToyAV, make_sampler

__all__ = ["check_shards", "interleave", "load_records", "reference_order", "verify_run"]


def reference_order(
    kind: str, dataset: ToyAV, scores: Sequence[float], epoch: int, *, seed: int = 0
) -> list[int]:
    """Epoch ``epoch``'s global order, recomputed by one fresh, unsharded sampler from ``scores``.

    ``scores`` are the scores the sampler held during that epoch (for the learned sampler: after
    the moving average of Eq. 9, which a first ``set_scores`` takes as they are).
    """
    sampler = make_sampler(kind, dataset, seed=seed, num_replicas=1, rank=0)
    sampler.set_scores(torch.tensor(scores, dtype=torch.float32))
    sampler.set_epoch(epoch)
    return [int(i) for i in sampler.epoch_indices()]


def interleave(shards: Sequence[Sequence[int]], chunk: int = 1) -> list[int]:
    """Undo a round-robin split: ``chunk`` items from rank 0, then from rank 1, and so on.

    ``chunk=1`` undoes ``DistributedSampler`` (and Lightning's ``DistributedSamplerWrapper``);
    ``chunk=batch_size`` undoes Accelerate's ``BatchSamplerShard``.
    """
    if len({len(shard) for shard in shards}) > 1:
        raise AssertionError(
            f"ranks consumed different numbers of samples: {[len(s) for s in shards]}"
        )
    merged: list[int] = []
    for start in range(0, len(shards[0]), chunk):
        for shard in shards:
            merged.extend(shard[start : start + chunk])
    return merged


def check_shards(
    order: Sequence[int], shards: Sequence[Sequence[int]], *, chunk: int = 1, distinct: bool = True
) -> None:
    """Assert that the ranks' ``shards`` are exactly the global ``order`` split round-robin.

    The merged shards must start with ``order`` (every item of the epoch exactly once, in the
    epoch's order) and may only continue with the padding that makes the shares equal, which
    repeats the order's beginning. ``distinct``: the order holds each item once (BSS; SMV's
    stream repeats the id of a sample copied twice with the same modality).

    Raises:
        AssertionError: with the first mismatch.
    """
    merged = interleave(shards, chunk)
    if distinct and len(set(order)) != len(order):
        raise AssertionError("the epoch's order repeats samples")
    head, padding = merged[: len(order)], merged[len(order) :]
    if head != list(order):
        first = (
            next(i for i, (x, y) in enumerate(zip(head, order)) if x != y)
            if len(head) == len(order)
            else len(head)
        )
        raise AssertionError(f"the merged shards differ from the epoch's order at position {first}")
    if padding != list(order[: len(padding)]):
        raise AssertionError(f"the padding {padding} does not repeat the order's beginning")


def load_records(out: Path) -> list[list[dict[str, Any]]]:
    """The records of all ranks in ``out``, ordered by rank: ``records[rank][i]`` is an epoch."""
    paths = sorted(
        out.glob("record-rank*.json"), key=lambda p: int(p.stem.removeprefix("record-rank"))
    )
    return [json.loads(path.read_text())["epochs"] for path in paths]


def verify_run(
    out: Path, kind: str, dataset: ToyAV, *, world_size: int, chunk: int = 1, seed: int = 0
) -> list[list[dict[str, Any]]]:
    """Check a finished distributed run from its records and return them.

    For every epoch: all ranks held identical scores, and their consumed indices put back
    together are exactly the order one unsharded sampler computes from those scores
    (`reference_order`, `check_shards`).
    """
    records = load_records(out)
    if len(records) != world_size:
        raise AssertionError(
            f"expected records of {world_size} ranks in {out}, found {len(records)}"
        )
    epochs = [entry["epoch"] for entry in records[0]]
    for rank_records in records[1:]:
        if [entry["epoch"] for entry in rank_records] != epochs:
            raise AssertionError("ranks recorded different epochs")
    for i, epoch in enumerate(epochs):
        entries = [rank_records[i] for rank_records in records]
        if any(entry["scores"] != entries[0]["scores"] for entry in entries):
            raise AssertionError(f"epoch {epoch}: ranks held different scores")
        order = reference_order(kind, dataset, entries[0]["scores"], epoch, seed=seed)
        try:
            check_shards(order, [entry["indices"] for entry in entries], chunk=chunk)
        except AssertionError as error:
            raise AssertionError(f"epoch {epoch}: {error}") from None
    return records
