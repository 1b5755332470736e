"""BSS in the Hugging Face ``Trainer``: its sampler hook, re-scoring, exact resume.

`BalanceSamplingTrainer` is a ``transformers.Trainer`` whose ``_get_train_sampler`` returns the
BSS sampler (the hook the maintainers point to for custom orders) and which adds a
`BalanceSamplingCallback`: before each epoch it re-scores when ``needs_update`` and calls
``set_epoch``; at each checkpoint it writes the sampler's state to ``bss_sampler.pt`` in the
checkpoint folder, and ``train(resume_from_checkpoint=...)`` restores it. To combine it with
another ``Trainer`` subclass, put it first: ``class MyTrainer(BalanceSamplingTrainer,
SFTTrainer)``.

Under several processes the ``Trainer`` prepares its loader with Accelerate, which deals whole
batches of one *global* order to the processes (``BatchSamplerShard``), so the sampler must be
built with ``global_order=True``; on resume the ``Trainer`` replays the interrupted epoch and skips
the batches it already trained on, so the checkpoint's sampler state is loaded at its position
(the sampler checks that it regenerates the epoch's order) and then rewound to the epoch's
start. The ``Trainer`` fixes the number of steps per epoch when it builds the loader, so the
sampler's epochs must all have one length: `LearnedBalanceSampler` (a
`HeuristicCurriculumSampler` whose subset grows, and `bss_sampler.SMVSampler`, whose epochs
hold the copies each valuation calls for, are refused). The scoring settings of
``update_scores`` are ``bss_alpha``, ``bss_criteria``, ``bss_train_mode``, ``bss_forward``:

    sampler = LearnedBalanceSampler(train_set, global_order=True)
    trainer = BalanceSamplingTrainer(model=model, args=args, train_dataset=train_set,
                                     bss_sampler=sampler)
    trainer.train()                                   # or train(resume_from_checkpoint=True)

The scoring pass calls the model without labels and reads ``(multimodal_logits,
[unimodal_logits, ...])`` or a mapping with the keys ``"multimodal"`` and ``"unimodal"``
(`trainer_forward`); pass ``bss_forward`` otherwise. Written against transformers 5.23 (tested);
the hook's signature changed in 2025 (``_get_train_sampler(self)`` before, with an optional
``train_dataset`` after): both forms are accepted.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, cast

import torch
from torch.utils.data import Dataset, Sampler
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput, get_last_checkpoint

from .._checks import check_int
from ..protocol import ScoredSampler, ValuedSampler
from ..scoring import ForwardOutput, default_forward
from ._common import (
    BSSSampler,
    ValuationPass,
    pass_settings,
    restore_at_epoch_start,
    scoring_loader,
    state_at,
    valuation_pass,
)

__all__ = ["SAMPLER_FILE", "BalanceSamplingCallback", "BalanceSamplingTrainer", "trainer_forward"]

SAMPLER_FILE = "bss_sampler.pt"
"""The file, in each checkpoint folder, that holds the sampler's state."""

_UNBOUNDED_EPOCHS = 1000  # epochs whose lengths are compared when the run is bounded by steps


def trainer_forward(model: torch.nn.Module, batch: Any) -> ForwardOutput:
    """`bss_sampler.default_forward` for a ``Trainer`` batch, whose labels are ``"labels"``.

    The model is called with every other entry but ``"index"`` (and without labels).
    """
    if isinstance(batch, Mapping) and "labels" in batch:
        batch = {("target" if key == "labels" else key): value for key, value in batch.items()}
    return default_forward(model, batch)


def _check_sampler(sampler: Any, name: str) -> BSSSampler:
    """``sampler`` if the Trainer can train in its order, else the reason."""
    if not isinstance(sampler, (ScoredSampler, ValuedSampler)):
        raise TypeError(
            f"{name} must be a scored sampler (LearnedBalanceSampler, or any sampler satisfying "
            f"bss_sampler.ScoredSampler), got {type(sampler).__name__}"
        )
    if isinstance(sampler, ValuedSampler) and sampler.varies_epoch_length:
        raise ValueError(
            f"{name}={type(sampler).__name__}: its epochs hold N samples plus the copies each "
            "valuation calls for, a number known only once the epoch's valuation is done, but "
            "the Trainer fixes the number of steps per epoch (and counts epochs by it on "
            "resume) when it builds its loader: train it with Accelerate "
            "(bss_sampler.integrations.accelerate.prepare_loader), Lightning or your own loop"
        )
    return sampler


