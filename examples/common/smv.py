"""SMV (Wei et al., CVPR 2024) in the examples: the valuation's forward and its history columns.

The scripts' ``--method smv`` (sample level) and ``--method smv-modality`` (modality level)
train the Concat model (`examples.common.models.ConcatClassifier`, the fused head's loss, as
the released SMV scripts) over `bss_sampler.smv.ModalityMaskedDataset` in the order of a
`bss_sampler.SMVSampler`. Each script holds the loop; this module holds what the loop calls.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence, Sized
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from bss_sampler import SMVSampler
from bss_sampler.smv import (
    ModalityMaskedDataset,
    ValuationForward,
    ValuationReport,
    coalition_logits,
)
from examples.common.evaluation import split_batch

__all__ = ["SMV_LEVELS", "smv_order", "valuation_columns", "valuation_forward"]

#: ``--method`` -> `bss_sampler.SMVSampler`'s ``level``.
SMV_LEVELS = {"smv": "sample", "smv-modality": "modality"}


def smv_order(
    train_set: Sized, args: argparse.Namespace, num_modalities: int, **loader_opts: Any
) -> tuple[SMVSampler, DataLoader[Any]]:
    """``(sampler, loader)``: `SMVSampler` (``--method``'s level, ``--smv-alpha``,
    ``--smv-function``, ``--seed``, ``--drop-last``) and a loader of
    ``ModalityMaskedDataset(train_set, num_modalities)`` in its order, whose batches are
    ``[items, (B, M) modality masks]``."""
    sampler = SMVSampler(
        train_set,
        num_modalities,
        level=SMV_LEVELS[args.method],
        alpha=args.smv_alpha,
        function=args.smv_function,
        seed=args.seed,
        drop_last=args.drop_last,
    )
    loader: DataLoader[Any] = DataLoader(
        ModalityMaskedDataset(train_set, num_modalities),
        args.batch_size,
        sampler=sampler,
        drop_last=args.drop_last,
        **loader_opts,
    )
    return sampler, loader


def valuation_forward(device: torch.device) -> ValuationForward:
    """SMV's valuation forward for `bss_sampler.SMVSampler.update_values` over a loader of
    mapping batches: every non-empty coalition's fused logits (encoders once, the fusion once
    per coalition, `bss_sampler.smv.coalition_logits`), the targets and the batch's indices.

    The model must split its forward into ``encode(**inputs)`` and ``fuse(features)``
    (`examples.common.models.ConcatClassifier`).
    """

    def forward(model: nn.Module, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Any]:
        inputs, targets, indices = split_batch(batch, device)
        encode, fuse = getattr(model, "encode", None), getattr(model, "fuse", None)
        if encode is None or fuse is None:
            raise TypeError(
                "SMV's valuation needs a model with encode(**inputs) and fuse(features) "
                f"(ConcatClassifier), got {type(model).__name__}"
            )
        return coalition_logits(fuse, encode(**inputs)), targets, indices

    return forward


def valuation_columns(
    report: ValuationReport, epoch: int, names: Sequence[str], epoch_length: int
) -> dict[str, Any]:
    """A history row's ``smv_*`` columns: ``smv_epoch`` (epochs trained before the valuation),
    ``smv_epoch_length`` (the originals plus the copies this valuation adds: the samples the
    epoch trains on over all ranks, padded to a multiple of them as torch's samplers), the fused
    accuracy and, per modality, its accuracy alone, mean contribution and the fraction of
    samples it contributes nothing to (``smv_<name>_none``)."""
    columns: dict[str, Any] = {
        "smv_epoch": epoch,
        "smv_epoch_length": epoch_length,
        "smv_fused_accuracy": report.fused_accuracy,
    }
    for m, name in enumerate(names):
        columns[f"smv_{name}_accuracy"] = report.alone_accuracy[m]
        columns[f"smv_{name}_contribution"] = report.mean_contribution[m]
        columns[f"smv_{name}_none"] = report.no_contribution[m]
    return columns
