"""What the example scripts share before their loop: flags about the data, the demo folder, the
validation split and the scoring view."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from examples.common.splits import stratified_split

__all__ = [
    "DEMO_HELP",
    "check_root",
    "default_out",
    "demo_folder",
    "hold_out_validation",
    "peek",
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