class BalanceSamplingCallback(TrainerCallback):
    """Re-scores and moves a BSS sampler each epoch and keeps it in the checkpoints.

    `BalanceSamplingTrainer` adds it; use it alone only with your own ``_get_train_sampler``
    override, and call `load_checkpoint` before ``train(resume_from_checkpoint=...)``.

    * ``on_epoch_begin``: the sampler's valuation pass (``update_scores``) when
      ``needs_update(epoch)`` (before epoch 0, then on the sampler's schedule, not again for a
      resumed epoch), then ``set_epoch(epoch)``; refuses an epoch whose length differs from the
      one the Trainer fixed when it built its loader.
    * ``on_save``: the sampler's state where training stands in its epoch, to `SAMPLER_FILE` in
      the checkpoint folder (by the process that saves); `load_checkpoint` checks with it that
      this process regenerates the epoch's order before the Trainer skips the batches trained.

    The settings are passed to the sampler's pass as keywords (``None``: the pass's default) and
    checked against its signature here: one it does not take raises ``TypeError`` naming it.

    Args:
        sampler: the sampler the ``Trainer``'s loader draws from.
        scoring_loader: the loader the pass runs over (this process's unshuffled share of the
            training set). Default: built from the training loader's dataset and collator with
            `bss_sampler.integrations.scoring_loader`.
        forward: ``forward(model, batch)`` of `bss_sampler.score_dataset`; default
            `trainer_forward`.
        alpha: ``alpha`` of Eq. 5 (`bss_sampler.score_dataset`'s default).
        criteria: the criteria of Eq. 6.
        train_mode: score in train mode (default: the sampler's preset's).
        settings: further keyword settings of the sampler's pass (a new method's own).
        scoring_batch_size: batch size of the default scoring loader (default: the per-device
            training batch size).
    """

    def __init__(
        self,
        sampler: BSSSampler,
        *,
        scoring_loader: Iterable[Any] | None = None,
        forward: Callable[[Any, Any], Any] | None = None,
        alpha: float | None = None,
        criteria: Sequence[str] | str | None = None,
        train_mode: bool | None = None,
        settings: Mapping[str, Any] | None = None,
        scoring_batch_size: int | None = None,
    ) -> None:
        self.sampler = _check_sampler(sampler, "sampler")
        self.scoring_loader = scoring_loader
        if forward is None and isinstance(sampler, ScoredSampler):
            forward = trainer_forward
        self.forward = forward
        named = {"forward": forward, "alpha": alpha, "criteria": criteria, "train_mode": train_mode}
        owner = "BalanceSamplingCallback"
        self._pass: ValuationPass = valuation_pass(
            sampler, pass_settings(named, settings, owner=owner), owner=owner
        )
        self.scoring_batch_size = (
            None
            if scoring_batch_size is None
            else check_int("scoring_batch_size", scoring_batch_size, 1)
        )
        self._fixed_length: int | None = None  # the epoch length the Trainer counted with
        self._unchecked: int | None = None  # a loaded state's epoch, saved without its position

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        self._fixed_length = self.sampler.epoch_length()

    def on_epoch_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        # The Trainer sets state.epoch to epoch + steps / steps_in_epoch: a whole number at an
        # epoch's start, epoch + fraction when it resumes inside one.
        epoch = int(state.epoch or 0)
        if self._unchecked is not None:
            if self._unchecked == epoch and (state.epoch or 0) > epoch:
                warnings.warn(
                    f"the checkpoint's {SAMPLER_FILE} holds the sampler at the start of epoch "
                    f"{epoch} (written by bss-sampler 0.2.0), and the Trainer resumes inside that "
                    "epoch: whether this process regenerates the epoch's order (torch's random "
                    "numbers can change between versions) cannot be checked. Resume under the "
                    "torch that saved it, or from the checkpoint taken at the epoch's start",
                    stacklevel=2,
                )
            self._unchecked = None
        if self.sampler.needs_update(epoch):
            if self.scoring_loader is None:
                self.scoring_loader = self._default_scoring_loader(args, kwargs["train_dataloader"])
            self._pass(kwargs["model"], self.scoring_loader)
        self.sampler.set_epoch(epoch)
        length = self.sampler.epoch_length()
        if self._fixed_length is not None and length != self._fixed_length:
            raise RuntimeError(
                f"epoch {epoch} of the {type(self.sampler).__name__} holds {length} samples, but "
                f"the Trainer fixed its steps per epoch for {self._fixed_length} when it built "
                "its loader: it would cut the epoch short or count epochs wrongly on resume. Use "
                "a sampler whose epochs all hold the same number of samples"
            )

    def on_save(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if not args.should_save:
            return
        folder = os.path.join(str(args.output_dir), f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"no checkpoint folder {folder} to save the sampler in (a hyperparameter search "
                "saves elsewhere, which BalanceSamplingCallback does not support)"
            )
        path = os.path.join(folder, SAMPLER_FILE)
        sampler_state = self._sampler_state(args, state, kwargs.get("train_dataloader"))
        torch.save(sampler_state, path + ".tmp")
        os.replace(path + ".tmp", path)

    def _sampler_state(
        self, args: TrainingArguments, state: TrainerState, loader: Any
    ) -> dict[str, Any]:
        """The sampler's state at the samples the processes have trained in its epoch."""
        progress = (state.epoch or 0.0) - self.sampler.epoch
        if loader is None or not 0.0 < progress < 1.0:
            return self.sampler.state_dict(consumed=0)  # at an epoch's start or end
        batches = round(progress * len(loader))  # what the Trainer skips on resume
        per_batch = getattr(loader, "total_batch_size", None)
        if not isinstance(per_batch, int):
            per_batch = args.per_device_train_batch_size * args.world_size
        return state_at(self.sampler, batches * per_batch)

    def load_checkpoint(
        self,
        folder: str | os.PathLike[str],
        *,
        ignore_data_skip: bool = False,
        start_step: int | None = None,
    ) -> None:
        """Restore the sampler from `SAMPLER_FILE` in a checkpoint ``folder``, at the start of
        its epoch (the Trainer skips the batches trained).

        A state saved inside an epoch is first loaded at its position, so the sampler checks
        that it regenerates the epoch's order (``ValueError`` otherwise, with the remedy).
        ``ignore_data_skip``: ``TrainingArguments.ignore_data_skip``, the Trainer trains the
        epoch again from its start (within its step budget): nothing to check.
        ``start_step``: the global step at which the checkpoint's epoch started, for the
        message.
        """
        path = os.path.join(folder, SAMPLER_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} does not exist: the checkpoint was not written with "
                "BalanceSamplingCallback, so the sampler's scores and epoch cannot be restored"
            )
        state = torch.load(path, weights_only=True)
        if ignore_data_skip:
            state = {**state, "yielded": 0}
        epoch = state.get("epoch")
        at = f" (step {start_step} here)" if start_step is not None else ""
        restore_at_epoch_start(
            self.sampler,
            state,
            remedy=f"to train epoch {epoch} again from its start, resume from the checkpoint "
            f"taken at its start{at}, or under the torch that saved this one",
        )
        self._unchecked = None if ignore_data_skip or state["yielded"] else state["epoch"]

    def _default_scoring_loader(self, args: TrainingArguments, train_loader: Any) -> Iterable[Any]:
        return scoring_loader(
            train_loader.dataset,
            self.scoring_batch_size or args.per_device_train_batch_size,
            num_replicas=args.world_size,
            rank=args.process_index,
            collate_fn=train_loader.collate_fn,
            num_workers=args.dataloader_num_workers,
        )


