"""BSS with torchdata's ``StatefulDataLoader``: a mid-epoch snapshot resumes exactly.

Run::

    python examples/integrations/torchdata_stateful.py --num-workers 2 --stop-after 5

or, killed and resumed in a new process (``--sampler smv``: SMV's stream, copies included)::

    python examples/integrations/torchdata_stateful.py --stop-after 2 --snapshot snap.pt
    python examples/integrations/torchdata_stateful.py --resume-from snap.pt

What it shows: ``StatefulDataLoader.state_dict()`` asks the sampler for its ``state_dict()``
(scores, epoch, position) and accounts for the batches its workers had prefetched, so a loader
built around a *fresh* sampler continues with exactly the batches the interrupted one had not
yet delivered, with ``num_workers=0`` as with worker processes.

One ordering rule: restore the sampler's own state (its scores) *before* the loader's.
``StatefulDataLoader`` calls ``iter(sampler)`` before it hands the sampler its saved state, and a
sampler without scores refuses to iterate. The checkpoint therefore holds both
``loader.state_dict()`` and ``sampler.state_dict()``; the loader's state then sets the position.

The sampler shards explicitly (``num_replicas``/``rank``), which needs no process group: the
recipe plays each rank in turn and checks that the ranks' shares together are the epoch's order.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from _toy import (
    KINDS,
    AnySampler,
    ToyAV,
    ToyAVModel,
    add_common_args,
    make_any_sampler,
    make_train_set,
    set_valuation,
    update,
)
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

Batches = list[list[int]]
STOPPED = 3
"""The exit status of a run ended by ``--snapshot`` (``os._exit``, workers still alive)."""


def loader_for(
    sampler: AnySampler, dataset: ToyAV, batch_size: int, num_workers: int
) -> StatefulDataLoader:
    return StatefulDataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers
    )


def _batches(loader: Iterable[dict[str, torch.Tensor]]) -> Batches:
    return [batch["index"].tolist() for batch in loader]


def interrupted(
    kind: str,
    dataset: ToyAV,
    values: torch.Tensor,
    *,
    epoch: int,
    rank: int,
    world_size: int,
    batch_size: int,
    num_workers: int,
    stop_after: int,
    seed: int = 0,
) -> tuple[Batches, Batches, dict[str, Any]]:
    """One rank's epoch uninterrupted, then again up to ``stop_after`` batches, and the snapshot
    taken there: ``{"loader": loader.state_dict(), "sampler": sampler.state_dict()}``."""
    runs = []
    for _ in range(2):
        sampler = make_any_sampler(kind, dataset, seed=seed, num_replicas=world_size, rank=rank)
        set_valuation(sampler, values)
        sampler.set_epoch(epoch)
        runs.append((sampler, loader_for(sampler, dataset, batch_size, num_workers)))
    full = _batches(runs[0][1])
    sampler, loader = runs[1]
    iterator = iter(loader)
    head = [next(iterator)["index"].tolist() for _ in range(stop_after)]
    return full, head, {"loader": loader.state_dict(), "sampler": sampler.state_dict()}


def resumed(
    kind: str,
    dataset: ToyAV,
    state: dict[str, Any],
    *,
    rank: int,
    world_size: int,
    batch_size: int,
    num_workers: int,
    seed: int = 0,
) -> Batches:
    """The batches a fresh sampler and loader restored from ``state`` yield: the sampler's own
    state first (its valuation: the loader calls ``iter(sampler)`` before restoring it)."""
    sampler = make_any_sampler(kind, dataset, seed=seed, num_replicas=world_size, rank=rank)
    sampler.load_state_dict(state["sampler"])
    restored = loader_for(sampler, dataset, batch_size, num_workers)
    restored.load_state_dict(state["loader"])
    return _batches(restored)


def interrupted_and_resumed(
    kind: str,
    dataset: ToyAV,
    values: torch.Tensor,
    *,
    rank: int,
    world_size: int,
    batch_size: int,
    num_workers: int,
    seed: int = 0,
    **stop: int,
) -> tuple[Batches, Batches, Batches]:
    """One rank's epoch three ways: uninterrupted, up to ``stop_after`` batches, and the rest
    from a fresh loader restored from the snapshot taken there (through ``torch.save``)."""
    shard = {"rank": rank, "world_size": world_size, "batch_size": batch_size}
    full, head, state = interrupted(
        kind, dataset, values, num_workers=num_workers, seed=seed, **shard, **stop
    )
    buffer = io.BytesIO()
    torch.save(state, buffer)  # the "crash": the interrupted loader's workers are gone
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    return full, head, resumed(kind, dataset, state, num_workers=num_workers, seed=seed, **shard)


def main() -> None:
    parser = add_common_args(
        argparse.ArgumentParser(description=__doc__.splitlines()[0]), kinds=KINDS
    )
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--world-size", type=int, default=2, help="ranks to play in turn")
    parser.add_argument("--epoch", type=int, default=1)
    parser.add_argument("--stop-after", type=int, default=3, help="batches before the snapshot")
    parser.add_argument(
        "--snapshot",
        type=Path,
        default=None,
        metavar="FILE",
        help="play rank --rank only: save the snapshot (and the uninterrupted epoch) to FILE "
        f"and end the process at once (exit status {STOPPED}, its workers still running)",
    )
    parser.add_argument(
        "--resume-from",
        type=Path,
        default=None,
        metavar="FILE",
        help="in this new process, resume rank --rank from a --snapshot FILE and check it",
    )
    parser.add_argument("--rank", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    dataset = make_train_set(args.sampler, args.num_samples, seed=args.seed)
    shard = {"world_size": args.world_size, "batch_size": args.batch_size}
    common = {"num_workers": args.num_workers, "seed": args.seed, **shard}
    if args.resume_from is not None:
        saved = torch.load(args.resume_from, weights_only=True)
        tail = resumed(args.sampler, dataset, saved["state"], rank=args.rank, **common)
        if saved["head"] + tail != saved["full"]:
            raise SystemExit(f"rank {args.rank}: the resumed loader did not continue exactly")
        print(f"rank {args.rank}: {len(saved['head'])} batches, new process, {len(tail)}: exact")
        return
    scoring = make_any_sampler(args.sampler, dataset, seed=args.seed)
    values = update(scoring, ToyAVModel(), DataLoader(dataset, batch_size=16))
    scoring.set_epoch(args.epoch)
    stop = {"epoch": args.epoch, "stop_after": args.stop_after}
    if args.snapshot is not None:
        full, head, state = interrupted(
            args.sampler, dataset, values, rank=args.rank, **common, **stop
        )
        torch.save({"full": full, "head": head, "state": state}, args.snapshot)
        os._exit(STOPPED)  # no clean-up, as a kill
    shards = []
    for rank in range(args.world_size):
        full, head, tail = interrupted_and_resumed(
            args.sampler, dataset, values, rank=rank, **common, **stop
        )
        if head + tail != full:
            raise SystemExit(f"rank {rank}: the resumed loader did not continue exactly")
        shards.append([index for batch in full for index in batch])
        print(f"rank {rank}: {len(head)} batches, snapshot, {len(tail)} restored batches: exact")
    order = scoring.epoch_indices().tolist()
    merged = [index for share in zip(*shards) for index in share]  # dealt back, rank by rank
    if merged[: len(order)] != order:
        raise SystemExit("the ranks' shares together are not the epoch's order")
    print(f"{args.world_size} ranks cover the epoch's {len(order)} samples exactly once, in order")


if __name__ == "__main__":
    main()
