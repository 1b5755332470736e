"""SMV's re-sampling as a sampler on the core: `SMVPolicy` and `SMVSampler`.

An SMV epoch is a stream of ids ``variant * N + index`` (`bss_sampler.smv.smv_stream`): the
``N`` originals (variant 0) and, from the newest modality valuation, extra copies of samples
that keep only one modality (variant ``m + 1`` keeps modality ``m``), shuffled together.
`bss_sampler.smv.ModalityMaskedDataset` turns an id into ``(item, mask)``. The valuation the core
holds is the ``(N, M)`` table of Shapley contributions (`bss_sampler.smv.ModalityValuator`); the
epoch's copies follow from it:

* ``level="sample"`` (SMV's sample-level method): `bss_sampler.smv.copy_counts` per sample and
  modality (released thresholds: 3, 2, 1 copies for contributions -0.5, 0, 0.5);
* ``level="modality"`` (the modality-level method): ``int(f(gap, alpha) * N)`` copies keeping the
  modality with the lowest mean contribution, of samples drawn uniformly with replacement by the
  epoch's generator (`bss_sampler.smv.modality_level_copies`).

The core supplies everything else: ``set_epoch``, sharding of the whole stream (copies included)
under DDP, exact ``state_dict()``/``state_dict(consumed=n)`` resume, ``len()`` fixed for an epoch.
An epoch's length depends on the valuation (``N`` plus its copies): ``varies_epoch_length``.

>>> import torch
>>> sampler = SMVSampler(range(3), num_modalities=2)
>>> _ = sampler.set_values(torch.tensor([[1.0, 1.0], [0.5, 1.5], [0.0, 1.0]]))
>>> len(sampler)  # 3 originals, 1 copy of sample 1 and 2 of sample 2, keeping modality 0
6
>>> sorted(list(sampler))  # ids 3 + i: sample i keeping modality 0 only
[0, 1, 2, 4, 5, 5]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Sized
from typing import Any

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_int, check_real
from .core import OrderPolicy, PolicySampler
from .smv import (
    GAP_FUNCTIONS,
    SMV_RULES,
    ValuationForward,
    ValuationReport,
    copy_counts,
    modality_level_copies,
    modality_level_count,
    smv_stream,
    smv_thresholds,
    valuate_dataset,
)

__all__ = ["LEVELS", "SMVPolicy", "SMVSampler"]

LEVELS = ("sample", "modality")
"""SMV's two methods: per-sample copies from each sample's contributions, or one modality's
copies of uniformly drawn samples from the dataset's mean contributions."""


def _joined(thresholds: Sequence[float]) -> str:
    """How a checkpoint holds the thresholds."""
    return ",".join(repr(t) for t in thresholds)


class SMVPolicy(OrderPolicy):
    """An epoch: the originals and the copies the ``(N, M)`` contributions call for, shuffled."""

    varies_epoch_length = True

    def __init__(
        self,
        *,
        num_modalities: int,
        level: str,
        thresholds: str | Sequence[float],
        alpha: float,
        function: str,
        update_every: int,
    ) -> None:
        self.num_modalities = check_int("num_modalities", num_modalities, 2, 16)
        self.level = check_choice("level", level, LEVELS)
        self.thresholds = smv_thresholds(thresholds)
        self.alpha = check_real("alpha", alpha, 0.0, None)
        self.function = check_choice("function", function, list(GAP_FUNCTIONS))
        self.update_every = check_int("update_every", update_every, 1)

    def value_shape(self, num_samples: int) -> tuple[int, ...]:
        return (num_samples, self.num_modalities)

    def item_limit(self, num_samples: int) -> int:
        """Stream ids ``variant * N + index`` with variants 0 to ``M``."""
        return num_samples * (self.num_modalities + 1)

    def _copies(self, values: Tensor, generator: torch.Generator) -> Tensor:
        if self.level == "sample":
            return copy_counts(values, self.thresholds)
        means = values.double().mean(dim=0)
        return modality_level_copies(
            means, len(values), generator, alpha=self.alpha, function=self.function
        )

    def epoch_size(self, epoch: int, values: Tensor | None, num_samples: int) -> int:
        """``N`` plus the copies (known without drawing them: the modality level's count is a
        function of the mean contributions)."""
        if values is None:
            return num_samples
        if self.level == "sample":
            return num_samples + int(copy_counts(values, self.thresholds).sum())
        means = values.double().mean(dim=0)
        return num_samples + modality_level_count(
            means, num_samples, alpha=self.alpha, function=self.function
        )

    def epoch_order(self, epoch: int, values: Tensor, generator: torch.Generator) -> Tensor:
        """The epoch's stream ids: the copies (modality level: drawn by ``generator``), then the
        whole stream shuffled by the same generator (`bss_sampler.smv.smv_stream`)."""
        return smv_stream(self._copies(values, generator), generator)

    def last_scheduled(self, epoch: int) -> int | None:
        """A valuation before every ``update_every``-th epoch (the released code: every epoch)."""
        return epoch - epoch % self.update_every

    def mismatch(self, key: str, saved: Any, value: Any) -> str | None:
        """Thresholds of a named rule: the name to build the sampler with."""
        message = super().mismatch(key, saved, value)
        if key != "thresholds" or message is None:
            return message
        names = {_joined(numbers): name for name, numbers in SMV_RULES.items()}
        if saved in names:
            return (
                f"{message} (the rule thresholds={names[saved]!r}): build the sampler with "
                f"thresholds={names[saved]!r}"
            )
        return f"{message}: build the sampler with thresholds=({saved},)"

    def config(self, num_samples: int) -> dict[str, Any]:
        return {
            "num_modalities": self.num_modalities,
            "level": self.level,
            "thresholds": _joined(self.thresholds),
            "alpha": self.alpha,
            "function": self.function,
            "update_every": self.update_every,
        }


