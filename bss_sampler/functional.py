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
from torch import Tensor

__all__ = [
    "CRITERIA",
    "balance_loss",
    "balance_score",
    "balance_terms",
    "min_max_normalize",
    "prediction_similarity",
]

CRITERIA = ("similarity", "loss")
"""Names of the two criteria of the measurer: correlation (Eq. 4) and information (Eq. 5)."""


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the measurer computes in: at least float32, float64 kept as float64."""
    return torch.promote_types(dtype, torch.float32)


def _stack_heads(*groups: Tensor | Sequence[Tensor]) -> Tensor:
    """The ``(B, C)`` logits of every head stacked into one ``(H, B, C)`` tensor."""
    heads: list[Tensor] = []
    for group in groups:
        if isinstance(group, Tensor) and group.dim() == 3:
            heads.extend(group.unbind(0))
        elif isinstance(group, Tensor):
            heads.append(group)
        else:
            heads.extend(group)
    return torch.stack(heads)


def _log_probs(heads: Tensor) -> Tensor:
    """``log_softmax`` over the classes of a ``(H, B, C)`` stack, in at least float32."""
    return torch.log_softmax(heads, dim=-1, dtype=_compute_dtype(heads.dtype))


def _similarity(unimodal_log_probs: Tensor) -> Tensor:
    """Eq. 4 from ``(M, B, C)`` log-probabilities: mean pairwise cosine of ``exp`` of them."""
    probs = unimodal_log_probs.exp()
    # A softmax output has norm >= 1/sqrt(C) > 0, so no epsilon is needed.
    unit = probs / torch.linalg.vector_norm(probs, dim=-1, keepdim=True)
    if len(unit) == 2:
        cosine: Tensor = torch.linalg.vecdot(unit[0], unit[1])
        return cosine
    pairs = [torch.linalg.vecdot(unit[i], unit[j]) for i, j in combinations(range(len(unit)), 2)]
    return torch.stack(pairs).mean(dim=0)


def _loss(log_probs: Tensor, targets: Tensor, alpha: float) -> Tensor:
    """Eq. 5 from ``(1 + M, B, C)`` log-probabilities, the fused head first."""
    index = targets.long().view(1, -1, 1).expand(len(log_probs), -1, 1)
    picked = log_probs.gather(-1, index).squeeze(-1)  # (1 + M, B): minus each head's CE
    # (1 - alpha) * CE_multi + alpha * sum_j CE_uni_j in one lerp
    return torch.lerp(picked[0], picked[1:].sum(dim=0), alpha).neg_()


def prediction_similarity(unimodal_logits: Sequence[Tensor] | Tensor) -> Tensor:
    """Per-sample cosine similarity of the unimodal softmax predictions (Eq. 4).

    Args:
        unimodal_logits: ``M >= 2`` tensors of shape ``(B, C)``, one per modality (or one stacked
            ``(M, B, C)`` tensor).

    Returns:
        Tensor of shape ``(B,)`` in ``[0, 1]`` (softmax outputs are non-negative): float64 for
        float64 logits, else float32. For ``M > 2`` modalities, the mean of the ``M (M - 1) / 2``
        pairwise cosines, as the authors' tri-modal code does.
    """
    return _similarity(_log_probs(_stack_heads(unimodal_logits)))


def balance_loss(
    multimodal_logits: Tensor,
    unimodal_logits: Sequence[Tensor] | Tensor,
    targets: Tensor,
    alpha: float,
) -> Tensor:
    """Per-sample weighted cross-entropy ``(1 - alpha) CE_multi + alpha * sum_j CE_uni_j`` (Eq. 5).

    Args:
        multimodal_logits: ``(B, C)`` logits of the fused head.
        unimodal_logits: ``M`` tensors ``(B, C)``, one per modality head (or ``(M, B, C)``).
        targets: ``(B,)`` integer class labels in ``[0, C)``.
        alpha: weight of the unimodal terms, in ``[0, 1]``.

    Returns:
        Tensor of shape ``(B,)``: float64 for float64 logits, else float32.
    """
    return _loss(_log_probs(_stack_heads(multimodal_logits, unimodal_logits)), targets, alpha)


def balance_terms(
    multimodal_logits: Tensor,
    unimodal_logits: Sequence[Tensor] | Tensor,
    targets: Tensor,
    alpha: float,
) -> tuple[Tensor, Tensor]:
    """Raw similarity (Eq. 4) and raw loss (Eq. 5) from one ``log_softmax`` per head.

    Equal to ``(prediction_similarity(unimodal_logits), balance_loss(...))`` at about half the
    cost: the heads are stacked once, the softmax of Eq. 4 is ``exp`` of the log-probabilities
    and the cross-entropies of Eq. 5 are read from them at the targets. Shapes and dtypes as in
    those functions.
    """
    log_probs = _log_probs(_stack_heads(multimodal_logits, unimodal_logits))
    return _similarity(log_probs[1:]), _loss(log_probs, targets, alpha)


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
