"""BSS under plain ``torchrun`` + DistributedDataParallel, with a mid-epoch checkpoint and resume.

Run (CPU, gloo)::

    torchrun --standalone --nproc-per-node 2 examples/integrations/torchrun_ddp.py --out runs/ddp
    # simulate a crash: checkpoint after step 10, die at step 13, then resume from the checkpoint
    torchrun --standalone --nproc-per-node 2 examples/integrations/torchrun_ddp.py \\
        --out runs/ddp-crash --checkpoint-at 10 --kill-at 13
    torchrun --standalone --nproc-per-node 2 examples/integrations/torchrun_ddp.py \\
        --out runs/ddp-crash --resume runs/ddp-crash

What it shows:

* explicit sharding: each rank builds the sampler with ``num_replicas=world_size, rank=rank``;
  every rank computes the same global order from ``(seed, epoch, scores)`` and keeps its
  ``DistributedSampler``-style share, so no indices travel between processes;
* synced scores: ``update_scores`` runs each rank over its ``DistributedSampler(shuffle=False)``
  share of the dataset and all-reduces, so every rank holds identical scores;
* resume: every rank saves model, optimiser, sampler state and its record; after a restart the
  sampler continues the interrupted epoch exactly where it stopped (no ``set_epoch`` for that
  epoch: it would restart the epoch).

Each rank writes ``record-rank{r}.json`` (per epoch: scores, length, consumed indices) to
``--out``; ``tests/integrations/test_torchrun.py`` checks them against a single process.
"""

from __future__ import annotations

import argparse
import gc
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional  # before init_process_group: see the teardown
from _toy import (
    ToyAV,
    ToyAVModel,
    add_common_args,
    epoch_record,
    make_sampler,
    save_record,
    score_loader,
    training_loss,
)
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader


def parse_args() -> argparse.Namespace:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument(
        "--checkpoint-at",
        type=int,
        default=None,
        help="save a checkpoint after this many optimiser steps",
    )
    parser.add_argument(
        "--kill-at",
        type=int,
        default=None,
        help="exit abruptly (os._exit) after this many steps, to test resuming",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue from the checkpoint saved in DIR (may be --out)",
    )
    return parser.parse_args()


def checkpoint_path(out: Path, rank: int) -> Path:
    return out / f"checkpoint-rank{rank}.pt"


def main() -> None:
    args = parse_args()
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    args.out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    dataset = ToyAV(args.num_samples, seed=args.seed)
    model = ToyAVModel()
    ddp_model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    sampler = make_sampler(
        args.sampler, dataset, seed=args.seed, num_replicas=world_size, rank=rank
    )
    scoring = score_loader(dataset)

    start_epoch, step, record = 0, 0, []
    resumed = False
    if args.resume is not None:
        state: dict[str, Any] = torch.load(checkpoint_path(args.resume, rank), weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.load_state_dict(state["sampler"])
        start_epoch, step, record = state["epoch"], state["step"], state["record"]
        resumed = True
    else:
        sampler.update_scores(model, scoring, progress=False)  # before training (Algorithm 1)

    for epoch in range(start_epoch, args.epochs):
        if resumed:  # the restored sampler is mid-epoch: keep its epoch and position
            resumed = False
            entry = record.pop()
        else:
            if epoch > 0 and sampler.needs_update(epoch):
                sampler.update_scores(model, scoring, progress=False)
            sampler.set_epoch(epoch)
            entry = epoch_record(epoch, sampler, [])
        for batch in DataLoader(dataset, batch_size=args.batch_size, sampler=sampler):
            optimizer.zero_grad()
            training_loss(ddp_model, batch).backward()
            optimizer.step()
            entry["indices"].extend(batch["index"].tolist())
            step += 1
            if step == args.checkpoint_at:
                torch.save(
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "sampler": sampler.state_dict(),
                        "epoch": epoch,
                        "step": step,
                        "record": [*record, entry],
                    },
                    checkpoint_path(args.out, rank),
                )
                dist.barrier()
            if step == args.kill_at:
                os._exit(1)  # no cleanup, as a crash or a preemption would leave it
        record.append(entry)

    save_record(args.out, rank, record)
    if rank == 0:
        torch.save(model.state_dict(), args.out / "final-model.pt")
    # Teardown. destroy_process_group frees gloo (joining its worker threads) only when nothing
    # else holds the group; a worker thread still alive at interpreter exit can abort the process
    # (SIGABRT, "terminate called without an active exception"). DDP holds the group, and so does
    # torch.distributed.nn.functional if first imported after init_process_group (its defaults
    # are group.WORLD), hence the import above. The barrier: every rank past its last collective.
    dist.barrier()
    del ddp_model
    gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
