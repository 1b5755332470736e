"""The benchmarks' training harness: one loop over a `TrainConfig` (BSS scheduling, Algorithm 1,
evaluation, checkpoints), so that a benchmark runs many configurations from one table.

The example scripts do not use it: each holds its own loop (``examples/audio_video.py``). This is
the loop the examples shared before issue 18, kept for the benchmarks (``bench_quality``,
``bench_training``, ``bench_when``).

Datasets yield mappings ``{"<modality>": tensor, ..., "target": int, "index": int}`` where
``index`` is the item's position in that dataset; models take the modality tensors as keyword
arguments and return ``(multimodal_logits, [unimodal_logits, ...])``.

Every scoring pass (and every online re-scoring) also gives a `bss_sampler.BalanceReport`: the
epoch's history row then holds it as ``report_*`` columns (``report_epoch``: the epochs trained
before it was scored). ``TrainConfig.report_every`` adds report-only passes, e.g. for random
order, which never scores.

``sampler="smv"`` trains in SMV's order (`bss_sampler.SMVSampler`, ``smv_level``): before each
epoch from the end of the warm-up, a valuation pass over the scoring view, then the originals and
the single-modality copies it calls for, the batches carrying their modality masks to the model
(``model(**inputs, mask=mask)``, `examples.common.models.ConcatClassifier`). Its rows hold the
valuation's ``smv_*`` columns (`examples.common.smv.valuation_columns`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repository root on sys.path)
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from bss_sampler import (
    BalanceReport,
    BalanceScorer,
    HeuristicCurriculumSampler,
    LearnedBalanceSampler,
    SMVSampler,
    score_dataset,
)
from bss_sampler.presets import get_preset
from bss_sampler.smv import GAP_FUNCTIONS, ModalityMaskedDataset
from examples.common.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from examples.common.evaluation import PREDICTIONS, evaluate, modality_names, split_batch
from examples.common.iprm import IPRMClassifier, iprm_loss
from examples.common.models import ConcatClassifier, joint_loss
from examples.common.records import format_row, report_columns, write_history, write_json
from examples.common.runtime import Runtime, autocast, progress, setup_runtime, teardown_runtime
from examples.common.smv import valuation_columns, valuation_forward

__all__ = [
    "METHODS",
    "StepOutput",
    "TrainConfig",
    "build_optimizer",
    "build_scheduler",
    "fit",
]

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("none", "step", "cosine")
ORDERS = ("balanced_first", "imbalanced_first", "balanced_last")
SAMPLERS = ("random", "heuristic", "learned", "smv")
SMV_LEVELS = ("sample", "modality")
BSSSampler = HeuristicCurriculumSampler | LearnedBalanceSampler | SMVSampler


@dataclass
class StepOutput:
    """What a step function returns: the scalar loss and the batch's logits (for scoring)."""

    loss: Tensor
    multimodal_logits: Tensor
    unimodal_logits: Sequence[Tensor]


def joint_step(
    model: nn.Module, inputs: Mapping[str, Tensor], targets: Tensor, cfg: TrainConfig
) -> StepOutput:
    """Joint training of the fused head and every unimodal head: Eq. 5, or the released weights
    (``cfg.train_loss_weights``)."""
    multimodal, unimodal = model(**inputs)
    unimodal = list(unimodal)
    loss = joint_loss(multimodal, unimodal, targets, cfg.train_loss_weights)
    return StepOutput(loss, multimodal, unimodal)


def concat_step(
    model: nn.Module, inputs: Mapping[str, Tensor], targets: Tensor, cfg: TrainConfig
) -> StepOutput:
    """The paper's "Concat" baseline (Table 1): the fused head's cross-entropy alone; the
    unimodal logits are the fused head's per-modality parts (`ConcatClassifier`)."""
    multimodal, unimodal = model(**inputs)
    loss = F.cross_entropy(multimodal.float(), targets)
    return StepOutput(loss, multimodal, list(unimodal))


def iprm_step(
    model: nn.Module, inputs: Mapping[str, Tensor], targets: Tensor, cfg: TrainConfig
) -> StepOutput:
    """IPRM: probe, then learn under the instantaneous balance (encoders run once, one loss);
    advances the running weights. The multimodal logits returned are the probe's."""
    bare = model.module if isinstance(model, DistributedDataParallel) else model
    if not isinstance(bare, IPRMClassifier):
        raise TypeError(
            "method 'iprm' trains an IPRMClassifier; wrap the model with "
            f"IPRMClassifier.from_model (fit does this), got {type(bare).__name__}"
        )
    out = model(**inputs, rebalance=True)
    bare.update_ema(out.weights)
    return StepOutput(iprm_loss(out, targets), out.probe_logits, out.unimodal_logits)


