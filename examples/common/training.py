"""One training loop for every example: BSS scheduling (Algorithm 1), evaluation, checkpoints.

Datasets yield mappings ``{"<modality>": tensor, ..., "target": int, "index": int}`` where
``index`` is the item's position in that dataset; models take the modality tensors as keyword
arguments and return ``(multimodal_logits, [unimodal_logits, ...])``.

Every scoring pass (and every online re-scoring) also gives a `bss_sampler.BalanceReport`: the
epoch's history row then holds it as ``report_*`` columns (``report_epoch``: the epochs trained
before it was scored). ``TrainConfig.report_every`` adds report-only passes, e.g. for random
order, which never scores.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from bss_sampler import BalanceReport, BalanceScorer, score_dataset
from bss_sampler.presets import get_preset
from examples.common.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from examples.common.evaluation import PREDICTIONS, evaluate, modality_names, split_batch
from examples.common.methods import METHODS, StepFn, get_method, wrap_for_method
from examples.common.records import format_row, report_columns, write_history, write_json
from examples.common.released import resolve_preset
from examples.common.runtime import Runtime, autocast, progress, setup_runtime, teardown_runtime
from examples.common.sampling import (
    SAMPLERS,
    BSSSampler,
    build_sampler,
    make_eval_loader,
    make_train_loader,
)

__all__ = [
    "TrainConfig",
    "build_optimizer",
    "build_scheduler",
    "config_from_args",
    "fit",
]

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("none", "step", "cosine")
ORDERS = ("balanced_first", "imbalanced_first", "balanced_last")


@dataclass
class TrainConfig:
    """Everything a run needs besides the model and the data; defaults are the paper's."""

    epochs: int = 100
    batch_size: int = 64
    eval_batch_size: int | None = None  #: defaults to ``batch_size``
    optimizer: str = "sgd"  #: ``sgd`` (momentum) or ``adam``
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_schedule: str = "none"  #: ``none``, ``step`` (``lr_step``, ``lr_gamma``) or ``cosine``
    lr_step: int = 70
    lr_gamma: float = 0.1
    method: str = "joint"  #: a key of ``examples.common.methods.METHODS``
    alpha: float = 0.2  #: Eq. 5 weight of the unimodal losses (scoring; training by default)
    #: ``(w_multi, w_uni)`` of the training loss ``w_multi CE_multi + w_uni sum_m CE_m``;
    #: None: Eq. 5's ``(1 - alpha, alpha)``. The released scripts: (0.1, 0.9) or (1, 1).
    loss_weights: tuple[float, float] | None = None
    predict: str = "all"  #: ``all`` (Eq. 12), ``unimodal_sum`` or ``multimodal``
    sampler: str = "learned"  #: ``random``, ``heuristic`` (BSS-H) or ``learned`` (BSS-L)
    preset: str = "paper"  #: ``paper`` or ``official`` (the released scripts' choices)
    order: str = "balanced_first"  #: or ``imbalanced_first`` (scores negated), ``balanced_last``
    criteria: tuple[str, ...] = ("similarity", "loss")
    beta: float | None = None  #: Eq. 9 EMA weight (learned); None: preset's (paper 0.6)
    update_every: int | None = None  #: E (learned); None: preset's (paper 5, official 1)
    temperature: float = 1.0  #: softmax temperature of Eq. 10 (learned)
    lambda0: float = 0.1  #: Eq. 7 initial fraction (heuristic)
    t_grow: int = 40  #: Eq. 7 epochs until all samples are in (heuristic)
    pacing: str = "root"  #: heuristic pacing: ``root``, ``linear`` or ``baby_step``
    rescore_every: int | None = None  #: heuristic re-ranking period (None: scored once)
    warmup_epochs: int = 0  #: random order, no scoring, for this many epochs; BSS starts after
    scoring: str = "pass"  #: ``pass`` (extra sequential pass) or ``online`` (training outputs)
    score_train_mode: bool | None = None  #: score in train mode; None: preset's (official: on)
    #: a report-only scoring pass every this many epochs when no BSS scoring happens (random
    #: order, warm-up, BSS-H between re-rankings); 0: reports only from BSS's own scorings
    report_every: int = 0
    seed: int = 0
    device: str = "auto"  #: ``auto`` = CUDA when available
    amp: bool = False  #: float16 autocast + GradScaler on CUDA, bfloat16 autocast on CPU
    workers: int = 0
    drop_last: bool = False
    select_split: str = "val"  #: model selection split; ``test`` when absent
    resume: str | None = None  #: path of a ``last.pt`` to continue from
    progress: bool = True  #: tqdm bars when tqdm is installed
    verbose: bool = True  #: print one line per epoch

    @property
    def train_loss_weights(self) -> tuple[float, float]:
        """``(w_multi, w_uni)`` of the training loss: ``loss_weights`` or Eq. 5's."""
        if self.loss_weights is not None:
            return self.loss_weights
        return (1.0 - self.alpha, self.alpha)

    def __post_init__(self) -> None:
        self.criteria = tuple(self.criteria)
        if self.loss_weights is not None:  # a list after a JSON round trip
            weights = tuple(float(w) for w in self.loss_weights)
            if len(weights) != 2 or not all(math.isfinite(w) and w >= 0 for w in weights):
                raise ValueError(
                    "loss_weights must be two finite weights >= 0 (multimodal, unimodal), "
                    f"got {self.loss_weights}"
                )
            self.loss_weights = (weights[0], weights[1])
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.predict not in PREDICTIONS:
            raise ValueError(f"predict must be one of {PREDICTIONS}, got {self.predict!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {self.order!r}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"warmup_epochs must lie in [0, epochs - 1] = [0, {self.epochs - 1}], "
                f"got {self.warmup_epochs}"
            )
        if self.report_every < 0:
            raise ValueError(f"report_every must be >= 0, got {self.report_every}")
        if self.scoring not in ("pass", "online"):
            raise ValueError(f"scoring must be 'pass' or 'online', got {self.scoring!r}")
        if self.scoring == "online" and self.sampler == "heuristic" and self.rescore_every:
            raise ValueError(
                "scoring='online' needs every sample once per epoch; the heuristic sampler shows "
                f"a growing subset, so rescore_every must be None, got {self.rescore_every}"
            )
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {self.method!r}")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of parsed flags (attributes that are not config fields are ignored).

    Flags left to ``--preset`` are resolved first (`examples.common.released.resolve_preset`).
    """
    args = resolve_preset(args)
    names = [f.name for f in fields(TrainConfig)]
    return TrainConfig(**{name: getattr(args, name) for name in names if hasattr(args, name)})


def build_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum or Adam, both with ``cfg.weight_decay``."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch learning-rate schedule, or None for a constant rate."""
    if cfg.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_step, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return None


