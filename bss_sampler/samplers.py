"""The two public samplers: heuristic curriculum (Eq. 7-8) and learned balance (Eq. 9-11).

Both share a small private base that owns what every sampler here needs: the scores, the epoch,
the seed, the distributed shard and the checkpoint state. An epoch's global order is a pure
function of ``(seed, epoch, scores)``, computed with a CPU generator on every rank; the global RNG
is never touched.

The contract, in the words of ``torch.utils.data.DistributedSampler`` where it has them:

* **Sharding.** As ``DistributedSampler``: under an initialised process group the sampler shards
  by the group's world size and rank unless ``num_replicas``/``rank`` are given;
  ``global_order=True`` yields the whole order on every rank instead, for wrappers that shard it
  themselves (Accelerate's ``prepare``).
* **Epochs.** ``set_epoch(epoch)`` before every epoch. Each ``iter()`` is independent: it draws
  its epoch's order once and keeps it, whatever happens to the sampler afterwards.
* **Scores.** ``update_scores``/``set_scores`` before an epoch has started apply to that epoch;
  once it has started (or was resumed mid-way) they apply from the next ``set_epoch``. The sampler
  records the epoch its newest scores are for, so ``needs_update(epoch)`` is false for an epoch
  that was already scored, also after a resume.
* **Checkpoints.** ``state_dict(consumed=n)`` saves the position ``n`` samples into the loader's
  current pass; ``state_dict()`` alone saves the position of the sampler's own iterator, which is
  exact only where the loader does not read ahead (``num_workers=0``, or torchdata's
  ``StatefulDataLoader``, which snapshots at dispatch and commits at consumption).
"""

from __future__ import annotations

import math
import operator
import warnings
import weakref
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence, Sized
from itertools import chain
from typing import Any, Union

import torch
from torch import Tensor, nn
from torch.utils.data import Sampler

from . import _dist
from ._checks import check_bool, check_choice, check_int, check_real
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
from .report import BalanceReport
from .scorer import check_alpha, check_criteria
from .scoring import Forward, score_dataset

__all__ = ["HeuristicCurriculumSampler", "LearnedBalanceSampler"]

Pacing = Union[str, EpochFraction]

_STATE_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_CHUNK = 1 << 16
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)
_FINGERPRINT_EPOCHS = 128  # epochs whose sizes identify a custom pacing callable in checkpoints


class _Pass:
    """One ``iter()`` over an epoch's share: its own order and how far it has got.

    The indices are made one chunk of Python ints at a time (36 bytes each) rather than for the
    whole epoch, and ``chain`` keeps the per-index cost in C. The position is read from the
    current chunk's list iterator, so it costs nothing per index.
    """

    __slots__ = (
        "_chunk",
        "_chunk_end",
        "_final",
        "_order",
        "completed",
        "end",
        "iterator",
        "start",
    )

    def __init__(self, order: Tensor, start: int) -> None:
        self._order: Tensor | None = order
        self.start = start
        self.end = len(order)
        self._chunk_end = start
        self._chunk: Iterator[int] = iter(())
        self._final: int | None = None
        self.completed = False
        self.iterator: weakref.ref[Iterator[int]] | None = None

    def _make_chunk(self, begin: int) -> Iterator[int]:
        assert self._order is not None
        self._chunk_end = min(begin + _CHUNK, len(self._order))
        self._chunk = iter(self._order[begin : self._chunk_end].tolist())
        return self._chunk

    def _chunks(self) -> Generator[Iterator[int], None, None]:
        assert self._order is not None
        try:  # reads `start` at the first index: a restored iterator state may still move it
            for begin in range(self.start, len(self._order), _CHUNK):
                yield self._make_chunk(begin)
            self.completed = True
        finally:
            self.close()

    @property
    def alive(self) -> bool:
        """Not exhausted, and its iterator still referenced by someone (a loader, say)."""
        return self._final is None and self.iterator is not None and self.iterator() is not None

    def position(self) -> int:
        """How many of the epoch's share's indices precede the next one this pass yields."""
        if self._final is not None:
            return self._final
        return self._chunk_end - operator.length_hint(self._chunk)

    @property
    def moved(self) -> bool:
        """Whether it yielded anything or reached its end (an untouched pass says nothing)."""
        return self.completed or self.position() > self.start

    def close(self) -> None:
        """Freeze the position and free the order (the pass ended or was dropped)."""
        if self._final is None:
            self._final = self.position()
            self._order, self._chunk = None, iter(())


