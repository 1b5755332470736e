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
    "balance_score_rows",
    "balance_terms",
    "min_max_normalize",
    "prediction_similarity",
    "report_terms",
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


def _shift_exp(heads: Tensor) -> tuple[Tensor, Tensor]:
    """``shifted = z - max(z)`` per row of a ``(H, B, C)`` stack and ``exp(shifted)``.

    These are the pieces of one log-softmax per head, shared by Eq. 4 and Eq. 5:
    ``log_softmax(z) = shifted - log(sum(exp(shifted)))`` and ``softmax(z)`` is ``exp(shifted)``
    divided by its row sum. Computed in at least float32 (float64 stays float64). Written out
    rather than calling ``torch.log_softmax``, whose CPU kernel costs twice these few ops for
    the small class counts of classifiers.
    """
    heads = heads.to(_compute_dtype(heads.dtype))
    shifted = heads - heads.amax(dim=-1, keepdim=True)
    return shifted, shifted.exp()


def _similarity(unimodal_exp: Tensor) -> Tensor:
    """Eq. 4 from the ``(M, B, C)`` ``exp(shifted)`` of the unimodal heads.

    The cosine ignores each row's scale, so the softmax's division by the row sum is skipped.
    Each row holds a 1 (at its maximum), so its norm is >= 1 and needs no epsilon.
    """
    unit = unimodal_exp / torch.linalg.vector_norm(unimodal_exp, dim=-1, keepdim=True)
    if len(unit) == 2:
        cosine: Tensor = torch.linalg.vecdot(unit[0], unit[1])
        return cosine
    pairs = [torch.linalg.vecdot(unit[i], unit[j]) for i, j in combinations(range(len(unit)), 2)]
    return torch.stack(pairs).mean(dim=0)


def _cross_entropies(shifted: Tensor, exp: Tensor, targets: Tensor) -> Tensor:
    """``(H, B)`` cross-entropy of each head from `_shift_exp` of its ``(H, B, C)`` logits."""
    index = targets.long().view(1, -1, 1).expand(len(shifted), -1, 1)
    # cross-entropy = -log_softmax(z)[y] = log(sum(exp(shifted))) - shifted[y]
    return exp.sum(dim=-1).log_() - shifted.gather(-1, index).squeeze(-1)


def _loss(shifted: Tensor, exp: Tensor, targets: Tensor, alpha: float) -> Tensor:
    """Eq. 5 from `_shift_exp` of the ``(1 + M, B, C)`` heads, the fused head first."""
    ce = _cross_entropies(shifted, exp, targets)
    return torch.lerp(ce[0], ce[1:].sum(dim=0), alpha)  # (1 - alpha) CE_multi + alpha sum CE_uni


def _terms(heads: Tensor, targets: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Raw Eq. 4 and Eq. 5 of a ``(1 + M, B, C)`` stack of logits, the fused head first."""
    shifted, exp = _shift_exp(heads)
    return _similarity(exp[1:]), _loss(shifted, exp, targets, alpha)


def report_terms(
    heads: Tensor, targets: Tensor, alpha: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Raw Eq. 4 and Eq. 5 plus, per head, what `bss_sampler.BalanceReport` averages.

    ``heads`` is a ``(1 + M, B, C)`` stack of logits, the fused head first; ``targets`` ``(B,)``.

    Returns ``(similarity, loss, correct, confidence)``: ``(B,)``, ``(B,)`` and two ``(1 + M, B)``
    tensors, the fused head first: whether the head's argmax is the target (0 or 1, in the
    compute dtype), and the softmax probability of the target, ``exp(-CE)``, from the same
    log-softmax as Eq. 5.
    """
    heads = heads.to(_compute_dtype(heads.dtype))
    top, best = heads.max(dim=-1, keepdim=True)  # one pass for the shift and the argmax
    shifted = heads - top
    exp = shifted.exp()
    ce = _cross_entropies(shifted, exp, targets)
    loss = torch.lerp(ce[0], ce[1:].sum(dim=0), alpha)
    # max() returns the first maximal index, as argmax does
    correct = (best.squeeze(-1) == targets.view(1, -1)).to(shifted.dtype)
    return _similarity(exp[1:]), loss, correct, ce.neg().exp_()


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
    return _similarity(_shift_exp(_stack_heads(unimodal_logits))[1])


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
    return _loss(*_shift_exp(_stack_heads(multimodal_logits, unimodal_logits)), targets, alpha)


def balance_terms(
    multimodal_logits: Tensor,
    unimodal_logits: Sequence[Tensor] | Tensor,
    targets: Tensor,
    alpha: float,
) -> tuple[Tensor, Tensor]:
    """Raw similarity (Eq. 4) and raw loss (Eq. 5) from one log-softmax per head.

    Equal to ``(prediction_similarity(unimodal_logits), balance_loss(...))`` at a fraction of the
    cost: the heads are stacked once and shifted by their row maxima; Eq. 4's softmax is the
    ``exp`` of that (up to a per-row scale the cosine ignores) and Eq. 5's cross-entropies are
    the log-softmax read at the targets. Shapes and dtypes as in those functions.
    """
    return _terms(_stack_heads(multimodal_logits, unimodal_logits), targets, alpha)


def _normalize_rows(values: Tensor, bounds: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """`min_max_normalize` of each row of a ``(R, N)`` tensor, in one pass; ``bounds``: each
    row's ``(R, 1)`` minimum and maximum when ``values`` is only part of the data."""
    lo, hi = torch.aminmax(values, dim=-1, keepdim=True) if bounds is None else bounds
    span = hi - lo
    # a constant row has values - lo == 0 exactly, so dividing it by 1 gives the zeros wanted
    return (values - lo) / torch.where(span > 0, span, 1.0)


def min_max_normalize(values: Tensor) -> Tensor:
    """``Norm`` of Eq. 6: ``(x - min) / (max - min)`` over the whole tensor.

    A constant tensor normalises to zeros (no division by zero).
    """
    return _normalize_rows(values.reshape(1, -1)).view_as(values)


def balance_score_rows(
    means: Tensor, criteria: Sequence[str], bounds: tuple[Tensor, Tensor] | None = None
) -> Tensor:
    """Eq. 6 from a ``(2, N)`` stack of the raw similarity and raw loss of every sample.

    ``bounds``: the ``(2, 1)`` minimum and maximum of each row over the whole dataset, to score
    a slice of it (``means[:, a:b]``) exactly as the whole: what lets a scorer run Eq. 6 in
    chunks. ``None``: the bounds of ``means`` itself.
    """
    norm = _normalize_rows(means, bounds)
    if "similarity" not in criteria:
        return -norm[1]
    return norm[0] - norm[1] if "loss" in criteria else norm[0]


def balance_score(similarity: Tensor, loss: Tensor, criteria: Sequence[str] = CRITERIA) -> Tensor:
    """Balance score ``s = Norm(sim) - Norm(L_total)`` over the whole dataset (Eq. 6).

    With ``criteria=("similarity",)`` the score is ``Norm(sim)``; with ``("loss",)`` it is
    ``-Norm(L_total)``: the ablation rows of the paper's Table 3. Values lie in ``[-1, 1]``; higher
    means more balanced.
    """
    return balance_score_rows(torch.stack([similarity, loss]), criteria)
