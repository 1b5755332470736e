"""Data loaders of a run: the training order (random, heuristic BSS or learned BSS) and the
sequential loaders for scoring and evaluation."""

from __future__ import annotations

from collections.abc import Sized
from typing import TYPE_CHECKING, Any, Union

from torch.utils.data import DataLoader, Dataset, DistributedSampler

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler

if TYPE_CHECKING:
    from examples.common.runtime import Runtime
    from examples.common.training import TrainConfig

__all__ = ["SAMPLERS", "BSSSampler", "build_sampler", "make_eval_loader", "make_train_loader"]

#: Names accepted by ``TrainConfig.sampler``.
SAMPLERS = ("random", "heuristic", "learned")

BSSSampler = Union[HeuristicCurriculumSampler, LearnedBalanceSampler]


def build_sampler(
    train_set: Sized, cfg: TrainConfig, runtime: Runtime
) -> BSSSampler | DistributedSampler[Any]:
    """The training sampler named by ``cfg.sampler``, sharded over the ranks under DDP.

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
