"""The tiny two-modality task every integration recipe trains, and the checks they share.

The recipes in this folder differ only in the framework around the sampler; the data, the model,
the loss, the sampler configuration and the bookkeeping (which indices each rank consumed) live
here once.

* :class:`ToyAV`: ``N`` synthetic "audio"/"video" pairs. The audio vector always carries its
  class; the video vector carries it with a per-sample strength in ``[0, 1]``, so some samples
  are balanced (both modalities informative) and others are not.
* :class:`ToyAVModel`: one linear encoder per modality, a concatenation head and one head per
  modality: ``forward(a, v) -> (multimodal_logits, [logits_a, logits_v])``, the convention
  ``update_scores`` understands.
* :func:`make_sampler`: the two BSS samplers with small-run settings (scores refreshed every 2
  epochs; a curriculum that reaches the whole dataset at epoch 3).
* :func:`reference_order`: one epoch's global order recomputed in a *single* process from the
  recorded scores, the ground truth the distributed runs must match.
* :func:`check_shards`: the property every recipe asserts: the ranks' shares, put back
  together, are exactly the epoch's order, and every sample of the epoch is seen exactly once
  (apart from the padding that makes the shares equal).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler

__all__ = [
    "NUM_CLASSES",
    "BSSSampler",
    "ToyAV",
    "ToyAVModel",
    "add_common_args",
    "check_shards",
    "epoch_record",
    "interleave",
    "load_records",
    "make_sampler",
    "reference_order",
    "save_record",
    "score_loader",
    "training_loss",
    "verify_run",
]

NUM_CLASSES = 4
"""Classes of the toy task."""

BSSSampler = Union[LearnedBalanceSampler, HeuristicCurriculumSampler]
"""Either BSS sampler."""

Item = dict[str, Any]


class ToyAV(Dataset[Item]):
    """``num_samples`` synthetic audio/video pairs, generated once from ``seed``.

    Items are mappings ``{"a": float32 (dim,), "v": float32 (dim,), "target": int, "index": int}``.
    """

    def __init__(self, num_samples: int = 64, *, dim: int = 8, seed: int = 0) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        generator = torch.Generator().manual_seed(seed)
        self.targets = torch.arange(num_samples) % NUM_CLASSES
        prototypes_a = torch.randn(NUM_CLASSES, dim, generator=generator)
        prototypes_v = torch.randn(NUM_CLASSES, dim, generator=generator)
        strength_v = torch.rand(num_samples, 1, generator=generator)
        noise_a = torch.randn(num_samples, dim, generator=generator)
        noise_v = torch.randn(num_samples, dim, generator=generator)
        self.a = prototypes_a[self.targets] + 0.5 * noise_a
        self.v = strength_v * prototypes_v[self.targets] + noise_v

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> Item:
        return {
            "a": self.a[index],
            "v": self.v[index],
            "target": int(self.targets[index]),
            "index": int(index),
        }


class ToyAVModel(nn.Module):
    """Late-fusion classifier: ``forward(a, v) -> (multimodal_logits, [logits_a, logits_v])``."""

    def __init__(self, dim: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.encoder_a = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.encoder_v = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.head = nn.Linear(2 * hidden, NUM_CLASSES)
        self.head_a = nn.Linear(hidden, NUM_CLASSES)
        self.head_v = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, list[Tensor]]:
        e_a, e_v = self.encoder_a(a), self.encoder_v(v)
        return self.head(torch.cat([e_a, e_v], dim=1)), [self.head_a(e_a), self.head_v(e_v)]


def training_loss(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
    """Cross-entropy of the fused head plus that of each unimodal head, averaged over the batch."""
    multimodal, unimodal = model(batch["a"], batch["v"])
    target = batch["target"]
    return F.cross_entropy(multimodal, target) + sum(
        (F.cross_entropy(logits, target) for logits in unimodal), torch.zeros(())
    )


def make_sampler(
    kind: str,
    dataset: ToyAV,
    *,
    seed: int = 0,
    num_replicas: int | None = None,
    rank: int | None = None,
    global_order: bool = False,
) -> BSSSampler:
    """The BSS sampler of ``kind`` (``"learned"`` or ``"heuristic"``) with small-run settings.

    Sharding as ``DistributedSampler``: by the process group unless ``num_replicas``/``rank``
    are given; ``global_order=True`` yields the whole order on every rank (for Lightning's and
    Accelerate's wrappers, which shard it themselves).
    """
    shard: dict[str, Any] = {
        "seed": seed,
        "num_replicas": num_replicas,
        "rank": rank,
        "global_order": global_order,
    }
    if kind == "learned":
        return LearnedBalanceSampler(dataset, update_every=2, **shard)
    if kind == "heuristic":
        return HeuristicCurriculumSampler(dataset, lambda0=0.25, t_grow=3, **shard)
    raise ValueError(f"kind must be 'learned' or 'heuristic', got {kind!r}")


def score_loader(dataset: ToyAV, batch_size: int = 16) -> DataLoader[Item]:
    """An unshuffled loader over the whole dataset for ``update_scores``.

    Under an initialised process group each rank gets its share through
    ``DistributedSampler(shuffle=False)``; ``update_scores`` then syncs the scores across ranks.
    """
    sampler = None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        sampler = DistributedSampler(dataset, shuffle=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


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


def check_shards(order: Sequence[int], shards: Sequence[Sequence[int]], *, chunk: int = 1) -> None:
    """Assert that the ranks' ``shards`` are exactly the global ``order`` split round-robin.

    The merged shards must start with ``order`` (every sample of the epoch exactly once, in the
    epoch's order) and may only continue with the padding that makes the shares equal, which
    repeats the order's beginning.

    Raises:
        AssertionError: with the first mismatch.
    """
    merged = interleave(shards, chunk)
    if len(set(order)) != len(order):
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


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags every recipe takes: sampler kind, run length, sizes, seed and output folder."""
    parser.add_argument("--sampler", choices=("learned", "heuristic"), default="learned")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/integrations"),
        help="folder for the per-rank records and checkpoints",
    )
    return parser


def save_record(out: Path, rank: int, epochs: Sequence[Mapping[str, Any]]) -> Path:
    """Write one rank's epochs (``epoch``, ``scores``, ``length``, ``indices``) as JSON."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"record-rank{rank}.json"
    path.write_text(json.dumps({"rank": rank, "epochs": list(epochs)}))
    return path


def epoch_record(epoch: int, sampler: BSSSampler, indices: Sequence[int]) -> dict[str, Any]:
    """What one rank saw in one epoch: the sampler's scores and length, and the consumed indices."""
    scores = sampler.scores
    if scores is None:
        raise RuntimeError("the sampler has no scores yet")
    return {
        "epoch": epoch,
        "length": len(sampler),
        "scores": scores.tolist(),
        "indices": [int(i) for i in indices],
    }


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
    (:func:`reference_order`, :func:`check_shards`).
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
