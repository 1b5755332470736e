"""The end of every example script: build the model, train, evaluate, plot."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from examples.common.plots import plot_history, plot_report, report_rows
from examples.common.runtime import seed_everything
from examples.common.splits import stratified_split
from examples.common.training import config_from_args, fit

__all__ = [
    "DEMO_HELP",
    "check_root",
    "default_out",
    "demo_folder",
    "hold_out_validation",
    "peek",
    "run_example",
    "scoring_seed",
]

DEMO_HELP = (
    "train for a few seconds on CPU on a tiny generated {} in its real layout, in a new "
    "temporary folder (nothing is downloaded); other flags still apply"
)

_D = TypeVar("_D", bound="SplittableDataset")


class SplittableDataset(Protocol):
    """A dataset with labels that can make subsets, with or without training augmentation."""

    @property
    def targets(self) -> Any: ...

    def __len__(self) -> int: ...

    def subset(
        self: _D, positions: Sequence[int], *, train: bool | None = ..., seed: int | None = ...
    ) -> _D: ...


def scoring_seed(seed: int) -> int:
    """The augmentation seed of an augmented scoring view: a stream of its own, spawned from
    ``seed``, so the scoring pass draws other augmentations than the training epoch."""
    return int(np.random.SeedSequence(seed).spawn(1)[0].generate_state(1)[0])


def hold_out_validation(
    train: _D, evals: dict[str, _D], fraction: float, seed: int, *, score_seed: int | None = None
) -> tuple[_D, dict[str, _D], _D]:
    """``(train, eval splits, scoring view of train)``, with a stratified ``val`` split held out.

    ``fraction = 0`` keeps every training item (selection then falls back to ``test``). The
    scoring view is the training set in the same order, without augmentation or, with
    ``score_seed``, with the training augmentations drawn from that seed (the released code's
    scoring pass; see `scoring_seed`).
    """
    if fraction > 0:
        rest, held = stratified_split(train.targets, fraction, seed)
        evals = {"val": train.subset(held, train=False), **evals}
        train = train.subset(rest)
    everything = range(len(train))
    if score_seed is None:
        return train, evals, train.subset(everything, train=False)
    return train, evals, train.subset(everything, train=True, seed=score_seed)


def default_out(script: str, args: argparse.Namespace) -> str:
    """``runs/<script>/<dataset>-<method>-<sampler>-seed<seed>``: runs never overwrite."""
    return f"runs/{script}/{args.dataset}-{args.method}-{args.sampler}-seed{args.seed}"


def peek(argv: list[str] | None) -> argparse.Namespace:
    """``--dataset`` and ``--demo``, read first so that ``--help`` shows the defaults they set."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--dataset")
    pre.add_argument("--demo", action="store_true")
    return pre.parse_known_args(argv)[0]


def check_root(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exactly one of ``--root`` and ``--demo`` (which writes its own data)."""
    if args.demo and args.root is not None:
        parser.error("--demo writes its own dataset: drop --root")
    if not args.demo and args.root is None:
        parser.error("--root is required (or try --demo)")


def demo_folder(script: str, args: argparse.Namespace) -> Path:
    """A new temporary folder for ``--demo``: data in ``data/``, outputs in ``run/`` (or ``--out``).

    Sets ``args.root`` and, when ``--out`` was not given, ``args.out``.
    """
    folder = Path(tempfile.mkdtemp(prefix=f"bss-{script}-demo-"))
    args.root = str(folder / "data")
    if args.out is None:
        args.out = str(folder / "run")
    print(f"demo: writing a tiny {args.dataset} dataset to {args.root}")
    return folder


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
    ``<args.out>/accuracy.png`` (and ``report.png`` when a scoring pass ran) and says where the
    outputs are. Returns the per-epoch history.
    """
    if args.threads > 0:
        torch.set_num_threads(args.threads)
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
        report = ""
        if report_rows(history):
            plot_report({args.dataset: history}, Path(args.out) / "report.png")
            report = ", report.png (each head's accuracy and the scores at each scoring)"
        print(
            f"outputs in {args.out}: history.csv and history.json (metrics per epoch), "
            f"accuracy.png (curves){report}, best.json, best.pt, last.pt (continue with --resume)"
        )
    return history
