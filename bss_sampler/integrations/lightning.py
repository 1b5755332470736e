"""BSS in PyTorch Lightning: a ``Callback`` that scores, moves and checkpoints the sampler.

The sampler shards itself (by the process group, as ``DistributedSampler``) and the ``Trainer``
gets `trainer_settings`:

* ``use_distributed_sampler=False``: with the default ``True`` Lightning wraps a custom sampler
  in its ``DistributedSamplerWrapper``, which for training loaders *reshuffles* the order
  (Lightning 2.6 passes ``shuffle=True``) and would shard a sharded sampler a second time;
* ``reload_dataloaders_every_n_epochs=1`` for `HeuristicCurriculumSampler`: Lightning counts the
  batches when it builds the loader, and the heuristic sampler's epochs grow.

`BalanceSamplingCallback` checks both (`check_trainer`) and raises a ``ValueError`` that names
the setting and its value. Build the sampler once, where the process group exists (a
``LightningDataModule``'s ``setup``), and return it from every ``train_dataloader()``:

    class Data(L.LightningDataModule):
        def setup(self, stage):
            self.train_set = ...
            self.sampler = LearnedBalanceSampler(self.train_set)  # shards by the process group

        def train_dataloader(self):
            return DataLoader(self.train_set, batch_size=32, sampler=self.sampler)

    settings = trainer_settings(LearnedBalanceSampler)
    trainer = L.Trainer(**settings, callbacks=[BalanceSamplingCallback()], ...)
    trainer.fit(model, datamodule=Data())

Any sampler of `bss_sampler.integrations` works: the BSS samplers, `bss_sampler.SMVSampler`
(``BalanceSamplingCallback(forward=valuation_forward)``, ``trainer_settings(SMVSampler)``), a
new method's; the callback runs its valuation pass with the settings it was given
(``alpha=...`` for BSS).

Checkpoints: the sampler's state travels in Lightning's checkpoint (``Callback.state_dict``).
The callback moves the sampler to the next epoch (and re-scores it) at each epoch's end, before
``ModelCheckpoint`` saves, so a checkpoint taken at an epoch's end resumes exactly. Inside an
epoch the callback saves the sampler where training stands; on resume it loads it there (the
sampler checks that it regenerates the epoch's order), starts it at the epoch's beginning, and
the loader sets the position:

* torchdata's ``StatefulDataLoader`` (any ``num_workers``): Lightning restores the loader's own
  state, which holds the state of the sampler iterator it was drawing from; the rest of the epoch
  and every later epoch train exactly what an uninterrupted run trains (both samplers, a kill
  and a resume in a new process, tested).
* a plain ``DataLoader``: Lightning does not restore its position. The loader starts the epoch's
  order again and Lightning stops after the batches the epoch had left, so the epoch's first
  batches train twice and its last ones never; the callback warns at ``on_train_start``.
* a step checkpoint written on an epoch's last batch (before the epoch's end runs): Lightning
  2.6 resumes at the next epoch without that epoch's end, so a ``StatefulDataLoader`` yields
  no batch for it and a ``DataLoader`` with workers repeats the finished epoch's order; the
  callback warns at ``on_train_start``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from .._checks import check_bool, check_int
from ._common import (
    BSSSampler,
    ValuationPass,
    find_sampler,
    pass_settings,
    report_metrics,
    restore_at_epoch_start,
    score_summary,
    scoring_loader,
    state_at,
    valuation_pass,
)

__all__ = ["BalanceSamplingCallback", "check_trainer", "trainer_settings"]

_UNBOUNDED_EPOCHS = 1000  # epochs whose lengths are compared when max_epochs is unbounded


def _uses_distributed_sampler(trainer: pl.Trainer) -> bool:
    # Lightning keeps the Trainer argument on its accelerator connector (no public attribute).
    connector = getattr(trainer, "_accelerator_connector", None)
    return bool(getattr(connector, "use_distributed_sampler", False))


def _planned_epochs(trainer: pl.Trainer) -> int:
    max_epochs = trainer.max_epochs
    return max_epochs if max_epochs is not None and max_epochs > 0 else _UNBOUNDED_EPOCHS


def trainer_settings(sampler_type: type[BSSSampler]) -> dict[str, Any]:
    """The ``Trainer`` arguments a sampler of ``sampler_type`` needs: ``L.Trainer(**settings)``.

    ``use_distributed_sampler=False`` always; ``reload_dataloaders_every_n_epochs=1`` for a
    sampler whose epochs vary in length (``sampler_type.varies_epoch_length``, e.g.
    `bss_sampler.HeuristicCurriculumSampler`, whose epochs grow; reloading otherwise only
    rebuilds the loader, and its workers, each epoch).

    >>> from bss_sampler import HeuristicCurriculumSampler
    >>> trainer_settings(HeuristicCurriculumSampler)
    {'use_distributed_sampler': False, 'reload_dataloaders_every_n_epochs': 1}
    """
    varies = (
        getattr(sampler_type, "varies_epoch_length", None)
        if isinstance(sampler_type, type)
        else None
    )
    if not isinstance(varies, bool):
        raise TypeError(
            "sampler_type must be a scored sampler class (one with a varies_epoch_length "
            f"attribute, such as LearnedBalanceSampler; the class), got {sampler_type!r}"
        )
    settings: dict[str, Any] = {"use_distributed_sampler": False}
    if varies:
        settings["reload_dataloaders_every_n_epochs"] = 1
    return settings


def check_trainer(trainer: pl.Trainer, sampler: BSSSampler | None = None) -> None:
    """Raise ``ValueError`` when a ``Trainer`` setting would change what ``sampler`` yields.

    Without ``sampler``, checks only what needs none (``use_distributed_sampler`` on more than
    one process). With it, also that it shards as the ``Trainer`` runs and that a sampler whose
    epochs change length gets ``reload_dataloaders_every_n_epochs=1``.
    """
    world_size, rank = trainer.world_size, trainer.global_rank
    if world_size > 1 and _uses_distributed_sampler(trainer):
        raise ValueError(
            "Trainer(use_distributed_sampler=True) on "
            f"{world_size} processes wraps the BSS sampler in Lightning's "
            "DistributedSamplerWrapper, which reshuffles the order of training loaders (and "
            "shards a sharded sampler again): pass use_distributed_sampler=False (see "
            "bss_sampler.integrations.lightning.trainer_settings); the sampler shards itself"
        )
    if sampler is None:
        return
    if world_size > 1 and sampler.global_order:
        raise ValueError(
            f"the sampler has global_order=True, so each of the {world_size} processes would "
            "train on the whole order: build it without global_order (it then shards by the "
            "process group, or pass num_replicas=trainer.world_size, rank=trainer.global_rank)"
        )
    if not sampler.global_order and (sampler.num_replicas, sampler.rank) != (world_size, rank):
        raise ValueError(
            f"the sampler shards with num_replicas={sampler.num_replicas}, rank={sampler.rank}, "
            f"but this Trainer process has world_size={world_size}, global_rank={rank}: build "
            "the sampler in a LightningDataModule's setup() (the process group exists there) or "
            "pass num_replicas=trainer.world_size, rank=trainer.global_rank"
        )
    reload = getattr(trainer, "reload_dataloaders_every_n_epochs", 0)  # set by a connector
    if reload != 1:
        lengths = {sampler.epoch_length(t) for t in range(_planned_epochs(trainer))}
        if len(lengths) > 1:
            raise ValueError(
                f"Trainer(reload_dataloaders_every_n_epochs={reload}): Lightning counts the "
                "batches when it builds the loader, but this sampler's epochs hold from "
                f"{min(lengths)} to {max(lengths)} samples per process: pass "
                "reload_dataloaders_every_n_epochs=1 (see trainer_settings)"
            )
        if sampler.varies_epoch_length:  # e.g. SMV: lengths known only after each valuation
            raise ValueError(
                f"Trainer(reload_dataloaders_every_n_epochs={reload}): Lightning counts the "
                f"batches when it builds the loader, but this {type(sampler).__name__}'s epochs "
                "vary in length (varies_epoch_length=True; SMVSampler's hold the copies each "
                "valuation calls for), so a longer epoch would be cut short: pass "
                "reload_dataloaders_every_n_epochs=1 (see trainer_settings)"
            )


class BalanceSamplingCallback(pl.Callback):
    """Keeps a BSS sampler in step with ``Trainer.fit``: scores, epochs, checkpoints, logs.

    * ``setup``: `check_trainer` (``use_distributed_sampler``).
    * ``on_fit_start`` (after a checkpoint is restored, before the first loader is built): finds
      the sampler in the ``train_dataloader()`` the fit uses, checks the ``Trainer`` against it,
      and scores when ``needs_update`` for the sampler's epoch (before epoch 0; not again after
      a resume).
    * ``on_train_start`` (a resumed fit, loops and loader restored): warns where Lightning will
      not resume exactly: inside an epoch with a loader whose position it does not restore, or
      from a checkpoint taken on an epoch's last batch.
    * ``on_train_epoch_start``: checks that the loader still draws from that sampler, and logs
      ``bss/score_mean``, ``bss/score_min``, ``bss/score_max`` and ``bss/scores_epoch`` with
      ``pl_module.log_dict`` (epoch level); after each scoring pass, its balance report
      (`bss_sampler.BalanceReport.as_dict` under ``bss/report/``, without the histogram: each
      head's accuracy and confidence, the imbalance ratio, the score quantiles), identical on
      every rank.
    * ``on_train_epoch_end``: re-scores when ``needs_update(next_epoch)`` (unless training ends)
      and calls ``set_epoch(next_epoch)``, before ``ModelCheckpoint`` saves.
    * ``state_dict``/``load_state_dict``: the sampler's state in Lightning's checkpoint. Lightning
      saves rank 0's; any rank's state resumes any other (the ranks advance in lockstep).

    The sampler's valuation pass is its ``update_scores`` (the BSS samplers) or
    ``update_values`` (`bss_sampler.SMVSampler`); the settings below are passed to it as
    keywords (``None``: the pass's own default) and checked against its signature when the
    sampler is found: a setting the pass does not take, or one it requires (SMV's ``forward``)
    left out, raises ``TypeError`` naming it.

    Args:
        scoring_loader: ``scoring_loader(trainer)`` returns the loader the valuation pass runs
            over: this process's unshuffled share of the training set. Default: built from the
            training loader's dataset, ``collate_fn`` and ``num_workers`` with
            `bss_sampler.integrations.scoring_loader`.
        forward: ``forward(model, batch)`` of the pass. BSS: as for `bss_sampler.score_dataset`,
            default the LightningModule called as ``module(**inputs)`` or ``module(*inputs)``;
            SMV (required): ``(coalition_logits, targets, indices)``, see
            `bss_sampler.SMVSampler.update_values`.
        alpha: BSS: ``alpha`` of Eq. 5 (`bss_sampler.score_dataset`'s default).
        criteria: BSS: the criteria of Eq. 6.
        train_mode: BSS: score in train mode (default: the sampler's preset's).
        settings: further keyword settings of the sampler's pass (a new method's own).
        scoring_batch_size: batch size of the default scoring loader (default: the training
            loader's).
        log_scores: log the scores' summary each epoch and each scoring pass's report.
        modality_names: names of the modalities in the report's keys (default ``modality0``,
            ``modality1``, ...), in the model's order.
    """

    def __init__(
        self,
        *,
        scoring_loader: Callable[[pl.Trainer], Iterable[Any]] | None = None,
        forward: Callable[[Any, Any], Any] | None = None,
        alpha: float | None = None,
        criteria: Sequence[str] | str | None = None,
        train_mode: bool | None = None,
        settings: Mapping[str, Any] | None = None,
        scoring_batch_size: int | None = None,
        log_scores: bool = True,
        modality_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.scoring_loader = scoring_loader
        self.forward = forward
        named = {"forward": forward, "alpha": alpha, "criteria": criteria, "train_mode": train_mode}
        self.settings = pass_settings(named, settings, owner="BalanceSamplingCallback")
        self._pass: ValuationPass | None = None
        self.scoring_batch_size = (
            None
            if scoring_batch_size is None
            else check_int("scoring_batch_size", scoring_batch_size, 1)
        )
        self.log_scores = check_bool("log_scores", log_scores)
        self.modality_names = None if modality_names is None else tuple(modality_names)
        self._logged_report: object | None = None
        self.sampler: BSSSampler | None = None
        self._trainer: pl.Trainer | None = None
        self._train_loader: Any = None
        self._scoring: Iterable[Any] | None = None
        self._restored: Mapping[str, Any] | None = None  # a checkpoint's state, before on_fit_start

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            check_trainer(trainer)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._train_loader = trainer.fit_loop._data_source.dataloader()
        sampler = find_sampler(self._train_loader)
        check_trainer(trainer, sampler)
        self._pass = valuation_pass(sampler, self.settings, owner="BalanceSamplingCallback")
        if self._restored is not None:
            restore_at_epoch_start(
                sampler,
                self._restored,
                remedy="resume from a checkpoint taken at an epoch's end, or under the torch "
                "version that saved this one",
            )
            self._restored = None
        self.sampler, self._trainer = sampler, trainer
        if sampler.needs_update(sampler.epoch):
            self._score(trainer, pl_module)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning has restored its loops and the loader by now (not yet at on_fit_start)
        fit_loop = trainer.fit_loop
        if not fit_loop.restarted_mid_epoch:
            return
        progress = fit_loop.epoch_loop.batch_progress
        if progress.is_last_batch:
            epoch = trainer.current_epoch - 1
            rank_zero_warn(
                f"resuming from a checkpoint taken on the last batch of epoch {epoch}: Lightning "
                f"counts epoch {epoch} as finished without running its end (a re-scoring the "
                f"callback would do for epoch {epoch + 1} is lost) and starts epoch {epoch + 1} "
                "from the loader as restored: a StatefulDataLoader yields no batch for epoch "
                f"{epoch + 1}, a DataLoader with workers trains epoch {epoch}'s order again. "
                "Resume from a checkpoint taken at the epoch's end or inside an epoch",
                category=UserWarning,
            )
            return
        loader = trainer.train_dataloader
        resumable = all(
            callable(getattr(loader, name, None)) for name in ("state_dict", "load_state_dict")
        )
        done, length = progress.current.ready, trainer.num_training_batches  # batches trained
        if not resumable and 0 < done < length:
            left = int(length) - done
            rank_zero_warn(
                f"resuming inside epoch {trainer.current_epoch} after {done} of its {length} "
                f"batches with a {type(loader).__name__}, whose position Lightning does not "
                "restore: the loader starts the epoch's order again and Lightning ends the epoch "
                f"after {left} batches, so it trains the epoch's first {left} batches instead "
                f"of its last {left} ({min(done, left)} twice, {min(done, left)} never). Use "
                "torchdata's StatefulDataLoader, or resume from a checkpoint taken at an "
                "epoch's end",
                category=UserWarning,
            )

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sampler = self._require_sampler()
        if find_sampler(trainer.train_dataloader) is not sampler:
            raise RuntimeError(
                "the training loader no longer draws from the sampler the callback scores: build "
                "the sampler once (in setup()) and return it from every train_dataloader()"
            )
        if self.log_scores:
            summary = {f"bss/{key}": value for key, value in score_summary(sampler).items()}
            report = getattr(sampler, "last_report", None)  # a sampler may have none
            if report is not None and report is not self._logged_report:  # a new scoring pass
                self._logged_report = report
                rows = report_metrics(report, self.modality_names).items()
                summary.update((f"bss/report/{k}", v) for k, v in rows)
            pl_module.log_dict(summary, on_step=False, on_epoch=True, sync_dist=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sampler = self._require_sampler()
        next_epoch = trainer.current_epoch + 1
        if sampler.needs_update(next_epoch) and not self._last_epoch(trainer, next_epoch):
            self._score(trainer, pl_module)
        sampler.set_epoch(next_epoch)

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state where training stands in its epoch (batches trained times the
        batch size): a resume checks that it regenerates the epoch's order, then starts the
        sampler at the epoch's start, where the loader (a ``StatefulDataLoader``) sets the
        position."""
        if self.sampler is None:
            return {} if self._restored is None else {"sampler": self._restored}
        return {"sampler": self._sampler_state(self.sampler)}

    def _sampler_state(self, sampler: BSSSampler) -> dict[str, Any]:
        trainer, loader = self._trainer, self._train_loader
        batch_size = getattr(loader, "batch_size", None)
        if trainer is None or trainer.current_epoch != sampler.epoch or not batch_size:
            # between epochs (the sampler has moved on), or not countable: the pass's start
            return sampler.state_dict(consumed=0)
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        return state_at(sampler, int(batches) * int(batch_size))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning restores callbacks before on_fit_start, where the sampler is found.
        self._restored = state_dict.get("sampler")

    # -- helpers --------------------------------------------------------------------------------
    def _require_sampler(self) -> BSSSampler:
        if self.sampler is None:
            raise RuntimeError("BalanceSamplingCallback found no sampler: on_fit_start did not run")
        return self.sampler

    @staticmethod
    def _last_epoch(trainer: pl.Trainer, next_epoch: int) -> bool:
        max_epochs = trainer.max_epochs
        return trainer.should_stop or (max_epochs is not None and 0 <= max_epochs <= next_epoch)

    def _score(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pass is None:
            raise RuntimeError("BalanceSamplingCallback found no sampler: on_fit_start did not run")
        if self._scoring is None:
            self._scoring = (
                self._default_scoring_loader(trainer)
                if self.scoring_loader is None
                else self.scoring_loader(trainer)
            )
        self._pass(pl_module, self._scoring)

    def _default_scoring_loader(self, trainer: pl.Trainer) -> Iterable[Any]:
        loader = self._train_loader
        if not isinstance(loader, DataLoader):
            raise TypeError(
                "the default scoring loader is built from a torch DataLoader, got "
                f"{type(loader).__name__}: pass BalanceSamplingCallback(scoring_loader=...)"
            )
        batch_size = self.scoring_batch_size or loader.batch_size
        if batch_size is None:
            raise ValueError(
                "the training loader has no batch_size (it uses a batch_sampler): pass "
                "BalanceSamplingCallback(scoring_batch_size=...)"
            )
        return scoring_loader(
            loader.dataset,  # type: ignore[arg-type]
            batch_size,
            num_replicas=trainer.world_size,
            rank=trainer.global_rank,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
        )
