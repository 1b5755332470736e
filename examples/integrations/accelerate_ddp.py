"""BSS with Hugging Face Accelerate: ``prepare()``, ``register_for_checkpointing``, resume.

Run on 2 CPU processes (``accelerate launch --cpu --num_processes 2`` works as well)::

    torchrun --standalone --nproc-per-node 2 examples/integrations/accelerate_ddp.py \\
        --out runs/accelerate --checkpoint-at 10
    torchrun --standalone --nproc-per-node 2 examples/integrations/accelerate_ddp.py \\
        --out runs/accelerate-resumed --resume runs/accelerate/checkpoint

What it shows:

* the sampler is built *global* (``num_replicas=None``); ``accelerator.prepare(loader)`` wraps
  its batches in ``BatchSamplerShard``, which reads the whole order on every process and hands
  out whole batches round-robin (rank 0 gets batches 0, 2, 4, ...);
* ``loader.set_epoch(epoch)`` each epoch: Accelerate forwards it to the sampler (and would
  otherwise advance its own counter on every ``iter()``);
* ``accelerator.register_for_checkpointing(sampler)``: ``save_state``/``load_state`` carry the
  scores, their moving average and the epoch. Because every process reads the whole order (and
  one batch ahead), the sampler's own position is not the number of batches this process
  trained on; the recipe therefore rewinds the restored sampler to the start of its epoch and
  lets ``accelerator.skip_first_batches`` drop the batches already trained on.

Each rank writes ``record-rank{r}.json`` (per epoch: scores, length, consumed indices) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed.nn.functional  # before Accelerator(): see the teardown
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
from accelerate import Accelerator
from torch.utils.data import DataLoader


def main() -> None:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument(
        "--checkpoint-at", type=int, default=None, help="save_state after this many optimiser steps"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="load_state from DIR (a folder written by save_state) and continue",
    )
    args = parser.parse_args()

    accelerator = Accelerator(cpu=True)
    torch.manual_seed(args.seed)
    dataset = ToyAV(args.num_samples, seed=args.seed)
    model = ToyAVModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    sampler = make_sampler(args.sampler, dataset, seed=args.seed)  # global order
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    accelerator.register_for_checkpointing(sampler)
    scoring = score_loader(dataset)  # the process group exists now: a DistributedSampler share

    start_epoch, skip, step, record = 0, 0, 0, []
    if args.resume is not None:
        accelerator.load_state(str(args.resume))
        progress: dict[str, Any] = json.loads(
            (args.resume / f"progress-rank{accelerator.process_index}.json").read_text()
        )
        start_epoch, skip, step, record = (
            progress["epoch"],
            progress["batches"],
            progress["step"],
            progress["record"],
        )
        sampler.load_state_dict({**sampler.state_dict(), "yielded": 0})  # rewind to epoch start
    else:
        sampler.update_scores(accelerator.unwrap_model(model), scoring, progress=False)

    for epoch in range(start_epoch, args.epochs):
        if skip:
            entry = record.pop()
        else:
            if epoch > 0 and sampler.needs_update(epoch):
                sampler.update_scores(accelerator.unwrap_model(model), scoring, progress=False)
            entry = epoch_record(epoch, sampler, [])
        loader.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        for done, batch in enumerate(batches, start=skip + 1):
            optimizer.zero_grad()
            accelerator.backward(training_loss(model, batch))
            optimizer.step()
            entry["indices"].extend(batch["index"].tolist())
            step += 1
            if step == args.checkpoint_at:
                folder = args.out / "checkpoint"
                accelerator.save_state(str(folder))
                (folder / f"progress-rank{accelerator.process_index}.json").write_text(
                    json.dumps(
                        {"epoch": epoch, "batches": done, "step": step, "record": [*record, entry]}
                    )
                )
        skip = 0
        record.append(entry)

    save_record(args.out, accelerator.process_index, record)
    if accelerator.is_main_process:
        torch.save(accelerator.unwrap_model(model).state_dict(), args.out / "final-model.pt")
    # Teardown, as in torchrun_ddp.py: end_training's destroy_process_group frees gloo (joining
    # its worker threads, which could otherwise abort the process at exit) only when nothing else
    # holds the group: not the DDP model (free_memory drops the accelerator's references and
    # ours), nor torch.distributed.nn.functional (imported above, before the group exists).
    accelerator.wait_for_everyone()
    model, optimizer = accelerator.free_memory(model, optimizer)
    accelerator.end_training()


if __name__ == "__main__":
    main()