StepFn = Callable[[nn.Module, Mapping[str, Tensor], Tensor, "TrainConfig"], StepOutput]

#: ``TrainConfig.method`` -> (the model it trains, made from a late-fusion model; its step).
METHODS: dict[str, tuple[Callable[[nn.Module], nn.Module], StepFn]] = {
    "joint": (lambda model: model, joint_step),
    "concat": (ConcatClassifier.from_model, concat_step),
    "iprm": (IPRMClassifier.from_model, iprm_step),
}


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
    method: str = "joint"  #: a key of `METHODS`
    alpha: float = 0.2  #: Eq. 5 weight of the unimodal losses (scoring; training by default)
    #: ``(w_multi, w_uni)`` of the training loss ``w_multi CE_multi + w_uni sum_m CE_m``;
    #: None: Eq. 5's ``(1 - alpha, alpha)``. The released scripts: (0.1, 0.9) or (1, 1).
    loss_weights: tuple[float, float] | None = None
    predict: str = "all"  #: ``all`` (Eq. 12), ``unimodal_sum`` or ``multimodal``
    sampler: str = "learned"  #: ``random``, ``heuristic`` (BSS-H), ``learned`` (BSS-L), ``smv``
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
    smv_level: str = "sample"  #: SMV: ``sample`` (per-sample copies) or ``modality``
    smv_alpha: float = 1.0  #: SMV modality level: the scale of the copy ratio
    smv_function: str = "linear"  #: SMV modality level: the gap function (``GAP_FUNCTIONS``)
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
        if self.sampler == "smv":
            self._check_smv()

    def _check_smv(self) -> None:
        if self.method != "concat":
            raise ValueError(
                "sampler='smv' trains SMV's Concat model (fused-head loss, masked features): "
                f"method must be 'concat', got {self.method!r}"
            )
        if self.scoring != "pass":
            raise ValueError(
                f"sampler='smv' values in a pass: scoring must be 'pass', got {self.scoring!r}"
            )
        if self.smv_level not in SMV_LEVELS:
            raise ValueError(f"smv_level must be one of {SMV_LEVELS}, got {self.smv_level!r}")
        if self.smv_function not in GAP_FUNCTIONS:
            raise ValueError(
                f"smv_function must be one of {sorted(GAP_FUNCTIONS)}, got {self.smv_function!r}"
            )


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


def build_sampler(
    train_set: Sized, cfg: TrainConfig, runtime: Runtime, num_modalities: int = 2
) -> BSSSampler | DistributedSampler[Any]:
    """The training sampler named by ``cfg.sampler``, sharded over the ranks under DDP
    (``num_modalities``: SMV's ``M``).

    ``"random"`` is a shuffled order, a pure function of ``(seed, epoch)``: torch's
    ``DistributedSampler`` (with ``num_replicas=1`` without DDP). The BSS samplers get explicit
    ``num_replicas``/``rank`` under DDP and yield the global order otherwise.
    """
    shard: dict[str, Any] = {}
    if runtime.distributed:
        shard = {"num_replicas": runtime.world_size, "rank": runtime.rank}
    common = {"preset": cfg.preset, "seed": cfg.seed, "drop_last": cfg.drop_last, **shard}
    if cfg.sampler == "random":
        return DistributedSampler(
            train_set,  # type: ignore[arg-type]
            num_replicas=runtime.world_size,
            rank=runtime.rank,
            shuffle=True,
            seed=cfg.seed,
            drop_last=cfg.drop_last,
        )
    if cfg.sampler == "heuristic":
        return HeuristicCurriculumSampler(
            train_set,
            lambda0=cfg.lambda0,
            t_grow=cfg.t_grow,
            pacing=cfg.pacing,
            order=cfg.order,
            rescore_every=cfg.rescore_every,
            **common,
        )
    if cfg.sampler == "learned":
        return LearnedBalanceSampler(
            train_set,
            beta=cfg.beta,
            update_every=cfg.update_every,
            temperature=cfg.temperature,
            order=cfg.order,
            **common,
        )
    if cfg.sampler == "smv":
        return SMVSampler(
            train_set,
            num_modalities,
            level=cfg.smv_level,
            alpha=cfg.smv_alpha,
            function=cfg.smv_function,
            seed=cfg.seed,
            drop_last=cfg.drop_last,
            **shard,
        )
    raise ValueError(f"sampler must be one of {SAMPLERS}, got {cfg.sampler!r}")


def _loader_kwargs(cfg: TrainConfig, runtime: Runtime) -> dict[str, Any]:
    return {
        "num_workers": cfg.workers,
        "pin_memory": runtime.device.type == "cuda",
    }


