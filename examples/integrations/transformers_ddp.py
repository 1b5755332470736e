"""BSS in the Hugging Face Trainer: 2 CPU processes, re-scoring, exact resume from a checkpoint.

Run (``accelerate launch --cpu --num_processes 2`` works as well)::

    torchrun --standalone --nproc-per-node 2 examples/integrations/transformers_ddp.py \\
        --out runs/hf --save-steps 10
    torchrun --standalone --nproc-per-node 2 examples/integrations/transformers_ddp.py \\
        --out runs/hf-resumed --resume runs/hf/checkpoint-10

What it shows:

* ``BalanceSamplingTrainer`` from ``bss_sampler.integrations.transformers``: a ``Trainer`` whose
  ``_get_train_sampler`` returns the BSS sampler and whose callback re-scores it when
  ``needs_update`` (``update_every=2``: before epochs 0 and 2) and calls ``set_epoch``;
* the sampler is global (``global_order=True``): the Trainer prepares its loader with Accelerate,
  which deals whole batches of the global order to the processes (60 samples in batches of 4:
  15 batches, the 16th repeats the first so both processes take 8);
* a checkpoint folder holds ``bss_sampler.pt`` beside the Trainer's own files; resuming restores
  the sampler at the start of its epoch and the Trainer skips the batches it already trained.

A model for the Trainer takes ``labels`` and returns its loss; called without them (the scoring
pass), it returns ``{"multimodal": logits, "unimodal": [logits_a, logits_v]}``.
Each rank writes ``record-rank{r}.json`` (per epoch: scores, length, consumed indices) to ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
import torch.distributed.nn.functional  # before the Trainer's process group: see main()
from _toy import (
    ToyAV,
    ToyAVModel,
    add_common_args,
    epoch_record,
    make_sampler,
    save_record,
    training_loss,
)
from torch import Tensor, nn
from transformers import TrainerCallback, TrainingArguments

from bss_sampler.integrations.transformers import BalanceSamplingTrainer


class ToyAVLabels(ToyAV):
    """The toy items with the Trainer's key for targets, ``labels``."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = super().__getitem__(index)
        item["labels"] = item.pop("target")
        return item


class ToyHFModel(nn.Module):
    """The toy model in the Trainer's conventions: ``labels`` in, ``{"loss": ...}`` out."""

    def __init__(self) -> None:
        super().__init__()
        self.net = ToyAVModel()

    def forward(
        self, a: Tensor, v: Tensor, labels: Tensor | None = None, index: Tensor | None = None
    ) -> dict[str, Any]:
        # ``index`` is accepted so that the Trainer keeps it in the batch (for the records)
        multimodal, unimodal = self.net(a, v)
        out: dict[str, Any] = {"multimodal": multimodal, "unimodal": unimodal}
        if labels is not None:
            out["loss"] = training_loss(self.net, {"a": a, "v": v, "target": labels})
        return out


class Recorder(TrainerCallback):
    """Per epoch: the scores the sampler holds and the indices this process trains on; saved
    with each checkpoint (for the checks; not needed to train)."""

    def __init__(self, trainer: BalanceSamplingTrainer, epochs: list[dict[str, Any]]) -> None:
        self.trainer, self.epochs = trainer, epochs

    def on_epoch_begin(
        self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any
    ) -> None:
        epoch = int(state.epoch or 0)  # runs after the BSS callback has scored and set the epoch
        if not self.epochs or self.epochs[-1]["epoch"] != epoch:
            self.epochs.append(epoch_record(epoch, self.trainer.bss_sampler, []))

    def on_save(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        folder = Path(cast(str, args.output_dir)) / f"checkpoint-{state.global_step}"
        (folder / f"record-rank{args.process_index}.json").write_text(json.dumps(self.epochs))


class RecordingTrainer(BalanceSamplingTrainer):
    """Adds each training batch's indices to the current epoch's record."""

    epochs: list[dict[str, Any]]

    def training_step(self, model: nn.Module, inputs: dict[str, Any], *args: Any) -> Tensor:
        self.epochs[-1]["indices"].extend(inputs["index"].tolist())
        return super().training_step(model, inputs, *args)


def train(args: argparse.Namespace, out: Path, resume: Path | None) -> None:
    """Train ``args.epochs`` epochs into ``out``, from scratch or from the checkpoint ``resume``."""
    torch.manual_seed(args.seed)
    dataset = ToyAVLabels(args.num_samples, seed=args.seed)
    sampler = make_sampler(args.sampler, dataset, seed=args.seed, global_order=True)
    training_args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        optim="sgd",
        lr_scheduler_type="constant",
        save_strategy="steps" if args.save_steps else "no",
        save_steps=args.save_steps or 500,
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        ddp_backend="gloo" if "WORLD_SIZE" in os.environ else None,  # torchrun's, or 1 process
        ddp_find_unused_parameters=False,
        seed=args.seed,
    )
    trainer = RecordingTrainer(
        model=ToyHFModel(), args=training_args, train_dataset=dataset, bss_sampler=sampler
    )
    trainer.epochs = []
    if resume is not None:
        record = resume / f"record-rank{training_args.process_index}.json"
        trainer.epochs = json.loads(record.read_text())
    trainer.add_callback(Recorder(trainer, trainer.epochs))  # after BalanceSamplingCallback
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    save_record(out, training_args.process_index, trainer.epochs)
    if training_args.process_index == 0:
        torch.save(cast(nn.Module, trainer.model).state_dict(), out / "final-model.pt")


def main() -> None:
    parser = add_common_args(
        argparse.ArgumentParser(
            description=__doc__.splitlines()[0],
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
    )
    parser.add_argument("--save-steps", type=int, default=0, help="checkpoint every N steps")
    parser.add_argument("--resume", type=Path, default=None, help="a checkpoint folder")
    parser.add_argument(
        "--then-resume-from",
        type=int,
        default=None,
        metavar="STEP",
        help="after training, train again from OUT/checkpoint-STEP into OUT/resumed with a new "
        "model, sampler and Trainer (a restart without relaunching, for the tests)",
    )
    args = parser.parse_args()
    train(args, args.out, args.resume)
    if args.then_resume_from is not None:
        train(args, args.out / "resumed", args.out / f"checkpoint-{args.then_resume_from}")
    # The Trainer leaves its gloo process group alive; freed only at interpreter exit, its worker
    # threads can abort the process (SIGABRT), see torchrun_ddp.py. The Trainers are gone, and
    # the import above keeps torch.distributed.nn.functional from holding the group.
    if dist.is_initialized():
        dist.barrier()
        gc.collect()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
