"""SMV (Wei, Feng, Wang and Hu, CVPR 2024): sample-level modality valuation and re-sampling.

SMV values each modality's contribution to each training sample's fused prediction with a
Shapley value, then adds to the next epoch extra copies of the sample that keep only its
low-contributing modality (the model zeroes the other modalities' features before fusion).

* `coalition_masks`, `coalition_correct`, `shapley_contributions`: the valuation. A coalition
  ``S`` of modalities is worth ``v(S) = |S|`` when the fused prediction with only ``S`` kept is
  right and 0 otherwise (``v`` of the empty set is 0); each modality's contribution is its
  Shapley value. With two modalities this is the released rule
  ``phi_a = (v_a + v_all - v_v) / 2`` with ``v_all`` in {0, 2} and ``v_a, v_v`` in {0, 1}, so the
  contributions take the values -0.5, 0, 0.5, 1 and 1.5. With ``M`` modalities it is the exact
  Shapley value over all ``2^M - 1`` non-empty coalitions (one fusion per coalition: 7 for three
  modalities), not the two-modality rule applied pairwise.
* `copy_counts`: the sample-level method: copies keeping modality ``m`` for each sample, from
  ``phi_m`` and the released open intervals (3, 2, 1 copies for -0.5, 0, 0.5; none from 1 up,
  nor on a threshold); `SMV_RULES` names the current released rule and that of March 2024.
* `modality_level_copies`: the modality-level method: ``f(gap) * N`` copies of samples drawn
  uniformly with replacement, all keeping the modality with the lowest mean contribution.
* `smv_stream`, `stream_index`, `stream_variant`, `variant_masks`: an epoch as int64 stream ids
  ``variant * N + index`` (variant 0: all modalities; variant ``m``: only modality ``m - 1``):
  the N originals and the copies, shuffled together by a seeded generator.
* `ModalityValuator` / `valuate_dataset`: the valuation pass (per-sample sums of each
  coalition's correctness, one all-reduce under a process group) and its `ValuationReport`.
* `ModalityMaskedDataset`, `mask_features`: the data and model side of the masks.

The model contract (the released way): the model encodes every modality, multiplies each
modality's features by its column of the ``(B, M)`` boolean mask (zeros where the modality is
dropped) and fuses. `mask_features` does the multiplication; `coalition_logits` runs the fusion
once per coalition from features computed once.

The paper's text (arXiv 2309.06255) was not at hand when this module was written: the rules
above are the released code's (``code/sample_level.py``, ``code/modality_level.py``,
``code/datasets/dataloader.py``), and the docs page "SMV" lists where the released scripts
differ from each other and from this module.

>>> logits = torch.tensor([[[2.0, 0.0]], [[0.0, 2.0]], [[0.0, 2.0]]])  # (3 coalitions, 1, 2)
>>> correct = coalition_correct(logits, torch.tensor([0]))
>>> correct.flatten().tolist()  # right with audio alone, wrong with video alone, wrong fused
[True, False, False]
>>> shapley_contributions(correct).tolist()
[[0.5, -0.5]]
>>> copy_counts(shapley_contributions(correct)).tolist()  # audio-only and video-only copies
[[1, 3]]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ._checks import check_bool, check_choice, check_int, check_real
from .accumulator import SHOW, SampleAccumulator, index_error
from .scoring import check_once, describe, model_device, run_pass

__all__ = [
    "GAP_FUNCTIONS",
    "MARCH_2024_THRESHOLDS",
    "RELEASED_THRESHOLDS",
    "SMV_RULES",
    "ModalityMaskedDataset",
    "ModalityValuator",
    "ValuationReport",
    "coalition_correct",
    "coalition_logits",
    "coalition_masks",
    "copy_counts",
    "mask_features",
    "modality_level_copies",
    "modality_level_count",
    "shapley_contributions",
    "shapley_weights",
    "smv_stream",
    "smv_thresholds",
    "stream_index",
    "stream_variant",
    "valuate_dataset",
    "variant_masks",
]

RELEASED_THRESHOLDS = (-0.1, 0.4, 1.0)
"""The released sample-level rule (``dataloader.py`` since November 2024, commit d08ff20): a
contribution ``phi_m`` in the open interval ``(0.4, 1)`` gives one copy keeping modality ``m``,
``(-0.1, 0.4)`` two, below -0.1 three, anything else none (exactly -0.1, 0.4 or 1, and 1 up):
3 copies for -0.5, 2 for 0, 1 for 0.5 and for 0.9, none for 1 and 1.5."""

MARCH_2024_THRESHOLDS = (-0.1, 0.4, 0.9)
"""The rule as first released (March 2024): the same open intervals with 0.9 as the upper bound
instead of 1, so a contribution in ``[0.9, 1)`` (e.g. 11/12, a four-modality value) gets no
copy."""

SMV_RULES: dict[str, tuple[float, ...]] = {
    "released": RELEASED_THRESHOLDS,
    "march2024": MARCH_2024_THRESHOLDS,
}
"""The released rules by name, for ``thresholds=`` of `copy_counts` and
`bss_sampler.smv_sampler.SMVSampler`."""

GAP_FUNCTIONS: dict[str, Callable[[float, float], float]] = {
    "linear": lambda gap, alpha: gap * alpha,
    "tanh": lambda gap, alpha: math.tanh(gap * alpha),
    "power1.5": lambda gap, alpha: gap**1.5 * alpha,
    "square": lambda gap, alpha: gap**2 * alpha,
}
"""Modality-level ratio of extra copies from the scaled gap and ``alpha``. The released code
offers ``linear``, ``tanh`` and one it calls ``square`` that raises the gap to the power 1.5
(here ``power1.5``); ``square`` here is the square its name says."""

_MAX_MODALITIES = 16  # 2^16 - 1 coalitions: far beyond any model; refuses a transposed input


def _check_modalities(num_modalities: int) -> int:
    return check_int("num_modalities", num_modalities, 2, _MAX_MODALITIES)


def coalition_masks(num_modalities: int) -> Tensor:
    """The ``2^M - 1`` non-empty coalitions as a bool ``(2^M - 1, M)`` tensor.

    Row ``k`` keeps modality ``m`` when bit ``m`` of ``k + 1`` is set, so the singletons come at
    rows ``2^m - 1`` and all modalities last. For two modalities: only the first, only the
    second, both.

    >>> coalition_masks(2).int().tolist()
    [[1, 0], [0, 1], [1, 1]]
    """
    m = _check_modalities(num_modalities)
    codes = torch.arange(1, 2**m).unsqueeze(1)
    return (codes >> torch.arange(m)) & 1 == 1


def shapley_weights(num_modalities: int) -> Tensor:
    """float64 ``(2^M - 1, M)``: ``phi = v @ W`` for coalition values ``v`` in `coalition_masks`
    order.

    The Shapley value ``phi_i = sum over S not holding i of |S|! (M - |S| - 1)! / M! *
    (v(S + i) - v(S))``: a coalition holding ``i`` enters ``phi_i`` with the weight of
    ``S = it - i``, one without ``i`` with minus its own weight (``v`` of the empty set is 0).
    """
    masks = coalition_masks(num_modalities)
    m = masks.shape[1]
    size = masks.sum(dim=1, keepdim=True).double()
    weight = [math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)]
    table = torch.tensor(weight, dtype=torch.float64)  # by |S| for S not holding i
    with_i = table[(size - 1).long()].expand(-1, m)  # S + i holds i: the weight of S
    without_i = table[size.long().clamp(max=m - 1)].expand(-1, m)  # |S| <= M - 1 here
    return torch.where(masks, with_i, -without_i)


def coalition_correct(logits: Tensor, targets: Tensor) -> Tensor:
    """bool ``(K, B)``: whether each coalition's fused argmax is the target.

    Args:
        logits: ``(K, B, C)`` fused logits, one row per coalition in `coalition_masks` order.
        targets: ``(B,)`` integer labels.

    Ties go to the first class, as ``numpy.argmax`` in the released code.
    """
    return logits.argmax(dim=-1) == targets.to(logits.device).unsqueeze(0)


def shapley_contributions(correct: Tensor) -> Tensor:
    """float ``(B, M)``: each modality's Shapley contribution to each sample's prediction.

    ``correct`` is ``(2^M - 1, B)`` (bool or a mean of bools over several passes) in
    `coalition_masks` order; coalition ``S`` is worth ``|S| * correct_S``. The contributions of a
    sample add up to ``v(all) = M * correct_all``; each lies in ``[-(M - 1) / 2, (M + 1) / 2]``
    for two modalities and is 1 for every modality when every coalition is right.

    >>> shapley_contributions(torch.tensor([[False], [False], [True]])).tolist()  # fused only
    [[1.0, 1.0]]
    """
    k = correct.shape[0]
    m = k.bit_length()
    if k != 2**m - 1 or m < 2:
        raise ValueError(
            "correct must have 2^M - 1 rows (one per non-empty coalition of M >= 2 modalities, "
            f"in coalition_masks order), got {k}"
        )
    masks = coalition_masks(m).to(correct.device)
    dtype = correct.dtype if correct.is_floating_point() else torch.float32
    values = correct.to(dtype) * masks.sum(dim=1, keepdim=True).to(dtype)  # v(S) = |S| or 0
    return values.T @ shapley_weights(m).to(correct.device, dtype)


def smv_thresholds(thresholds: str | Sequence[float]) -> tuple[float, ...]:
    """``thresholds`` as sorted numbers: a name of `SMV_RULES` (``"released"``,
    ``"march2024"``) or a sequence of finite numbers; ``ValueError`` naming it otherwise."""
    if isinstance(thresholds, str) and thresholds in SMV_RULES:
        return SMV_RULES[thresholds]
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
        raise ValueError(
            f"thresholds must be one of {list(SMV_RULES)} or a sequence of numbers, got "
            f"{thresholds!r}"
        )
    return tuple(sorted(check_real(f"thresholds[{i}]", t) for i, t in enumerate(thresholds)))


def copy_counts(
    contributions: Tensor, thresholds: str | Sequence[float] = RELEASED_THRESHOLDS
) -> Tensor:
    """int64 ``(B, M)``: copies keeping only modality ``m`` (the sample-level method).

    The released open intervals: ``phi_m`` below the lowest threshold gets one copy per
    threshold, and between two thresholds one per threshold above it; exactly on a threshold
    or above the highest, none. With `RELEASED_THRESHOLDS` (``"released"``): 3 for -0.5, 2 for
    0, 1 for 0.5 and 0.9, none for -0.1, 0.4, 1 and 1.5; ``"march2024"``
    (`MARCH_2024_THRESHOLDS`): none from 0.9 up. Each modality of a sample gets its own copies
    (a sample every coalition gets wrong gets 2 + 2). The thresholds are compared in the
    contributions' dtype, so a float32 0.4 is exactly on the threshold 0.4 (integer or boolean
    contributions in float64: cast to an integer, -0.1 and 0.4 would both be 0).

    >>> copy_counts(torch.tensor([[-0.1, 0.4], [0.9, 11 / 12]])).tolist()
    [[0, 0], [1, 1]]
    >>> copy_counts(torch.tensor([[-0.1, 0.4], [0.9, 11 / 12]]), "march2024").tolist()
    [[0, 0], [0, 0]]
    """
    if not contributions.is_floating_point():
        contributions = contributions.double()
    bounds = torch.tensor(smv_thresholds(thresholds), dtype=contributions.dtype)
    phi, bounds = contributions.unsqueeze(-1), bounds.to(contributions.device)
    above = (phi < bounds).sum(dim=-1)
    return above.masked_fill((phi == bounds).any(dim=-1), 0)


def modality_level_count(
    mean_contributions: Sequence[float] | Tensor,
    num_samples: int,
    *,
    alpha: float = 1.0,
    function: str = "linear",
) -> int:
    """How many copies the modality-level method adds: ``int(f(gap, alpha) * N)``.

    ``gap = 2/3 * (max - min)`` of the gaps ``1 - mean_m`` of the modalities' mean contributions
    (the released scale; with two modalities ``|gap_a - gap_v|``), ``f`` from `GAP_FUNCTIONS`.
    """
    means = torch.as_tensor(mean_contributions, dtype=torch.float64).flatten()
    n = check_int("num_samples", num_samples, minimum=1)
    alpha = check_real("alpha", alpha, 0, None)
    ratio_of = GAP_FUNCTIONS[check_choice("function", function, list(GAP_FUNCTIONS))]
    if len(means) < 2 or not torch.isfinite(means).all():
        raise ValueError(
            f"mean_contributions must hold M >= 2 finite numbers, got {means.tolist()}"
        )
    gaps = 1.0 - means  # the released order of operations: int() below truncates
    gap = float(gaps.max() - gaps.min()) / 3 * 2
    return int(ratio_of(gap, alpha) * n)


def modality_level_copies(
    mean_contributions: Sequence[float] | Tensor,
    num_samples: int,
    generator: torch.Generator,
    *,
    alpha: float = 1.0,
    function: str = "linear",
) -> Tensor:
    """int64 ``(N, M)`` copies of the modality-level method: all keep the weakest modality.

    `modality_level_count` copies of samples drawn uniformly with replacement by ``generator``.
    The weakest modality is the one with the lowest mean (the first on a tie, when the gap and so
    the count is 0).
    """
    count = modality_level_count(mean_contributions, num_samples, alpha=alpha, function=function)
    means = torch.as_tensor(mean_contributions, dtype=torch.float64).flatten()
    copies = torch.zeros(num_samples, len(means), dtype=torch.int64)
    drawn = torch.randint(num_samples, (count,), generator=generator)
    copies[:, int(means.argmin())] = torch.bincount(drawn, minlength=num_samples)
    return copies


def smv_stream(copies: Tensor, generator: torch.Generator) -> Tensor:
    """An SMV epoch: int64 stream ids of the N originals and every copy, shuffled together.

    ``copies`` is int ``(N, M)`` (from `copy_counts` or `modality_level_copies`). The stream
    holds ``variant * N + index`` once with variant 0 for each sample and ``copies[index, m]``
    times with variant ``m + 1``, in a uniformly random order drawn from ``generator``: its
    length is ``N + copies.sum()``.

    >>> ids = smv_stream(torch.tensor([[0, 1], [2, 0]]), torch.Generator().manual_seed(0))
    >>> sorted(ids.tolist())  # 0, 1: originals; 2 + 1 = 3: sample 1 keeping modality 0 ...
    [0, 1, 3, 3, 4]
    """
    if copies.dim() != 2 or copies.is_floating_point() or copies.dtype == torch.bool:
        raise ValueError(
            f"copies must be an integer tensor (N, M), got {copies.dtype} of shape "
            f"{tuple(copies.shape)}"
        )
    if len(copies) and int(copies.min()) < 0:
        raise ValueError(f"copies must be >= 0, got a minimum of {int(copies.min())}")
    n, m = copies.shape
    ids = torch.arange(n * (m + 1), dtype=torch.int64)  # variant-major: variant * N + index
    counts = torch.cat([torch.ones(n, dtype=torch.int64), copies.T.flatten().to(torch.int64)])
    stream = ids.repeat_interleave(counts)
    return stream[torch.randperm(len(stream), generator=generator)]


def stream_index(ids: Tensor, num_samples: int) -> Tensor:
    """The dataset index of each stream id: ``id % N``."""
    return ids % num_samples


def stream_variant(ids: Tensor, num_samples: int) -> Tensor:
    """The variant of each stream id: ``id // N`` (0: all modalities, ``m``: only ``m - 1``)."""
    return ids // num_samples


