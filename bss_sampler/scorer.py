"""``BalanceScorer``: per-sample balance scores accumulated on the model's device (Eq. 4-6).

The scorer follows the ``update`` / ``compute`` / ``reset`` split of a metric. ``update`` adds each
sample's raw prediction similarity (Eq. 4) and raw loss (Eq. 5) into dense per-sample sums and
counts that live on the logits' device; it never waits for the device. ``compute`` syncs those
sums across ranks with one all-reduce (when a process group is initialised), averages, applies the
dataset-wide min-max normalisation and returns Eq. 6 on the CPU. Because the normalisation happens
after the sync, every rank returns identical scores.

The same pass also sums, per sample and per head, whether the head's argmax is the target and the
probability it gives the target; they travel in the same all-reduce and make
`BalanceScorer.last_report` (a `bss_sampler.BalanceReport`: per-modality accuracy, confidence and
imbalance ratio, score quantiles), also identical on every rank.

Errors in the values (NaN/inf logits, labels or indices out of range) are raised at the faulty
batch when the logits are on the CPU and no process group is initialised. On an accelerator,
checking them per batch would stall the device, and under a process group one rank raising alone
would leave the others waiting in the all-reduce; there they are counted and raised by
`BalanceScorer.compute`, on every rank alike, after the all-reduce. Affected samples are
never mixed into the sums. Both paths word each mistake the same way.

>>> import torch
>>> scorer = BalanceScorer(num_samples=3)
>>> uni = [torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 3.0]]), torch.tensor([[3.0, 0.0]] * 3)]
>>> scorer.update(torch.arange(3), torch.zeros(3, 2), uni, torch.tensor([0, 0, 1]))
>>> scorer.compute()
tensor([ 1.0000,  0.4980, -1.0000])
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Union, overload

import torch
from torch import Tensor

from . import _dist
from ._checks import check_int, check_real
from .accumulator import (
    CoverageError,
    SampleAccumulator,
    Totals,
    first_indices,
    index_error,
)
from .functional import CRITERIA, balance_score_rows, report_terms
from .report import BalanceReport

if sys.version_info >= (3, 10):  # pragma: no cover
    from typing import Literal
else:  # pragma: no cover
    from typing_extensions import Literal

__all__ = ["BalanceScorer", "CoverageError", "UnimodalLogits"]

UnimodalLogits = Union[Sequence[Tensor], Mapping[str, Tensor], Tensor]
"""One ``(B, C)`` tensor per modality: a sequence, a mapping (its values, in order), or one
stacked ``(M, B, C)`` tensor. A stacked tensor is always read as ``(modalities, batch, classes)``;
when ``M == B`` it cannot be told from ``(B, M, C)`` and is refused: pass a list there."""


class _Batch(NamedTuple):
    """One update() waiting for its maths (see ``BalanceScorer._chunk_elements``)."""

    heads: Tensor  # (1 + M, B, C) copy of the logits, the fused head first
    pair: Tensor  # (2, B) int64: dataset indices, then targets
    checked: bool  # validated by update() already (the eager path)


def check_alpha(alpha: float) -> float:
    """Validate the Eq. 5 weight ``alpha`` (a real number in ``[0, 1]``); returns a float."""
    return check_real("alpha", alpha, 0, 1)


def check_criteria(criteria: Sequence[str]) -> tuple[str, ...]:
    """Validate a non-empty, duplicate-free subset of ``("similarity", "loss")``.

    A string is one criterion or several joined by commas (``"loss,similarity"``: how
    checkpoints write them)."""
    chosen: tuple[Any, ...] | None
    if isinstance(criteria, str):
        chosen = tuple(criteria.split(","))
    else:
        try:
            chosen = tuple(criteria)
        except TypeError:
            chosen = None
    if (
        not chosen
        or any(not isinstance(c, str) or c not in CRITERIA for c in chosen)
        or len(set(chosen)) != len(chosen)
    ):
        raise ValueError(
            f"criteria must be a non-empty subset of {CRITERIA} without repeats, got {criteria!r}"
        )
    return chosen


def _as_modalities(unimodal_logits: UnimodalLogits, batch: int) -> list[Tensor]:
    if isinstance(unimodal_logits, (list, tuple)):  # the usual case first: no ABC check
        return list(unimodal_logits)
    if isinstance(unimodal_logits, Tensor):
        shape = tuple(unimodal_logits.shape)
        if unimodal_logits.dim() == 2:
            return [unimodal_logits]
        if unimodal_logits.dim() != 3 or shape[1] != batch:
            raise ValueError(
                "a stacked unimodal_logits tensor must have shape (modalities, batch, classes) "
                f"with batch = {batch}, got {shape}"
            )
        if shape[0] == shape[1]:
            raise ValueError(
                f"a stacked unimodal_logits tensor of shape {shape} is ambiguous: with as many "
                "modalities as samples it may be (modalities, batch, classes) or (batch, "
                "modalities, classes); pass a list of (batch, classes) tensors instead"
            )
        return list(unimodal_logits.unbind(0))
    if isinstance(unimodal_logits, Mapping):
        return list(unimodal_logits.values())
    raise TypeError(
        "unimodal_logits must be a list or tuple of (batch, classes) tensors, a mapping of them "
        f"or a stacked (modalities, batch, classes) tensor, got {type(unimodal_logits).__name__}"
    )


def _check_logits(multimodal_logits: Tensor, unimodal_logits: UnimodalLogits) -> list[Tensor]:
    """The unimodal heads as a list, after checking every head's type, shape and dtype."""
    if not isinstance(multimodal_logits, Tensor):
        raise TypeError(
            "multimodal_logits must be a (batch, classes) tensor, "
            f"got {type(multimodal_logits).__name__}"
        )
    shape = multimodal_logits.shape
    if len(shape) != 2:
        raise ValueError(f"multimodal_logits must have shape (batch, classes), got {tuple(shape)}")
    uni = _as_modalities(unimodal_logits, shape[0])
    if len(uni) < 2:
        raise ValueError(
            f"unimodal_logits must hold at least 2 modalities, got {len(uni)}: the balance "
            "score compares the predictions of different modalities"
        )
    for j, logits in enumerate((multimodal_logits, *uni)):  # one cheap test per head per batch
        if (
            not isinstance(logits, Tensor)
            or logits.shape != shape
            or not logits.is_floating_point()
        ):
            name = "multimodal_logits" if j == 0 else f"unimodal_logits[{j - 1}]"
            if not isinstance(logits, Tensor):
                raise TypeError(f"{name} must be a tensor, got {type(logits).__name__}")
            if logits.shape != shape:
                raise ValueError(
                    f"{name} must have the shape of multimodal_logits {tuple(shape)}, "
                    f"got {tuple(logits.shape)}"
                )
            raise ValueError(f"{name} must hold floating-point logits, got {logits.dtype}")
    if shape[1] < 2:
        raise ValueError(
            f"the logits must have at least 2 classes, got shape {tuple(shape)}: with one class "
            "every prediction is the same and every score would be 0"
        )
    return uni


