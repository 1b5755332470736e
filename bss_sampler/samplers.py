"""The two public samplers: heuristic curriculum (Eq. 7-8) and learned balance (Eq. 9-11).

Both share a small private base that owns what every sampler here needs: the scores, the epoch,
the seed, the optional distributed shard and the checkpoint state. An epoch's global order is a
pure function of ``(seed, epoch, scores)``, computed with a CPU generator on every rank; the
global RNG is never touched. ``num_replicas=None`` yields the global order (so that Lightning's or
Accelerate's wrappers can shard it); explicit ``num_replicas``/``rank`` shard it exactly like
``torch.utils.data.DistributedSampler``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from itertools import chain
from typing import Any, Union

import torch
from torch import Tensor, nn
from torch.utils.data import Sampler

from . import _dist
from .functional import CRITERIA
from .ordering import (
    epoch_generator,
    shard,
    shard_size,
    shuffled_prefix,
    weighted_permutation,
)
from .ordering import ranking as rank_scores
from .pacing import PACING_FUNCTIONS, EpochFraction
from .presets import get_preset
from .scorer import check_alpha, check_criteria
from .scoring import Forward, score_dataset

__all__ = ["HeuristicCurriculumSampler", "LearnedBalanceSampler"]

Pacing = Union[str, EpochFraction]

_STATE_VERSION = 1
_CHUNK = 1 << 16


def _check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class _ScoredSampler(Sampler[int]):
    """Scores, epoch, seed, sharding and checkpoint state shared by both samplers."""

    _orders: tuple[str, ...] = ()

    def __init__(
        self,
        data_source: Sized,
        *,
        order: str,
        alpha: float,
        criteria: Sequence[str],
        preset: str,
        seed: int,
        num_replicas: int | None,
        rank: int | None,
        drop_last: bool,
        train_mode: bool | None,
    ) -> None:
        super().__init__()
        self.num_samples = len(data_source)
        if self.num_samples < 1:
            raise ValueError("data_source must hold at least one sample, got an empty one")
        self.preset = get_preset(preset)
        self.order = _check_choice("order", order, self._orders)
        self.alpha = check_alpha(alpha)
        self.criteria = check_criteria(criteria)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.train_mode = self.preset.train_mode if train_mode is None else bool(train_mode)
        self.num_replicas, self.rank = self._resolve_shard(num_replicas, rank)
        self.epoch = 0
        self._scores: Tensor | None = None
        self._resume = 0  # indices of this epoch already yielded before a checkpoint
        self._order = torch.empty(0, dtype=torch.long)
        self._chunk_end = 0
        self._chunk: Iterator[int] = iter(())
        self._iterator: Iterator[int] | None = None

    @staticmethod
    def _resolve_shard(num_replicas: int | None, rank: int | None) -> tuple[int | None, int | None]:
        if num_replicas is None and rank is None:
            return None, None
        if num_replicas is None or rank is None:
            if not _dist.is_distributed():
                raise ValueError(
                    "num_replicas and rank must be given together when no process group is "
                    f"initialised, got num_replicas={num_replicas!r}, rank={rank!r}"
                )
            num_replicas = _dist.world_size() if num_replicas is None else num_replicas
            rank = _dist.rank() if rank is None else rank
        _check_int("num_replicas", num_replicas, 1)
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(
                f"rank must lie in [0, {num_replicas - 1}] (num_replicas - 1), got {rank!r}"
            )
        return num_replicas, rank

    # -- scores ---------------------------------------------------------------------------------
    @property
    def scores(self) -> Tensor | None:
        """The balance scores the epoch orders are drawn from (a copy), or ``None``."""
        return None if self._scores is None else self._scores.clone()

    def set_scores(self, scores: Tensor | Sequence[float]) -> Tensor:
        """Use ``scores`` (one per sample, higher = more balanced), e.g. from an online scorer.

        Returns the scores now in use (for the learned sampler, after the EMA of Eq. 9).
        """
        values = torch.as_tensor(scores).detach().to("cpu", torch.float32)
        if values.shape != (self.num_samples,):
            raise ValueError(
                f"scores must have shape ({self.num_samples},) (one per sample), "
                f"got {tuple(values.shape)}"
            )
        bad = ~values.isfinite()
        if bad.any():
            first = bad.nonzero().flatten()[:5].tolist()
            raise ValueError(f"scores must be finite, got NaN or inf at indices {first}")
        self._apply_scores(values.clone())
        assert self._scores is not None
        return self._scores.clone()

    def update_scores(
        self,
        model: nn.Module,
        loader: Iterable[Any],
        *,
        forward: Forward | None = None,
        train_mode: bool | None = None,
        progress: bool = True,
    ) -> Tensor:
        """Score every sample with one pass of ``model`` over ``loader`` and use the scores.

        See :func:`bss_sampler.score_dataset` for the batch conventions; ``loader`` must visit
        the dataset exactly once (under ``torchrun``: each rank its unshuffled share). Every rank
        ends with identical scores. Returns the scores now in use.
        """
        scores = score_dataset(
            model,
            loader,
            self.num_samples,
            alpha=self.alpha,
            criteria=self.criteria,
            forward=forward,
            train_mode=self.train_mode if train_mode is None else train_mode,
            progress=progress,
        )
        return self.set_scores(scores)

    def _apply_scores(self, scores: Tensor) -> None:
        raise NotImplementedError

    def needs_update(self, epoch: int) -> bool:
        """Whether Algorithm 1 re-scores before ``epoch``."""
        raise NotImplementedError

    # -- epochs ---------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next ``iter()`` yields (0-based, explicit)."""
        _check_int("epoch", epoch, 0)
        if epoch != self.epoch:
            self._resume = 0  # a checkpoint's position belongs to its own epoch only
        self._iterator = None  # the next iter() starts this epoch (after a pending resume)
        self.epoch = epoch

    def _epoch_size(self) -> int:
        return self.num_samples

    def _global_order(self, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def _sharded(self, total: int) -> int:
        if self.num_replicas is None:
            return total
        return shard_size(total, self.num_replicas, self.drop_last)

    def __len__(self) -> int:
        """Indices this rank receives in the current epoch."""
        return self._sharded(self._epoch_size())

    def __iter__(self) -> Iterator[int]:
        if self._scores is None:
            raise RuntimeError(
                f"{type(self).__name__} has no balance scores yet: call "
                "sampler.update_scores(model, loader) (or set_scores(scores)) before iterating"
            )
        order = self._global_order(epoch_generator(self.seed, self.epoch))
        if self.num_replicas is not None and self.rank is not None:
            order = shard(order, self.num_replicas, self.rank, self.drop_last)
        start, self._resume = self._resume, 0
        self._order = order
        self._chunk_end = start
        self._chunk = iter(())
        # Python ints are made one chunk at a time (36 bytes each), not for the whole epoch;
        # chain() keeps the per-index cost in C.
        self._iterator = chain.from_iterable(
            map(self._make_chunk, range(start, len(order), _CHUNK))
        )
        return self._iterator

    def _make_chunk(self, begin: int) -> Iterator[int]:
        self._chunk_end = min(begin + _CHUNK, len(self._order))
        self._chunk = iter(self._order[begin : self._chunk_end].tolist())
        return self._chunk

    def _yielded(self) -> int:
        """Indices of this epoch handed out so far (position of the running iterator)."""
        if self._iterator is None:
            return self._resume
        return self._chunk_end - operator.length_hint(self._chunk)

    # -- checkpoints ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "alpha": self.alpha,
            "criteria": ",".join(self.criteria),
            "preset": self.preset.name,
            "num_replicas": -1 if self.num_replicas is None else self.num_replicas,
            "rank": -1 if self.rank is None else self.rank,
            "drop_last": self.drop_last,
        }

    def state_dict(self) -> dict[str, Any]:
        """Scores, epoch, indices already yielded this epoch, seed and config.

        Plain tensors, ints, floats, bools and strings only: ``torch.save`` needs no pickle.
        """
        state: dict[str, Any] = {
            "version": _STATE_VERSION,
            "sampler": type(self).__name__,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "epoch": self.epoch,
            "yielded": self._yielded(),
            "config": self._config(),
        }
        if self._scores is not None:
            state["scores"] = self._scores.clone()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next ``iter()`` yields exactly the rest of that epoch.

        Raises ``ValueError`` on a state from another sampler type, dataset length or config.
        """
        for key in ("version", "sampler", "num_samples", "seed", "epoch", "yielded", "config"):
            if key not in state:
                raise KeyError(f"state_dict lacks the field {key!r}")
        if state["sampler"] != type(self).__name__:
            raise ValueError(
                f"state_dict is from a {state['sampler']}, not a {type(self).__name__}"
            )
        if state["num_samples"] != self.num_samples:
            raise ValueError(
                f"state_dict is for a dataset of {state['num_samples']} samples, this sampler's "
                f"data_source has {self.num_samples}"
            )
        mine = self._config()
        config = state["config"]
        for key, value in mine.items():
            if key == "rank":  # ranks advance in lockstep: any rank's state resumes any other
                continue
            if key not in config or config[key] != value:
                raise ValueError(
                    f"state_dict was saved with {key}={config.get(key)!r}, this sampler has "
                    f"{key}={value!r}"
                )
        epoch = _check_int("state_dict['epoch']", state["epoch"], 0)
        scores = state.get("scores")
        if scores is not None and (
            not isinstance(scores, Tensor) or scores.shape != (self.num_samples,)
        ):
            raise ValueError(
                f"state_dict['scores'] must be a tensor of shape ({self.num_samples},)"
            )
        self.seed = state["seed"]
        self.epoch = epoch
        self._scores = None if scores is None else scores.to("cpu", torch.float32).clone()
        self._load_extra(state)
        yielded = _check_int("state_dict['yielded']", state["yielded"], 0)
        if yielded > len(self):
            raise ValueError(
                f"state_dict['yielded'] must lie in [0, {len(self)}] for epoch {epoch}, "
                f"got {yielded}"
            )
        self._resume = yielded
        self._iterator = None

    def _load_extra(self, state: Mapping[str, Any]) -> None:
        """Subclass state beyond the shared fields."""


class HeuristicCurriculumSampler(_ScoredSampler):
    """Balanced samples first, then a growing subset (paper Eq. 7-8, heuristic scheduler).

    Samples are ranked once by balance score. Epoch ``t`` yields the top
    ``max(1, floor(N * lambda(t)))`` ranked samples in a seeded random order, where ``lambda`` is
    the pacing function (Eq. 7's root function by default).

    Args:
        data_source: the dataset (only its length is used).
        lambda0: initial fraction ``lambda(0)``, in ``(0, 1]``.
        t_grow: epoch at which the whole dataset is reached, ``> 0``.
        pacing: ``"root"`` (Eq. 7), ``"linear"``, ``"baby_step"``, or a callable
            ``epoch -> fraction in (0, 1]`` (then ``lambda0`` and ``t_grow`` are unused).
        order: ``"balanced_first"`` (the paper) or ``"imbalanced_first"`` (the anti-curriculum of
            the paper's Figure 1).
        rescore_every: re-rank every this many epochs (``needs_update``); ``None``: scored once
            before training, as in the paper.
        alpha: Eq. 5 weight of the unimodal losses in the scores.
        criteria: Eq. 6 criteria, see :class:`bss_sampler.BalanceScorer`.
        preset: ``"paper"`` or ``"official"`` (pacing evaluated at ``epoch + 1``, scoring in
            train mode); see :mod:`bss_sampler.presets`.
        seed: seeds every epoch's order together with the epoch.
        num_replicas: number of ranks to shard over, like ``DistributedSampler``; ``None``
            yields the global order.
        rank: this process's rank in ``[0, num_replicas - 1]``.
        drop_last: trim the epoch to a multiple of ``num_replicas`` instead of padding it.
        train_mode: score in train mode; ``None`` takes the preset's choice.

    ``len(sampler)`` is the current epoch's count, so it grows with ``set_epoch``.

    >>> import torch
    >>> sampler = HeuristicCurriculumSampler(range(10), lambda0=0.3, t_grow=4)
    >>> _ = sampler.set_scores(torch.arange(10.0))
    >>> sorted(sampler)
    [7, 8, 9]
    >>> sampler.set_epoch(4)
    >>> len(sampler)
    10
    """

    _orders = ("balanced_first", "imbalanced_first")

    def __init__(
        self,
        data_source: Sized,
        *,
        lambda0: float = 0.1,
        t_grow: float = 40,
        pacing: Pacing = "root",
        order: str = "balanced_first",
        rescore_every: int | None = None,
        alpha: float = 0.2,
        criteria: Sequence[str] = CRITERIA,
        preset: str = "paper",
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        train_mode: bool | None = None,
    ) -> None:
        super().__init__(
            data_source,
            order=order,
            alpha=alpha,
            criteria=criteria,
            preset=preset,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            drop_last=drop_last,
            train_mode=train_mode,
        )
        if not (isinstance(lambda0, (int, float)) and 0.0 < lambda0 <= 1.0):
            raise ValueError(f"lambda0 must lie in (0, 1], got {lambda0!r}")
        if not (isinstance(t_grow, (int, float)) and math.isfinite(t_grow) and t_grow > 0):
            raise ValueError(f"t_grow must be a positive number of epochs, got {t_grow!r}")
        if isinstance(pacing, str):
            _check_choice("pacing", pacing, list(PACING_FUNCTIONS))
        elif not callable(pacing):
            raise ValueError(
                f"pacing must be one of {list(PACING_FUNCTIONS)} or a callable, got {pacing!r}"
            )
        if rescore_every is not None:
            _check_int("rescore_every", rescore_every, 1)
        self.lambda0 = float(lambda0)
        self.t_grow = t_grow
        self.pacing = pacing
        self.rescore_every = rescore_every
        self._ranking: Tensor | None = None

    def fraction(self, epoch: int | None = None) -> float:
        """``lambda(t)``: the fraction of ranked samples used at ``epoch`` (default: current)."""
        t = (self.epoch if epoch is None else epoch) + self.preset.pacing_offset
        if isinstance(self.pacing, str):
            value = PACING_FUNCTIONS[self.pacing](t, lambda0=self.lambda0, t_grow=self.t_grow)
        else:
            value = self.pacing(t)
        if not (isinstance(value, (int, float)) and 0.0 < value <= 1.0):
            raise ValueError(f"pacing({t}) must return a fraction in (0, 1], got {value!r}")
        return float(value)

    def needs_update(self, epoch: int) -> bool:
        """True every ``rescore_every`` epochs; never when it is ``None`` (the paper)."""
        return self.rescore_every is not None and epoch % self.rescore_every == 0

    def _apply_scores(self, scores: Tensor) -> None:
        self._scores = scores
        self._ranking = None

    def _epoch_size(self) -> int:
        return max(1, math.floor(self.num_samples * self.fraction()))

    def ranking(self) -> Tensor:
        """All samples from the first to the last to be admitted (ties: lower index first)."""
        if self._scores is None:
            raise RuntimeError("no balance scores yet: call update_scores or set_scores first")
        if self._ranking is None:
            descending = self.order == "balanced_first"
            self._ranking = rank_scores(self._scores, descending=descending)
        return self._ranking

    def _global_order(self, generator: torch.Generator) -> Tensor:
        return shuffled_prefix(self.ranking(), self._epoch_size(), generator)

    def _config(self) -> dict[str, Any]:
        pacing = (
            self.pacing
            if isinstance(self.pacing, str)
            else getattr(self.pacing, "__qualname__", type(self.pacing).__name__)
        )
        return {
            **super()._config(),
            "lambda0": self.lambda0,
            "t_grow": self.t_grow,
            "pacing": pacing,
            "rescore_every": -1 if self.rescore_every is None else self.rescore_every,
        }

    def _load_extra(self, state: Mapping[str, Any]) -> None:
        self._ranking = None


class LearnedBalanceSampler(_ScoredSampler):
    """Every epoch a weighted permutation of all samples, balanced ones first (Eq. 9-11).

    Each :meth:`update_scores`/:meth:`set_scores` call blends the new scores into the old with
    the EMA of Eq. 9 (the first call sets them). Each epoch yields all ``N`` samples once, drawn
    without replacement with ``p = softmax(s / temperature)`` (Eq. 10-11): an exact Plackett-Luce
    draw via exponential keys, so high-scoring (balanced) samples tend to come first.

    Args:
        data_source: the dataset (only its length is used).
        beta: weight of the new scores in the EMA, in ``[0, 1]`` (1 = no EMA); preset default.
        update_every: ``E``, re-score every this many epochs; preset default (paper 5).
        temperature: ``T > 0`` of ``softmax(s / T)``; smaller is closer to sorted order.
        probabilities: ``"softmax"`` (Eq. 10) or ``"linear"``, the released code's
            ``p ~ 1 + s + 0.01`` (raised to ``1 / T``); preset default.
        order: ``"balanced_first"`` (the paper) or ``"balanced_last"``: the same draw read
            backwards.
        alpha: Eq. 5 weight of the unimodal losses in the scores.
        criteria: Eq. 6 criteria, see :class:`bss_sampler.BalanceScorer`.
        preset: ``"paper"`` or ``"official"`` (E=1, no EMA, linear probabilities, train-mode
            scoring); explicit arguments win over it. See :mod:`bss_sampler.presets`.
        seed: seeds every epoch's order together with the epoch.
        num_replicas: number of ranks to shard over, like ``DistributedSampler``; ``None``
            yields the global order.
        rank: this process's rank in ``[0, num_replicas - 1]``.
        drop_last: trim the epoch to a multiple of ``num_replicas`` instead of padding it.
        train_mode: score in train mode; ``None`` takes the preset's choice.

    >>> import torch
    >>> sampler = LearnedBalanceSampler(range(4), temperature=0.01)
    >>> _ = sampler.set_scores(torch.tensor([0.0, 1.0, -1.0, 0.5]))
    >>> list(sampler)
    [1, 3, 0, 2]
    """

    _orders = ("balanced_first", "balanced_last")

    def __init__(
        self,
        data_source: Sized,
        *,
        beta: float | None = None,
        update_every: int | None = None,
        temperature: float = 1.0,
        probabilities: str | None = None,
        order: str = "balanced_first",
        alpha: float = 0.2,
        criteria: Sequence[str] = CRITERIA,
        preset: str = "paper",
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        train_mode: bool | None = None,
    ) -> None:
        super().__init__(
            data_source,
            order=order,
            alpha=alpha,
            criteria=criteria,
            preset=preset,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
            drop_last=drop_last,
            train_mode=train_mode,
        )
        beta = self.preset.beta if beta is None else beta
        if not (isinstance(beta, (int, float)) and 0.0 <= beta <= 1.0):
            raise ValueError(f"beta must lie in [0, 1], got {beta!r}")
        update_every = self.preset.update_every if update_every is None else update_every
        if not (
            isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0
        ):
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
        self.beta = float(beta)
        self.update_every = _check_int("update_every", update_every, 1)
        self.temperature = float(temperature)
        self.probabilities = _check_choice(
            "probabilities",
            self.preset.probabilities if probabilities is None else probabilities,
            ("softmax", "linear"),
        )
        self.num_updates = 0

    def needs_update(self, epoch: int) -> bool:
        """True when ``epoch`` is a multiple of ``update_every`` (``k = floor(t / E)`` of Eq. 9)."""
        return epoch % self.update_every == 0

    def _apply_scores(self, scores: Tensor) -> None:
        if self._scores is None or self.num_updates == 0:
            self._scores = scores
        else:
            self._scores = (1.0 - self.beta) * self._scores + self.beta * scores
        self.num_updates += 1

    def _untempered_log_weights(self) -> Tensor:
        """``T log p`` up to a constant: ``s`` (softmax, no copy) or ``log(1 + s + 0.01)``."""
        if self._scores is None:
            raise RuntimeError("no balance scores yet: call update_scores or set_scores first")
        if self.probabilities == "softmax":
            return self._scores
        weights = 1.0 + self._scores + 0.01
        if (weights <= 0).any():
            raise ValueError(
                "probabilities='linear' needs scores > -1.01 (weights 1 + s + 0.01 > 0), got "
                f"min score {self._scores.min().item():.4g}"
            )
        return weights.log_()

    def log_weights(self) -> Tensor:
        """``log p`` up to a constant: ``s / T`` (softmax) or ``log(1 + s + 0.01) / T`` (linear)."""
        return self._untempered_log_weights() / self.temperature

    def sampling_probabilities(self) -> Tensor:
        """``p(x_i)`` of Eq. 10 (or its linear variant): float32 ``(N,)`` summing to 1."""
        return torch.softmax(self.log_weights(), dim=0)

    def _global_order(self, generator: torch.Generator) -> Tensor:
        order = weighted_permutation(
            self._untempered_log_weights(), generator, temperature=self.temperature
        )
        return order.flip(0) if self.order == "balanced_last" else order

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "beta": self.beta,
            "update_every": self.update_every,
            "temperature": self.temperature,
            "probabilities": self.probabilities,
        }

    def state_dict(self) -> dict[str, Any]:
        """As the base state, plus ``num_updates`` (how many EMA steps of Eq. 9 were taken)."""
        return {**super().state_dict(), "num_updates": self.num_updates}

    def _load_extra(self, state: Mapping[str, Any]) -> None:
        self.num_updates = _check_int("state_dict['num_updates']", state.get("num_updates", 0), 0)
