"""The sampler core: order state only, each epoch's order taken from a policy.

`PolicySampler` holds what every data-level ordering method needs and nothing of any one method:
the epoch, the seed, the shard (``num_replicas``, ``rank``, ``global_order``, ``drop_last``), the
position of the current pass, the versioned checkpoint state and the *valuation* an epoch is
ordered by (BSS's balance scores, or another method's per-sample values). An epoch's global order
is a pure function of ``(seed, epoch, valuation)`` computed by the `OrderPolicy` with a CPU
generator on every rank; the core shards it, resumes it and checkpoints it.

The contract, in the words of ``torch.utils.data.DistributedSampler`` where it has them:

* **Sharding.** As ``DistributedSampler``: under an initialised process group the sampler shards
  by the group's world size and rank unless ``num_replicas``/``rank`` are given (a sampler built
  before ``init_process_group`` takes the group's when first used, and refuses once a pass
  depends on the old shard); ``global_order=True`` yields the whole order on every rank instead,
  for wrappers that shard it themselves (Accelerate's ``prepare``).
* **Epochs.** ``set_epoch(epoch)`` before every epoch. Each ``iter()`` is independent: it draws
  its epoch's order once and keeps it, whatever happens to the sampler afterwards.
* **Valuations.** `PolicySampler.set_values` (BSS: ``set_scores``/``update_scores``) before an
  epoch has started apply to that epoch; once it has started (or was resumed mid-way) they apply
  from the next ``set_epoch``. A valuation no order was drawn from yet (``iter()`` or
  ``epoch_indices()``) is for the epoch that is drawn first: a loop that warms up in random
  order for epochs 0-4 (or starts at ``start_epoch > 0``) values the sampler while it still
  stands at epoch 0, then calls ``set_epoch(5)``, and the valuation is epoch 5's
  (`values_epoch`, ``needs_update`` and checkpoints count from there). This rule lives here
  only: a method never re-implements it.
  ``needs_update(epoch)`` is true while a re-valuation scheduled at or before ``epoch`` (by the
  policy) has not happened, also across skipped epochs and after a resume. The policy's schedule
  counts from the epoch of the first valuation (`schedule_start`): with a re-valuation every 5
  epochs, a first valuation for epoch 3 is followed by ones before epochs 8, 13, ...
* **Lengths.** ``len(sampler)`` is this rank's whole share of the current epoch, fixed for the
  epoch (a resumed pass included), as torch's and torchdata's samplers; `remaining` is what a
  resumed pass has left. The length comes from the policy and may depend on the valuation:
  `varies_epoch_length` tells loaders to be rebuilt every epoch.
* **Checkpoints.** ``state_dict(consumed=n)`` saves the position ``n`` samples into the loader's
  current pass; ``state_dict()`` alone the sampler's own iterator's, exact where the loader does
  not read ahead (``num_workers=0``, or torchdata's ``StatefulDataLoader``). A restore never undoes
  a later ``set_epoch`` (torchdata restores the sampler at ``iter()``, after it).

**Adding a data-level method** (the recipe; BSS's two samplers follow it, see `heuristic` and
`learned`):

1. Write the epoch's order as a pure, seeded function (as `bss_sampler.ordering` does):
   ``(valuation, epoch, generator) -> int64 tensor``. Items are dataset indices in ``[0, N)``,
   or stream ids the dataset decodes (e.g. ``variant * N + index`` for extra copies of a
   sample), whose range the policy declares (``item_limit``).
2. Subclass `OrderPolicy` in one module: ``epoch_order`` calls that function; ``epoch_size``
   gives the epoch's item count (it receives the valuation in use, so it may depend on it; set
   ``varies_epoch_length = True`` when it changes between epochs; the core checks each order
   against it and ``item_limit`` and names the policy and epoch); optionally ``check`` (refuse
   a valuation on arrival), ``blend`` and ``updated`` (combine with the previous valuation, count
   updates), ``last_scheduled`` (the re-valuation schedule), ``config`` (settings a checkpoint must
   match), ``extra_state``/``load_extra_state`` (e.g. an update count).
3. Make the public sampler a subclass of `PolicySampler` whose ``__init__`` checks its ordering
   arguments and passes the policy to ``super().__init__``; give it the method's way to compute
   a valuation (BSS: `bss_sampler.balance.BalanceSampler.update_scores`), which ends in
   `set_values`.
4. Add it to the shared test lists (``SAMPLERS`` in ``tests/test_sampler_contract.py`` and
   ``tests/test_samplers.py``): the contract tests (resume, workers, shards, checkpoints) then
   run on it.
"""

