"""The learned scheduler (paper Eq. 9-11): EMA scores and softmax-weighted epoch orders.

`SoftmaxPolicy` blends each new valuation into the last with Eq. 9's EMA and orders an epoch with
`bss_sampler.ordering.weighted_permutation` (Eq. 10-11); `LearnedBalanceSampler` is the public
sampler over it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from typing import Any

import torch
from torch import Tensor

from ._checks import check_choice, check_int, check_real
from .balance import BalanceSampler, refuse_scoring_settings
from .core import OrderPolicy
from .ordering import weighted_permutation
from .presets import Preset, get_preset

__all__ = ["LearnedBalanceSampler", "SoftmaxPolicy"]


class SoftmaxPolicy(OrderPolicy):
    """Every epoch all ``N`` samples, drawn without replacement with ``p = softmax(s / T)``."""

    def __init__(
        self,
        *,
        beta: float | None,
        update_every: int | None,
        temperature: float,
        probabilities: str | None,
        order: str,
        preset: Preset,
    ) -> None:
        self.beta = check_real("beta", preset.beta if beta is None else beta, 0.0, 1.0)
        self.update_every = check_int(
            "update_every", preset.update_every if update_every is None else update_every, 1
        )
        self.temperature = check_real(
            "temperature", temperature, 0.0, low_open=True, expected="be a positive finite number"
        )
        self.probabilities = check_choice(
            "probabilities",
            preset.probabilities if probabilities is None else probabilities,
            ("softmax", "linear"),
        )
        self.order = check_choice(
            "order", order, ("balanced_first", "imbalanced_first", "balanced_last")
        )
        self.num_updates = 0

    def last_scheduled(self, epoch: int) -> int | None:
        """The last multiple of ``update_every`` (``k = floor(t / E)`` of Eq. 9)."""
        return epoch - epoch % self.update_every

    def blend(self, old: Tensor | None, new: Tensor) -> Tensor:
        """Eq. 9: ``(1 - beta) s_old + beta s_new``; the first scores are taken as they are."""
        if old is None or self.num_updates == 0:
            return new
        blended = (1.0 - self.beta) * old + self.beta * new
        self.check(blended, "the scores after the EMA")
        return blended

    def updated(self) -> None:
        self.num_updates += 1

    def _signed(self, scores: Tensor) -> Tensor:
        return -scores if self.order == "imbalanced_first" else scores

    def untempered_log_weights(self, scores: Tensor) -> Tensor:
        """``T log p`` up to a constant: ``+-s`` (softmax) or ``log(1 +- s + 0.01)`` (linear)."""
        signed = self._signed(scores)
        if self.probabilities == "softmax":
            return signed
        return (1.0 + signed + 0.01).log_()

    def check(self, values: Tensor, name: str) -> None:
        """``probabilities="linear"`` needs positive weights ``1 +- s + 0.01``: refused when the
        scores arrive (`set_scores`, `update_scores`, `load_state_dict`), not at ``iter()``."""
        if self.probabilities != "linear" or (1.0 + self._signed(values) + 0.01 > 0).all():
            return
        flipped = self.order == "imbalanced_first"
        bound, sign = ("< 1.01", "-") if flipped else ("> -1.01", "+")
        raise ValueError(
            f"probabilities='linear' needs {name} {bound} (weights 1 {sign} s + 0.01 > 0), "
            f"got {name} from {values.min().item():.4g} to {values.max().item():.4g}"
        )

    def epoch_order(self, epoch: int, values: Tensor, generator: torch.Generator) -> Tensor:
        logits = self.untempered_log_weights(values)
        drawn = weighted_permutation(logits, generator, temperature=self.temperature)
        return drawn.flip(0) if self.order == "balanced_last" else drawn

    def config(self, num_samples: int) -> dict[str, Any]:
        return {
            "order": self.order,
            "beta": self.beta,
            "update_every": self.update_every,
            "temperature": self.temperature,
            "probabilities": self.probabilities,
        }

    def extra_state(self) -> dict[str, Any]:
        """``num_updates``: how many EMA steps of Eq. 9 were taken."""
        return {"num_updates": self.num_updates}

    def check_extra_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        if "num_updates" not in state:  # version 1: at least one update per set of scores
            return {"num_updates": ("scores" in state) + ("next_scores" in state)}
        return {"num_updates": check_int("state_dict['num_updates']", state["num_updates"], 0)}

    def load_extra_state(self, extra: Mapping[str, Any]) -> None:
        self.num_updates = extra["num_updates"]


class LearnedBalanceSampler(BalanceSampler):
    """Every epoch a weighted permutation of all samples, balanced ones first (Eq. 9-11).

    Each `update_scores`/`set_scores` call blends the new scores into the newest with the EMA of
    Eq. 9 (the first call sets them). Each epoch yields all ``N`` samples once, drawn without
    replacement with ``p = softmax(s / temperature)`` (Eq. 10-11): an exact Plackett-Luce draw
    via exponential keys, so high-scoring (balanced) samples tend to come first.

    Args:
        data_source: the dataset (only its length is used).
        beta: weight of the new scores in the EMA, in ``[0, 1]`` (1 = no EMA); preset default.
        update_every: ``E``, re-score every this many epochs; preset default (paper 5).
        temperature: ``T > 0`` of ``softmax(s / T)``; smaller is closer to sorted order.
        probabilities: ``"softmax"`` (Eq. 10) or ``"linear"``, the released code's
            ``p ~ 1 + s + 0.01`` (raised to ``1 / T``); preset default.
        order: ``"balanced_first"`` (the paper); ``"imbalanced_first"``: the draw with the scores
            negated (``softmax(-s / T)``, or the released Twitter script's ``p ~ 1 - s + 0.01``);
            ``"balanced_last"``: the ``"balanced_first"`` draw read backwards.
        preset: ``"paper"`` or ``"official"`` (E=1, no EMA, linear probabilities; and
            `update_scores` scores in train mode); explicit arguments win over it. See
            `bss_sampler.presets`.
        seed: seeds every epoch's order together with the epoch.
        num_replicas: ranks to shard over; ``None``: the process group's, as ``DistributedSampler``.
        rank: this rank, in ``[0, num_replicas - 1]``; ``None``: the process group's.
        global_order: the whole epoch on every rank, for wrappers that shard it themselves.
        drop_last: trim the epoch to a multiple of ``num_replicas`` instead of padding it.

    The scoring settings (``alpha``, ``criteria``, ``train_mode``) are arguments of
    `update_scores`. A training loop (Algorithm 1) that resumes exactly from a checkpoint taken
    at any step, with any ``num_workers``::

        loader = DataLoader(train_set, batch_size=64, sampler=sampler, num_workers=2)
        for epoch in range(start_epoch, epochs):      # start_epoch: the checkpoint's epoch
            if sampler.needs_update(epoch):            # before epoch 0, then on schedule
                sampler.update_scores(model, score_loader)
            sampler.set_epoch(epoch)
            consumed = 0
            for batch in loader:
                ...                                    # forward, backward, step
                consumed += len(batch[-1])
                checkpoint = {"epoch": epoch, "sampler": sampler.state_dict(consumed=consumed)}

    Warning:
        Call ``set_epoch(epoch)`` before every epoch, as for ``DistributedSampler``: without it
        every epoch repeats the same order (and the heuristic sampler stays at its first
        subset). A second pass over the same epoch warns once.

    >>> import torch
    >>> sampler = LearnedBalanceSampler(range(4), temperature=0.01)
    >>> _ = sampler.set_scores(torch.tensor([0.0, 1.0, -1.0, 0.5]))
    >>> list(sampler)
    [1, 3, 0, 2]
    """

    policy: SoftmaxPolicy
    varies_epoch_length = SoftmaxPolicy.varies_epoch_length

    def __init__(
        self,
        data_source: Sized,
        *,
        beta: float | None = None,
        update_every: int | None = None,
        temperature: float = 1.0,
        probabilities: str | None = None,
        order: str = "balanced_first",
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
        policy = SoftmaxPolicy(
            beta=beta,
            update_every=update_every,
            temperature=temperature,
            probabilities=probabilities,
            order=order,
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

    beta = property(lambda self: self.policy.beta, doc="``beta`` of Eq. 9.")
    update_every = property(lambda self: self.policy.update_every, doc="``E`` of Eq. 9.")
    temperature = property(lambda self: self.policy.temperature, doc="``T`` of Eq. 10.")
    probabilities = property(lambda self: self.policy.probabilities, doc="Softmax or linear.")
    order = property(lambda self: self.policy.order, doc="Which samples come first.")
    num_updates = property(lambda self: self.policy.num_updates, doc="EMA steps taken (Eq. 9).")

    def log_weights(self) -> Tensor:
        """``log p`` up to a constant: ``s / T`` (softmax) or ``log(1 + s + 0.01) / T`` (linear).

        For the current epoch's scores; with ``order="imbalanced_first"`` the scores negated.
        """
        return self.policy.untempered_log_weights(self._require_values()) / self.policy.temperature

    def sampling_probabilities(self) -> Tensor:
        """``p(x_i)`` of Eq. 10 (or its linear variant): float32 ``(N,)`` summing to 1."""
        return torch.softmax(self.log_weights(), dim=0)
