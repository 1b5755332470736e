"""The tiny two-modality task every integration recipe trains, and their shared bookkeeping.

The recipes in this folder differ only in the framework around the sampler; the data, the model,
the loss, the sampler configuration and the bookkeeping (which indices each rank consumed) live
here once. The checks that a run trained on the right indices are test oracles: they live in
``tests/integrations/oracles.py``.

* :class:`ToyAV`: ``N`` synthetic "audio"/"video" pairs. The audio vector always carries its
  class; the video vector carries it with a per-sample strength in ``[0, 1]``, so some samples
  are balanced (both modalities informative) and others are not.
* :class:`ToyAVModel`: one linear encoder per modality, a concatenation head and one head per
  modality: ``forward(a, v) -> (multimodal_logits, [logits_a, logits_v])``, the convention
  ``update_scores`` understands; ``forward(a, v, mask)`` zeroes the features of the modalities
  an SMV copy drops (`bss_sampler.smv.mask_features`).
* :class:`ToyAVStream`: the items read through SMV's stream ids, for `bss_sampler.SMVSampler`;
  :func:`valuation_forward`: SMV's valuation pass over them.
* :func:`make_sampler`: the two BSS samplers and SMV with small-run settings (valuations
  refreshed every 2 epochs; a curriculum that reaches the whole dataset at epoch 3).
* :func:`epoch_record` / :func:`save_record`: what each rank trained on, written as JSON.
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
from torch.utils.data import Dataset

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler, SMVSampler
from bss_sampler.protocol import OrderedSampler
from bss_sampler.smv import coalition_logits, mask_features, variant_masks

__all__ = [
    "KINDS",
    "NUM_CLASSES",
    "AnySampler",
    "BSSSampler",
    "ToyAV",
    "ToyAVModel",
    "ToyAVStream",
    "add_common_args",
    "epoch_record",
    "make_any_sampler",
    "make_sampler",
    "make_train_set",
    "save_record",
    "set_valuation",
    "training_loss",
    "update",
    "valuation_forward",
]

NUM_CLASSES = 4
"""Classes of the toy task."""

BSSSampler = Union[LearnedBalanceSampler, HeuristicCurriculumSampler]
"""Either BSS sampler."""

AnySampler = Union[LearnedBalanceSampler, HeuristicCurriculumSampler, SMVSampler]
"""Either BSS sampler, or SMV's."""

KINDS = ("learned", "heuristic", "smv")
"""The samplers `make_sampler` builds."""

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


