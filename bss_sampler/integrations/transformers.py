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
the batches it already trained on, so the checkpoint holds the sampler at the start of its epoch.
The ``Trainer`` fixes the number of steps per epoch when it builds the loader, so the sampler's
epochs must all have one length: `LearnedBalanceSampler` (a `HeuristicCurriculumSampler` whose
subset grows is refused):

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

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any, cast

import torch
from torch.utils.data import Dataset, Sampler
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput, get_last_checkpoint

from .._checks import check_int
from ..scoring import Forward, ForwardOutput, default_forward
from ._common import BSSSampler, scoring_loader

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


class BalanceSamplingCallback(TrainerCallback):
    """Re-scores and moves a BSS sampler each epoch and keeps it in the checkpoints.

    `BalanceSamplingTrainer` adds it; use it alone only with your own ``_get_train_sampler``
    override, and call `load_checkpoint` before ``train(resume_from_checkpoint=...)``.

    * ``on_epoch_begin``: ``update_scores`` when ``needs_update(epoch)`` (before epoch 0, then on
      the sampler's schedule, not again for a resumed epoch), then ``set_epoch(epoch)``.
    * ``on_save``: the sampler's state at the start of its epoch, to `SAMPLER_FILE` in the
      checkpoint folder (by the process that saves).

    Args:
        sampler: the sampler the ``Trainer``'s loader draws from.
        scoring_loader: the loader ``update_scores`` runs over (this process's unshuffled share
            of the training set). Default: built from the training loader's dataset and collator
            with `bss_sampler.integrations.scoring_loader`.
        forward: ``forward(model, batch)`` of `bss_sampler.score_dataset`; default
            `trainer_forward`.
        scoring_batch_size: batch size of the default scoring loader (default: the per-device
            training batch size).
    """

    def __init__(
        self,
        sampler: BSSSampler,
        *,
        scoring_loader: Iterable[Any] | None = None,
        forward: Forward | None = None,
        scoring_batch_size: int | None = None,
    ) -> None:
        self.sampler = sampler
        self.scoring_loader = scoring_loader
        self.forward = forward or trainer_forward
        self.scoring_batch_size = (
            None
            if scoring_batch_size is None
            else check_int("scoring_batch_size", scoring_batch_size, 1)
        )

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
        if self.sampler.needs_update(epoch):
            model = kwargs["model"]
            if self.scoring_loader is None:
                self.scoring_loader = self._default_scoring_loader(args, kwargs["train_dataloader"])
            self.sampler.update_scores(
                model, self.scoring_loader, forward=self.forward, progress=False
            )
        self.sampler.set_epoch(epoch)

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
        torch.save(self.sampler.state_dict(consumed=0), path + ".tmp")
        os.replace(path + ".tmp", path)

    def load_checkpoint(self, folder: str | os.PathLike[str]) -> None:
        """Restore the sampler from `SAMPLER_FILE` in a checkpoint ``folder``."""
        path = os.path.join(folder, SAMPLER_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} does not exist: the checkpoint was not written with "
                "BalanceSamplingCallback, so the sampler's scores and epoch cannot be restored"
            )
        self.sampler.load_state_dict(torch.load(path, weights_only=True))

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
            under more than one process).
        bss_scoring_loader: see `BalanceSamplingCallback`'s ``scoring_loader``.
        bss_forward: see `BalanceSamplingCallback`'s ``forward``.

    Raises:
        ValueError: a sampler sharded by rank under several processes, or one over a dataset of
            another length.
    """

    def __init__(
        self,
        *args: Any,
        bss_sampler: BSSSampler,
        bss_scoring_loader: Iterable[Any] | None = None,
        bss_forward: Forward | None = None,
        **kwargs: Any,
    ) -> None:
        self.bss_callback = BalanceSamplingCallback(
            bss_sampler, scoring_loader=bss_scoring_loader, forward=bss_forward
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
            self.bss_callback.load_checkpoint(folder)
            resume_from_checkpoint = folder
        return super().train(resume_from_checkpoint, *args, **kwargs)
