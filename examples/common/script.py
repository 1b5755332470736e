"""The end of every example script: build the model, train, evaluate, plot."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from torch import nn
from torch.utils.data import Dataset

from examples.common.cli import config_from_args
from examples.common.plots import plot_history
from examples.common.runtime import seed_everything
from examples.common.splits import stratified_split
from examples.common.training import fit

__all__ = ["default_out", "hold_out_validation", "run_example"]

_D = TypeVar("_D", bound="SplittableDataset")


class SplittableDataset(Protocol):
    """A dataset with labels that can make subsets, with or without training augmentation."""

    targets: Any

    def __len__(self) -> int: ...

    def subset(self: _D, indices: Any, train: bool = ...) -> _D: ...


def hold_out_validation(
    train: _D, evals: dict[str, _D], fraction: float, seed: int
) -> tuple[_D, dict[str, _D], _D]:
    """``(train, eval splits, scoring view of train)``, with a stratified ``val`` split held out.

    ``fraction = 0`` keeps every training item (selection then falls back to ``test``). The
    scoring view is the training set without augmentation, in the same order.
    """
    if fraction > 0:
        rest, held = stratified_split(train.targets, fraction, seed)
        evals = {"val": train.subset(held, train=False), **evals}
        train = train.subset(rest)
    return train, evals, train.subset(range(len(train)), train=False)


def default_out(script: str, args: argparse.Namespace) -> str:
    """``runs/<script>/<dataset>-<method>-<sampler>-seed<seed>``: runs never overwrite."""
    return f"runs/{script}/{args.dataset}-{args.method}-{args.sampler}-seed{args.seed}"


def run_example(
    args: argparse.Namespace,
    data: tuple[Dataset[Any], Mapping[str, Dataset[Any]], Dataset[Any]],
    build_model: Callable[[], nn.Module],
    *,
    unit: str = "items",
) -> list[dict[str, Any]]:
    """Train a model from ``build_model`` on ``data = (train, eval splits, scoring view of train)``.

    Seeds everything before the model is built (same initial weights for every sampler), runs
    :func:`examples.common.training.fit` with the flags of ``args`` and, on rank 0, writes
    ``<args.out>/accuracy.png``. Returns the per-epoch history.
    """
    cfg = config_from_args(args)
    train, evals, score_set = data
    sizes = ", ".join(f"{len(v)} {k}" for k, v in evals.items())  # type: ignore[arg-type]
    print(f"{args.dataset}: {len(train)} train {unit}, {sizes}")  # type: ignore[arg-type]
    seed_everything(cfg.seed)
    history = fit(build_model(), train, evals, cfg, out_dir=args.out, score_set=score_set)
    if int(os.environ.get("RANK", "0")) == 0:
        plot_history(
            history, Path(args.out) / "accuracy.png", splits=list(evals), title=args.dataset
        )
    return history
