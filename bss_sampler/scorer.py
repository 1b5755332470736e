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
from .functional import CRITERIA, _balance_score_rows, _report_terms
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

_SHOW = 5  # how many offending indices an error message lists


class CoverageError(ValueError, RuntimeError):
    """Samples were never scored, or a scoring pass visited some of them more than once."""


class _Rows(NamedTuple):
    """The per-sample state, one ``(N,)`` row each, stored as one ``(5, N)`` tensor so that one
    ``index_add_`` per batch and one all-reduce per pass cover all of it."""

    similarity: Tensor  # sum of the raw Eq. 4 similarity over the sample's updates
    loss: Tensor  # sum of the raw Eq. 5 loss
    visits: Tensor  # number of valid updates of the sample
    nonfinite: Tensor  # deferred checks: updates whose logits held NaN or inf
    bad_target: Tensor  # deferred checks: updates whose target lay outside [0, C - 1]


_SUMS = 3  # the leading rows of _Rows every valid update adds to; the rest count deferred errors
_ROW_NAMES = _Rows._fields


class _Batch(NamedTuple):
    """One update() waiting for its maths (see ``BalanceScorer._chunk_elements``)."""

    heads: Tensor  # (1 + M, B, C) copy of the logits, the fused head first
    pair: Tensor  # (2, B) int64: dataset indices, then targets
    checked: bool  # validated by update() already (the eager path)


class _Totals(NamedTuple):
    """The state summed over all updates and all ranks (after the one all-reduce)."""

    table: Tensor  # (5, N): the rows below, similarity and loss first
    rows: _Rows
    head_sums: Tensor | None  # (2 (1 + M), N): per head, correct then confidence; None: M unknown
    bad_index: int  # indices passed to update() outside [0, N - 1]
    classes: int  # the logits' number of classes (0 if no rank saw a batch)
    flagged: bool  # some sample had NaN/inf logits or a target out of range
    least_visits: int  # the fewest valid updates of any sample (0: some sample is missing)


def check_alpha(alpha: float) -> float:
    """Validate the Eq. 5 weight ``alpha`` (a real number in ``[0, 1]``); returns a float."""
    return check_real("alpha", alpha, 0, 1)


def check_criteria(criteria: Sequence[str]) -> tuple[str, ...]:
    """Validate a non-empty, duplicate-free subset of ``("similarity", "loss")``."""
    chosen: tuple[Any, ...] | None
    if isinstance(criteria, str):
        chosen = (criteria,)
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


def _first(samples: Tensor) -> list[int]:
    first: list[int] = samples[:_SHOW].tolist()
    return first


def _data_error(
    num_samples: int, bad_index: int, nonfinite: Tensor, bad_target: Tensor, classes: int
) -> ValueError | None:
    """The one wording of each invalid-value mistake, for the eager and the deferred check.

    ``nonfinite`` and ``bad_target`` are the sorted dataset indices of the affected samples.
    """
    n = num_samples
    if bad_index:
        return ValueError(
            f"indices must lie in [0, {n - 1}] (num_samples={n}), but {bad_index} indices passed "
            "to update() lay outside"
        )
    if len(nonfinite):
        return ValueError(
            f"logits contain NaN or inf for {len(nonfinite)} samples (dataset indices "
            f"{_first(nonfinite)}); the balance score needs finite multimodal and unimodal logits"
        )
    if len(bad_target):
        return ValueError(
            f"targets must lie in [0, {classes - 1}] for logits with {classes} classes, but "
            f"{len(bad_target)} samples had a target outside (dataset indices "
            f"{_first(bad_target)})"
        )
    return None