@dataclass
class _Run:
    """The live objects of one run, passed between the loop's steps."""

    cfg: TrainConfig
    runtime: Runtime
    model: nn.Module  #: the bare model (scoring, evaluation, checkpoints)
    train_model: nn.Module  #: the model that trains (DDP-wrapped under torchrun)
    step_fn: StepFn
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler
    sampler: Any
    train_loader: DataLoader[Any]
    score_set: Dataset[Any]  #: the training data as the scoring pass sees it
    score_loader: DataLoader[Any]
    scorer: BalanceScorer | None
    warmup_sampler: Any  #: the random order of the warm-up epochs (``sampler`` when random)
    warmup_loader: DataLoader[Any]

    @property
    def bss(self) -> BSSSampler | None:
        return None if self.cfg.sampler == "random" else self.sampler

    def bss_epoch(self, epoch: int) -> int:
        """Algorithm 1's epoch: it starts after the warm-up (negative during the warm-up)."""
        return epoch - self.cfg.warmup_epochs

    def epoch_loader(self, epoch: int) -> DataLoader[Any]:
        """Set this epoch on the sampler that orders it and return that sampler's loader."""
        if self.bss is None or self.bss_epoch(epoch) < 0:
            self.warmup_sampler.set_epoch(epoch)
            return self.warmup_loader
        self.sampler.set_epoch(self.bss_epoch(epoch))
        return self.train_loader

    @property
    def show(self) -> bool:
        return self.cfg.progress and self.runtime.is_main


def _score_pass(run: _Run, epoch: int) -> None:
    """Algorithm 1's scoring: one sequential pass over the training set's scoring view.

    An augmented view (the released code's scoring pass) draws this epoch's augmentations.
    """
    assert run.bss is not None
    if hasattr(run.score_set, "set_epoch"):
        run.score_set.set_epoch(epoch)
    with autocast(run.runtime.device, run.cfg.amp):
        run.bss.update_scores(run.model, run.score_loader, progress=run.show)


def _update_scores(run: _Run, epoch: int) -> BalanceReport | None:
    """Score before ``epoch``: a pass when BSS starts (after the warm-up), then re-score when
    the sampler asks (online from the last epoch, or a pass). Returns the scoring's report."""
    bss, t = run.bss, run.bss_epoch(epoch)
    if bss is None or t < 0:
        return None
    if t == 0:
        _score_pass(run, epoch)
    elif not bss.needs_update(t):
        return None
    elif run.scorer is not None:
        bss.set_scores(run.scorer.compute(), report=run.scorer.last_report)
    else:
        _score_pass(run, epoch)
    return bss.last_report