def variant_masks(variants: Tensor, num_modalities: int) -> Tensor:
    """bool ``(..., M)``: the modalities each variant keeps (variant 0: all of them).

    >>> variant_masks(torch.tensor([0, 1, 2]), 2).int().tolist()
    [[1, 1], [1, 0], [0, 1]]
    """
    m = _check_modalities(num_modalities)
    if len(variants.flatten()) and (int(variants.min()) < 0 or int(variants.max()) > m):
        raise ValueError(
            f"variants must lie in [0, {m}] for {m} modalities, got values in "
            f"[{int(variants.min())}, {int(variants.max())}]"
        )
    column = torch.arange(1, m + 1, device=variants.device)
    return (variants.unsqueeze(-1) == 0) | (variants.unsqueeze(-1) == column)


def mask_features(features: Sequence[Tensor], mask: Tensor) -> list[Tensor]:
    """Each modality's ``(B, ...)`` features times its column of the bool ``(B, M)`` mask.

    What a model does before fusion under the SMV contract: a dropped modality's features are
    zeros, as in the released models.
    """
    if mask.dim() != 2 or mask.shape[1] != len(features):
        raise ValueError(
            f"mask must have shape (batch, {len(features)}) for {len(features)} modalities, "
            f"got {tuple(mask.shape)}"
        )
    return [
        f * mask[:, m].to(f.dtype).view(-1, *([1] * (f.dim() - 1))) for m, f in enumerate(features)
    ]