class BalanceScorer:
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

    `update` only checks the batch (on the CPU) and copies its logits; the maths of Eq. 4-5
    runs on all pending batches at once when they hold ``_chunk_elements`` logits (2^22: 16 MiB
    of float32) and in `compute` / `state_dict`. A few large operations instead of
    some twenty small ones per batch: that is what makes a scoring pass cost little more than
    the forward passes.
    """

    _chunk_elements = 1 << 22

    def __init__(
        self,
        num_samples: int,
        *,
        alpha: float = 0.2,
        criteria: Sequence[str] = CRITERIA,
        device: torch.device | str | None = None,
        num_modalities: int | None = None,
    ) -> None:
        self.num_samples = check_int("num_samples", num_samples, minimum=1)
        self.alpha = check_alpha(alpha)
        self.criteria = check_criteria(criteria)
        self._device = None if device is None else torch.device(device)
        self.num_modalities = (
            None if num_modalities is None else check_int("num_modalities", num_modalities, 2)
        )
        self._state: Tensor | None = None  # (5, N): the rows of _Rows
        self._bad_index: Tensor | None = None  # () int64
        self._classes = 0
        self._modalities = self.num_modalities  # M of the updates so far (None: none yet)
        self._head_sums: Tensor | None = None  # (2 (1 + M), N): per head, correct then confidence
        self._heads_unknown = False  # restored without report rows: the report is NaN
        self._pending: list[_Batch] = []  # batches copied by update() whose maths has not run
        self._pending_elements = 0
        self._last_report: BalanceReport | None = None

    @property
    def device(self) -> torch.device | None:
        """Device of the per-sample state; ``None`` until known."""
        return self._state.device if self._state is not None else self._device

    @property
    def last_report(self) -> BalanceReport | None:
        """The `bss_sampler.BalanceReport` of the latest `compute`, from its all-reduce.

        ``None`` before the first `compute`, and when the number of modalities is unknown (a
        checkpoint from before reports were kept, with no update since). `reset` keeps it.
        """
        return self._last_report

    def reset(self) -> None:
        """Forget every accumulated value (`last_report` stays)."""
        self._state = None
        self._bad_index = None
        self._classes = 0
        self._modalities = self.num_modalities
        self._head_sums = None
        self._heads_unknown = False
        self._pending = []
        self._pending_elements = 0

    def _allocate(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if self._state is None or self._bad_index is None:
            dtype = torch.float32 if device.type == "mps" else torch.float64
            # normal tensors even under inference_mode, so that updates outside it still work
            with torch.inference_mode(False):
                self._state = torch.zeros(
                    len(_ROW_NAMES), self.num_samples, dtype=dtype, device=device
                )
                self._bad_index = torch.zeros((), dtype=torch.int64, device=device)
        return self._state, self._bad_index

    def _allocate_heads(self, device: torch.device) -> Tensor | None:
        """The per-head report rows, once the number of modalities is known."""
        if self._head_sums is None and self._modalities is not None:
            state, _ = self._allocate(device)
            fill = math.nan if self._heads_unknown else 0.0
            with torch.inference_mode(False):
                self._head_sums = torch.full(
                    (2 * (1 + self._modalities), self.num_samples),
                    fill,
                    dtype=state.dtype,
                    device=state.device,
                )
        return self._head_sums

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
                :data:`UnimodalLogits`).
            targets: ``(B,)`` integer labels in ``[0, C - 1]`` (a tensor or a list).

        The maths runs in the logits' dtype, at least float32 (float64 logits stay float64).
        """
        uni = _check_logits(multimodal_logits, unimodal_logits)
        if self._modalities is None:
            self._modalities = len(uni)
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
        device = self._device or multimodal_logits.device
        self._allocate(device)
        if batch == 0:
            return
        if torch.is_grad_enabled():  # online scoring passes logits that carry the training graph
            with torch.no_grad():
                self._add(idx, multimodal_logits, uni, targets, device)
        else:
            self._add(idx, multimodal_logits, uni, targets, device)

    def _add(
        self, idx: Tensor, multi: Tensor, uni: list[Tensor], targets: Tensor, device: torch.device
    ) -> None:
        """Copy the batch into the pending list (checking it first where that is free)."""
        heads = torch.stack([multi, *uni]).to(device)  # (1 + M, B, C), a copy
        pair = torch.stack([idx.to(device, torch.int64), targets.to(device, torch.int64)])
        checked = self._check_eagerly(device)
        if checked:
            self._raise_now(pair, heads)
        key = (heads.shape[0], heads.shape[2])
        if self._pending and key != (
            self._pending[0].heads.shape[0],
            self._pending[0].heads.shape[2],
        ):
            self._flush()
        self._pending.append(_Batch(heads, pair, checked))
        self._pending_elements += heads.numel()
        if self._pending_elements >= self._chunk_elements:
            self._flush()

    def _flush(self) -> None:
        """Run Eq. 4-5 on every pending batch at once and add the results to the state."""
        if not self._pending:
            return
        pending, self._pending, self._pending_elements = self._pending, [], 0
        state, bad_count = self._allocate(pending[0].heads.device)
        head_rows = self._allocate_heads(state.device)
        assert head_rows is not None  # update() has set the number of modalities
        if len(pending) == 1:
            heads, pair = pending[0].heads, pending[0].pair
        else:
            heads = torch.cat([batch.heads for batch in pending], dim=1)
            pair = torch.cat([batch.pair for batch in pending], dim=1)
        idx, targets = pair[0], pair[1]
        if not all(batch.checked for batch in pending):
            self._accumulate_checked(idx, heads, targets, state, head_rows, bad_count)
            return
        sim, loss, correct, confidence = _report_terms(heads, targets, self.alpha)
        rows = torch.stack([sim, loss, torch.ones_like(sim)])  # the _SUMS leading rows of _Rows
        state[:_SUMS].index_add_(1, idx, rows.to(state.dtype))
        head_rows.index_add_(1, idx, torch.cat([correct, confidence]).to(state.dtype))

    def _accumulate_checked(
        self,
        idx: Tensor,
        heads: Tensor,
        targets: Tensor,
        state: Tensor,
        head_rows: Tensor,
        bad_count: Tensor,
    ) -> None:
        """The deferred path: count invalid values per sample instead of reading them now."""
        n, classes = self.num_samples, heads.shape[-1]
        safe_idx, safe_targets = idx.clamp(0, n - 1), targets.clamp(0, classes - 1)
        bad_index, bad_target = safe_idx != idx, safe_targets != targets
        finite = torch.isfinite(heads).all(-1).all(0)
        valid = finite & ~bad_target & ~bad_index
        sim, loss, correct, confidence = _report_terms(heads, safe_targets, self.alpha)
        rows = _Rows(
            similarity=torch.where(valid, sim, 0.0),
            loss=torch.where(valid, loss, 0.0),
            visits=valid.to(sim.dtype),
            nonfinite=(~finite & ~bad_index).to(sim.dtype),
            bad_target=(bad_target & ~bad_index).to(sim.dtype),
        )
        state.index_add_(1, safe_idx, torch.stack(rows).to(state.dtype))
        per_head = torch.where(valid, torch.cat([correct, confidence]), 0.0)
        head_rows.index_add_(1, safe_idx, per_head.to(state.dtype))
        bad_count.add_(bad_index.sum())

    @staticmethod
    def _check_eagerly(device: torch.device) -> bool:
        """Raise at the faulty batch only where that costs no device sync and no rank can be left
        waiting: CPU logits without a process group."""
        return device.type == "cpu" and not _dist.is_distributed()

    def _raise_now(self, pair: Tensor, heads: Tensor) -> None:
        """Raise for an invalid batch with the words `compute` would use.

        ``pair`` holds the batch's dataset indices and targets, ``heads`` its stacked logits.
        """
        classes = heads.shape[-1]
        (i_lo, t_lo), (i_hi, t_hi) = (bound.tolist() for bound in torch.aminmax(pair, dim=1))
        z_lo, z_hi = torch.aminmax(heads)  # NaN if any NaN: finite bounds mean finite logits
        if (
            i_lo >= 0
            and i_hi < self.num_samples
            and t_lo >= 0
            and t_hi < classes
            and math.isfinite(z_lo.item())
            and math.isfinite(z_hi.item())
        ):
            return  # the happy path: two reductions and four reads, free on the host
        idx, targets = pair[0], pair[1]
        bad_index = (idx < 0) | (idx >= self.num_samples)
        bad_target = ((targets < 0) | (targets >= classes)) & ~bad_index
        nonfinite = ~torch.isfinite(heads).all(-1).all(0) & ~bad_index
        error = _data_error(
            self.num_samples,
            int(bad_index.sum()),
            torch.unique(idx[nonfinite]),
            torch.unique(idx[bad_target]),
            classes,
        )
        assert error is not None
        raise error

    def _sync(self) -> _Totals:
        """Per-sample sums over all updates and all ranks: the one all-reduce of a pass."""
        self._flush()
        state, bad_index = self._allocate(self._device or torch.device("cpu"))
        heads = self._allocate_heads(state.device)
        if heads is None and _dist.is_distributed():
            raise RuntimeError(
                "BalanceScorer.compute(): this rank had no update() and the scorer does not know "
                "the number of modalities, which sizes its share of the all-reduce; pass "
                "num_modalities=M to BalanceScorer on every rank"
            )
        # the scalars travel with the rows: bad indices, the classes and whether this rank saw any
        seen = torch.tensor([self._classes, self._classes > 0], dtype=state.dtype)
        parts = [state.flatten(), bad_index.to(state.dtype).view(1), seen.to(state.device)]
        if heads is not None:  # the report's rows, in the same all-reduce
            parts.insert(1, heads.flatten())
        flat = torch.cat(parts)
        _dist.all_reduce_sum_(flat)
        size = state.numel()
        rows = flat[:size].view(len(_ROW_NAMES), self.num_samples)
        head_rows = None if heads is None else flat[size : size + heads.numel()].view_as(heads)
        # one read for every decision compute() takes: the scalars, any flagged sample, any missing
        summary = torch.cat([flat[-3:], rows[_SUMS:].amax(dim=1), rows[_SUMS - 1].amin().view(1)])
        bad, classes_sum, reporting, *flagged, least_visits = summary.tolist()
        return _Totals(
            table=rows,
            rows=_Rows(*rows.unbind(0)),
            head_sums=head_rows,
            bad_index=int(bad),
            classes=round(classes_sum / reporting) if reporting else 0,
            flagged=any(flagged),
            least_visits=int(least_visits),
        )

    def _scores(self, totals: _Totals) -> Tensor:
        rows, n = totals.rows, self.num_samples
        if totals.bad_index or totals.flagged:
            error = _data_error(
                n,
                totals.bad_index,
                (rows.nonfinite > 0).nonzero().flatten(),
                (rows.bad_target > 0).nonzero().flatten(),
                totals.classes,
            )
            assert error is not None
            raise error
        if totals.least_visits == 0:
            missing = rows.visits == 0
            if missing.all():
                raise CoverageError(
                    f"all {n} samples were never updated: compute() was called before any "
                    "update() (did the loader yield no batch?)"
                )
            raise CoverageError(
                f"{int(missing.sum())} of {n} samples were never updated (first indices: "
                f"{_first(missing.nonzero().flatten())}); every sample needs at least one "
                "update() before compute(): does the loader cover the whole dataset?"
            )
        means = totals.table[:2] / rows.visits  # (2, N): each sample's mean similarity and loss
        return _balance_score_rows(means, self.criteria).to("cpu", torch.float32)

    def _report(self, totals: _Totals, scores: Tensor) -> BalanceReport | None:
        """Dataset means of each sample's mean over its updates, read in one copy."""
        if totals.head_sums is None:
            return None
        sums = torch.cat([totals.table[:2], totals.head_sums])
        similarity, loss, *per_head = (sums / totals.rows.visits).mean(dim=1).tolist()
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
        totals = self._sync()
        scores = self._scores(totals)
        self._last_report = self._report(totals, scores)
        if return_visits:
            return scores, totals.rows.visits.to("cpu", torch.int64)
        return scores

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, ints and strings; ``torch.save`` needs no pickle for it.

        One ``(num_samples,)`` tensor per state row (``similarity``, ``loss``, ``visits``,
        ``nonfinite``, ``bad_target``) once anything was accumulated, plus ``bad_index`` and
        ``classes``; and the report's ``correct`` and ``confidence``, one ``(1 + M,
        num_samples)`` tensor each (the fused head first).
        """
        self._flush()
        state: dict[str, Any] = {
            "num_samples": self.num_samples,
            "alpha": self.alpha,
            "criteria": ",".join(self.criteria),
        }
        if self._state is not None and self._bad_index is not None:
            for name, row in zip(_ROW_NAMES, self._state.cpu()):
                state[name] = row.clone()
            state["bad_index"] = int(self._bad_index.item())
            state["classes"] = self._classes
        if self._head_sums is not None:
            correct, confidence = self._head_sums.cpu().chunk(2)
            state["correct"], state["confidence"] = correct.clone(), confidence.clone()
        return state

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
        shape = (self.num_samples,)
        if "buffer" in state:  # 0.1.0: the rows stacked in the order of _Rows
            buffer = state["buffer"]
            if not isinstance(buffer, Tensor) or buffer.shape != (len(_ROW_NAMES), *shape):
                raise ValueError(
                    f"state_dict['buffer'] must be a tensor of shape (5, {self.num_samples})"
                )
            rows: list[Tensor] | None = list(buffer.unbind(0))
        elif any(name in state for name in _ROW_NAMES):
            rows = []
            for name in _ROW_NAMES:
                row = state.get(name)
                if not isinstance(row, Tensor) or row.shape != shape:
                    raise ValueError(
                        f"state_dict[{name!r}] must be a tensor of shape ({self.num_samples},)"
                    )
                rows.append(row)
        else:
            rows = None
        heads = self._check_head_rows(state)
        self.reset()
        if rows is not None:
            buffer, bad = self._allocate(self._device or torch.device("cpu"))
            buffer.copy_(torch.stack(rows))
            bad.fill_(int(state.get("bad_index", 0)))
            self._classes = int(state.get("classes", 0))
            if heads is not None:
                self._modalities = len(heads) // 2 - 1
                head_rows = self._allocate_heads(buffer.device)
                assert head_rows is not None
                head_rows.copy_(heads)
            else:
                self._heads_unknown = bool(buffer[_ROW_NAMES.index("visits")].any())

    def _check_head_rows(self, state: Mapping[str, Any]) -> Tensor | None:
        """The report's ``correct`` and ``confidence`` rows of ``state``, stacked, or ``None``."""
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
        return torch.cat([correct, confidence])