_INTEGER_DTYPES = frozenset([torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8])


def _int_tensor(name: str, value: Tensor | Sequence[int], batch: int) -> Tensor:
    if isinstance(value, Tensor) and value.dtype in _INTEGER_DTYPES and value.shape == (batch,):
        return value  # the usual case, at the cost of three tests
    tensor = value if isinstance(value, Tensor) else torch.as_tensor(value)
    if tensor.numel() == 0 and not isinstance(value, Tensor):
        tensor = tensor.long()  # torch.as_tensor([]) is float32
    if tensor.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integers, got a bool tensor of shape {tuple(tensor.shape)} (a "
            f"mask?); pass the positions it selects, mask.nonzero().flatten()"
        )
    if tensor.shape != (batch,) or tensor.is_floating_point() or tensor.is_complex():
        raise ValueError(
            f"{name} must be an integer tensor of shape ({batch},), "
            f"got {tensor.dtype} of shape {tuple(tensor.shape)}"
        )
    return tensor


def _data_error(
    num_samples: int, bad_index: int, nonfinite: Tensor, bad_target: Tensor, classes: int
) -> ValueError | None:
    """The one wording of each invalid-value mistake, for the eager and the deferred check.

    ``nonfinite`` and ``bad_target`` are ``(N,)`` masks (or counts) of the affected samples.
    """
    if bad_index:
        return index_error(num_samples, bad_index)
    count = int(nonfinite.count_nonzero())
    if count:
        return ValueError(
            f"logits contain NaN or inf for {count} samples (dataset indices "
            f"{first_indices(nonfinite)}); the balance score needs finite multimodal and "
            "unimodal logits"
        )
    count = int(bad_target.count_nonzero())
    if count:
        return ValueError(
            f"targets must lie in [0, {classes - 1}] for logits with {classes} classes, but "
            f"{count} samples had a target outside (dataset indices {first_indices(bad_target)})"
        )
    return None


