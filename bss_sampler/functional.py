"""Pure maths of the balance measurer (paper Section 3.2, Eq. 4-6).

Every function is stateless, works batched on any device and never synchronises with the host.

>>> import torch
>>> u = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
>>> prediction_similarity([u, u])
tensor([1., 1.])
>>> min_max_normalize(torch.tensor([1.0, 3.0, 2.0]))
tensor([0.0000, 1.0000, 0.5000])
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CRITERIA",
    "balance_loss",
    "balance_score",
    "min_max_normalize",
    "prediction_similarity",
]

CRITERIA = ("similarity", "loss")
"""Names of the two criteria of the measurer: correlation (Eq. 4) and information (Eq. 5)."""


def prediction_similarity(unimodal_logits: Sequence[Tensor]) -> Tensor:
    """Per-sample cosine similarity of the unimodal softmax predictions (Eq. 4).

    Args:
        unimodal_logits: ``M >= 2`` tensors of shape ``(B, C)``, one per modality.

    Returns:
        Float32 tensor of shape ``(B,)`` in ``[0, 1]`` (softmax outputs are non-negative). For
        ``M > 2`` modalities, the mean of the ``M (M - 1) / 2`` pairwise cosines, as the authors'
        tri-modal code does.
    """
    # A softmax output has norm >= 1/sqrt(C) > 0, so no epsilon is needed.
    unit = [F.normalize(torch.softmax(z.float(), dim=-1), dim=-1, eps=0.0) for z in unimodal_logits]
    pairs = [(p * q).sum(-1) for p, q in combinations(unit, 2)]
    return pairs[0] if len(pairs) == 1 else torch.stack(pairs).mean(dim=0)


def balance_loss(
    multimodal_logits: Tensor,
    unimodal_logits: Sequence[Tensor],
    targets: Tensor,
    alpha: float,
) -> Tensor:
    """Per-sample weighted cross-entropy ``(1 - alpha) CE_multi + alpha * sum_j CE_uni_j`` (Eq. 5).

    Args:
        multimodal_logits: ``(B, C)`` logits of the fused head.
        unimodal_logits: ``M`` tensors ``(B, C)``, one per modality head.
        targets: ``(B,)`` integer class labels in ``[0, C)``.
        alpha: weight of the unimodal terms, in ``[0, 1]``.

    Returns:
        Float32 tensor of shape ``(B,)``.
    """
    loss = F.cross_entropy(multimodal_logits.float(), targets, reduction="none") * (1.0 - alpha)
    for logits in unimodal_logits:
        loss = loss + alpha * F.cross_entropy(logits.float(), targets, reduction="none")
    return loss


def min_max_normalize(values: Tensor) -> Tensor:
    """``Norm`` of Eq. 6: ``(x - min) / (max - min)`` over the whole tensor.

    A constant tensor normalises to zeros (no division by zero).
    """
    lo, hi = values.min(), values.max()
    span = hi - lo
    return torch.where(span > 0, (values - lo) / torch.where(span > 0, span, 1.0), 0.0)


def balance_score(similarity: Tensor, loss: Tensor, criteria: Sequence[str] = CRITERIA) -> Tensor:
    """Balance score ``s = Norm(sim) - Norm(L_total)`` over the whole dataset (Eq. 6).

    With ``criteria=("similarity",)`` the score is ``Norm(sim)``; with ``("loss",)`` it is
    ``-Norm(L_total)``: the ablation rows of the paper's Table 3. Values lie in ``[-1, 1]``; higher
    means more balanced.
    """
    score = torch.zeros_like(similarity)
    if "similarity" in criteria:
        score = score + min_max_normalize(similarity)
    if "loss" in criteria:
        score = score - min_max_normalize(loss)
    return score
