"""BSS under plain ``torchrun`` + DistributedDataParallel: the README's loop, resumable at any step.

Run (CPU, gloo)::

    torchrun --standalone --nproc-per-node 2 examples/integrations/torchrun_ddp.py --out runs/ddp
    # stop after step 10 (as a crash or a preemption would), then resume in fresh processes
    torchrun --standalone --nproc-per-node 2 examples/integrations/torchrun_ddp.py \\
        --out runs/ddp-crash --num-workers 2 --kill-at 10
    torchrun --standalone --nproc-per-node 2 examples/integrations/torchrun_ddp.py \\
        --out runs/ddp-crash --num-workers 2 --resume runs/ddp-crash

What it shows:

* sharding by the process group: the sampler is built with no ``num_replicas``/``rank`` and,
  like ``DistributedSampler``, takes them from the initialised group; every rank computes the
  same global order from ``(seed, epoch, scores)`` and keeps its share, so no indices travel;
* synced scores: ``update_scores`` runs each rank over its ``DistributedSampler(shuffle=False)``
  share of the dataset and all-reduces, so every rank holds identical scores;
* exact resume with DataLoader workers: the loop counts the samples it consumed and saves
  ``sampler.state_dict(consumed=...)`` with the model and optimiser after every step (workers
  read indices ahead of training, so the sampler's own count would skip what they prefetched).
  A restart re-enters the same loop at the checkpoint's epoch: ``needs_update`` knows that epoch
  was already scored and ``set_epoch`` keeps the position, so the run continues exactly.

Each rank writes ``record-rank{r}.json`` (per epoch: scores, length, consumed indices) to
``--out``; ``tests/integrations/test_torchrun.py`` checks them against a single process and
kills a run at a random step.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
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
    training_loss,
)
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from bss_sampler.integrations import scoring_loader

KEEP = 2  # checkpoints kept per rank: ranks are at most one step apart when killed


def parse_args() -> argparse.Namespace:
    parser = add_common_args(
        argparse.ArgumentParser(
            description=__doc__.splitlines()[0],
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
    )
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers per rank")
    parser.add_argument(
        "--kill-at", type=int, default=None, help="exit abruptly (os._exit) after this step"
    )
    parser.add_argument(
        "--pause-at",
        type=int,
        default=None,
        help="after this step's checkpoint, wait to be killed (for tests that kill the job); "
        "a rank whose launcher dies exits",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue from the newest checkpoint in DIR that every rank wrote (may be --out)",
    )
    return parser.parse_args()


def save_checkpoint(out: Path, rank: int, step: int, state: dict[str, Any]) -> None:
    """Write this rank's checkpoint of ``step`` atomically and drop its older ones."""
    path = out / f"checkpoint-rank{rank}-step{step}.pt"
    torch.save(state, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)
    for old in sorted(out.glob(f"checkpoint-rank{rank}-step*.pt"), key=_step)[:-KEEP]:
        old.unlink()


def _step(path: Path) -> int:
    return int(path.stem.rsplit("-step", 1)[1])


def latest_checkpoint(folder: Path, rank: int, world_size: int) -> dict[str, Any]:
    """This rank's checkpoint of the newest step that every rank saved."""
    steps = [
        {_step(p) for p in folder.glob(f"checkpoint-rank{r}-step*.pt")} for r in range(world_size)
    ]
    common = set.intersection(*steps)
    if not common:
        raise FileNotFoundError(f"no step has a checkpoint from all {world_size} ranks in {folder}")
    path = folder / f"checkpoint-rank{rank}-step{max(common)}.pt"
    state: dict[str, Any] = torch.load(path, weights_only=True)
    return state


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
    sampler = make_sampler(args.sampler, dataset, seed=args.seed)  # shards by the process group
    loader = DataLoader(
        dataset, batch_size=args.batch_size, sampler=sampler, num_workers=args.num_workers
    )
    scoring = scoring_loader(dataset, batch_size=16)  # this rank's unshuffled share

    start_epoch, step, record = 0, 0, []
    if args.resume is not None:
        state = latest_checkpoint(args.resume, rank, world_size)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.load_state_dict(state["sampler"])
        start_epoch, step, record = state["epoch"], state["step"], state["record"]

    for epoch in range(start_epoch, args.epochs):  # the README's loop
        if sampler.needs_update(epoch):  # before epoch 0, then every E epochs; once per epoch
            sampler.update_scores(model, scoring, progress=False)
        sampler.set_epoch(epoch)  # a resumed epoch keeps its position
        if not record or record[-1]["epoch"] != epoch:
            record.append(epoch_record(epoch, sampler, []))
        consumed = 0
        for batch in loader:
            optimizer.zero_grad()
            # torch.autograd.backward is typed, unlike Tensor.backward
            torch.autograd.backward(training_loss(ddp_model, batch))
            optimizer.step()
            step += 1
            consumed += len(batch["target"])
            record[-1]["indices"].extend(batch["index"].tolist())
            save_checkpoint(
                args.out,
                rank,
                step,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "sampler": sampler.state_dict(consumed=consumed),
                    "epoch": epoch,
                    "step": step,
                    "record": record,
                },
            )
            if step == args.kill_at:
                os._exit(1)  # no cleanup, as a crash or a preemption would leave it
            if step == args.pause_at:  # the test kills the job here
                launcher = os.getppid()
                while os.getppid() == launcher:
                    time.sleep(1)
                os._exit(1)  # the launcher died and this rank was left: do not outlive it

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