class BalanceScorer(SampleAccumulator):
    """Accumulates each sample's balance score over one or more passes (paper Eq. 4-6).

    Args:
        num_samples: size ``N`` of the dataset; indices passed to `update` lie in
            ``[0, N - 1]``.
        alpha: weight of the unimodal cross-entropies in Eq. 5, in ``[0, 1]``. The released code's
            unweighted sum of all heads normalises to exactly the scores of ``alpha=0.5``.
        criteria: ``("similarity", "loss")`` for Eq. 6; ``("similarity",)`` or ``("loss",)`` for the
            ablation rows of Table 3.
        device: where the per-sample state lives; ``None`` means the device of the first logits.
        num_modalities: `M`, the unimodal heads every update must have; ``None`` takes it from
            the first update. Under a process group, give it when some rank may call `compute`
            without any update: that rank cannot otherwise size its share of the all-reduce.

    A sample updated several times (several passes, or distributed padding) is scored with the mean
    of its raw values. Logits are detached: online scoring may pass the training step's logits.

    The state, declared once in ``__init__`` (see `bss_sampler.accumulator.SampleAccumulator`),
    is a sum per sample of: ``visits`` (valid updates), ``similarity`` (raw Eq. 4), ``loss``
    (raw Eq. 5), ``correct`` and ``confidence`` (one row per head, the fused head first: what
    `last_report` averages), and the deferred checks ``nonfinite`` and ``bad_target``; plus the
    scalars ``bad_index``, ``classes`` and ``reporting``. It is float32 (float64 for float64
    logits and under a process group): ``4 (5 + 2 (1 + M))`` bytes per sample, 44 for two
    modalities. `compute` works
    through the samples in chunks of ``_chunk_samples`` and adds about 8 bytes per sample (the
    scores and the report's quantiles) to that; ``return_visits`` 8 more.

    `update` only checks the batch (on the CPU) and copies its logits; the maths of Eq. 4-5
    runs on all pending batches at once when they hold ``_chunk_elements`` logits (2^22: 16 MiB
    of float32) and in `compute` / `state_dict`. A few large operations instead of
    some twenty small ones per batch: that is what makes a scoring pass cost little more than
    the forward passes.
    """

    _chunk_elements = 1 << 22
    _chunk_samples = 1 << 18

    def __init__(
        self,
        num_samples: int,
        *,
        alpha: float = 0.2,
        criteria: Sequence[str] = CRITERIA,
        device: torch.device | str | None = None,
        num_modalities: int | None = None,
    ) -> None:
        super().__init__(num_samples, device=device)
        self.alpha = check_alpha(alpha)
        self.criteria = check_criteria(criteria)
        self.num_modalities = (
            None if num_modalities is None else check_int("num_modalities", num_modalities, 2)
        )
        # the per-sample rows after "visits", in the order one index_add_ per batch fills them
        for name in ("similarity", "loss", "correct", "confidence", "nonfinite", "bad_target"):
            self.add_state(name)
        self.add_state("classes", per_sample=False)  # the logits' C on each rank that saw one
        self.add_state("reporting", per_sample=False)  # 1 on each rank that saw a batch
        self._pending: list[_Batch] = []  # batches copied by update() whose maths has not run
        self._pending_elements = 0
        self._last_report: BalanceReport | None = None
        self.reset()

    def _set_modalities(self, modalities: int | None, *, unknown: bool = False) -> None:
        """Size the report's rows for ``modalities`` heads (``unknown``: restored without them)."""
        self._modalities = modalities
        rows = 0 if modalities is None else 1 + modalities
        for name in ("correct", "confidence"):
            self.add_state(name, rows, default=math.nan if unknown else 0.0)

    @property
    def last_report(self) -> BalanceReport | None:
        """The `bss_sampler.BalanceReport` of the latest `compute`, from its all-reduce.

        ``None`` before the first `compute`, and when the number of modalities is unknown (a
        checkpoint from before reports were kept, with no update since). `reset` keeps it.
        """
        return self._last_report

    def reset(self) -> None:
        """Forget every accumulated value (`last_report` stays)."""
        super().reset()
        self._classes = 0
        self._set_modalities(self.num_modalities)
        self._heads_unknown = False
        self._pending = []
        self._pending_elements = 0

    def update(
        self,
        indices: Tensor | Sequence[int],
        multimodal_logits: Tensor,
        unimodal_logits: UnimodalLogits,
        targets: Tensor | Sequence[int],
    ) -> None:
        """Add one batch: raw similarity (Eq. 4) and raw loss (Eq. 5) per sample.

        Args:
            indices: ``(B,)`` integer dataset indices of the batch's samples (a tensor or a list).
            multimodal_logits: ``(B, C)`` floating-point logits of the fused head, ``C >= 2``.
            unimodal_logits: ``M >= 2`` tensors ``(B, C)``, one per modality head (see
                `UnimodalLogits`).
            targets: ``(B,)`` integer labels in ``[0, C - 1]`` (a tensor or a list).

        The maths runs in the logits' dtype, at least float32 (float64 logits stay float64).
        """
        uni = _check_logits(multimodal_logits, unimodal_logits)
        if self._modalities is None:
            self._set_modalities(len(uni), unknown=self._heads_unknown)
        elif len(uni) != self._modalities:
            source = "num_modalities" if self.num_modalities is not None else "earlier updates"
            raise ValueError(
                f"unimodal_logits must hold {self._modalities} modalities (from {source}), "
                f"got {len(uni)}"
            )
        batch, classes = multimodal_logits.shape
        targets = _int_tensor("targets", targets, batch)
        idx = _int_tensor("indices", indices, batch)
        self._classes = classes
        self.allocate(multimodal_logits.device, multimodal_logits.dtype)
        if batch == 0:
            return
        if torch.is_grad_enabled():  # online scoring passes logits that carry the training graph
            with torch.no_grad():
                self._add(idx, multimodal_logits, uni, targets)
        else:
            self._add(idx, multimodal_logits, uni, targets)

    def _add(self, idx: Tensor, multi: Tensor, uni: list[Tensor], targets: Tensor) -> None:
        """Copy the batch into the pending list (checking it first where that is free)."""
        device = self.device
        assert device is not None  # allocated by update()
        heads = torch.stack([multi, *uni]).to(device)  # (1 + M, B, C), a copy
        pair = torch.stack([idx.to(device, torch.int64), targets.to(device, torch.int64)])
        checked = self.check_eagerly(device)
        if checked:
            self._raise_now(pair, heads)
        pending = self._pending
        if pending and heads.shape[2] != pending[0].heads.shape[2]:
            self.flush()  # another number of classes: the pending batches cannot be stacked
        self._pending.append(_Batch(heads, pair, checked))
        self._pending_elements += heads.numel()
        if self._pending_elements >= self._chunk_elements:
            self.flush()

    def flush(self) -> None:
        """Run Eq. 4-5 on every pending batch at once and add the results to the state."""
        if self.allocated:
            self.state("classes").fill_(self._classes)
            self.state("reporting").fill_(self._classes > 0)
        if not self._pending:
            return
        pending, self._pending, self._pending_elements = self._pending, [], 0
        if len(pending) == 1:
            heads, pair = pending[0].heads, pending[0].pair
        else:
            heads = torch.cat([batch.heads for batch in pending], dim=1)
            pair = torch.cat([batch.pair for batch in pending], dim=1)
        idx, targets = pair[0], pair[1]
        if not all(batch.checked for batch in pending):
            self._add_deferred(idx, heads, targets)
            return
        sim, loss, correct, confidence = report_terms(heads, targets, self.alpha)
        self.index_add(
            idx,
            visits=torch.ones_like(sim),
            similarity=sim,
            loss=loss,
            correct=correct,
            confidence=confidence,
        )

    def _add_deferred(self, idx: Tensor, heads: Tensor, targets: Tensor) -> None:
        """The deferred path: count invalid values per sample instead of reading them now."""
        n, classes = self.num_samples, heads.shape[-1]
        safe_idx, safe_targets = idx.clamp(0, n - 1), targets.clamp(0, classes - 1)
        bad_index, bad_target = safe_idx != idx, safe_targets != targets
        finite = torch.isfinite(heads).all(-1).all(0)
        valid = finite & ~bad_target & ~bad_index
        sim, loss, correct, confidence = report_terms(heads, safe_targets, self.alpha)
        self.index_add(
            safe_idx,
            visits=valid.to(sim.dtype),
            similarity=torch.where(valid, sim, 0.0),
            loss=torch.where(valid, loss, 0.0),
            correct=torch.where(valid, correct, 0.0),
            confidence=torch.where(valid, confidence, 0.0),
            nonfinite=(~finite & ~bad_index).to(sim.dtype),
            bad_target=(bad_target & ~bad_index).to(sim.dtype),
        )
        self.state("bad_index").add_(bad_index.sum())

    def _raise_now(self, pair: Tensor, heads: Tensor) -> None:
        """Raise for an invalid batch with the words `compute` would use.

        ``pair`` holds the batch's dataset indices and targets, ``heads`` its stacked logits.
        """
        classes = heads.shape[-1]
        low, high = torch.aminmax(pair, dim=1)
        i_lo, t_lo, i_hi, t_hi = torch.cat([low, high]).tolist()
        # a non-finite sum means a NaN or inf logit (or finite ones beyond float range: re-checked)
        if (
            i_lo >= 0
            and i_hi < self.num_samples
            and t_lo >= 0
            and t_hi < classes
            and math.isfinite(heads.sum().item())
        ):
            return  # the happy path: three reductions and two reads, free on the host
        idx, targets = pair[0], pair[1]
        bad_index = (idx < 0) | (idx >= self.num_samples)
        bad_target = ((targets < 0) | (targets >= classes)) & ~bad_index
        nonfinite = ~torch.isfinite(heads).all(-1).all(0) & ~bad_index
        nonfinite_mask, bad_target_mask = (
            torch.zeros(self.num_samples, dtype=torch.bool).index_fill_(0, idx[which], True)
            for which in (nonfinite, bad_target)
        )
        error = _data_error(
            self.num_samples, int(bad_index.sum()), nonfinite_mask, bad_target_mask, classes
        )
        if error is not None:
            raise error

    def _read(self, totals: Totals) -> tuple[int, int, bool, int]:
        """``(bad_index, classes, flagged, least_visits)`` from the totals in one host read."""
        summary = torch.stack(
            [
                totals["bad_index"],
                totals["classes"],
                totals["reporting"],
                totals["nonfinite"].amax(),
                totals["bad_target"].amax(),
                totals["visits"].amin(),
            ]
        ).tolist()
        bad, classes_sum, reporting, nonfinite, bad_target, least = summary
        classes = round(classes_sum / reporting) if reporting else 0
        return int(bad), classes, bool(nonfinite or bad_target), int(least)

    def _scores_and_means(self, totals: Totals) -> tuple[Tensor, list[float]]:
        """Eq. 6 of every sample, and the dataset mean of each per-sample mean (similarity, loss,
        then per head correct and confidence), ``_chunk_samples`` samples at a time."""
        n, step = self.num_samples, self._chunk_samples
        block = totals.block("similarity", "confidence")  # (2 + 2 (1 + M), N) sums
        visits = totals["visits"][0]
        chunks = [slice(start, min(start + step, n)) for start in range(0, n, step)]
        sums = torch.zeros(len(block), dtype=torch.float64, device=block.device)
        lo = hi = means = None
        for part in chunks:  # pass 1: the means' sums and the bounds of Eq. 6's min-max
            means = block[:, part] / visits[part]
            sums += means.sum(dim=1, dtype=torch.float64)
            low, high = torch.aminmax(means[:2], dim=1, keepdim=True)
            lo = low if lo is None else torch.minimum(lo, low)
            hi = high if hi is None else torch.maximum(hi, high)
        assert lo is not None and hi is not None and means is not None
        if len(chunks) == 1:
            scores = balance_score_rows(means[:2], self.criteria, (lo, hi))
            scores = scores.to("cpu", torch.float32)
        else:
            scores = torch.empty(n, dtype=torch.float32)
            for part in chunks:  # pass 2: Eq. 6 with the whole dataset's bounds
                means = block[:2, part] / visits[part]
                scores[part] = balance_score_rows(means, self.criteria, (lo, hi)).cpu()
        return scores, (sums / n).tolist()

    def _report(self, means: list[float], scores: Tensor) -> BalanceReport | None:
        """The `BalanceReport` of the dataset means of each sample's means over its updates."""
        if self._modalities is None:
            return None
        similarity, loss, *per_head = means
        heads = len(per_head) // 2
        correct, confidence = per_head[:heads], per_head[heads:]
        return BalanceReport.from_means(
            num_samples=self.num_samples,
            similarity=similarity,
            loss=loss,
            multimodal=(correct[0], confidence[0]),
            unimodal=list(zip(correct[1:], confidence[1:])),
            scores=scores,
        )

    @overload
    def compute(self, *, return_visits: Literal[False] = ...) -> Tensor: ...

    @overload
    def compute(self, *, return_visits: Literal[True]) -> tuple[Tensor, Tensor]: ...

    def compute(self, *, return_visits: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Balance scores of all samples (Eq. 6): float32 ``(num_samples,)`` on the CPU.

        Min-max normalisation runs over the whole dataset after the cross-rank sync, so values lie
        in ``[-1, 1]`` (higher = more balanced) and are identical on every rank. A constant
        criterion normalises to 0. Under a process group every rank must call this (it
        all-reduces once), whether or not it saw a batch (a rank that saw none needs
        ``num_modalities``). The same all-reduce also gives `last_report`.

        Args:
            return_visits: also return how many valid updates each sample had, summed over all
                ranks (int64 ``(num_samples,)`` on the CPU), from the same all-reduce: what an
                exactly-once check needs.

        Raises:
            ValueError: an update held NaN/inf logits, a target or an index out of range (the
                same error on every rank).
            CoverageError: a sample was never updated.
        """
        if self._modalities is None and _dist.is_distributed():
            raise RuntimeError(
                "BalanceScorer.compute(): this rank had no update() and the scorer does not know "
                "the number of modalities, which sizes its share of the all-reduce; pass "
                "num_modalities=M to BalanceScorer on every rank"
            )
        totals = self.sync()
        bad_index, classes, flagged, least_visits = self._read(totals)
        if bad_index or flagged:
            error = _data_error(
                self.num_samples,
                bad_index,
                totals["nonfinite"][0],
                totals["bad_target"][0],
                classes,
            )
            assert error is not None
            raise error
        self.check_coverage(totals, least_visits)
        scores, means = self._scores_and_means(totals)
        self._last_report = self._report(means, scores)
        if return_visits:
            return scores, totals["visits"][0].to("cpu", torch.int64)
        return scores

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, ints and strings; ``torch.save`` needs no pickle for it.

        The configuration (``num_samples``, ``alpha``, ``criteria``) and, once anything was
        accumulated, each declared state: one ``(num_samples,)`` tensor per one-row state
        (``visits``, ``similarity``, ``loss``, ``nonfinite``, ``bad_target``), ``correct`` and
        ``confidence`` as ``(1 + M, num_samples)`` (the fused head first), and the ints
        ``bad_index``, ``classes`` and ``reporting``.
        """
        return {
            "num_samples": self.num_samples,
            "alpha": self.alpha,
            "criteria": ",".join(self.criteria),
            **super().state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict`; raises on another dataset size or configuration.

        Also reads the single ``(5, num_samples)`` ``buffer`` of version 0.1.0 checkpoints. A
        state without the report's rows (saved before reports were kept) scores as before; the
        report of its samples is unknown, so `last_report` holds NaN until `reset`.
        """
        for key, mine in (
            ("num_samples", self.num_samples),
            ("alpha", self.alpha),
            ("criteria", ",".join(self.criteria)),
        ):
            if key not in state:
                raise KeyError(f"state_dict lacks the field {key!r}")
            if state[key] != mine:
                raise ValueError(
                    f"state_dict was saved with {key}={state[key]!r}, "
                    f"this scorer has {key}={mine!r}"
                )
        state = dict(state)
        if "buffer" in state:  # 0.1.0: the rows of these states stacked in this order
            buffer, names = state.pop("buffer"), _LEGACY_ROWS
            if not isinstance(buffer, Tensor) or buffer.shape != (len(names), self.num_samples):
                raise ValueError(
                    f"state_dict['buffer'] must be a tensor of shape (5, {self.num_samples})"
                )
            state.update(zip(names, buffer.unbind(0)))
        has_rows = any(name in state for name in _LEGACY_ROWS)
        if has_rows:
            for name in _LEGACY_ROWS:  # all or none of them
                if name not in state:
                    state[name] = None  # refused by the base's shape check, by name
        modalities = self._head_rows(state)
        self.reset()
        unknown = has_rows and modalities is None
        self._set_modalities(self.num_modalities if unknown else modalities, unknown=unknown)
        self._heads_unknown = unknown
        super().load_state_dict(state)
        self._classes = int(state.get("classes", 0)) if has_rows else 0

    def _head_rows(self, state: Mapping[str, Any]) -> int | None:
        """`M` from the report's ``correct`` and ``confidence`` rows of ``state``, or ``None``."""
        if "correct" not in state and "confidence" not in state:
            return None
        correct, confidence = state.get("correct"), state.get("confidence")
        n = self.num_samples
        if (
            not isinstance(correct, Tensor)
            or not isinstance(confidence, Tensor)
            or correct.dim() != 2
            or correct.shape != confidence.shape
            or correct.shape[0] < 3
            or correct.shape[1] != n
        ):
            raise ValueError(
                "state_dict['correct'] and state_dict['confidence'] must be tensors of the same "
                f"shape (1 + M, {n}) with M >= 2, got {getattr(correct, 'shape', correct)!r} and "
                f"{getattr(confidence, 'shape', confidence)!r}"
            )
        modalities = correct.shape[0] - 1
        if self.num_modalities is not None and modalities != self.num_modalities:
            raise ValueError(
                f"state_dict was saved with {modalities} modalities, this scorer has "
                f"num_modalities={self.num_modalities}"
            )
        return modalities


_LEGACY_ROWS = ("similarity", "loss", "visits", "nonfinite", "bad_target")
"""The one-row states of every saved version, in the order of version 0.1.0's ``buffer``."""
