"""``BalanceScorer``: per-sample balance scores accumulated on the model's device (Eq. 4-6).

The scorer follows the ``update`` / ``compute`` / ``reset`` split of a metric. ``update`` adds each
sample's raw prediction similarity (Eq. 4) and raw loss (Eq. 5) into dense per-sample sums and
counts that live on the logits' device; it never waits for the device. ``compute`` syncs those
sums across ranks with one all-reduce (when a process group is initialised), averages, applies the
dataset-wide min-max normalisation and returns Eq. 6 on the CPU. Because the normalisation happens
after the sync, every rank returns identical scores.

Errors in the values (NaN/inf logits, labels or indices out of range) are raised at once for CPU
tensors. On an accelerator, checking them per batch would stall the device, so they are counted
there and raised by :meth:`BalanceScorer.compute`; affected samples are never mixed into the sums.

>>> import torch
>>> scorer = BalanceScorer(num_samples=3)
>>> uni = [torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 3.0]]), torch.tensor([[3.0, 0.0]] * 3)]
>>> scorer.update(torch.arange(3), torch.zeros(3, 2), uni, torch.tensor([0, 0, 1]))
>>> scorer.compute()
tensor([ 1.0000,  0.4980, -1.0000])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Union

import torch
from torch import Tensor

from . import _dist
from .functional import CRITERIA, balance_loss, balance_score, prediction_similarity

__all__ = ["BalanceScorer", "CoverageError", "UnimodalLogits"]

UnimodalLogits = Union[Sequence[Tensor], Mapping[str, Tensor], Tensor]
"""One ``(B, C)`` tensor per modality: a sequence, a mapping (its values, in order), or a stacked
``(M, B, C)`` tensor."""

_SIM, _LOSS, _COUNT, _NONFINITE, _BAD_TARGET = range(5)
_SHOW = 5  # how many offending indices an error message lists


class CoverageError(ValueError, RuntimeError):
    """Samples were never scored, or a scoring pass visited some of them more than once."""


class _Totals(NamedTuple):
    """Per-sample sums after the cross-rank sync."""

    similarity: Tensor
    loss: Tensor
    visits: Tensor
    nonfinite: Tensor
    bad_target: Tensor
    bad_index: int


def _first(mask: Tensor) -> list[int]:
    first: list[int] = mask.nonzero().flatten()[:_SHOW].tolist()
    return first


def check_alpha(alpha: float) -> float:
    """Validate the Eq. 5 weight ``alpha``; returns it as a float."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    return float(alpha)


def check_criteria(criteria: Sequence[str]) -> tuple[str, ...]:
    """Validate a non-empty, duplicate-free subset of ``("similarity", "loss")``."""
    if isinstance(criteria, str):
        criteria = (criteria,)
    chosen = tuple(criteria)
    unknown = [c for c in chosen if c not in CRITERIA]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise ValueError(
            f"criteria must be a non-empty subset of {CRITERIA} without repeats, got {criteria!r}"
        )
    return chosen


def _as_modalities(unimodal_logits: UnimodalLogits) -> list[Tensor]:
    if isinstance(unimodal_logits, Tensor):
        return list(unimodal_logits.unbind(0)) if unimodal_logits.dim() == 3 else [unimodal_logits]
    if isinstance(unimodal_logits, Mapping):
        return list(unimodal_logits.values())
    return list(unimodal_logits)