def coalition_logits(
    fusion: Callable[[list[Tensor]], Tensor], features: Sequence[Tensor]
) -> Tensor:
    """``(2^M - 1, B, C)``: ``fusion`` of the features with each coalition kept, in order.

    The encoders run once; only the fusion runs once per coalition (3 for two modalities,
    7 for three): the valuation's cost over a plain forward.
    """
    batch = features[0].shape[0]
    rows = coalition_masks(len(features)).to(features[0].device)
    return torch.stack([fusion(mask_features(features, row.expand(batch, -1))) for row in rows])


class ModalityMaskedDataset(Dataset[tuple[Any, Tensor]]):
    """``dataset`` read through SMV stream ids: ``wrapper[variant * N + i]`` is
    ``(dataset[i], mask)`` with the bool ``(M,)`` mask of the variant.

    ``len()`` is the dataset's: ids beyond it address the copies. The default collate turns a
    batch into ``[collated items, (B, M) masks]``.
    """

    def __init__(self, dataset: Any, num_modalities: int) -> None:
        self.dataset = dataset
        self.num_modalities = _check_modalities(num_modalities)
        self._n = len(dataset)
        self._masks = variant_masks(torch.arange(self.num_modalities + 1), self.num_modalities)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, stream_id: int) -> tuple[Any, Tensor]:
        sid = int(stream_id)
        if not 0 <= sid < self._n * (self.num_modalities + 1):
            raise IndexError(
                f"stream id must lie in [0, {self._n * (self.num_modalities + 1) - 1}] for "
                f"{self._n} samples and {self.num_modalities} modalities, got {sid}"
            )
        return self.dataset[sid % self._n], self._masks[sid // self._n].clone()


@dataclass(frozen=True)
class ValuationReport:
    """What a valuation pass saw: dataset means of each sample's mean over its updates.

    Attributes:
        num_samples: `N`.
        fused_accuracy: fraction of samples whose fused prediction with all modalities is right.
        alone_accuracy: per modality, the fused prediction with only that modality kept.
        mean_contribution: per modality, the mean Shapley contribution (they add up to
            ``M * fused_accuracy``).
        no_contribution: per modality, the fraction of samples it contributes nothing to
            (a contribution of 0 or below): the samples the sample-level method copies twice or
            more (all but one of exactly -0.1, which the released open intervals never copy).
    """

    num_samples: int
    fused_accuracy: float
    alone_accuracy: tuple[float, ...]
    mean_contribution: tuple[float, ...]
    no_contribution: tuple[float, ...]


class ModalityValuator(SampleAccumulator):
    """Accumulates each sample's coalition correctness; `compute` gives the contributions.

    Args:
        num_samples: `N`; indices passed to `update` lie in ``[0, N - 1]``.
        num_modalities: `M`, which sizes the per-sample state (``2^M + 2`` rows: the ``2^M - 1``
            coalitions, the visits and two error counts; 20 bytes per sample for two modalities
            in float32) and the all-reduce.
        device: where the state lives; ``None``: where the first update's logits are.

    A `bss_sampler.accumulator.SampleAccumulator`, like `bss_sampler.BalanceScorer`: `update`
    adds, per sample, whether each coalition's fused prediction was right; `compute` sums them
    over ranks with one all-reduce and returns the mean contributions (Shapley values are linear
    in the coalition values, so the mean over updates of a sample is the Shapley value of its mean
    correctness). Invalid values (NaN/inf logits, targets or indices out of range) raise at the
    faulty batch for CPU logits without a process group; elsewhere they are counted and raised by
    `compute` on every rank, after the all-reduce.
    """

    def __init__(
        self, num_samples: int, num_modalities: int, *, device: torch.device | str | None = None
    ) -> None:
        super().__init__(num_samples, device=device)
        self.num_modalities = _check_modalities(num_modalities)
        self._coalitions = 2**self.num_modalities - 1
        self.add_state("correct", rows=self._coalitions)  # right with the coalition kept
        self.add_state("nonfinite")  # updates with NaN/inf logits
        self.add_state("bad_target")  # updates with a target outside [0, C - 1]
        self._last_report: ValuationReport | None = None

    @property
    def last_report(self) -> ValuationReport | None:
        """The `ValuationReport` of the latest `compute` (``None`` before); `reset` keeps it."""
        return self._last_report

    def update(self, indices: Tensor, logits: Tensor | Sequence[Tensor], targets: Tensor) -> None:
        """Add one batch.

        Args:
            indices: ``(B,)`` integer dataset indices.
            logits: ``(2^M - 1, B, C)`` fused logits with each coalition kept, in
                `coalition_masks` order (or a sequence of ``(B, C)`` tensors), e.g. from
                `coalition_logits`.
            targets: ``(B,)`` integer labels in ``[0, C - 1]``.
        """
        stacked = logits if isinstance(logits, Tensor) else torch.stack(list(logits))
        if stacked.dim() != 3 or stacked.shape[0] != self._coalitions:
            raise ValueError(
                f"logits must have shape ({self._coalitions}, batch, classes): one fused output "
                f"per non-empty coalition of {self.num_modalities} modalities, got "
                f"{tuple(stacked.shape)}"
            )
        batch, classes = stacked.shape[1:]
        for name, value in (("indices", indices), ("targets", targets)):
            if value.shape != (batch,) or value.is_floating_point() or value.dtype == torch.bool:
                raise ValueError(
                    f"{name} must be an integer tensor of shape ({batch},), got {value.dtype} "
                    f"of shape {tuple(value.shape)}"
                )
        self.allocate(stacked.device, stacked.dtype)
        device = self.device
        assert device is not None  # allocated
        with torch.no_grad():
            idx, tgt = indices.to(device, torch.int64), targets.to(device, torch.int64)
            safe_idx, safe_tgt = idx.clamp(0, self.num_samples - 1), tgt.clamp(0, classes - 1)
            finite = torch.isfinite(stacked).all(-1).all(0).to(device)
            wrong_idx, wrong_tgt = safe_idx != idx, safe_tgt != tgt
            if self.check_eagerly(device):
                self._raise_now(idx, finite, wrong_idx, wrong_tgt)
            valid = finite & ~wrong_idx & ~wrong_tgt
            self.index_add(
                safe_idx,
                visits=valid,
                correct=coalition_correct(stacked, safe_tgt).to(device) & valid,
                nonfinite=~finite & ~wrong_idx,
                bad_target=wrong_tgt & ~wrong_idx,
            )
            self.state("bad_index").add_(wrong_idx.sum())

    def _raise_now(self, idx: Tensor, finite: Tensor, wrong_idx: Tensor, wrong_tgt: Tensor) -> None:
        error = _value_error(
            self.num_samples,
            int(wrong_idx.sum()),
            torch.unique(idx[~finite & ~wrong_idx]),
            torch.unique(idx[wrong_tgt & ~wrong_idx]),
        )
        if error is not None:
            raise error

    @overload
    def compute(self, *, return_visits: Literal[False] = ...) -> Tensor: ...

    @overload
    def compute(self, *, return_visits: Literal[True]) -> tuple[Tensor, Tensor]: ...

    def compute(self, *, return_visits: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """float32 ``(N, M)`` contributions on the CPU, identical on every rank.

        Under a process group every rank must call this (one all-reduce), whether or not it saw
        a batch. Sets `last_report`. ``return_visits``: also the valid updates of each sample
        summed over all ranks (int64 ``(N,)``), for an exactly-once check.

        Raises:
            ValueError: an update held NaN/inf logits, a target or an index out of range.
            CoverageError: a sample was never valued.
        """
        totals = self.sync()
        error = _value_error(
            self.num_samples,
            int(totals["bad_index"].item()),
            (totals["nonfinite"][0] > 0).nonzero().flatten(),
            (totals["bad_target"][0] > 0).nonzero().flatten(),
        )
        if error is not None:
            raise error
        visits = totals["visits"][0].to("cpu", torch.float64)
        self.check_coverage(totals, int(visits.min()))
        mean_correct = totals["correct"].to("cpu", torch.float64) / visits
        contributions = shapley_contributions(mean_correct)
        singles = [2**m - 1 for m in range(self.num_modalities)]
        self._last_report = ValuationReport(
            num_samples=self.num_samples,
            fused_accuracy=float(mean_correct[-1].mean()),
            alone_accuracy=tuple(mean_correct[singles].mean(dim=1).tolist()),
            mean_contribution=tuple(contributions.mean(dim=0).tolist()),
            no_contribution=tuple((contributions <= 0).double().mean(dim=0).tolist()),
        )
        if return_visits:
            return contributions.float(), visits.round().to(torch.int64)
        return contributions.float()


def _value_error(
    num_samples: int, bad_index: int, nonfinite: Tensor, bad_target: Tensor
) -> ValueError | None:
    """The wording of each invalid value, at the batch (eager) and in `compute` (deferred)."""
    if bad_index:
        return index_error(num_samples, bad_index)
    if len(nonfinite):
        return ValueError(
            f"logits contain NaN or inf for {len(nonfinite)} samples (dataset indices "
            f"{nonfinite[:SHOW].tolist()}); the valuation needs finite fused logits"
        )
    if len(bad_target):
        return ValueError(
            f"targets must lie in [0, C - 1] for logits with C classes, but {len(bad_target)} "
            f"samples had a target outside (dataset indices {bad_target[:SHOW].tolist()})"
        )
    return None


ValuationForward = Callable[[nn.Module, Any], Sequence[Any]]
"""``forward(model, batch) -> (coalition logits (2^M - 1, B, C), targets (B,), indices (B,) or
None)``; ``None`` where the loader's order gives the indices (a sequential loader)."""


def valuate_dataset(
    model: nn.Module,
    loader: Iterable[Any],
    num_samples: int,
    num_modalities: int,
    forward: ValuationForward,
    *,
    progress: bool = True,
) -> tuple[Tensor, ValuationReport]:
    """One valuation pass: the ``(N, M)`` contributions and their `ValuationReport`.

    The pass is BSS's (`bss_sampler.scoring.run_pass`): the model in eval mode under
    ``torch.inference_mode`` (as the released ``execute_modulation``), every submodule's mode
    restored afterwards, a progress bar, the indices of a sequential loader checked against
    ``forward``'s. Under a process group each rank passes its own share (an unshuffled
    ``DistributedSampler``) and every rank gets the same result from one all-reduce. Every
    sample must be visited exactly once (up to ``DistributedSampler``'s padding).
    """
    valuator = ModalityValuator(num_samples, num_modalities, device=model_device(model))

    def checked_forward(model: nn.Module, batch: Any) -> Sequence[Any]:
        output = forward(model, batch)
        if not isinstance(output, (tuple, list)) or len(output) != 3:
            raise ValueError(
                "forward must return (coalition_logits, targets, indices or None), got "
                f"{describe(output)}"
            )
        return output

    def finish() -> Tensor:
        contributions, visits = valuator.compute(return_visits=True)  # the one all-reduce
        check_once(visits, num_samples)
        return contributions

    contributions = run_pass(
        model,
        loader,
        checked_forward,
        valuator.update,
        finish,
        progress=check_bool("progress", progress),
        desc="modality valuation",
    )
    assert valuator.last_report is not None  # compute() ran
    return contributions, valuator.last_report