from __future__ import annotations

import operator
import sys
import warnings
import weakref
from collections.abc import Generator, Iterator, Mapping, Sequence, Sized
from itertools import chain
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.utils.data import Sampler

from . import _dist
from ._checks import check_bool, check_int
from .ordering import epoch_generator, shard, shard_size

__all__ = ["OrderPolicy", "PolicySampler"]

_STATE_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_HEAD = 16  # indices of a started epoch's order a checkpoint keeps, to check a resume against
_CHUNK = 1 << 16
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised by the calling function at the first
    frame outside bss-sampler (a ``load_state_dict`` reached through ``super()`` calls or an
    integration is attributed to the user's line)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "bss_sampler."
    ):
        frame, level = frame.f_back, level + 1
    return level


def _samples(mask: Tensor) -> list[int]:
    """The first 5 samples (rows) where ``mask`` holds anywhere."""
    first: list[int] = mask.reshape(len(mask), -1).any(1).nonzero().flatten()[:5].tolist()
    return first


class OrderPolicy:
    """How one method orders an epoch, given the valuation in use (the `PolicySampler` holds it).

    Subclasses implement `epoch_order` and may override the rest; see the module's recipe.
    """

    varies_epoch_length: ClassVar[bool] = False
    """Whether epochs differ in length (loaders that fix their length must be rebuilt)."""

    def epoch_size(self, epoch: int, values: Tensor | None, num_samples: int) -> int:
        """Items in ``epoch``'s global order (before sharding); ``values``: the valuation that
        epoch would use (``None`` before any). Default: every sample once."""
        return num_samples

    def epoch_order(self, epoch: int, values: Tensor, generator: torch.Generator) -> Tensor:
        """``epoch``'s global order: int64 ``(epoch_size(epoch, values),)``; pure given inputs.

        The core checks it every epoch (an integer tensor of that shape, items in
        ``[0, item_limit)``) and raises ``ValueError`` naming the policy and the epoch."""
        raise NotImplementedError

    def item_limit(self, num_samples: int) -> int | None:
        """Items of an order lie in ``[0, item_limit)``: ``N`` (dataset indices) by default; a
        stream of ids the dataset decodes declares its own (SMV: ``N * (M + 1)``); ``None``:
        any int ``>= 0``."""
        return num_samples

    def value_shape(self, num_samples: int) -> tuple[int, ...]:
        """The valuation's shape: one number per sample (default), or a row per sample (e.g.
        SMV's ``(N, M)`` modality contributions)."""
        return (num_samples,)

    def check(self, values: Tensor, name: str) -> None:
        """Refuse (``ValueError`` naming ``name``) a valuation this order cannot use."""

    def blend(self, old: Tensor | None, new: Tensor) -> Tensor:
        """The valuation in use once ``new`` arrives (default: ``new``); changes nothing."""
        return new

    def updated(self) -> None:
        """Called once a valuation was accepted (after `blend`)."""

    def last_scheduled(self, epoch: int) -> int | None:
        """The latest scheduled re-valuation at or before ``epoch``; ``None``: none. Epochs count
        from the first valuation's (`PolicySampler.schedule_start`): 0 is the epoch it was for."""
        return None

    def config(self, num_samples: int) -> dict[str, Any]:
        """Settings a checkpoint must have been saved with (plain values)."""
        return {}

    def mismatch(self, key: str, saved: Any, value: Any) -> str | None:
        """The message for a checkpoint saved with ``key=saved`` (``!= value``) loaded where it is
        ``value``; ``None`` when the two describe the same setting."""
        return f"state_dict was saved with {key}={saved!r}, this sampler has {key}={value!r}"

    def extra_state(self) -> dict[str, Any]:
        """The policy's own checkpoint fields (plain values)."""
        return {}

    def check_extra_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the policy's fields of a full ``state`` (assign nothing yet)."""
        return {}

    def load_extra_state(self, extra: Mapping[str, Any]) -> None:
        """Assign what `check_extra_state` validated."""


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
    sampler: PolicySampler

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