def _report_pass(run: _Run, epoch: int) -> BalanceReport:
    """A scoring pass that only reports (no sampler sees its scores), as BSS would score."""
    cfg = run.cfg
    if hasattr(run.score_set, "set_epoch"):
        run.score_set.set_epoch(epoch)
    train_mode = cfg.score_train_mode
    if train_mode is None:
        train_mode = get_preset(cfg.preset).train_mode
    size = len(run.score_set)  # type: ignore[arg-type]
    with autocast(run.runtime.device, cfg.amp):
        _, report = score_dataset(
            run.model,
            run.score_loader,
            size,
            alpha=cfg.alpha,
            criteria=cfg.criteria,
            train_mode=train_mode,
            progress=run.show,
            return_report=True,
        )
    return report


def _train_epoch(run: _Run, epoch: int, loader: DataLoader[Any]) -> tuple[float, int]:
    """One pass over this epoch's order; returns (mean loss, samples seen over all ranks)."""
    device = run.runtime.device
    bss, t = run.bss, run.bss_epoch(epoch)
    collect = run.scorer is not None and bss is not None and t >= 0 and bss.needs_update(t + 1)
    if collect:
        assert run.scorer is not None
        run.scorer.reset()
    run.train_model.train()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    batches = progress(loader, enabled=run.show, desc=f"epoch {epoch + 1}")
    for batch in batches:
        inputs, targets, indices = split_batch(batch, device)
        with autocast(device, run.cfg.amp):
            out = run.step_fn(run.train_model, inputs, targets, run.cfg)
        run.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(run.scaler.scale(out.loss))  # typed, unlike Tensor.backward
        run.scaler.step(run.optimizer)
        run.scaler.update()
        if collect:
            assert run.scorer is not None and indices is not None
            run.scorer.update(
                indices.to(device),
                out.multimodal_logits.detach().float(),
                [u.detach().float() for u in out.unimodal_logits],
                targets,
            )
        total[0] += out.loss.detach().double() * len(targets)
        total[1] += len(targets)
    if run.runtime.distributed:
        dist.all_reduce(total)
    return float(total[0] / total[1].clamp(min=1)), int(total[1])


def _state(
    run: _Run, epoch: int, history: list[dict[str, Any]], best: dict[str, Any]
) -> dict[str, Any]:
    bss = run.bss
    return {
        "epoch": epoch,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
        "scaler": run.scaler.state_dict(),
        "sampler": bss.state_dict() if bss is not None else None,
        "scorer": run.scorer.state_dict() if run.scorer is not None else None,
        "history": history,
        "best": best,
        "rng": rng_state(),
        "config": asdict(run.cfg),
    }


def _restore(run: _Run, ckpt: Mapping[str, Any]) -> None:
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    if run.scheduler is not None and ckpt["scheduler"] is not None:
        run.scheduler.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt["scaler"])
    if run.bss is not None and ckpt["sampler"] is not None:
        run.bss.load_state_dict(ckpt["sampler"])
    if run.scorer is not None and ckpt["scorer"] is not None:
        run.scorer.load_state_dict(ckpt["scorer"])
    set_rng_state(ckpt["rng"])


def _selection_split(cfg: TrainConfig, eval_sets: Mapping[str, Any]) -> str | None:
    if cfg.select_split in eval_sets:
        return cfg.select_split
    return "test" if "test" in eval_sets else next(iter(eval_sets), None)


