"""`BalanceReport`: what a scoring pass saw, per modality, in plain numbers.

A scoring pass runs every unimodal head on every sample to compute the balance scores (Eq. 4-6).
The report keeps what those outputs say about the model as a whole: how often each head is right,
how much probability it gives the true class, how far the modalities are apart, and how the scores
are spread. It costs no extra forward pass: the scorer adds the per-head values into the same
per-sample sums as Eq. 4-5 and reads them from the same all-reduce.

Every figure is a mean over the dataset of each sample's mean over its updates, so a sample that
`DistributedSampler` padding (or several online passes) updated twice counts once, and any number
of ranks report exactly what one process reports.

>>> report = BalanceReport.from_means(
...     num_samples=4,
...     similarity=0.8,
...     loss=0.5,
...     multimodal=(0.75, 0.6),
...     unimodal=((0.75, 0.5), (0.25, 0.25)),
...     scores=torch.tensor([-1.0, 0.0, 0.5, 1.0]),
... )
>>> report.unimodal_accuracy, report.confidence_ratio, report.imbalance_ratio
((0.75, 0.25), (2.0, 0.5), 2.0)
>>> report.score_quantiles[report.quantile_levels.index(0.5)]
0.25
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

__all__ = ["HISTOGRAM_BINS", "QUANTILE_LEVELS", "BalanceReport"]

QUANTILE_LEVELS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
"""The levels of `BalanceReport.score_quantiles`: minimum, deciles, quartiles, median, maximum."""

HISTOGRAM_BINS = 20
"""Equal-width bins of `BalanceReport.score_histogram` over `[-1, 1]`, the range of Eq. 6."""


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; ``inf`` (or NaN for 0 / 0) instead of ZeroDivisionError."""
    if denominator == 0:
        return math.inf if numerator > 0 else math.nan
    return numerator / denominator


_CHUNK = 1 << 18  # values per step of `_histogram`: its temporaries stay a few MiB


def _quantiles(scores: Tensor) -> tuple[float, ...]:
    """`QUANTILE_LEVELS` of ``scores`` with linear interpolation (NumPy's default).

    One in-place partition of a copy (4 bytes per float32 score) rather than a sort (a float64
    copy, sorted values and int64 positions: 24 bytes) or `torch.quantile` (which refuses more
    than 2^24 values).
    """
    flat = scores.detach().cpu().flatten()
    wide = flat if flat.dtype in (torch.float32, torch.float64) else flat.float()
    values = np.array(wide.numpy(), copy=True)
    position = torch.tensor(QUANTILE_LEVELS, dtype=torch.float64) * (len(values) - 1)
    low = position.floor().long()
    high = position.ceil().long()
    values.partition(sorted({*low.tolist(), *high.tolist()}))
    at_low = torch.from_numpy(values[low.numpy()]).double()
    at_high = torch.from_numpy(values[high.numpy()]).double()
    return tuple(torch.lerp(at_low, at_high, position - low).tolist())


def _histogram(scores: Tensor) -> tuple[int, ...]:
    """Counts in `HISTOGRAM_BINS` bins ``[e_k, e_k+1)`` (the last one closed), ``e_k = -1 + k w``:
    the bins of ``numpy.histogram(scores, HISTOGRAM_BINS, range=(-1, 1))``, values outside left
    out. Counted `_CHUNK` values at a time."""
    flat = scores.detach().cpu().flatten()
    edges = torch.arange(HISTOGRAM_BINS + 1, dtype=torch.float64) * (2 / HISTOGRAM_BINS) - 1
    edges[-1] = 1.0
    counts = torch.zeros(HISTOGRAM_BINS, dtype=torch.int64)
    for start in range(0, len(flat), _CHUNK):
        values = flat[start : start + _CHUNK].double()
        # bucket 0: below -1; k: in [e_k-1, e_k); HISTOGRAM_BINS + 1: 1 and above
        buckets = torch.bucketize(values, edges, right=True)
        counts += torch.bincount(buckets, minlength=HISTOGRAM_BINS + 2)[1:-1]
        counts[-1] += (values == 1).sum()  # the last bin is closed
    return tuple(counts.tolist())