class PolicySampler(Sampler[int]):
    """Epoch, seed, shard, position, valuation and checkpoint state; the order from ``policy``.

    ``varies_epoch_length`` (class and instance attribute): whether epochs differ in length, so a
    loader that fixes its length when built (Lightning) must be rebuilt every epoch; the policy's.

    Args:
        data_source: the dataset (only its length ``N`` is used).
        policy: the method's `OrderPolicy`.
        seed: seeds every epoch's order together with the epoch.
        num_replicas: number of ranks to shard over; ``None``: the process group's world size
            (1 without one), as ``DistributedSampler``.
        rank: this process's rank in ``[0, num_replicas - 1]``; ``None``: the process group's.
        global_order: yield the whole epoch on every rank, unsharded, for wrappers that shard it
            themselves (Accelerate's ``prepare``); excludes ``num_replicas`` and ``rank``.
        drop_last: trim the epoch to a multiple of ``num_replicas`` instead of padding it.
    """

    varies_epoch_length: bool = False

    def __init__(
        self,
        data_source: Sized,
        policy: OrderPolicy,
        *,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        global_order: bool = False,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(data_source, Sized):
            raise ValueError(
                f"data_source must be a sized dataset (len() is used), got {type(data_source)!r}"
            )
        self.num_samples = len(data_source)
        if self.num_samples < 1:
            raise ValueError("data_source must hold at least one sample, got an empty one")
        self.policy = policy
        self.varies_epoch_length = policy.varies_epoch_length
        self.seed = check_int("seed", seed)
        self.drop_last = check_bool("drop_last", drop_last)
        self.global_order = check_bool("global_order", global_order)
        self.num_replicas, self.rank = self._resolve_shard(num_replicas, rank, self.global_order)
        # left to the process group: followed if one is initialised after construction
        self._shard_from_group = not self.global_order and num_replicas is None and rank is None
        self._requested_epoch: int | None = None  # set_epoch since the last load_state_dict
        self.epoch = 0
        self._values: Tensor | None = None  # what the current epoch's order is drawn from
        self._next_values: Tensor | None = None  # newer values, for the next epoch
        self._values_epoch = -1  # the epoch the newest values are for
        self._valuations = 0  # set_values calls so far (restored from checkpoints)
        self._schedule_start = 0  # the first valuation's epoch, once a second one was set
        self._start = 0  # where this epoch's first pass starts (a checkpoint's position)
        self._passes: list[_Pass] = []  # this epoch's iterators, oldest first
        self._drawn = False  # this epoch's order was drawn (an iter() or epoch_indices())
        self._head: tuple[int, int, Tensor] | None = None  # (epoch, rank, first indices)
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

    def _follow_group(self) -> None:
        """Shard by the process group as it is now when ``num_replicas``/``rank`` were left to it.

        A sampler built before ``init_process_group`` (which ``DistributedSampler`` refuses) takes
        the group's world and rank when first used; once a pass or a resumed position depends on
        the old shard it refuses instead.
        """
        if not self._shard_from_group or not _dist.is_initialized():
            return
        group = (_dist.world_size(), _dist.rank())
        if group == (self.num_replicas, self.rank):
            return
        if self._passes or self._start > 0:
            raise RuntimeError(
                f"{type(self).__name__} was built with num_replicas={self.num_replicas}, "
                f"rank={self.rank} (no process group yet) and epoch {self.epoch} is under way, "
                f"but the process group now has world size {group[0]} and rank {group[1]}: build "
                "the sampler after init_process_group, or pass num_replicas and rank"
            )
        self.num_replicas, self.rank = group

    # -- valuations -----------------------------------------------------------------------------
    @property
    def values_epoch(self) -> int | None:
        """The epoch the newest valuation is for (``None`` before any): the epoch it was set
        for, or, when it was set before an epoch had been drawn, the epoch that then started."""
        return None if self._values_epoch < 0 else self._values_epoch

    @property
    def schedule_start(self) -> int | None:
        """The epoch the policy's re-valuation schedule counts from: that of the first valuation
        (``None`` before any; it follows the first valuation to the epoch that is drawn first)."""
        if self._valuations == 0:
            return None
        return self._values_epoch if self._valuations == 1 else self._schedule_start

    def _newest_values(self) -> Tensor | None:
        return self._next_values if self._next_values is not None else self._values

    def _started(self) -> bool:
        """Whether this epoch's order is in use (iterated, resumed, or already superseded)."""
        return bool(self._passes) or self._start > 0 or self._next_values is not None

    def check_values(self, values: Tensor | Sequence[float], name: str) -> Tensor:
        """``values`` as float32 CPU (shape `OrderPolicy.value_shape`, ``(N,)`` by default),
        finite, and usable by the policy; ``ValueError`` naming ``name`` otherwise."""
        if values is None or isinstance(values, (str, bytes)):
            raise ValueError(
                f"{name} must be a tensor or sequence of {self.num_samples} numbers, got {values!r}"
            )
        try:
            tensor = torch.as_tensor(values).detach()
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"{name} must be a tensor or sequence of {self.num_samples} numbers, got "
                f"{type(values).__name__}: {error}"
            ) from None
        if tensor.dtype == torch.bool or tensor.is_complex():
            raise ValueError(f"{name} must be real numbers, got dtype {tensor.dtype}")
        shape = self.policy.value_shape(self.num_samples)
        if tensor.shape != shape:
            raise ValueError(
                f"{name} must have shape {shape} (one {'number' if len(shape) == 1 else 'row'} "
                f"per sample), got {tuple(tensor.shape)}"
            )
        tensor = tensor.to("cpu", torch.float64)
        bad = ~tensor.isfinite()
        if bad.any():
            first = _samples(bad)
            raise ValueError(f"{name} must be finite, got NaN or inf at indices {first}")
        big = tensor.abs() > _FLOAT32_MAX
        if big.any():
            first = _samples(big)
            raise ValueError(
                f"{name} must fit in float32 (|s| <= {_FLOAT32_MAX:.4g}), got "
                f"{tensor[big][:5].tolist()} at indices {first}"
            )
        result = tensor.to(torch.float32)
        self.policy.check(result, name)
        return result

    def set_values(self, values: Tensor | Sequence[float], name: str = "values") -> Tensor:
        """Use a new valuation: for the current epoch if it has not started, else from the next
        ``set_epoch`` (a started epoch never changes its order); one set before the first epoch
        the sampler draws counts for that epoch (`values_epoch`). Returns the valuation in use
        after the policy's `OrderPolicy.blend` (a copy)."""
        new = self.check_values(values, name)
        if self._valuations == 1:  # the first valuation's epoch is now final
            self._schedule_start = self._values_epoch
        self._valuations += 1
        if self._started():
            self._next_values = self.policy.blend(self._newest_values(), new)
            self._values_epoch = self.epoch + 1
            used = self._next_values
        else:
            self._values = self.policy.blend(self._values, new)
            self._values_epoch = self.epoch
            used = self._values
        self.policy.updated()
        return used.clone()

    def needs_update(self, epoch: int) -> bool:
        """Whether a valuation is due before ``epoch``: none yet, or a re-valuation scheduled at
        or before ``epoch`` that the newest one predates (also one at a skipped epoch: after
        epochs 0-3 with a schedule every 5, ``needs_update(7)`` is true). False again once it
        has happened, also after a resume."""
        epoch = check_int("epoch", epoch, 0)
        if self._values is None:
            return True
        if self._next_values is not None and epoch > self.epoch:
            return False  # the next set_epoch takes the pending values, whichever epoch it is
        start = self.schedule_start or 0
        due = self.policy.last_scheduled(epoch - start) if epoch >= start else None
        return due is not None and self._values_epoch < due + start

    no_values_hint: ClassVar[str] = "has no valuation yet: call set_values(values) before iterating"
    """What ``iter()`` before any valuation says after the class name (a method words its own)."""

    def _require_values(self) -> Tensor:
        if self._values is None:
            raise RuntimeError(f"{type(self).__name__} {self.no_values_hint}")
        return self._values

    # -- epochs ---------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next ``iter()`` yields (0-based, explicit).

        The current epoch (a resumed one included) keeps its position: calling it again is a
        no-op. Another epoch starts from its beginning with the newest valuation.
        """
        epoch = check_int("epoch", epoch, 0)
        self._requested_epoch = epoch
        self._move_to(epoch)

    def _waiting(self) -> bool:
        """Whether the valuation in use was set for the current epoch and no order was drawn from
        it yet: it is then for whichever epoch is drawn first (a warm-up before the first
        valuation, or a loop entered at ``start_epoch > 0``)."""
        return (
            self._values is not None
            and self._values_epoch == self.epoch
            and not self._drawn
            and not self._started()
        )

    def _move_to(self, epoch: int) -> None:
        if epoch != self.epoch:
            waiting = self._waiting()
            self.epoch = epoch
            self._start = 0
            self._passes = []
            self._drawn = False
            if self._next_values is not None:  # newer values: this epoch is the first to use them
                self._values, self._next_values = self._next_values, None
                self._values_epoch = epoch
            elif waiting:  # set before any epoch drew from them: they are this epoch's
                self._values_epoch = epoch
        self._follow_group()

    def epoch_length(self, epoch: int | None = None) -> int:
        """Indices this rank receives in the whole of ``epoch`` (default: the current one).

        For a later epoch, with the newest valuation (the one it will use unless another comes);
        see also `total_batches`.
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, 0)
        self._follow_group()
        values = self._values if epoch == self.epoch else self._newest_values()
        return shard_size(self._epoch_size(epoch, values), self.num_replicas, self.drop_last)

    def total_batches(self, num_epochs: int, batch_size: int, *, drop_last: bool = False) -> int:
        """Batches a ``DataLoader(batch_size=..., drop_last=...)`` over this sampler yields in
        epochs ``0 .. num_epochs - 1`` on this rank (e.g. ``total_steps`` of ``OneCycleLR``).

        Warns when ``drop_last`` leaves an epoch without any batch (an epoch smaller than a
        batch).
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

    def epoch_indices(self) -> Tensor:
        """This rank's whole share of the current epoch, in order: int64 ``(epoch_length(),)``.

        What an ``iter()`` from the epoch's start yields, for logging or inspection; it creates
        no iterator, so it moves no checkpoint position and is never a "second pass".
        """
        values = self._require_values()
        self._follow_group()
        share = shard(
            self._global_order(self.epoch, values), self.num_replicas, self.rank, self.drop_last
        )
        self._head = (self.epoch, self.rank, share[:_HEAD].clone())
        self._drawn = True
        return share

    def _global_order(self, epoch: int, values: Tensor) -> Tensor:
        order = self.policy.epoch_order(epoch, values, epoch_generator(self.seed, epoch))
        return self._checked_order(order, epoch, values)

    def _policy_error(self, hook: str, epoch: int, got: str, expected: str) -> ValueError:
        return ValueError(
            f"{type(self.policy).__name__}.{hook} returned {got} for epoch {epoch}, expected "
            f"{expected}"
        )

    def _epoch_size(self, epoch: int, values: Tensor | None) -> int:
        """The policy's `OrderPolicy.epoch_size`, checked to be an int ``>= 1``."""
        raw = self.policy.epoch_size(epoch, values, self.num_samples)
        try:
            size = -1 if isinstance(raw, bool) else operator.index(raw)
        except TypeError:
            size = -1
        if size < 1:
            raise self._policy_error("epoch_size", epoch, repr(raw), "an int >= 1")
        return size

    def _checked_order(self, order: Any, epoch: int, values: Tensor) -> Tensor:
        """``order`` as int64 on the CPU, or ``ValueError`` naming the policy and the epoch: a
        1-D integer tensor of `OrderPolicy.epoch_size` items in ``[0, item_limit)`` (one pass
        over it: ``aminmax``)."""
        size = self._epoch_size(epoch, values)
        expected = f"an integer tensor of shape ({size},)"
        if not isinstance(order, Tensor):
            raise self._policy_error("epoch_order", epoch, f"a {type(order).__name__}", expected)
        if order.layout != torch.strided or order.is_meta:  # no values to read
            got = f"a {str(order.layout).removeprefix('torch.')} tensor on device {order.device}"
            dense = f"a dense integer tensor of shape ({size},) with its values"
            raise self._policy_error("epoch_order", epoch, got, dense)
        if order.shape != (size,):
            got = f"shape {tuple(order.shape)}"
            raise self._policy_error("epoch_order", epoch, got, f"shape ({size},) (epoch_size)")
        if order.is_floating_point() or order.is_complex() or order.dtype == torch.bool:
            raise self._policy_error("epoch_order", epoch, f"dtype {order.dtype}", expected)
        items: Tensor = order.to("cpu", torch.int64)
        limit = self.policy.item_limit(self.num_samples)
        low, high = torch.aminmax(items)
        if int(low) < 0 or (limit is not None and int(high) >= limit):
            bad = (items < 0) if limit is None else (items < 0) | (items >= limit)
            where = int(bad.nonzero()[0, 0])
            wanted = "items >= 0" if limit is None else f"items in [0, {limit - 1}]"
            if limit == self.num_samples:
                wanted += " (dataset indices; a policy of other items declares item_limit)"
            got = f"{int(items[where])} at position {where}"
            raise self._policy_error("epoch_order", epoch, got, wanted)
        return items

    def __iter__(self) -> Iterator[int]:
        self._require_values()
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
            **self.policy.config(self.num_samples),
            "seed": self.seed,
            "num_replicas": self.num_replicas,
            "rank": self.rank,
            "drop_last": self.drop_last,
        }

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Valuation, epoch, position in it, seed and config, as plain values.

        Saved inside an epoch, it also holds the first 16 indices of that epoch's order on this
        rank (``order_head``) and the torch version: `load_state_dict` checks that it
        regenerates the same order.

        Args:
            consumed: how many samples the training loop has taken from the loader in this
                epoch's pass (this rank's, counted from where the pass started). Give it when the
                ``DataLoader`` has workers: they read indices ahead of training, so the sampler's
                own count is ahead of what was trained. ``None``: the sampler's own count, exact
                for ``num_workers=0`` and for torchdata's ``StatefulDataLoader``.

        Plain tensors, ints, floats, bools and strings only: ``torch.save`` needs no pickle.
        """
        self._follow_group()
        state: dict[str, Any] = {
            "version": _STATE_VERSION,
            "sampler": type(self).__name__,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "epoch": self.epoch,
            "yielded": self._position(consumed),
            "scores_epoch": self._values_epoch,
            "valuations": self._valuations,
            "schedule_start": self.schedule_start or 0,
            "config": self._config(),
            **self.policy.extra_state(),
        }
        if 0 < state["yielded"] < self.epoch_length():
            state["order_head"] = self._order_head()
            state["torch"] = str(torch.__version__)  # a plain str (TorchVersion needs pickle)
        if self._values is not None:
            state["scores"] = self._values.clone()
        if self._next_values is not None:
            state["next_scores"] = self._next_values.clone()
        return state

    def _order_head(self) -> Tensor:
        """The first indices of this rank's share of the current (started) epoch: a resume checks
        that it regenerates the same order (see `_check_order_head`)."""
        if self._head is None or self._head[:2] != (self.epoch, self.rank):
            self.epoch_indices()  # a pass that was dropped or never made (after a restore)
        assert self._head is not None
        return self._head[2].clone()

    def _check_order_head(self, state: Mapping[str, Any], epoch: int, values: Tensor) -> Tensor:
        """Refuse a mid-epoch ``state`` whose epoch order this process does not regenerate.

        The rest of an epoch is found by regenerating its order and skipping what was taken, so
        a different order (torch's random number generator changed between the versions that
        saved and that load, for example) would repeat some samples and never yield others.
        """
        saved = state["order_head"]
        rank = state["config"].get("rank")
        if not isinstance(rank, int) or not 0 <= rank < self.num_replicas:
            rank = self.rank  # version 1 wrote -1 for the global order
        order = self._global_order(epoch, values)
        mine = shard(order, self.num_replicas, self.rank, self.drop_last)[:_HEAD].clone()
        theirs = (
            mine
            if rank == self.rank
            else shard(order, self.num_replicas, rank, self.drop_last)[:_HEAD]
        )
        if not isinstance(saved, Tensor) or not torch.equal(saved.to(torch.int64), theirs):
            first = saved.tolist() if isinstance(saved, Tensor) else saved
            raise ValueError(
                f"state_dict was saved {state['yielded']} indices into epoch {epoch} (rank "
                f"{rank}), but the order regenerated here for that epoch differs from the one "
                f"it was saved in (first indices {first} saved, {theirs.tolist()} here): "
                "resuming would repeat some samples and never yield others. The order is drawn "
                "from the seed, the epoch and the scores with torch's random number generator, "
                f"which can change between torch versions (saved with torch "
                f"{state.get('torch', 'unknown')}, this is torch {torch.__version__}). Resume "
                "under the torch version that saved it, or train the epoch again from its start "
                "(load the state with its 'yielded' set to 0)"
            )
        return mine

    def _load_values(self, state: Mapping[str, Any], key: str) -> Tensor | None:
        values = state.get(key)
        if values is None:
            return None
        if not isinstance(values, Tensor):
            raise ValueError(
                f"state_dict[{key!r}] must be a tensor of shape "
                f"{self.policy.value_shape(self.num_samples)}, got "
                f"{type(values).__name__}"
            )
        return self.check_values(values, f"state_dict[{key!r}]").clone()

    def _check_config(self, state: Mapping[str, Any]) -> None:
        """Refuse a state saved with other settings; a setting a state predates is skipped."""
        config = {**state["config"], "seed": state["seed"]}
        if state["version"] == 1 and config.get("num_replicas") == -1:
            config["num_replicas"] = 1  # version 1 wrote -1 for the unsharded (global) order
        for key, value in self._config().items():
            if key == "rank" or (key not in config and state["version"] == 1):
                continue
            if key not in config or config[key] != value:
                message = self.policy.mismatch(key, config.get(key), value)
                if message is not None:
                    raise ValueError(message)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict`; the next ``iter()`` yields exactly the rest of that epoch.

        All or nothing: on any error the sampler is left as it was. Raises ``ValueError`` on a
        state from another sampler type, version, dataset length, seed or config (the rank may
        differ: ranks advance in lockstep, so any rank's state resumes any other), and on a
        state saved inside an epoch whose order this process regenerates differently (another
        torch version's random numbers): resuming it would repeat and drop samples. A state
        saved inside an epoch without that epoch's first indices (version 1, or written before
        they were recorded) loads with a warning that its order cannot be checked. A
        ``set_epoch`` to a later epoch made since the last load is kept (torchdata's
        ``StatefulDataLoader`` restores the sampler at ``iter()``, after it).
        """
        self._follow_group()
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
        self._check_config(state)
        epoch = check_int("state_dict['epoch']", state["epoch"], 0)
        values = self._load_values(state, "scores")
        next_values = self._load_values(state, "next_scores")
        values_epoch = check_int("state_dict['scores_epoch']", state.get("scores_epoch", epoch), -1)
        # states before the schedule was anchored counted it from epoch 0 (as 2 valuations do)
        valuations = check_int(
            "state_dict['valuations']", state.get("valuations", 0 if values is None else 2), 0
        )
        schedule_start = check_int(
            "state_dict['schedule_start']", state.get("schedule_start", 0), 0
        )
        extra = self.policy.check_extra_state(state)
        yielded = check_int("state_dict['yielded']", state["yielded"], 0)
        length = shard_size(self._epoch_size(epoch, values), self.num_replicas, self.drop_last)
        if yielded > length:
            raise ValueError(
                f"state_dict['yielded'] must lie in [0, {length}] for epoch {epoch}, got {yielded}"
            )
        head = None
        unchecked = 0 < yielded < length and values is not None and "order_head" not in state
        if 0 < yielded < length and values is not None and not unchecked:
            head = self._check_order_head(state, epoch, values)
        self.epoch = epoch
        self._values, self._next_values = values, next_values
        self._values_epoch = -1 if values is None else values_epoch
        self._valuations = valuations if values is not None else 0
        self._schedule_start = schedule_start
        self._start = yielded
        self._passes = []
        self._drawn = False
        self._head = None if head is None else (epoch, self.rank, head)
        self.policy.load_extra_state(extra)
        self._loaded()
        later, self._requested_epoch = self._requested_epoch, None
        if unchecked:
            warnings.warn(
                f"{type(self).__name__}: state_dict was saved {yielded} indices into epoch "
                f"{epoch} without the first indices of that epoch's order (state format "
                f"{state['version']}: written by bss-sampler 0.1.0 or before 0.2.0, or its "
                "'yielded' set after saving), so its order cannot be checked: if torch's "
                "random numbers differ from those of the torch that saved it, the rest of the "
                "epoch repeats some samples and never yields others. Resume under the torch "
                f"version that saved it, or train epoch {epoch} again from its start (load the "
                "state with its 'yielded' set to 0); states saved from now on record the order",
                stacklevel=user_stacklevel(),
            )
        if later is not None and later > epoch:  # a restore never undoes a later set_epoch
            self._move_to(later)

    def _loaded(self) -> None:
        """Forget what described the valuation before a `load_state_dict`."""

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (e.g. into ``spawn`` workers) without the iterators: a copy resumes from the
        current position, as after `load_state_dict` of `state_dict`."""
        state = self.__dict__.copy()
        state["_start"] = self._position(None)
        state["_passes"] = []
        return state