class ToyAVStream(ToyAV):
    """`ToyAV` read through `bss_sampler.SMVSampler`'s stream ids (as
    `bss_sampler.smv.ModalityMaskedDataset`, keeping the mapping items): item ``variant * N + i``
    is sample ``i`` with ``"mask"``, the bool ``(2,)`` modalities the variant keeps, and
    ``"index"`` the stream id (what the records hold)."""

    def __getitem__(self, index: int) -> Item:
        n = len(self)
        item = super().__getitem__(index % n)
        item["mask"] = variant_masks(torch.tensor(index // n), 2)
        item["index"] = int(index)
        return item


def make_train_set(kind: str, num_samples: int = 64, *, seed: int = 0) -> ToyAV:
    """The training set a sampler of ``kind`` draws from (SMV's: `ToyAVStream`)."""
    return (ToyAVStream if kind == "smv" else ToyAV)(num_samples, seed=seed)


class ToyAVModel(nn.Module):
    """Late-fusion classifier: ``forward(a, v) -> (multimodal_logits, [logits_a, logits_v])``."""

    def __init__(self, dim: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.encoder_a = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.encoder_v = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.head = nn.Linear(2 * hidden, NUM_CLASSES)
        self.head_a = nn.Linear(hidden, NUM_CLASSES)
        self.head_v = nn.Linear(hidden, NUM_CLASSES)

    def forward(
        self, a: Tensor, v: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        e_a, e_v = self.encoder_a(a), self.encoder_v(v)
        if mask is not None:  # an SMV copy: the dropped modality's features are zeros
            e_a, e_v = mask_features([e_a, e_v], mask)
        return self.fuse([e_a, e_v]), [self.head_a(e_a), self.head_v(e_v)]

    def fuse(self, features: list[Tensor]) -> Tensor:
        """The multimodal head over the modalities' features."""
        out: Tensor = self.head(torch.cat(features, dim=1))
        return out

    def coalitions(self, a: Tensor, v: Tensor) -> Tensor:
        """``(3, B, C)``: the fused logits with each non-empty coalition of modalities kept."""
        return coalition_logits(self.fuse, [self.encoder_a(a), self.encoder_v(v)])


def valuation_forward(model: nn.Module, batch: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
    """SMV's valuation forward (`bss_sampler.SMVSampler.update_values`) for the toy batches:
    the coalitions' logits, the targets (``"target"`` or the Trainer's ``"labels"``), the
    indices. ``model`` is the `ToyAVModel` or any module holding one."""
    net = next(m for m in model.modules() if isinstance(m, ToyAVModel))
    target = batch["target"] if "target" in batch else batch["labels"]
    return net.coalitions(batch["a"], batch["v"]), target, batch["index"]


def training_loss(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
    """Cross-entropy of the fused head plus that of each unimodal head, averaged over the batch."""
    multimodal, unimodal = model(batch["a"], batch["v"], batch.get("mask"))
    target = batch["target"]
    return F.cross_entropy(multimodal, target) + sum(
        (F.cross_entropy(logits, target) for logits in unimodal), torch.zeros(())
    )


def update(sampler: AnySampler, model: nn.Module, loader: Any) -> Tensor:
    """The sampler's valuation pass over ``loader``: ``update_scores`` (BSS) or, for SMV,
    ``update_values`` with `valuation_forward`."""
    if isinstance(sampler, SMVSampler):
        return sampler.update_values(model, loader, forward=valuation_forward, progress=False)
    return sampler.update_scores(model, loader, progress=False)


def set_valuation(sampler: AnySampler, values: Tensor) -> Tensor:
    """Give ``sampler`` a valuation: ``set_scores`` (BSS) or ``set_values`` (SMV)."""
    if isinstance(sampler, SMVSampler):
        return sampler.set_values(values)
    return sampler.set_scores(values)


def make_any_sampler(kind: str, dataset: ToyAV, **shard: Any) -> AnySampler:
    """The sampler of ``kind`` (``"learned"``, ``"heuristic"`` or ``"smv"``, over
    `make_train_set`'s set) with small-run settings; ``shard``: `make_sampler`'s keywords."""
    if kind == "smv":
        return SMVSampler(dataset, num_modalities=2, update_every=2, **shard)
    return make_sampler(kind, dataset, **shard)


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
    raise ValueError(
        f"kind must be 'learned' or 'heuristic' (make_any_sampler also builds 'smv'), got {kind!r}"
    )


def add_common_args(
    parser: argparse.ArgumentParser, kinds: Sequence[str] = KINDS[:2]
) -> argparse.ArgumentParser:
    """The flags every recipe takes: sampler kind (of ``kinds``: the BSS samplers by default),
    run length, sizes, seed and output folder."""
    parser.add_argument("--sampler", choices=kinds, default="learned")
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


def epoch_record(epoch: int, sampler: OrderedSampler, indices: Sequence[int]) -> dict[str, Any]:
    """What one rank saw in one epoch: the sampler's valuation (scores, or SMV's contributions)
    and length, and the consumed indices."""
    name = "contributions" if isinstance(sampler, SMVSampler) else "scores"
    scores = getattr(sampler, name, None)
    if not isinstance(scores, Tensor):
        raise RuntimeError("the sampler has no scores yet")
    return {
        "epoch": epoch,
        "length": len(sampler),
        "scores": scores.tolist(),
        "indices": [int(i) for i in indices],
    }
