"""BSS under Hugging Face Accelerate: the order kept by ``prepare``, exact resume by ``load_state``.

``accelerator.prepare(loader)`` wraps the loader's batches in ``BatchSamplerShard``: every process
reads the *whole* order and keeps every ``num_processes``-th batch. The sampler must therefore be
global (``global_order=True``); one that shards by rank itself would be sharded twice.
`prepare_loader` checks that, prepares the loader and registers a `BalanceSamplingLoader` for
checkpointing, so ``save_state``/``load_state`` carry the number of batches this process has
taken in the current epoch and the sampler's state at that point (its valuation, epoch and
position). Every process reads one batch ahead of training, so that count is kept where the
training loop takes the batches, not by the sampler. ``load_state`` loads the sampler at its
position, so the sampler checks that it regenerates the epoch's order (a torch whose random
numbers give another order would make the skipped batches other samples: refused), then the
loader skips the batches taken. Any sampler of `bss_sampler.integrations` works: the BSS
samplers, `bss_sampler.SMVSampler` (value it with ``update_values(model, scoring,
forward=...)``), a new method's.

A training loop that resumes exactly from a ``save_state`` taken at any step:

    sampler = LearnedBalanceSampler(train_set, global_order=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    loader = prepare_loader(accelerator, DataLoader(train_set, batch_size=32, sampler=sampler))
    scoring = scoring_loader(train_set, batch_size=64)      # this process's share
    if resume:
        accelerator.load_state(folder)                       # the batches taken, order checked
    for epoch in range(loader.epoch, epochs):                # resumed: the checkpoint's epoch
        if sampler.needs_update(epoch):
            sampler.update_scores(accelerator.unwrap_model(model), scoring)
        loader.set_epoch(epoch)                              # a resumed epoch keeps its place
        for batch in loader:                                 # resumed: the batches not yet taken
            ...                                              # forward, backward, step
            accelerator.save_state(folder)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable

from torch.utils.data import DataLoader

from .._checks import check_int
from ._common import BSSSampler, find_sampler, restore_at_epoch_start

if TYPE_CHECKING:
    from accelerate import Accelerator  # type: ignore[import-untyped]

__all__ = ["BalanceSamplingLoader", "prepare_loader"]

_STATE_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # 1: bss-sampler 0.2.0, the sampler saved at its epoch's start


class BalanceSamplingLoader:
    """A prepared loader over a global BSS sampler that counts the batches the loop has taken.

    Built by `prepare_loader`. Iterate it as the prepared loader; call `set_epoch` before each
    epoch. Its `state_dict` holds the number of batches this process has taken from the current
    epoch (each handed-out batch counts; save after the optimiser step) and the sampler's state
    at the samples all processes have taken (``batches * step_samples``). `load_state_dict`
    loads that state, so the sampler checks that it regenerates the epoch's order (another
    torch's random numbers would make the skipped batches other samples: refused, with the
    remedy), then rewinds the sampler to the epoch's start; the next iteration skips the batches
    with ``skip_first_batches``, which reproduces the epoch exactly, padding included.

    Args:
        loader: the loader returned by ``accelerator.prepare``.
        sampler: the BSS sampler that loader draws from (``global_order=True`` on more than one
            process).
        skip_first_batches: ``accelerator.skip_first_batches``.
        step_samples: samples of the sampler's order one batch on every process takes together
            (the ``DataLoader``'s ``batch_size`` times the processes; without
            ``split_batches``).
    """

    def __init__(
        self,
        loader: Iterable[Any],
        sampler: BSSSampler,
        skip_first_batches: Callable[[Any, int], Iterable[Any]],
        step_samples: int,
    ) -> None:
        self.loader = loader
        self.sampler = sampler
        self._skip_first_batches = skip_first_batches
        self.step_samples = check_int("step_samples", step_samples, 1)
        self._batches = 0  # taken from the current epoch, skipped ones included
        self._skip = 0  # batches the next iteration skips (set by load_state_dict)

    @property
    def epoch(self) -> int:
        """The sampler's epoch: after ``load_state`` the checkpoint's, where the loop resumes."""
        return self.sampler.epoch

    @property
    def batches(self) -> int:
        """Batches this process has taken from the current epoch (skipped ones included)."""
        return self._batches

    def set_epoch(self, epoch: int) -> None:
        """Move to ``epoch`` (the current one keeps its place, as for the sampler)."""
        epoch = check_int("epoch", epoch, 0)
        if epoch != self.sampler.epoch:
            self._batches = self._skip = 0
        set_loader_epoch = getattr(self.loader, "set_epoch", None)
        if set_loader_epoch is not None:
            set_loader_epoch(epoch)  # Accelerate's own epoch counter, forwarded to the sampler
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        """Batches the next iteration yields on this process (a resumed epoch: what is left)."""
        return len(self.loader) - self._skip  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        if self.sampler.remaining != self.sampler.epoch_length():
            raise RuntimeError(
                f"the sampler was restored {self.sampler.epoch_length() - self.sampler.remaining} "
                f"samples into epoch {self.sampler.epoch}: the position belongs to this loader "
                "(it skips whole batches), so register the BalanceSamplingLoader for "
                "checkpointing, not the sampler"
            )
        skip, self._skip = self._skip, 0
        self._batches = skip
        source = self._skip_first_batches(self.loader, skip) if skip else self.loader
        return self._count(source)

    def _count(self, source: Iterable[Any]) -> Iterator[Any]:
        for batch in source:
            self._batches += 1
            yield batch

    def _taken(self, batches: int) -> int:
        """Samples of the epoch's order the processes have taken after ``batches`` each."""
        return min(batches * self.step_samples, self.sampler.epoch_length())

    def state_dict(self) -> dict[str, Any]:
        """The batches taken from the current epoch and the sampler's state at that point."""
        return {
            "version": _STATE_VERSION,
            "sampler": self.sampler.state_dict(consumed=self._taken(self._batches)),
            "batches": self._batches,
            "step_samples": self.step_samples,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict`: the sampler at its epoch's start (after checking that the
        epoch's order is regenerated), and the next iteration skips the batches already taken.

        Raises:
            ValueError: a state of another format, batch size or number of processes; a state
                inside an epoch whose order this process regenerates differently (the message
                names the remedy: ``state_dict['batches']`` set to 0 trains the epoch again).
        """
        for key in ("version", "sampler", "batches"):
            if key not in state:
                raise KeyError(f"state_dict lacks the field {key!r}")
        version = state["version"]
        if version not in _READABLE_VERSIONS:
            raise ValueError(
                f"state_dict['version'] must be one of {list(_READABLE_VERSIONS)}, got {version!r}"
            )
        batches = check_int("state_dict['batches']", state["batches"], 0)
        sampler_state = state["sampler"]
        epoch = sampler_state.get("epoch")
        if version == 1:  # bss-sampler 0.2.0: the sampler at its epoch's start, nothing to check
            self.sampler.load_state_dict(sampler_state)
            if 0 < self._taken(batches) < self.sampler.epoch_length():
                warnings.warn(
                    f"the loader's state was saved by bss-sampler 0.2.0 {batches} batches into "
                    f"epoch {epoch} without the epoch's order, so whether this process "
                    "regenerates that order (torch's random numbers can change between "
                    "versions) cannot be checked: resume under the torch that saved it, or set "
                    "state_dict['batches'] to 0 to train the epoch again from its start",
                    stacklevel=2,
                )
        else:
            saved = check_int("state_dict['step_samples']", state.get("step_samples"), 1)
            if saved != self.step_samples:
                raise ValueError(
                    f"state_dict['step_samples'] is {saved} (samples one batch on every process "
                    f"took when it was saved), this loader takes {self.step_samples}: resume "
                    "with the batch size and number of processes that saved it"
                )
            if batches > 0 and sampler_state.get("yielded") == 0:
                raise ValueError(
                    f"state_dict['batches'] is {batches} but state_dict['sampler']['yielded'] "
                    "is 0: the position is the loader's; to train the epoch again from its "
                    "start, set state_dict['batches'] to 0 (and leave the sampler's state)"
                )
            state_at = sampler_state if batches else {**sampler_state, "yielded": 0}
            restore_at_epoch_start(
                self.sampler,
                state_at,
                remedy=f"to train epoch {epoch} again from its start, load the loader's state "
                "with state_dict['batches'] set to 0",
            )
        self._batches = self._skip = batches


def prepare_loader(accelerator: Accelerator, loader: DataLoader[Any]) -> BalanceSamplingLoader:
    """Prepare ``loader`` (over a BSS sampler) and register it for checkpointing.

    Args:
        accelerator: the ``accelerate.Accelerator``.
        loader: a ``DataLoader`` not yet prepared, whose ``sampler`` is a BSS sampler built with
            ``global_order=True`` when there is more than one process.

    Returns:
        The prepared loader, wrapped to count the batches taken, and registered with
            ``accelerator.register_for_checkpointing``.

    Raises:
        TypeError: the loader does not draw from a BSS sampler.
        ValueError: a sampler that shards by rank under more than one process.
    """
    sampler = find_sampler(loader)
    processes = accelerator.num_processes
    if processes > 1 and not sampler.global_order:
        raise ValueError(
            f"accelerator.prepare deals whole batches of one global order to the {processes} "
            f"processes, so the sampler must yield that order: build it with global_order=True "
            f"(got a sampler sharded {sampler.num_replicas} ways, which would be sharded twice)"
        )
    batch_size = loader.batch_size or getattr(loader.batch_sampler, "batch_size", None)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"the loader's batch_size must be a positive int (given to DataLoader, or a "
            f"batch_sampler's batch_size), got {batch_size!r}: the checkpoint counts the "
            "samples of the order taken as batches times batch_size"
        )
    split = bool(getattr(accelerator, "split_batches", False))
    step_samples = batch_size if split else batch_size * processes
    wrapped = BalanceSamplingLoader(
        accelerator.prepare(loader), sampler, accelerator.skip_first_batches, step_samples
    )
    accelerator.register_for_checkpointing(wrapped)
    return wrapped