class SMVSampler(PolicySampler):
    """SMV's re-sampling (Wei et al., CVPR 2024) as a sampler: the originals plus single-modality
    copies of the samples a modality contributes little to, from a Shapley valuation.

    Use it over `bss_sampler.smv.ModalityMaskedDataset` (which reads the stream ids as
    ``(item, mask)``) with a model that zeroes the features of the modalities a mask drops before
    fusion (`bss_sampler.smv.mask_features`). Before each epoch on the schedule
    (`needs_update`), value the training set with `update_values`; the valuation applies as
    BSS's scores do (to the current epoch if it has not started, else from the next
    ``set_epoch``). Epochs before the first valuation (SMV's warm-up) are the loop's: train them
    in random order, as BSS's warm-up; the first valuation then counts for the first epoch the
    sampler draws (`values_epoch`), however many epochs the warm-up took.

    Args:
        data_source: the dataset (only its length ``N`` is used).
        num_modalities: ``M``, the columns of the valuation.
        level: ``"sample"`` (per-sample copies) or ``"modality"`` (copies keeping the weaker
            modality), see the module docstring.
        thresholds: sample level: ``"released"`` (the released code since November 2024:
            open intervals with bounds -0.1, 0.4 and 1), ``"march2024"`` (the rule as first
            released: 0.9 instead of 1), or a sequence of numbers under the same rule
            (`bss_sampler.smv.copy_counts`).
        alpha: modality level: the scale of the copy ratio ``f(gap, alpha)``.
        function: modality level: ``f``, a key of `bss_sampler.smv.GAP_FUNCTIONS`.
        update_every: value the training set every this many epochs (released: 1).
        seed, num_replicas, rank, global_order, drop_last: as for every sampler on
            `bss_sampler.core.PolicySampler`.

    A training loop::

        train = ModalityMaskedDataset(train_set, num_modalities=2)
        loader = DataLoader(train, batch_size=64, sampler=sampler)
        for epoch in range(epochs):
            if sampler.needs_update(epoch):
                sampler.update_values(model, value_loader, forward=valuation_forward)
            sampler.set_epoch(epoch)
            for item, mask in loader:
                ...                                 # model(item, mask=mask), loss, step
    """

    policy: SMVPolicy
    varies_epoch_length = SMVPolicy.varies_epoch_length
    no_values_hint = (
        "has no modality valuation yet: call sampler.update_values(model, loader, forward=...) "
        "(or sampler.set_values(contributions)) before iterating"
    )

    def __init__(
        self,
        data_source: Sized,
        num_modalities: int = 2,
        *,
        level: str = "sample",
        thresholds: str | Sequence[float] = "released",
        alpha: float = 1.0,
        function: str = "linear",
        update_every: int = 1,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        global_order: bool = False,
        drop_last: bool = False,
    ) -> None:
        policy = SMVPolicy(
            num_modalities=num_modalities,
            level=level,
            thresholds=thresholds,
            alpha=alpha,
            function=function,
            update_every=update_every,
        )
        super().__init__(
            data_source,
            policy,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            global_order=global_order,
            drop_last=drop_last,
        )
        self._last_report: ValuationReport | None = None

    num_modalities = property(lambda self: self.policy.num_modalities, doc="``M``.")
    level = property(lambda self: self.policy.level, doc='``"sample"`` or ``"modality"``.')

    @property
    def contributions(self) -> Tensor | None:
        """The newest ``(N, M)`` contributions (a copy), or ``None``: what the next epoch uses."""
        newest = self._newest_values()
        return None if newest is None else newest.clone()

    @property
    def last_report(self) -> ValuationReport | None:
        """What the newest `update_values` saw (per-modality mean contribution, the fraction of
        samples each modality contributes nothing to, accuracies); ``None`` after `set_values`
        and `load_state_dict` (it is not checkpointed)."""
        return self._last_report

    def set_values(self, values: Tensor | Sequence[Any], name: str = "contributions") -> Tensor:
        """Use ``(N, M)`` contributions (e.g. `bss_sampler.smv.ModalityValuator.compute`'s)."""
        self._last_report = None
        return super().set_values(values, name)

    def update_values(
        self,
        model: nn.Module,
        loader: Iterable[Any],
        *,
        forward: ValuationForward,
        progress: bool = True,
    ) -> Tensor:
        """Value every sample with one pass of ``model`` over ``loader`` and use the values.

        ``forward(model, batch)`` returns ``(coalition_logits, targets, indices or None)`` with
        the ``(2^M - 1, B, C)`` fused logits of every non-empty coalition of modalities (e.g.
        from `bss_sampler.smv.coalition_logits`). The pass is `bss_sampler.smv.valuate_dataset`:
        eval mode, one all-reduce under a process group, every rank the same values. Returns
        the contributions; the pass's report is then `last_report`.
        """
        values, report = valuate_dataset(
            model, loader, self.num_samples, self.num_modalities, forward, progress=progress
        )
        used = self.set_values(values)
        self._last_report = report
        return used

    def _loaded(self) -> None:
        self._last_report = None
