"""BSS with Hugging Face Accelerate: prepare(), save_state/load_state, exact resume at any step.

Run on 2 CPU processes (``accelerate launch --cpu --num_processes 2`` works as well)::

    torchrun --standalone --nproc-per-node 2 examples/integrations/accelerate_ddp.py \\
        --out runs/accelerate --checkpoint-at 10
    torchrun --standalone --nproc-per-node 2 examples/integrations/accelerate_ddp.py \\
        --out runs/accelerate-resumed --resume runs/accelerate/checkpoint

What it shows:

* the sampler is built global (``global_order=True``): ``accelerator.prepare`` deals whole
  batches of that order to the processes (``BatchSamplerShard``: rank 0 gets batches 0, 2, 4, ...),
  so a sampler sharded by rank would be sharded twice;
* ``prepare_loader`` from ``bss_sampler.integrations.accelerate`` prepares the loader and
  registers it for checkpointing: ``save_state`` stores the sampler (scores, moving average,
  epoch) and the batches this process has taken in the epoch; after ``load_state`` the loop
  re-enters at the checkpoint's epoch (``loader.epoch``) and the loader skips what was trained;
* ``loader.set_epoch(epoch)`` each epoch (a resumed epoch keeps its place);
* ``--sampler smv``: `SMVSampler` over the toy's stream ids, valued by ``update_values``
  (its epochs hold the copies the valuation calls for; the prepared loader follows them).

Each rank writes ``record-rank{r}.json`` (per epoch: scores, length, consumed indices) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.distributed.nn.functional  # before Accelerator(): see the teardown
from _toy import (
    KINDS,
    ToyAVModel,
    add_common_args,
    epoch_record,
    make_any_sampler,
    make_train_set,
    save_record,
    training_loss,
    update,
)
from accelerate import Accelerator  # type: ignore[import-untyped]
from torch.utils.data import DataLoader

from bss_sampler.integrations import scoring_loader
from bss_sampler.integrations.accelerate import prepare_loader


def main() -> None:
    parser = add_common_args(
        argparse.ArgumentParser(
            description=__doc__.splitlines()[0],
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        ),
        kinds=KINDS,
    )
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
    dataset = make_train_set(args.sampler, args.num_samples, seed=args.seed)
    model = ToyAVModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    sampler = make_any_sampler(args.sampler, dataset, seed=args.seed, global_order=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    loader = prepare_loader(
        accelerator, DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)
    )
    scoring = scoring_loader(dataset, batch_size=16)  # the process group exists: this rank's share

    step, record = 0, []
    if args.resume is not None:
        accelerator.load_state(str(args.resume))  # the sampler and the batches taken in its epoch
        progress = json.loads(
            (args.resume / f"progress-rank{accelerator.process_index}.json").read_text()
        )
        step, record = progress["step"], progress["record"]

    for epoch in range(loader.epoch, args.epochs):  # resumed: the checkpoint's epoch
        if sampler.needs_update(epoch):  # before epoch 0, then every E epochs; once per epoch
            update(sampler, accelerator.unwrap_model(model), scoring)  # update_scores/_values
        loader.set_epoch(epoch)
        if not record or record[-1]["epoch"] != epoch:
            record.append(epoch_record(epoch, sampler, []))
        for batch in loader:  # resumed: only the batches not yet trained
            optimizer.zero_grad()
            accelerator.backward(training_loss(model, batch))
            optimizer.step()
            record[-1]["indices"].extend(batch["index"].tolist())
            step += 1
            if step == args.checkpoint_at:
                folder = args.out / "checkpoint"
                accelerator.save_state(str(folder))
                progress_file = folder / f"progress-rank{accelerator.process_index}.json"
                progress_file.write_text(json.dumps({"step": step, "record": record}))

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
