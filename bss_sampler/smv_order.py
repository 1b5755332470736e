"""`SMVOrder`: SMV's ordering policy, the part of an SMV sampler that is not order state.

A sampler core that holds only order state (epoch, seed, shard, position, versioned state) asks
its policy for three things: how many ids epoch ``t`` holds, the epoch's global order from a
generator seeded by ``(seed, t)``, and the policy's own configuration and state for the
checkpoint. `SMVOrder` answers them for both SMV methods:

* before ``warmup`` (and before any valuation) an epoch is the ``N`` originals, shuffled;
* from then on, the originals plus the copies of the newest valuation (`bss_sampler.smv`:
  `copy_counts` for ``level="sample"``, `modality_level_copies` for ``level="modality"``),
  shuffled together by `bss_sampler.smv.smv_stream`.

The ids are stream ids ``variant * N + index``; `bss_sampler.smv.ModalityMaskedDataset`
reads them. Unlike BSS, an epoch's length depends on the valuation (``N`` plus the copies),
so it is known once the valuation that applies to the epoch is set.

>>> import torch
>>> order = SMVOrder(num_samples=3, num_modalities=2, warmup=1)
>>> order.epoch_size(0), order.needs_valuation(1)
(3, True)
>>> order.set_contributions(torch.tensor([[1.0, 1.0], [0.5, 1.5], [0.0, 1.0]]), epoch=1)
>>> order.epoch_size(1)  # 3 originals, 1 copy of sample 1 and 2 of sample 2 keeping modality 0
6
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ._checks import check_choice, check_int, check_real
from .smv import GAP_FUNCTIONS, RELEASED_THRESHOLDS, copy_counts, modality_level_copies, smv_stream

__all__ = ["LEVELS", "SMVOrder"]

LEVELS = ("sample", "modality")
"""SMV's two methods: per-sample copies from each sample's contributions, or one modality's
copies of uniformly drawn samples from the dataset's mean contributions."""


class SMVOrder:
    """Which stream ids each epoch holds, from the newest valuation (see the module docstring).

    Args:
        num_samples: `N`.
        num_modalities: `M`.
        level: ``"sample"`` or ``"modality"`` (`LEVELS`).
        warmup: epochs ``0 .. warmup - 1`` are the originals only; the released scripts use 5
            and value after every epoch from epoch ``warmup - 1`` on.
        thresholds: the sample-level copy thresholds (`bss_sampler.smv.copy_counts`).
        alpha: the modality-level scale (`bss_sampler.smv.modality_level_copies`).
        function: the modality-level ratio, a key of `bss_sampler.smv.GAP_FUNCTIONS`.
    """

    def __init__(
        self,
        num_samples: int,
        num_modalities: int,
        *,
        level: str = "sample",
        warmup: int = 5,
        thresholds: Sequence[float] = RELEASED_THRESHOLDS,
        alpha: float = 1.0,
        function: str = "linear",
    ) -> None:
        self.num_samples = check_int("num_samples", num_samples, minimum=1)
        self.num_modalities = check_int("num_modalities", num_modalities, 2)
        self.level = check_choice("level", level, LEVELS)
        self.warmup = check_int("warmup", warmup, 0)
        self.thresholds = tuple(
            check_real(f"thresholds[{i}]", t) for i, t in enumerate(sorted(thresholds))
        )
        self.alpha = check_real("alpha", alpha, 0, None)
        self.function = check_choice("function", function, list(GAP_FUNCTIONS))
        self._contributions: Tensor | None = None  # (N, M) float32, the newest valuation
        self._from_epoch = -1  # the first epoch the newest valuation applies to

    def needs_valuation(self, epoch: int) -> bool:
        """Whether a valuation should precede ``epoch``: from ``warmup`` on, once per epoch."""
        epoch = check_int("epoch", epoch, 0)
        return epoch >= self.warmup and self._from_epoch != epoch

    def set_contributions(self, contributions: Tensor, epoch: int) -> None:
        """Use the ``(N, M)`` contributions of a valuation from ``epoch`` on."""
        epoch = check_int("epoch", epoch, 0)
        if contributions.shape != (self.num_samples, self.num_modalities):
            raise ValueError(
                f"contributions must have shape ({self.num_samples}, {self.num_modalities}), "
                f"got {tuple(contributions.shape)}"
            )
        if not torch.isfinite(contributions).all():
            raise ValueError("contributions must be finite, got NaN or inf")
        self._contributions = contributions.detach().to("cpu", torch.float32).clone()
        self._from_epoch = epoch

    def _resampled(self, epoch: int) -> bool:
        return self._contributions is not None and epoch >= max(self.warmup, self._from_epoch)

    def _modality_copies(self, generator: torch.Generator) -> Tensor:
        assert self._contributions is not None
        return modality_level_copies(
            self._contributions.double().mean(dim=0),
            self.num_samples,
            generator,
            alpha=self.alpha,
            function=self.function,
        )

    def epoch_size(self, epoch: int) -> int:
        """How many ids epoch ``epoch`` holds (with the newest valuation)."""
        if not self._resampled(epoch):
            return self.num_samples
        assert self._contributions is not None
        if self.level == "sample":
            return self.num_samples + int(copy_counts(self._contributions, self.thresholds).sum())
        # the count does not depend on the draw: any generator gives it
        return self.num_samples + int(self._modality_copies(torch.Generator()).sum())

    def global_order(self, epoch: int, generator: torch.Generator) -> Tensor:
        """The epoch's int64 stream ids in order, drawn from ``generator``."""
        if not self._resampled(epoch):
            return torch.randperm(self.num_samples, generator=generator)
        assert self._contributions is not None
        if self.level == "sample":
            copies = copy_counts(self._contributions, self.thresholds)
        else:
            copies = self._modality_copies(generator)
        return smv_stream(copies, generator)

    def config(self) -> dict[str, Any]:
        """The settings a checkpoint must match."""
        return {
            "level": self.level,
            "num_modalities": self.num_modalities,
            "warmup": self.warmup,
            "thresholds": ",".join(repr(t) for t in self.thresholds),
            "alpha": self.alpha,
            "function": self.function,
        }

    def state_dict(self) -> dict[str, Any]:
        """The newest valuation and the epoch it applies from (plain tensors and ints)."""
        state: dict[str, Any] = {"from_epoch": self._from_epoch}
        if self._contributions is not None:
            state["contributions"] = self._contributions.clone()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict` (all or nothing)."""
        from_epoch = check_int("state_dict['from_epoch']", state["from_epoch"], -1)
        contributions = state.get("contributions")
        if contributions is None:
            self._contributions, self._from_epoch = None, -1
            return
        self.set_contributions(contributions, max(from_epoch, 0))
