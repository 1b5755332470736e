"""Classification metrics: accuracy, MAP and macro-F1, in torch (no scikit-learn).

All functions take ``scores`` of shape ``(N, C)`` (logits or probabilities, any float dtype) and
``targets`` of shape ``(N,)`` (integer class ids) and return a Python float in ``[0, 1]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "accuracy",
    "average_precision",
    "classification_metrics",
    "macro_f1",
    "mean_average_precision",
]


def accuracy(scores: Tensor, targets: Tensor) -> float:
    """Fraction of rows whose arg-max equals the target.

    >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
    0.5
    """
    return (scores.argmax(dim=1) == targets).float().mean().item()


def average_precision(scores: Tensor, positives: Tensor) -> float:
    """Average precision of one binary problem, as scikit-learn's ``average_precision_score``.

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds in decreasing order
    (tied scores form one threshold; no interpolation). ``scores`` and ``positives`` are
    ``(N,)``; returns ``nan`` when there is no positive.

    >>> average_precision(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
    0.8333333...
    """
    positives = positives.bool()
    num_pos = int(positives.sum())
    if num_pos == 0:
        return float("nan")
    order = torch.argsort(scores.double(), descending=True, stable=True)
    sorted_scores = scores.double()[order]
    hits = positives[order].double().cumsum(0)
    ranks = torch.arange(1, len(order) + 1, dtype=torch.float64)
    # The last position of each run of tied scores is one threshold.
    last = torch.ones_like(sorted_scores, dtype=torch.bool)
    last[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    precision = hits[last] / ranks[last]
    recall = hits[last] / num_pos
    recall_step = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((recall_step * precision).sum())


def mean_average_precision(scores: Tensor, targets: Tensor) -> float:
    """Mean over classes of the average precision of the softmax scores (MAP).

    Classes with no positive in ``targets`` are left out of the mean (their AP is undefined).

    >>> mean_average_precision(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]))
    1.0
    """
    probs = torch.softmax(scores.double(), dim=1)
    aps = [
        average_precision(probs[:, c], targets == c)
        for c in range(scores.shape[1])
        if bool((targets == c).any())
    ]
    return sum(aps) / len(aps)


def macro_f1(scores: Tensor, targets: Tensor) -> float:
    """Unweighted mean over classes of ``F1 = 2 TP / (2 TP + FP + FN)``.

    The classes are those present in the targets or the predictions (scikit-learn's default
    labels); a class with ``2 TP + FP + FN == 0`` cannot occur under that rule.

    >>> macro_f1(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1, 1]))
    0.6666666...
    """
    preds = scores.argmax(dim=1)
    classes = torch.unique(torch.cat([targets, preds]))
    f1s = []
    for c in classes:
        tp = int(((preds == c) & (targets == c)).sum())
        fp = int(((preds == c) & (targets != c)).sum())
        fn = int(((preds != c) & (targets == c)).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s)


def classification_metrics(scores: Tensor, targets: Tensor) -> dict[str, float]:
    """``{"acc": ..., "map": ..., "f1": ...}`` of one set of scores."""
    scores, targets = scores.detach().float().cpu(), targets.detach().long().cpu()
    return {
        "acc": accuracy(scores, targets),
        "map": mean_average_precision(scores, targets),
        "f1": macro_f1(scores, targets),
    }
