"""Fixed SMV valuation inputs shared by ``test_smv.py`` and ``dist_worker.py``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from bss_sampler.smv import ValuationReport, valuate_dataset


def valuation_case(modalities: int, n: int = 9, classes: int = 3) -> tuple[Tensor, Tensor]:
    """Seeded coalition logits ``(2^M - 1, n, classes)`` and targets ``(n,)``."""
    g = torch.Generator().manual_seed(modalities)
    logits = torch.randn(2**modalities - 1, n, classes, generator=g)
    return logits, torch.randint(classes, (n,), generator=g)


def valuate_case(
    loader: Iterable[Any], logits: Tensor, targets: Tensor
) -> tuple[Tensor, ValuationReport]:
    """`valuate_dataset` over a loader of ``(indices,)`` batches that read the fixed logits."""

    def forward(model: nn.Module, batch: Any) -> tuple[Tensor, Tensor, Tensor]:
        (idx,) = batch
        return logits[:, idx], targets[idx], idx

    modalities = (logits.shape[0] + 1).bit_length() - 1
    return valuate_dataset(nn.Identity(), loader, len(targets), modalities, forward, progress=False)