def fit(
    model: nn.Module,
    train_set: Dataset[Any],
    eval_sets: Mapping[str, Dataset[Any]],
    cfg: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    score_set: Dataset[Any] | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``train_set`` and evaluate on every split of ``eval_sets`` each epoch.

    Returns one row per epoch: ``epoch`` (1-based), ``train_loss``, ``train_samples``, ``lr``,
    ``time_s`` and, per split, the metrics of :func:`examples.common.evaluation.evaluate`
    prefixed ``<split>_``; an epoch that started with a scoring pass (or a report-only pass,
    ``cfg.report_every``) also has its balance report's ``report_*`` columns
    (`report_columns`). ``score_set`` is the training data as the scoring pass sees it
    (e.g. without augmentation; same items in the same order), default ``train_set``. With
    ``out_dir``, rank 0 writes ``history.{csv,json}``, ``last.pt`` (resumable) and ``best.pt``
    (best ``<split>_acc`` on ``cfg.select_split``, else ``test``) plus ``best.json``.
    ``model`` first goes through :func:`examples.common.methods.wrap_for_method` (IPRM adds
    its mixup heads there); checkpoints hold the wrapped model's state.
    """
    runtime = setup_runtime(cfg.device)
    try:
        return _fit(model, train_set, eval_sets, cfg, runtime, out_dir, score_set)
    finally:
        teardown_runtime(runtime)


def _fit(
    model: nn.Module,
    train_set: Dataset[Any],
    eval_sets: Mapping[str, Dataset[Any]],
    cfg: TrainConfig,
    runtime: Runtime,
    out_dir: str | Path | None,
    score_set: Dataset[Any] | None,
) -> list[dict[str, Any]]:
    device = runtime.device
    model = wrap_for_method(model, cfg)  # e.g. IPRM's mixup head
    model.to(device)
    train_model: nn.Module = model
    if runtime.distributed:
        ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=ids)
    optimizer = build_optimizer(model.parameters(), cfg)
    sampler = build_sampler(train_set, cfg, runtime)  # type: ignore[arg-type]
    online = cfg.scoring == "online" and cfg.sampler != "random"
    warmup_sampler = sampler
    if cfg.warmup_epochs and cfg.sampler != "random":  # random order, as in a random-order run
        random_cfg = replace(cfg, sampler="random")
        warmup_sampler = build_sampler(train_set, random_cfg, runtime)  # type: ignore[arg-type]
    train_loader = make_train_loader(train_set, sampler, cfg, runtime)
    run = _Run(
        cfg=cfg,
        runtime=runtime,
        model=model,
        train_model=train_model,
        step_fn=get_method(cfg.method),
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, cfg),
        scaler=torch.amp.GradScaler(device.type, enabled=cfg.amp and device.type == "cuda"),
        sampler=sampler,
        train_loader=train_loader,
        score_set=score_set or train_set,
        score_loader=make_eval_loader(score_set or train_set, cfg, runtime, shard=True),
        scorer=BalanceScorer(
            len(train_set),  # type: ignore[arg-type]
            alpha=cfg.alpha,
            criteria=cfg.criteria,
            device=device,
        )
        if online
        else None,
        warmup_sampler=warmup_sampler,
        warmup_loader=train_loader
        if warmup_sampler is sampler
        else make_train_loader(train_set, warmup_sampler, cfg, runtime),
    )
    eval_loaders = {k: make_eval_loader(v, cfg, runtime, shard=False) for k, v in eval_sets.items()}
    out = Path(out_dir) if out_dir is not None and runtime.is_main else None
    select = _selection_split(cfg, eval_sets)
    log = print if cfg.verbose and runtime.is_main else (lambda *a, **k: None)
    log(
        f"model selection on split {select!r}"
        + (" (no validation split)" if select == "test" else "")
    )

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "split": select, "acc": -math.inf}
    start = 0
    if cfg.resume:
        ckpt = load_checkpoint(cfg.resume)
        _restore(run, ckpt)
        history, best, start = list(ckpt["history"]), dict(ckpt["best"]), ckpt["epoch"] + 1
        log(f"resumed from {cfg.resume} after epoch {start}")

    names = modality_names(model)
    for epoch in range(start, cfg.epochs):
        tic = time.perf_counter()
        report = _update_scores(run, epoch)
        if report is None and cfg.report_every and epoch % cfg.report_every == 0:
            report = _report_pass(run, epoch)
        loader = run.epoch_loader(epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        loss, seen = _train_epoch(run, epoch, loader)
        if run.scheduler is not None:
            run.scheduler.step()
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": loss,
            "train_samples": seen,
            "lr": lr,
        }
        for split, loader in eval_loaders.items():
            metrics = evaluate(model, loader, device, predict=cfg.predict, amp=cfg.amp)
            row.update({f"{split}_{k}": v for k, v in metrics.items()})
        row["time_s"] = time.perf_counter() - tic
        if report is not None:
            row.update(report_columns(report, epoch, names))
        history.append(row)
        log(format_row(row, list(eval_loaders)))
        if select is not None and row[f"{select}_acc"] > best["acc"]:
            best = {"epoch": epoch + 1, "split": select, "acc": row[f"{select}_acc"]}
            if out is not None:
                save_checkpoint(out / "best.pt", {"model": model.state_dict(), "row": row})
                write_json(out / "best.json", {**best, "row": row})
        if out is not None:
            write_history(history, out)
            save_checkpoint(out / "last.pt", _state(run, epoch, history, best))
    return history