def make_train_loader(
    train_set: Dataset[Any], sampler: Any, cfg: TrainConfig, runtime: Runtime
) -> DataLoader[Any]:
    """The training loader over ``sampler`` (call ``sampler.set_epoch`` before each epoch)."""
    return DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        sampler=sampler,
        drop_last=cfg.drop_last,
        **_loader_kwargs(cfg, runtime),
    )


def make_eval_loader(
    dataset: Dataset[Any], cfg: TrainConfig, runtime: Runtime, *, shard: bool
) -> DataLoader[Any]:
    """A sequential loader; ``shard=True`` splits it over the ranks (for the scoring pass)."""
    sampler: DistributedSampler[Any] | None = None
    if shard and runtime.distributed:
        sampler = DistributedSampler(
            dataset, num_replicas=runtime.world_size, rank=runtime.rank, shuffle=False
        )
    return DataLoader(
        dataset,
        batch_size=cfg.eval_batch_size or cfg.batch_size,
        shuffle=False,
        sampler=sampler,
        **_loader_kwargs(cfg, runtime),
    )


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


def _smv_valuation(run: _Run, epoch: int) -> dict[str, Any] | None:
    """SMV's valuation before ``epoch`` when its sampler asks; the row's ``smv_*`` columns."""
    smv, t = run.sampler, run.bss_epoch(epoch)
    if t < 0 or not smv.needs_update(t):
        return None
    if hasattr(run.score_set, "set_epoch"):
        run.score_set.set_epoch(epoch)
    device = run.runtime.device
    with autocast(device, run.cfg.amp):
        smv.update_values(
            run.model, run.score_loader, forward=valuation_forward(device), progress=run.show
        )
    smv.set_epoch(t)
    names = modality_names(run.model) or [f"m{m}" for m in range(smv.num_modalities)]
    return valuation_columns(smv.last_report, epoch, names, len(smv) * run.runtime.world_size)


def _score_pass(run: _Run, epoch: int) -> None:
    """Algorithm 1's scoring: one sequential pass over the training set's scoring view.

    An augmented view (the released code's scoring pass) draws this epoch's augmentations.
    """
    bss = run.bss
    assert bss is not None and not isinstance(bss, SMVSampler)  # _smv_valuation
    if hasattr(run.score_set, "set_epoch"):
        run.score_set.set_epoch(epoch)
    with autocast(run.runtime.device, run.cfg.amp):
        bss.update_scores(
            run.model,
            run.score_loader,
            alpha=run.cfg.alpha,
            criteria=run.cfg.criteria,
            train_mode=run.cfg.score_train_mode,
            progress=run.show,
        )


def _update_scores(run: _Run, epoch: int) -> BalanceReport | None:
    """Score before ``epoch``: a pass when BSS starts (after the warm-up), then re-score when
    the sampler asks (online from the last epoch, or a pass). Returns the scoring's report."""
    bss, t = run.bss, run.bss_epoch(epoch)
    if bss is None or t < 0:
        return None
    assert not isinstance(bss, SMVSampler)  # _smv_valuation
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
        mask = None
        if loader is run.train_loader and run.cfg.sampler == "smv":  # [items, (B, M) masks]
            batch, mask = batch
        inputs, targets, indices = split_batch(batch, device)
        if mask is not None:  # the model zeroes the dropped modalities' features
            inputs["mask"] = mask.to(device)
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
    ``model`` first goes through the model hook of `METHODS` (IPRM adds its mixup heads there);
    checkpoints hold the wrapped model's state.
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
    wrap, step_fn = METHODS[cfg.method]
    model = wrap(model)  # e.g. IPRM's mixup head
    model.to(device)
    train_model: nn.Module = model
    if runtime.distributed:
        ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=ids)
    optimizer = build_optimizer(model.parameters(), cfg)
    names = modality_names(model)
    num_modalities = 2 if names is None else len(names)
    sampler = build_sampler(train_set, cfg, runtime, num_modalities)  # type: ignore[arg-type]
    online = cfg.scoring == "online" and cfg.sampler != "random"
    warmup_sampler = sampler
    if cfg.warmup_epochs and cfg.sampler != "random":  # random order, as in a random-order run
        random_cfg = replace(cfg, sampler="random")
        warmup_sampler = build_sampler(train_set, random_cfg, runtime)  # type: ignore[arg-type]
    train_loader = make_train_loader(
        ModalityMaskedDataset(train_set, num_modalities) if cfg.sampler == "smv" else train_set,
        sampler,
        cfg,
        runtime,
    )
    run = _Run(
        cfg=cfg,
        runtime=runtime,
        model=model,
        train_model=train_model,
        step_fn=step_fn,
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

    for epoch in range(start, cfg.epochs):
        tic = time.perf_counter()
        valuation = _smv_valuation(run, epoch) if cfg.sampler == "smv" else None
        report = None if cfg.sampler == "smv" else _update_scores(run, epoch)
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
        row.update(valuation or {})
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
