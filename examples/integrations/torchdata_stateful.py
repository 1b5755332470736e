"""BSS with torchdata's ``StatefulDataLoader``: a mid-epoch snapshot resumes exactly.

Run::

    python examples/integrations/torchdata_stateful.py --num-workers 2 --stop-after 5

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

import torch
from _toy import BSSSampler, ToyAV, ToyAVModel, add_common_args, make_sampler
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

Batches = list[list[int]]


def loader_for(
    sampler: BSSSampler, dataset: ToyAV, batch_size: int, num_workers: int
) -> StatefulDataLoader:
    return StatefulDataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers
    )


def interrupted_and_resumed(
    kind: str,
    dataset: ToyAV,
    scores: torch.Tensor,
    *,
    epoch: int,
    rank: int,
    world_size: int,
    batch_size: int,
    num_workers: int,
    stop_after: int,
    seed: int = 0,
) -> tuple[Batches, Batches, Batches]:
    """One rank's epoch three ways: uninterrupted, up to ``stop_after`` batches, and the rest
    from a fresh loader restored from the snapshot taken there (through ``torch.save``)."""

    def fresh() -> BSSSampler:
        return make_sampler(kind, dataset, seed=seed, num_replicas=world_size, rank=rank)

    sampler = fresh()
    sampler.set_scores(scores)
    sampler.set_epoch(epoch)
    full = [
        batch["index"].tolist() for batch in loader_for(sampler, dataset, batch_size, num_workers)
    ]

    sampler = fresh()  # a second run of the same epoch, this time interrupted
    sampler.set_scores(scores)
    sampler.set_epoch(epoch)
    loader = loader_for(sampler, dataset, batch_size, num_workers)
    iterator = iter(loader)
    head = [next(iterator)["index"].tolist() for _ in range(stop_after)]
    buffer = io.BytesIO()
    torch.save({"loader": loader.state_dict(), "sampler": sampler.state_dict()}, buffer)
    del iterator, loader  # the "crash": workers and prefetched batches are gone

    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    sampler = fresh()  # no scores, epoch 0
    sampler.load_state_dict(state["sampler"])
    restored = loader_for(sampler, dataset, batch_size, num_workers)
    restored.load_state_dict(state["loader"])
    tail = [batch["index"].tolist() for batch in restored]
    return full, head, tail


def main() -> None:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--world-size", type=int, default=2, help="ranks to play in turn")
    parser.add_argument("--epoch", type=int, default=1)
    parser.add_argument("--stop-after", type=int, default=3, help="batches before the snapshot")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    dataset = ToyAV(args.num_samples, seed=args.seed)
    scoring = make_sampler(args.sampler, dataset, seed=args.seed)
    scores = scoring.update_scores(ToyAVModel(), DataLoader(dataset, batch_size=16), progress=False)
    scoring.set_epoch(args.epoch)
    shards = []
    for rank in range(args.world_size):
        full, head, tail = interrupted_and_resumed(
            args.sampler,
            dataset,
            scores,
            epoch=args.epoch,
            rank=rank,
            world_size=args.world_size,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            stop_after=args.stop_after,
            seed=args.seed,
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