@dataclass(frozen=True)
class BalanceReport:
    """Per-modality accuracy, confidence and imbalance of one scoring pass, and its scores.

    Fields are plain Python numbers (and tuples of them), identical on every rank. Accuracies and
    confidences are measured on the data the pass scored (for `update_scores`, the training set,
    with the model in eval mode unless the sampler scores in train mode), not on held-out data.

    Attributes:
        num_samples: `N`, the samples scored.
        multimodal_accuracy: fraction of samples whose fused head's argmax is the target.
        multimodal_confidence: mean softmax probability the fused head gives the target.
        unimodal_accuracy: the same fraction for each unimodal head, in the model's order.
        unimodal_confidence: mean softmax probability of the target per unimodal head: the
            quantity OGM-GE compares between modalities.
        confidence_ratio: each modality's confidence over the mean confidence of the others.
            With two modalities `(c_0 / c_1, c_1 / c_0)`: OGM-GE's discrepancy ratio of each
            modality (measured over the whole dataset instead of a mini-batch). Above 1: that
            modality dominates.
        imbalance_ratio: the largest unimodal confidence over the smallest, `>= 1`; 1 means the
            heads are equally sure of the target. With two modalities, OGM-GE's ratio of the
            dominant modality.
        similarity: mean prediction similarity of the unimodal heads (raw Eq. 4, in `[0, 1]`).
        loss: mean per-sample loss of Eq. 5 (raw, before the min-max normalisation).
        score_quantiles: the new balance scores (Eq. 6) at `quantile_levels`.
        score_histogram: counts of the new scores in `HISTOGRAM_BINS` equal bins over `[-1, 1]`
            (the last bin includes 1); they sum to `num_samples`.
        ema_score_quantiles: the scores a sampler draws from after this pass, at
            `quantile_levels`: after the EMA of Eq. 9 for `LearnedBalanceSampler` (from its
            second update on); otherwise equal to `score_quantiles`.
    """

    quantile_levels: ClassVar[tuple[float, ...]] = QUANTILE_LEVELS

    num_samples: int
    multimodal_accuracy: float
    multimodal_confidence: float
    unimodal_accuracy: tuple[float, ...]
    unimodal_confidence: tuple[float, ...]
    confidence_ratio: tuple[float, ...]
    imbalance_ratio: float
    similarity: float
    loss: float
    score_quantiles: tuple[float, ...]
    score_histogram: tuple[int, ...]
    ema_score_quantiles: tuple[float, ...]

    @classmethod
    def from_means(
        cls,
        *,
        num_samples: int,
        similarity: float,
        loss: float,
        multimodal: tuple[float, float],
        unimodal: Sequence[tuple[float, float]],
        scores: Tensor,
    ) -> BalanceReport:
        """The report of dataset means: ``multimodal`` and each of ``unimodal`` are
        ``(accuracy, confidence)``; ``scores`` are the ``(N,)`` balance scores of Eq. 6."""
        confidence = tuple(c for _, c in unimodal)
        others = [
            (sum(confidence) - c) / (len(confidence) - 1) if len(confidence) > 1 else math.nan
            for c in confidence
        ]
        quantiles = _quantiles(scores)
        return cls(
            num_samples=num_samples,
            multimodal_accuracy=multimodal[0],
            multimodal_confidence=multimodal[1],
            unimodal_accuracy=tuple(a for a, _ in unimodal),
            unimodal_confidence=confidence,
            confidence_ratio=tuple(_ratio(c, o) for c, o in zip(confidence, others)),
            imbalance_ratio=_ratio(max(confidence), min(confidence)),
            similarity=similarity,
            loss=loss,
            score_quantiles=quantiles,
            score_histogram=_histogram(scores),
            ema_score_quantiles=quantiles,
        )

    @property
    def num_modalities(self) -> int:
        """`M`, the unimodal heads reported."""
        return len(self.unimodal_accuracy)

    @property
    def dominant_modality(self) -> int:
        """Index of the modality with the highest confidence (the first of ties)."""
        return max(range(self.num_modalities), key=self.unimodal_confidence.__getitem__)

    def with_ema_scores(self, scores: Tensor) -> BalanceReport:
        """A copy whose `ema_score_quantiles` describe ``scores`` (what a sampler draws from)."""
        return replace(self, ema_score_quantiles=_quantiles(scores))

    def as_dict(self, names: Sequence[str] | None = None) -> dict[str, float]:
        """Flat ``{column: number}``, e.g. for a CSV row or a logger's ``log_dict``.

        Per-modality columns are ``<name>_accuracy``, ``<name>_confidence`` and
        ``<name>_confidence_ratio`` with ``names`` (default ``modality0``, ``modality1``, ...);
        quantiles are ``score_q<percent>`` and ``ema_score_q<percent>``, histogram bins
        ``score_bin<k>`` (bin ``k`` covers ``[-1 + k w, -1 + (k + 1) w)``, ``w = 2 / 20``).
        """
        names = [f"modality{m}" for m in range(self.num_modalities)] if names is None else names
        if len(names) != self.num_modalities:
            raise ValueError(
                f"names must name the {self.num_modalities} modalities of the report, "
                f"got {list(names)}"
            )
        row: dict[str, float] = {
            "num_samples": self.num_samples,
            "multimodal_accuracy": self.multimodal_accuracy,
            "multimodal_confidence": self.multimodal_confidence,
        }
        for m, name in enumerate(names):
            row[f"{name}_accuracy"] = self.unimodal_accuracy[m]
            row[f"{name}_confidence"] = self.unimodal_confidence[m]
            row[f"{name}_confidence_ratio"] = self.confidence_ratio[m]
        row.update(imbalance_ratio=self.imbalance_ratio, similarity=self.similarity, loss=self.loss)
        for prefix, values in (
            ("score", self.score_quantiles),
            ("ema_score", self.ema_score_quantiles),
        ):
            for level, value in zip(self.quantile_levels, values):
                row[f"{prefix}_q{round(100 * level)}"] = value
        for k, count in enumerate(self.score_histogram):
            row[f"score_bin{k}"] = count
        return row

    def summary(self, names: Sequence[str] | None = None) -> str:
        """A few lines for a log: accuracy and confidence per head, the ratio, the scores."""
        names = [f"modality{m}" for m in range(self.num_modalities)] if names is None else names
        width = max(len("fused"), *(len(n) for n in names))
        lines = [f"balance report over {self.num_samples} samples"]
        heads: list[tuple[str, float, float, float | None]]
        heads = [("fused", self.multimodal_accuracy, self.multimodal_confidence, None)]
        heads += [
            (n, a, c, r)
            for n, a, c, r in zip(
                names, self.unimodal_accuracy, self.unimodal_confidence, self.confidence_ratio
            )
        ]
        for name, accuracy, confidence, ratio in heads:
            line = (
                f"  {name:<{width}}  accuracy {100 * accuracy:6.2f}%  confidence {confidence:.3f}"
            )
            lines.append(line if ratio is None else f"{line}  ratio {ratio:.2f}")
        q = dict(zip(self.quantile_levels, self.score_quantiles))
        lines.append(
            f"  imbalance ratio {self.imbalance_ratio:.2f} (strongest: "
            f"{names[self.dominant_modality]}), similarity {self.similarity:.3f}, "
            f"loss {self.loss:.3f}"
        )
        lines.append(
            f"  scores: min {q[0.0]:+.2f}, q10 {q[0.1]:+.2f}, median {q[0.5]:+.2f}, "
            f"q90 {q[0.9]:+.2f}, max {q[1.0]:+.2f}"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
