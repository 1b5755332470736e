"""The heuristic scheduler (paper Eq. 7-8): balanced samples first, then a growing subset.

`CurriculumPolicy` orders an epoch with `bss_sampler.ordering.shuffled_prefix` of the ranking of
the scores, cut at `bss_sampler.pacing.paced_count`; `HeuristicCurriculumSampler` is the public
sampler over it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sized
from typing import Any, Union

import torch
from torch import Tensor

from ._checks import check_choice, check_int, check_real
from .balance import BalanceSampler, refuse_scoring_settings
from .core import OrderPolicy, user_stacklevel
from .ordering import ranking, shuffled_prefix
from .pacing import PACING_FUNCTIONS, EpochFraction, paced_count
from .presets import Preset, get_preset

__all__ = ["CurriculumPolicy", "HeuristicCurriculumSampler", "Pacing"]

Pacing = Union[str, EpochFraction]
"""A key of `bss_sampler.pacing.PACING_FUNCTIONS` or an ``epoch -> fraction`` callable."""

_FINGERPRINT_EPOCHS = 128  # epochs whose sizes identify a pacing callable (and are checked)
_CALLABLE = "callable:"  # a checkpoint's pacing: this, then the callable's sizes by epoch


class CurriculumPolicy(OrderPolicy):
    """Epoch ``t``: the top ``max(1, floor(N * lambda(t)))`` ranked samples, shuffled (Eq. 8)."""

    varies_epoch_length = True

    def __init__(
        self,
        *,
        lambda0: float,
        t_grow: float,
        pacing: Pacing,
        order: str,
        rescore_every: int | None,
        preset: Preset,
    ) -> None:
        self.lambda0 = check_real("lambda0", lambda0, 0.0, 1.0, low_open=True)
        self.t_grow = check_real(
            "t_grow", t_grow, 0.0, None, low_open=True, expected="be a positive number of epochs"
        )
        if isinstance(pacing, str):
            check_choice("pacing", pacing, list(PACING_FUNCTIONS))
        elif not callable(pacing):
            raise ValueError(
                f"pacing must be one of {list(PACING_FUNCTIONS)} or a callable, got {pacing!r}"
            )
        self.pacing = pacing
        self.order = check_choice("order", order, ("balanced_first", "imbalanced_first"))
        self.rescore_every = (
            None if rescore_every is None else check_int("rescore_every", rescore_every, 1)
        )
        self.pacing_offset = preset.pacing_offset
        self._ranked: tuple[Tensor, Tensor] | None = None  # (scores, their ranking)
        if callable(pacing):  # refused now rather than at the first epoch that reaches the value
            for epoch in range(_FINGERPRINT_EPOCHS):
                self.fraction(epoch)

    def fraction(self, epoch: int) -> float:
        """``lambda(t)`` of Eq. 7 at ``t = epoch + pacing_offset``, checked to lie in (0, 1]."""
        t = check_int("epoch", epoch, 0) + self.pacing_offset
        if isinstance(self.pacing, str):
            value = PACING_FUNCTIONS[self.pacing](t, lambda0=self.lambda0, t_grow=self.t_grow)
        else:
            value = self.pacing(t)
        return check_real(
            f"pacing({t})", value, 0.0, 1.0, low_open=True, expected="return a fraction in (0, 1]"
        )

    def epoch_size(self, epoch: int, values: Tensor | None, num_samples: int) -> int:
        """``max(1, floor(N * lambda(t)))`` (Eq. 8) exactly, by `bss_sampler.pacing.paced_count`."""
        self.fraction(epoch)  # checks a callable's value
        t = epoch + self.pacing_offset
        return paced_count(self.pacing, t, num_samples, lambda0=self.lambda0, t_grow=self.t_grow)

    def ranking(self, scores: Tensor) -> Tensor:
        """All samples from the first to the last to be admitted (ties: lower index first)."""
        if self._ranked is None or self._ranked[0] is not scores:
            descending = self.order == "balanced_first"
            self._ranked = (scores, ranking(scores, descending=descending))
        return self._ranked[1]

    def epoch_order(self, epoch: int, values: Tensor, generator: torch.Generator) -> Tensor:
        count = self.epoch_size(epoch, values, len(values))
        return shuffled_prefix(self.ranking(values), count, generator)

    def last_scheduled(self, epoch: int) -> int | None:
        """Every ``rescore_every`` epochs; never when it is ``None`` (the paper)."""
        if self.rescore_every is None:
            return None
        return epoch - epoch % self.rescore_every

    def _pacing_id(self, num_samples: int) -> str:
        """A named pacing's name; a callable is identified by its epoch sizes, not its module (a
        script run as ``__main__`` and later imported keeps its checkpoints)."""
        if isinstance(self.pacing, str):
            return self.pacing
        return _CALLABLE + ",".join(
            str(self.epoch_size(t, None, num_samples)) for t in range(_FINGERPRINT_EPOCHS)
        )

    def config(self, num_samples: int) -> dict[str, Any]:
        return {
            "order": self.order,
            "lambda0": self.lambda0,
            "t_grow": self.t_grow,
            "pacing": self._pacing_id(num_samples),
            "rescore_every": -1 if self.rescore_every is None else self.rescore_every,
        }

    def callable_name(self) -> str | None:
        """The name bss-sampler 0.1.0 recorded for a pacing callable (``None``: a named pacing)."""
        if isinstance(self.pacing, str):
            return None
        return str(getattr(self.pacing, "__qualname__", type(self.pacing).__name__))

    def named_only(self, saved: Any) -> bool:
        """Whether a checkpoint's ``saved`` pacing is a callable recorded by its name alone (as
        0.1.0 wrote it) and that name is this sampler's callable's: its sizes cannot be
        checked."""
        name = self.callable_name()
        return name is not None and str(saved) == name and str(saved) not in PACING_FUNCTIONS

    def _described(self, pacing: str) -> str:
        if pacing.startswith(_CALLABLE):
            return "a pacing callable"
        if pacing in PACING_FUNCTIONS:
            return f"pacing={pacing!r}"
        return f"a pacing callable named {pacing!r} (its name is all bss-sampler 0.1.0 recorded)"

    def mismatch(self, key: str, saved: Any, value: Any) -> str | None:
        """Pacings: two callables name the first epoch whose sizes differ, not all 128 of them;
        a callable recorded by 0.1.0 under this callable's name loads (the sampler warns that
        its sizes could not be checked); otherwise both are described and the remedy named."""
        if key != "pacing":
            return super().mismatch(key, saved, value)
        old, new = str(saved), str(value)
        if old.startswith(_CALLABLE) and new.startswith(_CALLABLE):
            old_sizes, new_sizes = (
                old[len(_CALLABLE) :].split(","),
                new[len(_CALLABLE) :].split(","),
            )
            if old_sizes == new_sizes:
                return None
            pairs = enumerate(zip(old_sizes, new_sizes))
            epoch = next((t for t, (a, b) in pairs if a != b), len(new_sizes))
            return (
                f"state_dict was saved with a pacing callable giving {old_sizes[epoch]} samples "
                f"at epoch {epoch}, this sampler's pacing gives {new_sizes[epoch]}"
            )
        if self.named_only(saved):
            return None
        mine = self.callable_name()
        this = self._described(new) + ("" if mine is None else f" ({mine!r})")
        wanted = (
            f"pacing={old!r}"
            if old in PACING_FUNCTIONS
            else "the pacing function it was saved with"
        )
        return (
            f"state_dict was saved with {self._described(old)}, this sampler has {this}: build "
            f"the sampler with {wanted}"
        )


class HeuristicCurriculumSampler(BalanceSampler):
    """Balanced samples first, then a growing subset (paper Eq. 7-8, heuristic scheduler).

    Samples are ranked once by balance score. Epoch ``t`` yields the top
    ``max(1, floor(N * lambda(t)))`` ranked samples in a seeded random order, where ``lambda`` is
    the pacing function (Eq. 7's root function by default).

    Args:
        data_source: the dataset (only its length is used).
        lambda0: initial fraction ``lambda(0)``, in ``(0, 1]``.
        t_grow: epoch at which the whole dataset is reached, ``> 0``.
        pacing: ``"root"`` (Eq. 7), ``"linear"``, ``"baby_step"``, or a callable
            ``epoch -> fraction in (0, 1]`` (then ``lambda0`` and ``t_grow`` are unused; it is
            checked over the first 128 epochs when the sampler is built).
        order: ``"balanced_first"`` (the paper) or ``"imbalanced_first"`` (the anti-curriculum of
            the paper's Figure 1: the scores negated).
        rescore_every: re-rank every this many epochs (``needs_update``); ``None``: scored once
            before training, as in the paper.
        preset: ``"paper"`` or ``"official"`` (pacing evaluated at ``epoch + 1``; and
            `update_scores` scores in train mode); see `bss_sampler.presets`.
        seed: seeds every epoch's order together with the epoch.
        num_replicas: ranks to shard over; ``None``: the process group's, as ``DistributedSampler``.
        rank: this rank, in ``[0, num_replicas - 1]``; ``None``: the process group's.
        global_order: the whole epoch on every rank, for wrappers that shard it themselves.
        drop_last: trim the epoch to a multiple of ``num_replicas`` instead of padding it.

    The scoring settings (``alpha``, ``criteria``, ``train_mode``) are arguments of
    `update_scores`. ``len(sampler)`` is the current epoch's count, so it grows with
    ``set_epoch`` (`varies_epoch_length`); `epoch_length` and `total_batches` give the whole
    schedule ahead of time.

    Warning:
        Call ``set_epoch(epoch)`` before every epoch, as for ``DistributedSampler``: without it
        the sampler stays at its first subset. A second pass over the same epoch warns once.
        The training loop of `LearnedBalanceSampler` resumes exactly with this sampler too.

    >>> import torch
    >>> sampler = HeuristicCurriculumSampler(range(10), lambda0=0.3, t_grow=4)
    >>> _ = sampler.set_scores(torch.arange(10.0))
    >>> sorted(sampler)
    [7, 8, 9]
    >>> sampler.set_epoch(4)
    >>> len(sampler)
    10
    """

    policy: CurriculumPolicy
    varies_epoch_length = CurriculumPolicy.varies_epoch_length

    def __init__(
        self,
        data_source: Sized,
        *,
        lambda0: float = 0.1,
        t_grow: float = 40,
        pacing: Pacing = "root",
        order: str = "balanced_first",
        rescore_every: int | None = None,
        preset: str = "paper",
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        global_order: bool = False,
        drop_last: bool = False,
        **removed: Any,
    ) -> None:
        refuse_scoring_settings(type(self).__name__, removed)
        chosen = get_preset(preset)
        policy = CurriculumPolicy(
            lambda0=lambda0,
            t_grow=t_grow,
            pacing=pacing,
            order=order,
            rescore_every=rescore_every,
            preset=chosen,
        )
        super().__init__(
            data_source,
            policy,
            preset=chosen,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            global_order=global_order,
            drop_last=drop_last,
        )

    lambda0 = property(lambda self: self.policy.lambda0, doc="``lambda(0)`` of Eq. 7.")
    t_grow = property(lambda self: self.policy.t_grow, doc="Epoch where Eq. 7 reaches 1.")
    pacing = property(lambda self: self.policy.pacing, doc="The pacing function or its name.")
    order = property(lambda self: self.policy.order, doc="Balanced or imbalanced first.")
    rescore_every = property(lambda self: self.policy.rescore_every, doc="Re-ranking period.")

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict` (see `bss_sampler.balance.BalanceSampler.load_state_dict`).

        A state written by bss-sampler 0.1.0 with a pacing callable recorded only that
        callable's name: it loads into a sampler whose callable has that name, with a warning
        that the sizes it gave could not be compared (a state saved now records them).
        """
        super().load_state_dict(state)
        saved = state["config"].get("pacing")
        if self.policy.named_only(saved):
            warnings.warn(
                f"state_dict was saved by bss-sampler 0.1.0 with a pacing callable it recorded "
                f"by its name, {saved!r}, only: the subsets it gave cannot be compared with "
                "this sampler's pacing of the same name. If it is another function, the resumed "
                "epochs use other subsets than the run that saved it. Save the state again "
                "(sampler.state_dict()) to record the pacing's sizes",
                stacklevel=user_stacklevel(),
            )

    def fraction(self, epoch: int | None = None) -> float:
        """``lambda(t)``: the fraction of ranked samples used at ``epoch`` (default: current)."""
        return self.policy.fraction(self.epoch if epoch is None else epoch)

    def ranking(self) -> Tensor:
        """All samples from the first to the last to be admitted (ties: lower index first)."""
        return self.policy.ranking(self._require_values())