class BalanceScorer:
    """Accumulates each sample's balance score over one or more passes (paper Eq. 4-6).

    Args:
        num_samples: size ``N`` of the dataset; indices passed to :meth:`update` lie in
            ``[0, N - 1]``.
        alpha: weight of the unimodal cross-entropies in Eq. 5, in ``[0, 1]``. The released code's
            unweighted sum of all heads normalises to exactly the scores of ``alpha=0.5``.
        criteria: ``("similarity", "loss")`` for Eq. 6; ``("similarity",)`` or ``("loss",)`` for the
            ablation rows of Table 3.
        device: where the per-sample buffers live; ``None`` means the device of the first logits.

    A sample updated several times (several passes, or distributed padding) is scored with the mean
    of its raw values.
    """

    def __init__(
        self,
        num_samples: int,
        *,
        alpha: float = 0.2,
        criteria: Sequence[str] = CRITERIA,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
        self.num_samples = num_samples
        self.alpha = check_alpha(alpha)
        self.criteria = check_criteria(criteria)
        self._device = None if device is None else torch.device(device)
        self._buffer: Tensor | None = None
        self._bad_index: Tensor | None = None

    @property
    def device(self) -> torch.device | None:
        """Device of the per-sample buffers; ``None`` until known."""
        return self._buffer.device if self._buffer is not None else self._device

    def reset(self) -> None:
        """Forget every accumulated value."""
        self._buffer = None
        self._bad_index = None

    def _buffers(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if self._buffer is None or self._bad_index is None:
            dtype = torch.float32 if device.type == "mps" else torch.float64
            self._buffer = torch.zeros(5, self.num_samples, dtype=dtype, device=device)
            self._bad_index = torch.zeros((), dtype=torch.int64, device=device)
        return self._buffer, self._bad_index

    def update(
        self,
        indices: Tensor | Sequence[int],
        multimodal_logits: Tensor,
        unimodal_logits: UnimodalLogits,
        targets: Tensor,
    ) -> None:
        """Add one batch: raw similarity (Eq. 4) and raw loss (Eq. 5) per sample.

        Args:
            indices: ``(B,)`` dataset indices of the batch's samples.
            multimodal_logits: ``(B, C)`` logits of the fused head.
            unimodal_logits: ``M >= 2`` tensors ``(B, C)``, one per modality head.
            targets: ``(B,)`` integer labels in ``[0, C - 1]``.
        """
        uni = _as_modalities(unimodal_logits)
        if len(uni) < 2:
            raise ValueError(
                f"unimodal_logits must hold at least 2 modalities, got {len(uni)}: the balance "
                "score compares the predictions of different modalities"
            )
        if multimodal_logits.dim() != 2:
            raise ValueError(
                "multimodal_logits must have shape (batch, classes), "
                f"got {tuple(multimodal_logits.shape)}"
            )
        shape = multimodal_logits.shape
        for j, logits in enumerate(uni):
            if logits.shape != shape:
                raise ValueError(
                    f"unimodal_logits[{j}] must have the shape of multimodal_logits "
                    f"{tuple(shape)}, got {tuple(logits.shape)}"
                )
        if targets.shape != shape[:1] or targets.is_floating_point() or targets.is_complex():
            raise ValueError(
                f"targets must be an integer tensor of shape ({shape[0]},), "
                f"got {targets.dtype} of shape {tuple(targets.shape)}"
            )
        device = self._device or multimodal_logits.device
        idx = torch.as_tensor(indices, device=device)
        if idx.shape != shape[:1] or idx.is_floating_point():
            raise ValueError(
                f"indices must be an integer tensor of shape ({shape[0]},), "
                f"got {idx.dtype} of shape {tuple(idx.shape)}"
            )
        multi = multimodal_logits.to(device)
        uni = [u.to(device) for u in uni]
        idx = idx.long()
        targets = targets.to(device).long()
        self._accumulate(idx, multi, uni, targets)

    def _accumulate(self, idx: Tensor, multi: Tensor, uni: list[Tensor], targets: Tensor) -> None:
        n, classes = self.num_samples, multi.shape[1]
        bad_index = (idx < 0) | (idx >= n)
        bad_target = (targets < 0) | (targets >= classes)
        # A row holds NaN or inf iff its float32 sum does (logits never approach 1e38).
        finite = torch.stack([z.float().sum(-1) for z in (multi, *uni)]).isfinite()
        buffer, bad_count = self._buffers(idx.device)
        if self._check_eagerly(idx.device):
            self._raise_now(idx, bad_index, targets, bad_target, finite, classes)
            sim = prediction_similarity(uni)
            ones = torch.ones_like(sim)
            rows = torch.stack([sim, balance_loss(multi, uni, targets, self.alpha), ones])
            buffer[:_NONFINITE].index_add_(1, idx, rows.to(buffer.dtype))
            return
        all_finite = finite.all(0)
        valid = all_finite & ~bad_target & ~bad_index
        safe_idx = torch.where(bad_index, 0, idx)
        loss = balance_loss(multi, uni, torch.where(bad_target, 0, targets), self.alpha)
        rows = torch.stack(
            [
                torch.where(valid, prediction_similarity(uni), 0.0),
                torch.where(valid, loss, 0.0),
                valid.float(),
                (~all_finite & ~bad_index).float(),
                (bad_target & ~bad_index).float(),
            ]
        )
        buffer.index_add_(1, safe_idx, rows.to(buffer.dtype))
        bad_count.add_(bad_index.sum())

    @staticmethod
    def _check_eagerly(device: torch.device) -> bool:
        """On the host a check costs no device sync: fail at the faulty batch there."""
        return device.type == "cpu"

    def _raise_now(
        self,
        idx: Tensor,
        bad_index: Tensor,
        targets: Tensor,
        bad_target: Tensor,
        finite: Tensor,
        classes: int,
    ) -> None:
        if not (bad_index | bad_target | ~finite.all(0)).any():  # one check on the happy path
            return
        if bad_index.any():
            raise ValueError(
                f"indices must lie in [0, {self.num_samples - 1}] (num_samples="
                f"{self.num_samples}), got {idx[bad_index][:_SHOW].tolist()}"
            )
        if bad_target.any():
            raise ValueError(
                f"targets must lie in [0, {classes - 1}] for logits with {classes} classes, "
                f"got {targets[bad_target][:_SHOW].tolist()} "
                f"for samples {idx[bad_target][:_SHOW].tolist()}"
            )
        if not finite.all():
            names = ["multimodal_logits"] + [
                f"unimodal_logits[{j}]" for j in range(len(finite) - 1)
            ]
            which = [name for name, ok in zip(names, finite.all(1).tolist()) if not ok]
            bad = ~finite.all(0)
            raise ValueError(
                f"{', '.join(which)} contain NaN or inf for {int(bad.sum())} samples "
                f"(dataset indices {idx[bad][:_SHOW].tolist()}); "
                "the balance score needs finite logits"
            )

    def _reduce(self) -> _Totals:
        """Per-sample sums over all updates and all ranks (one all-reduce)."""
        if self._buffer is None or self._bad_index is None:
            if _dist.is_distributed():  # this rank saw no batch; the others still wait for it
                self._buffers(self._device or torch.device("cpu"))
                return self._reduce()
            raise RuntimeError(
                "BalanceScorer.compute() called before any update(); score every sample first"
            )
        flat = torch.cat([self._buffer.flatten(), self._bad_index.to(self._buffer.dtype).view(1)])
        flat = _dist.all_reduce_sum(flat)
        rows = flat[:-1].view(5, self.num_samples)
        return _Totals(
            rows[_SIM],
            rows[_LOSS],
            rows[_COUNT],
            rows[_NONFINITE],
            rows[_BAD_TARGET],
            int(flat[-1].item()),
        )

    def _check(self, totals: _Totals) -> None:
        n = self.num_samples
        if totals.bad_index:
            raise ValueError(
                f"{totals.bad_index} indices passed to update() lay outside [0, {n - 1}] "
                f"(num_samples={n})"
            )
        nonfinite = totals.nonfinite > 0
        if nonfinite.any():
            raise ValueError(
                f"logits contain NaN or inf for {int(nonfinite.sum())} samples (dataset indices "
                f"{_first(nonfinite)}); the balance score needs finite logits"
            )
        bad_target = totals.bad_target > 0
        if bad_target.any():
            raise ValueError(
                f"targets out of range [0, classes - 1] for {int(bad_target.sum())} samples "
                f"(dataset indices {_first(bad_target)})"
            )
        missing = totals.visits == 0
        if missing.any():
            raise CoverageError(
                f"{int(missing.sum())} of {n} samples were never updated (first indices: "
                f"{_first(missing)}); every sample needs at least one update() before compute(): "
                "does the loader cover the whole dataset?"
            )

    def _scores(self, totals: _Totals) -> Tensor:
        self._check(totals)
        similarity = totals.similarity / totals.visits
        loss = totals.loss / totals.visits
        return balance_score(similarity, loss, self.criteria).to("cpu", torch.float32)

    def compute(self) -> Tensor:
        """Balance scores of all samples (Eq. 6): float32 ``(num_samples,)`` on the CPU.

        Min-max normalisation runs over the whole dataset after the cross-rank sync, so values lie
        in ``[-1, 1]`` (higher = more balanced) and are identical on every rank. A constant
        criterion normalises to 0. Under a process group every rank must call this (it
        all-reduces). Raises if a sample was never updated or an update held invalid values.
        """
        return self._scores(self._reduce())

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, ints and strings; ``torch.save`` needs no pickle for it."""
        state: dict[str, Any] = {
            "num_samples": self.num_samples,
            "alpha": self.alpha,
            "criteria": ",".join(self.criteria),
        }
        if self._buffer is not None and self._bad_index is not None:
            state["buffer"] = self._buffer.cpu()
            state["bad_index"] = int(self._bad_index.item())
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; raises on another dataset size or configuration."""
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
        self.reset()
        if "buffer" in state:
            buffer = state["buffer"]
            if not isinstance(buffer, Tensor) or buffer.shape != (5, self.num_samples):
                raise ValueError(
                    f"state_dict['buffer'] must be a tensor of shape (5, {self.num_samples})"
                )
            device = self._device or torch.device("cpu")
            buf, bad = self._buffers(device)
            buf.copy_(buffer)
            bad.fill_(int(state.get("bad_index", 0)))