class _PassIterator(chain[int]):
    """What ``iter(sampler)`` returns: one `_Pass`'s indices (``chain``'s own ``__next__``, so no
    Python call per index), with that pass's position as its own ``state_dict``.

    torchdata's ``StatefulDataLoader`` saves the state of the iterator it draws from next to the
    sampler's and restores it into the iterator it makes on resume. The sampler's own state
    describes one of its live iterators; a framework may hold two of one epoch (Lightning iterates
    a reloaded loader twice, and its workers read the first one ahead), and then only the
    iterator's state says which one the loader was using.
    """

    run: _Pass
    epoch: int
    sampler: _ScoredSampler

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "yielded": self.run.position()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Start this (unstarted) pass where a saved iterator of the same epoch stood; a state
        of another epoch changes nothing (the sampler's restore, or a later ``set_epoch``, chose
        the epoch)."""
        if state.get("epoch") != self.epoch:
            return
        if self.run.moved:
            raise ValueError("an iterator's state is loaded before its first index, not after")
        yielded = check_int("state_dict['yielded']", state.get("yielded"), 0)
        if yielded > self.run.end:
            raise ValueError(
                f"state_dict['yielded'] must lie in [0, {self.run.end}] for epoch {self.epoch}, "
                f"got {yielded}"
            )
        self.run.start = self.run._chunk_end = yielded
        if self.sampler.epoch == self.epoch:
            self.sampler._start = yielded


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
        global_order: bool,
        drop_last: bool,
        train_mode: bool | None,
    ) -> None:
        super().__init__()
        if not isinstance(data_source, Sized):
            raise ValueError(
                f"data_source must be a sized dataset (len() is used), got {type(data_source)!r}"
            )
        self.num_samples = len(data_source)
        if self.num_samples < 1:
            raise ValueError("data_source must hold at least one sample, got an empty one")
        self.preset = get_preset(preset)
        self.order = check_choice("order", order, self._orders)
        self.alpha = check_alpha(alpha)
        self.criteria = check_criteria(criteria)
        self.seed = check_int("seed", seed)
        self.drop_last = check_bool("drop_last", drop_last)
        self.train_mode = (
            self.preset.train_mode if train_mode is None else check_bool("train_mode", train_mode)
        )
        self.global_order = check_bool("global_order", global_order)
        self.num_replicas, self.rank = self._resolve_shard(num_replicas, rank, self.global_order)
        self.epoch = 0
        self._scores: Tensor | None = None  # what the current epoch's order is drawn from
        self._next_scores: Tensor | None = None  # newer scores, for the next epoch
        self._scores_epoch = -1  # the epoch the newest scores are for
        self._last_report: BalanceReport | None = None  # of the newest scores; not checkpointed
        self._start = 0  # where this epoch's first pass starts (a checkpoint's position)
        self._passes: list[_Pass] = []  # this epoch's iterators, oldest first
        self._warned_repeat = False

    @staticmethod
    def _resolve_shard(
        num_replicas: int | None, rank: int | None, global_order: bool
    ) -> tuple[int, int]:
        if global_order:
            if num_replicas is not None or rank is not None:
                raise ValueError(
                    "global_order=True yields the whole order on every rank: leave num_replicas "
                    f"and rank out, got num_replicas={num_replicas!r}, rank={rank!r}"
                )
            return 1, 0
        if (num_replicas is None) != (rank is None) and not _dist.is_initialized():
            raise ValueError(
                "num_replicas and rank must be given together when no process group is "
                f"initialised, got num_replicas={num_replicas!r}, rank={rank!r}"
            )
        replicas = _dist.world_size() if num_replicas is None else num_replicas
        replicas = check_int("num_replicas", replicas, 1)
        rank = _dist.rank() if rank is None else rank
        rank = check_int("rank", rank)
        if not 0 <= rank < replicas:
            raise ValueError(f"rank must lie in [0, {replicas - 1}] (num_replicas - 1), got {rank}")
        return replicas, rank

    # -- scores ---------------------------------------------------------------------------------
    @property
    def scores(self) -> Tensor | None:
        """The newest balance scores (a copy), or ``None``: what the next epoch draws from."""
        newest = self._newest_scores()
        return None if newest is None else newest.clone()

    def _newest_scores(self) -> Tensor | None:
        return self._next_scores if self._next_scores is not None else self._scores

    @property
    def scores_epoch(self) -> int | None:
        """The epoch the newest scores were set for (``None`` before any scores)."""
        return None if self._scores_epoch < 0 else self._scores_epoch

    @property
    def last_report(self) -> BalanceReport | None:
        """What the newest scoring saw: a `bss_sampler.BalanceReport` (per-modality accuracy and
        confidence, imbalance ratio, quantiles of the new scores and of the scores in use after
        the EMA), identical on every rank.

        Set by `update_scores`, and by `set_scores` when given a ``report``; ``None`` before,
        after `set_scores` without one, and after `load_state_dict` (it is not checkpointed).
        """
        return self._last_report

    def _started(self) -> bool:
        """Whether this epoch's order is in use (iterated, resumed, or already superseded)."""
        return bool(self._passes) or self._start > 0 or self._next_scores is not None

    def set_scores(
        self, scores: Tensor | Sequence[float], *, report: BalanceReport | None = None
    ) -> Tensor:
        """Use ``scores`` (one per sample, higher = more balanced), e.g. from an online scorer.

        Before the current epoch has started they apply to it; once it has started (or was
        resumed mid-way) they apply from the next ``set_epoch``, so a started epoch never changes
        its order. Returns the newest scores (for the learned sampler, after the EMA of Eq. 9).

        ``report``: the scorer's `bss_sampler.BalanceScorer.last_report` of these scores; it
        becomes `last_report`, with the quantiles of the returned scores as its
        ``ema_score_quantiles``.
        """
        values = self._check_scores(scores)
        if report is not None and (
            not isinstance(report, BalanceReport) or report.num_samples != self.num_samples
        ):
            raise ValueError(
                f"report must be a BalanceReport of {self.num_samples} samples (the scorer's "
                f"last_report), got {report!r}"
            )
        if self._started():
            self._next_scores = self._blend(self._newest_scores(), values)
            self._scores_epoch = self.epoch + 1
            used = self._next_scores
        else:
            self._scores = self._blend(self._scores, values)
            self._scores_epoch = self.epoch
            self._scores_changed()
            used = self._scores
        self._last_report = None if report is None else report.with_ema_scores(used)
        return used.clone()

    def _check_scores(self, scores: Tensor | Sequence[float]) -> Tensor:
        if scores is None or isinstance(scores, (str, bytes)):
            raise ValueError(
                f"scores must be a tensor or sequence of {self.num_samples} numbers, got {scores!r}"
            )
        try:
            values = torch.as_tensor(scores).detach()
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"scores must be a tensor or sequence of {self.num_samples} numbers, got "
                f"{type(scores).__name__}: {error}"
            ) from None
        if values.dtype == torch.bool or values.is_complex():
            raise ValueError(f"scores must be real numbers, got dtype {values.dtype}")
        if values.shape != (self.num_samples,):
            raise ValueError(
                f"scores must have shape ({self.num_samples},) (one per sample), "
                f"got {tuple(values.shape)}"
            )
        values = values.to("cpu", torch.float64)
        bad = ~values.isfinite()
        if bad.any():
            first = bad.nonzero().flatten()[:5].tolist()
            raise ValueError(f"scores must be finite, got NaN or inf at indices {first}")
        big = values.abs() > _FLOAT32_MAX
        if big.any():
            first = big.nonzero().flatten()[:5].tolist()
            raise ValueError(
                f"scores must fit in float32 (|s| <= {_FLOAT32_MAX:.4g}), got "
                f"{values[big][:5].tolist()} at indices {first}"
            )
        return values.to(torch.float32)

    def update_scores(
        self,
        model: nn.Module,
        loader: Iterable[Any],
        *,
        alpha: float | None = None,
        criteria: Sequence[str] | None = None,
        forward: Forward | None = None,
        train_mode: bool | None = None,
        progress: bool = True,
    ) -> Tensor:
        """Score every sample with one pass of ``model`` over ``loader`` and use the scores.

        See `bss_sampler.score_dataset` for the batch conventions and for ``alpha`` (Eq. 5),
        ``criteria`` (Eq. 6) and ``train_mode``; ``None`` takes the sampler's own. ``loader`` must
        visit the dataset exactly once (under ``torchrun``: each rank its unshuffled share).
        Every rank ends with identical scores. They apply as in `set_scores`. Returns the newest
        scores; what the pass saw (accuracy and confidence per modality, score quantiles) is then
        in `last_report`.
        """
        scores, report = score_dataset(
            model,
            loader,
            self.num_samples,
            alpha=self.alpha if alpha is None else alpha,
            criteria=self.criteria if criteria is None else criteria,
            forward=forward,
            train_mode=self.train_mode if train_mode is None else train_mode,
            progress=progress,
            return_report=True,
        )
        return self.set_scores(scores, report=report)

    def _blend(self, old: Tensor | None, new: Tensor) -> Tensor:
        """The scores in use once ``new`` arrives: the heuristic replaces, the learned averages."""
        return new

    def _scores_changed(self) -> None:
        """Forget what was derived from the current epoch's scores."""

    def _scheduled(self, epoch: int) -> bool:
        raise NotImplementedError

    def needs_update(self, epoch: int) -> bool:
        """Whether Algorithm 1 scores before ``epoch``: no scores yet, or a scheduled re-scoring
        that has not happened for ``epoch`` (false again once it has, also after a resume)."""
        epoch = check_int("epoch", epoch, 0)
        if self._scores is None:
            return True
        return self._scheduled(epoch) and self._scores_epoch != epoch

    # -- epochs ---------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next ``iter()`` yields (0-based, explicit).

        The current epoch (a resumed one included) keeps its position: calling it again is a
        no-op. Another epoch starts from its beginning with the newest scores.
        """
        epoch = check_int("epoch", epoch, 0)
        if epoch == self.epoch:
            return
        self.epoch = epoch
        self._start = 0
        self._passes = []
        if self._next_scores is not None:
            self._scores, self._next_scores = self._next_scores, None
            self._scores_changed()

    def _epoch_size(self, epoch: int) -> int:
        return self.num_samples

    def _global_order(self, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def epoch_length(self, epoch: int | None = None) -> int:
        """Indices this rank receives in the whole of ``epoch`` (default: the current one).

        Known ahead of time (it depends on the pacing, not on the scores), e.g. to plan a
        learning-rate schedule; see also `total_batches`.
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, 0)
        return shard_size(self._epoch_size(epoch), self.num_replicas, self.drop_last)

    def total_batches(self, num_epochs: int, batch_size: int, *, drop_last: bool = False) -> int:
        """Batches a ``DataLoader(batch_size=..., drop_last=...)`` over this sampler yields in
        epochs ``0 .. num_epochs - 1`` on this rank (e.g. ``total_steps`` of ``OneCycleLR``).

        Warns when ``drop_last`` leaves an epoch without any batch (a heuristic epoch smaller
        than a batch).
        """
        num_epochs = check_int("num_epochs", num_epochs, 1)
        batch_size = check_int("batch_size", batch_size, 1)
        drop_last = check_bool("drop_last", drop_last)
        lengths = [self.epoch_length(t) for t in range(num_epochs)]
        if drop_last:
            empty = [t for t, n in enumerate(lengths) if n < batch_size]
            if empty:
                warnings.warn(
                    f"{type(self).__name__}: epochs {empty[:10]} have fewer samples per rank "
                    f"({lengths[empty[0]]} in epoch {empty[0]}) than batch_size={batch_size}, "
                    "so a DataLoader with drop_last=True yields no batch in them",
                    stacklevel=2,
                )
            return sum(n // batch_size for n in lengths)
        return sum(-(-n // batch_size) for n in lengths)

    def _completed(self) -> bool:
        return any(p.completed for p in self._passes)

    def __len__(self) -> int:
        """This rank's whole share of the current epoch, fixed for the epoch: `epoch_length`.

        As torch's and torchdata's samplers, a resumed epoch still reports its full length (the
        iterator simply ends early); frameworks read ``len()`` once and rely on it. What a resumed
        pass has left is `remaining`.
        """
        return self.epoch_length()

    @property
    def remaining(self) -> int:
        """Indices the next ``iter()`` yields: `epoch_length` less a resumed position (the whole
        epoch again once a pass has completed it)."""
        return self.epoch_length() - (0 if self._completed() else self._start)

    def _require_scores(self) -> None:
        if self._scores is None:
            raise RuntimeError(
                f"{type(self).__name__} has no balance scores yet: call "
                "sampler.update_scores(model, loader) (or set_scores(scores)) before iterating"
            )

    def epoch_indices(self) -> Tensor:
        """This rank's whole share of the current epoch, in order: int64 ``(epoch_length(),)``.

        What an ``iter()`` from the epoch's start yields, for logging or inspection; it creates
        no iterator, so it moves no checkpoint position and is never a "second pass".
        """
        self._require_scores()
        order = self._global_order(epoch_generator(self.seed, self.epoch))
        return shard(order, self.num_replicas, self.rank, self.drop_last)

    def __iter__(self) -> Iterator[int]:
        self._require_scores()
        start = self._start
        if self._completed():
            start = 0
            if not self._warned_repeat:
                self._warned_repeat = True
                warnings.warn(
                    f"{type(self).__name__} yields epoch {self.epoch} a second time: the same "
                    "order repeats. Call sampler.set_epoch(epoch) before every epoch",
                    stacklevel=2,
                )
        run = _Pass(self.epoch_indices(), start)
        iterator = _PassIterator.from_iterable(run._chunks())
        assert isinstance(iterator, _PassIterator)  # from_iterable makes the class it is called on
        iterator.run, iterator.epoch, iterator.sampler = run, self.epoch, self
        run.iterator = weakref.ref(iterator)
        self._passes = [p for p in self._passes if p.alive or p.moved]
        self._passes.append(run)
        return iterator

    def _reference_pass(self) -> _Pass | None:
        """The pass a checkpoint describes: the oldest live one with indices left to hand out
        (the loader's; a later peek does not move it), else the newest live one (a framework
        may hold an earlier iterator its workers read to the end, then iterate again), else
        the one that got furthest."""
        alive = [run for run in self._passes if run.alive]
        for run in alive:
            if run.position() < run.end:
                return run
        if alive:
            return alive[-1]
        ended = [run for run in self._passes if run.moved]
        return max(ended, key=_Pass.position, default=None)

    def _position(self, consumed: int | None) -> int:
        run = self._reference_pass()
        if consumed is None:
            return self._start if run is None else run.position()
        consumed = check_int("consumed", consumed, 0)
        start = self._start if run is None else run.start
        limit = self.epoch_length() - start
        if consumed > limit:
            raise ValueError(
                f"consumed must lie in [0, {limit}] (the samples of epoch {self.epoch} this pass "
                f"yields on this rank), got {consumed}: count the samples the training loop took "
                "from the loader in this epoch's pass"
            )
        return start + consumed

    # -- checkpoints ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "alpha": self.alpha,
            "criteria": ",".join(self.criteria),
            "preset": self.preset.name,
            "seed": self.seed,
            "num_replicas": self.num_replicas,
            "rank": self.rank,
            "drop_last": self.drop_last,
        }

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Scores, epoch, position in it, seed and config, as plain values.

        Args:
            consumed: how many samples the training loop has taken from the loader in this
                epoch's pass (this rank's, counted from where the pass started). Give it when the
                ``DataLoader`` has workers: they read indices ahead of training, so the sampler's
                own count is ahead of what was trained. ``None``: the sampler's own count, exact
                for ``num_workers=0`` and for torchdata's ``StatefulDataLoader``.

        Plain tensors, ints, floats, bools and strings only: ``torch.save`` needs no pickle.
        """
        state: dict[str, Any] = {
            "version": _STATE_VERSION,
            "sampler": type(self).__name__,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "epoch": self.epoch,
            "yielded": self._position(consumed),
            "scores_epoch": self._scores_epoch,
            "config": self._config(),
        }
        if self._scores is not None:
            state["scores"] = self._scores.clone()
        if self._next_scores is not None:
            state["next_scores"] = self._next_scores.clone()
        return state

    def _load_scores(self, state: Mapping[str, Any], key: str) -> Tensor | None:
        scores = state.get(key)
        if scores is None:
            return None
        if not isinstance(scores, Tensor) or scores.shape != (self.num_samples,):
            raise ValueError(
                f"state_dict[{key!r}] must be a tensor of shape ({self.num_samples},), got "
                f"{getattr(scores, 'shape', type(scores).__name__)}"
            )
        return scores.to("cpu", torch.float32).clone()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict`; the next ``iter()`` yields exactly the rest of that epoch.

        All or nothing: on any error the sampler is left as it was. Raises ``ValueError`` on a
        state from another sampler type, version, dataset length, seed or config (the rank may
        differ: ranks advance in lockstep, so any rank's state resumes any other).
        """
        for key in ("version", "sampler", "num_samples", "seed", "epoch", "yielded", "config"):
            if key not in state:
                raise KeyError(f"state_dict lacks the field {key!r}")
        if state["version"] not in _READABLE_VERSIONS:
            raise ValueError(
                f"state_dict['version'] must be one of {list(_READABLE_VERSIONS)} (this is "
                f"bss-sampler's state format {_STATE_VERSION}), got {state['version']!r}"
            )
        if state["sampler"] != type(self).__name__:
            raise ValueError(
                f"state_dict is from a {state['sampler']}, not a {type(self).__name__}"
            )
        if state["num_samples"] != self.num_samples:
            raise ValueError(
                f"state_dict is for a dataset of {state['num_samples']} samples, this sampler's "
                f"data_source has {self.num_samples}"
            )
        config = {**state["config"], "seed": state["seed"]}
        if state["version"] == 1 and config.get("num_replicas") == -1:
            config["num_replicas"] = 1  # version 1 wrote -1 for the unsharded (global) order
        for key, value in self._config().items():
            if key == "rank" or (key not in state["config"] and state["version"] == 1):
                continue
            if key not in config or config[key] != value:
                raise ValueError(
                    f"state_dict was saved with {key}={config.get(key)!r}, this sampler has "
                    f"{key}={value!r}"
                )
        epoch = check_int("state_dict['epoch']", state["epoch"], 0)
        scores = self._load_scores(state, "scores")
        next_scores = self._load_scores(state, "next_scores")
        scores_epoch = check_int("state_dict['scores_epoch']", state.get("scores_epoch", epoch), -1)
        extra = self._check_extra(state)
        yielded = check_int("state_dict['yielded']", state["yielded"], 0)
        length = self.epoch_length(epoch)
        if yielded > length:
            raise ValueError(
                f"state_dict['yielded'] must lie in [0, {length}] for epoch {epoch}, got {yielded}"
            )
        self.epoch = epoch
        self._scores, self._next_scores = scores, next_scores
        self._scores_epoch = -1 if scores is None else scores_epoch
        self._last_report = None
        self._start = yielded
        self._passes = []
        self._scores_changed()
        self._load_extra(extra)

    def _check_extra(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the subclass's own fields of ``state`` (nothing is assigned yet)."""
        return {}

    def _load_extra(self, extra: Mapping[str, Any]) -> None:
        """Assign what `_check_extra` validated."""

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (e.g. into ``spawn`` workers) without the iterators: a copy resumes from the
        current position, as after `load_state_dict` of `state_dict`."""
        state = self.__dict__.copy()
        state["_start"] = self._position(None)
        state["_passes"] = []
        return state


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
            the paper's Figure 1: the scores negated).
        rescore_every: re-rank every this many epochs (``needs_update``); ``None``: scored once
            before training, as in the paper.
        alpha: Eq. 5 weight of the unimodal losses in the scores.
        criteria: Eq. 6 criteria, see `bss_sampler.BalanceScorer`.
        preset: ``"paper"`` or ``"official"`` (pacing evaluated at ``epoch + 1``, scoring in
            train mode); see `bss_sampler.presets`.
        seed: seeds every epoch's order together with the epoch.
        num_replicas: number of ranks to shard over; ``None``: the process group's world size
            (1 without one), as ``DistributedSampler``.
        rank: this process's rank in ``[0, num_replicas - 1]``; ``None``: the process group's.
        global_order: yield the whole epoch on every rank, unsharded, for wrappers that shard it
            themselves (Accelerate's ``prepare``); excludes ``num_replicas`` and ``rank``.
        drop_last: trim the epoch to a multiple of ``num_replicas`` instead of padding it.
        train_mode: score in train mode; ``None`` takes the preset's choice.

    ``len(sampler)`` is the current epoch's count, so it grows with ``set_epoch``; `epoch_length`
    and `total_batches` give the whole schedule ahead of time.
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
        global_order: bool = False,
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
            global_order=global_order,
            drop_last=drop_last,
            train_mode=train_mode,
        )
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
        self.rescore_every = (
            None if rescore_every is None else check_int("rescore_every", rescore_every, 1)
        )
        self._ranking: Tensor | None = None

    def fraction(self, epoch: int | None = None) -> float:
        """``lambda(t)``: the fraction of ranked samples used at ``epoch`` (default: current)."""
        t = (self.epoch if epoch is None else check_int("epoch", epoch, 0)) + (
            self.preset.pacing_offset
        )
        if isinstance(self.pacing, str):
            value = PACING_FUNCTIONS[self.pacing](t, lambda0=self.lambda0, t_grow=self.t_grow)
        else:
            value = self.pacing(t)
        return check_real(
            f"pacing({t})", value, 0.0, 1.0, low_open=True, expected="return a fraction in (0, 1]"
        )

    def _scheduled(self, epoch: int) -> bool:
        """Every ``rescore_every`` epochs; never when it is ``None`` (the paper)."""
        return self.rescore_every is not None and epoch % self.rescore_every == 0

    def _scores_changed(self) -> None:
        self._ranking = None

    def _epoch_size(self, epoch: int) -> int:
        return max(1, math.floor(self.num_samples * self.fraction(epoch)))

    def ranking(self) -> Tensor:
        """All samples from the first to the last to be admitted (ties: lower index first)."""
        if self._scores is None:
            raise RuntimeError("no balance scores yet: call update_scores or set_scores first")
        if self._ranking is None:
            descending = self.order == "balanced_first"
            self._ranking = rank_scores(self._scores, descending=descending)
        return self._ranking

    def _global_order(self, generator: torch.Generator) -> Tensor:
        return shuffled_prefix(self.ranking(), self._epoch_size(self.epoch), generator)

    def _pacing_id(self) -> Any:
        if isinstance(self.pacing, str):
            return self.pacing
        name = getattr(self.pacing, "__qualname__", type(self.pacing).__qualname__)
        module = getattr(self.pacing, "__module__", type(self.pacing).__module__)
        sizes = ",".join(str(self._epoch_size(t)) for t in range(_FINGERPRINT_EPOCHS))
        return f"{module}.{name}:{sizes}"

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "lambda0": self.lambda0,
            "t_grow": self.t_grow,
            "pacing": self._pacing_id(),
            "rescore_every": -1 if self.rescore_every is None else self.rescore_every,
        }


class LearnedBalanceSampler(_ScoredSampler):
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
        alpha: Eq. 5 weight of the unimodal losses in the scores.
        criteria: Eq. 6 criteria, see `bss_sampler.BalanceScorer`.
        preset: ``"paper"`` or ``"official"`` (E=1, no EMA, linear probabilities, train-mode
            scoring); explicit arguments win over it. See `bss_sampler.presets`.
        seed: seeds every epoch's order together with the epoch.
        num_replicas: number of ranks to shard over; ``None``: the process group's world size
            (1 without one), as ``DistributedSampler``.
        rank: this process's rank in ``[0, num_replicas - 1]``; ``None``: the process group's.
        global_order: yield the whole epoch on every rank, unsharded, for wrappers that shard it
            themselves (Accelerate's ``prepare``); excludes ``num_replicas`` and ``rank``.
        drop_last: trim the epoch to a multiple of ``num_replicas`` instead of padding it.
        train_mode: score in train mode; ``None`` takes the preset's choice.
    A training loop (Algorithm 1) that resumes exactly from a checkpoint taken at any step, with
    any ``num_workers``::

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

    _orders = ("balanced_first", "imbalanced_first", "balanced_last")

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
        global_order: bool = False,
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
            global_order=global_order,
            drop_last=drop_last,
            train_mode=train_mode,
        )
        self.beta = check_real("beta", self.preset.beta if beta is None else beta, 0.0, 1.0)
        self.update_every = check_int(
            "update_every", self.preset.update_every if update_every is None else update_every, 1
        )
        self.temperature = check_real(
            "temperature",
            temperature,
            0.0,
            low_open=True,
            expected="be a positive finite number",
        )
        self.probabilities = check_choice(
            "probabilities",
            self.preset.probabilities if probabilities is None else probabilities,
            ("softmax", "linear"),
        )
        self.num_updates = 0

    def _scheduled(self, epoch: int) -> bool:
        """When ``epoch`` is a multiple of ``update_every`` (``k = floor(t / E)`` of Eq. 9)."""
        return epoch % self.update_every == 0

    def _blend(self, old: Tensor | None, new: Tensor) -> Tensor:
        """Eq. 9: ``(1 - beta) s_old + beta s_new``; the first scores are taken as they are."""
        self.num_updates += 1
        if old is None or self.num_updates == 1:
            return new
        return (1.0 - self.beta) * old + self.beta * new

    def _untempered_log_weights(self) -> Tensor:
        """``T log p`` up to a constant: ``+-s`` (softmax) or ``log(1 +- s + 0.01)`` (linear)."""
        if self._scores is None:
            raise RuntimeError("no balance scores yet: call update_scores or set_scores first")
        scores = -self._scores if self.order == "imbalanced_first" else self._scores
        if self.probabilities == "softmax":
            return scores
        weights = 1.0 + scores + 0.01
        if (weights <= 0).any():
            flipped = self.order == "imbalanced_first"
            bound, sign = ("< 1.01", "-") if flipped else ("> -1.01", "+")
            raise ValueError(
                f"probabilities='linear' needs scores {bound} (weights 1 {sign} s + 0.01 > 0), "
                f"got scores from {self._scores.min().item():.4g} to "
                f"{self._scores.max().item():.4g}"
            )
        return weights.log_()

    def log_weights(self) -> Tensor:
        """``log p`` up to a constant: ``s / T`` (softmax) or ``log(1 + s + 0.01) / T`` (linear).

        For the current epoch's scores; with ``order="imbalanced_first"`` the scores negated.
        """
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

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """As the base state, plus ``num_updates`` (how many EMA steps of Eq. 9 were taken)."""
        return {**super().state_dict(consumed), "num_updates": self.num_updates}

    def _check_extra(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "num_updates": check_int("state_dict['num_updates']", state.get("num_updates", 0), 0)
        }

    def _load_extra(self, extra: Mapping[str, Any]) -> None:
        self.num_updates = extra["num_updates"]