class BalanceSamplingTrainer(Trainer):
    """A ``transformers.Trainer`` that trains in a BSS sampler's order and resumes it exactly.

    Takes the ``Trainer``'s arguments plus the keyword-only ones below; `BalanceSamplingCallback`
    runs before the ``callbacks`` given.

    Args:
        bss_sampler: a `LearnedBalanceSampler` over ``train_dataset`` (``global_order=True``
            under more than one process), or any sampler satisfying `bss_sampler.ScoredSampler`
            whose epochs all hold the same number of samples.
        bss_scoring_loader: see `BalanceSamplingCallback`'s ``scoring_loader``.
        bss_forward: see `BalanceSamplingCallback`'s ``forward``.
        bss_alpha, bss_criteria, bss_train_mode: the scoring settings of ``update_scores``
            (``alpha`` of Eq. 5, ``criteria`` of Eq. 6, ``train_mode``); ``None``: its defaults.
        bss_settings: further keyword settings of the sampler's pass (a new method's own).

    Raises:
        ValueError: a sampler sharded by rank under several processes, one over a dataset of
            another length, or `bss_sampler.SMVSampler` (its epochs' lengths follow its
            valuations, and the Trainer fixes them).
        TypeError: a setting the sampler's pass does not take.
    """

    def __init__(
        self,
        *args: Any,
        bss_sampler: BSSSampler,
        bss_scoring_loader: Iterable[Any] | None = None,
        bss_forward: Callable[[Any, Any], Any] | None = None,
        bss_alpha: float | None = None,
        bss_criteria: Sequence[str] | str | None = None,
        bss_train_mode: bool | None = None,
        bss_settings: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        _check_sampler(bss_sampler, "bss_sampler")
        self.bss_callback = BalanceSamplingCallback(
            bss_sampler,
            scoring_loader=bss_scoring_loader,
            forward=bss_forward,
            alpha=bss_alpha,
            criteria=bss_criteria,
            train_mode=bss_train_mode,
            settings=bss_settings,
        )
        kwargs["callbacks"] = [self.bss_callback, *(kwargs.get("callbacks") or [])]
        super().__init__(*args, **kwargs)
        world_size = self.args.world_size
        if world_size > 1 and not bss_sampler.global_order:
            raise ValueError(
                f"the Trainer deals whole batches of one global order to its {world_size} "
                "processes (Accelerate's BatchSamplerShard), so the sampler must yield that "
                "order: build it with global_order=True (got one sharded "
                f"{bss_sampler.num_replicas} ways, which would be sharded twice)"
            )
        train_dataset = kwargs.get("train_dataset", self.train_dataset)
        if train_dataset is not None and len(train_dataset) != bss_sampler.num_samples:
            raise ValueError(
                f"bss_sampler was built for {bss_sampler.num_samples} samples, train_dataset "
                f"has {len(train_dataset)}"
            )

    @property
    def bss_sampler(self) -> BSSSampler:
        """The BSS sampler the training loader draws from."""
        return self.bss_callback.sampler

    def _get_train_sampler(self, train_dataset: Dataset[Any] | None = None) -> Sampler[Any] | None:
        """The BSS sampler (the ``train_sampling_strategy`` option is ignored)."""
        sampler = self.bss_sampler
        max_steps = self.args.max_steps
        epochs = math.ceil(self.args.num_train_epochs) if max_steps <= 0 else _UNBOUNDED_EPOCHS
        lengths = {sampler.epoch_length(t) for t in range(max(1, epochs))}
        if len(lengths) > 1:
            raise ValueError(
                "the Trainer fixes the number of steps per epoch when it builds the loader, but "
                f"this {type(sampler).__name__}'s epochs hold from {min(lengths)} to "
                f"{max(lengths)} samples: use a LearnedBalanceSampler (every epoch holds every "
                "sample) or a training loop that rebuilds its loader each epoch"
            )
        return cast("Sampler[Any]", sampler)  # a ScoredSampler is a torch Sampler

    def _epoch_start_step(self, folder: str) -> int | None:
        """The global step at which the epoch of the checkpoint in ``folder`` started."""
        path = os.path.join(folder, "trainer_state.json")
        if not os.path.isfile(path):
            return None
        with open(path) as file:
            state = json.load(file)
        step, epoch = state.get("global_step"), state.get("epoch")
        if not isinstance(step, int) or not isinstance(epoch, (int, float)) or epoch <= 0:
            return None
        fraction = epoch - math.floor(epoch)
        per_epoch = step / epoch
        return round(step - fraction * per_epoch)

    def train(
        self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any
    ) -> TrainOutput:
        """``Trainer.train``; with ``resume_from_checkpoint``, the sampler is restored first."""
        folder: str | None = None
        if isinstance(resume_from_checkpoint, str):
            folder = resume_from_checkpoint
        elif resume_from_checkpoint is True:
            folder = get_last_checkpoint(self.args.output_dir)  # type: ignore[no-untyped-call]
        if folder is not None:
            self.bss_callback.load_checkpoint(
                folder,
                ignore_data_skip=self.args.ignore_data_skip,
                start_step=self._epoch_start_step(folder),
            )
            resume_from_checkpoint = folder
        return super().train(resume_from_checkpoint, *args, **kwargs)
