"""BSS in PyTorch Lightning: DDP on 2 CPU processes with `BalanceSamplingCallback`.

Run::

    python examples/integrations/lightning_ddp.py --sampler heuristic --out runs/lightning
    # continue from the checkpoint written after epoch 0
    python examples/integrations/lightning_ddp.py --sampler heuristic --out runs/resumed \\
        --resume "runs/lightning/checkpoints/epoch=0.ckpt"

What it shows:

* the data module builds the sampler in ``setup()``, where the process group exists, so the
  sampler shards itself like ``DistributedSampler``; ``train_dataloader()`` returns it every time;
* the ``Trainer`` gets ``trainer_settings(...)`` (``use_distributed_sampler=False``; for the
  heuristic sampler, whose epochs grow, ``reload_dataloaders_every_n_epochs=1``) and
  ``BalanceSamplingCallback`` from ``bss_sampler.integrations.lightning``, which scores before
  the first epoch, re-scores when ``needs_update``, moves the sampler to the next epoch, keeps
  its state in the checkpoint and logs the scores; it refuses a ``Trainer`` whose settings would
  change the order.

Checkpoints are taken at epoch ends (Lightning restarts an interrupted epoch from its beginning).
Each rank writes ``record-rank{r}.json`` (per epoch: scores, length, consumed indices) to ``--out``.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
import torch.distributed as dist
import torch.distributed.nn.functional  # before the group exists: see DestroyProcessGroup
from _toy import (
    BSSSampler,
    ToyAV,
    ToyAVModel,
    add_common_args,
    epoch_record,
    make_sampler,
    save_record,
    training_loss,
)
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor
from torch.utils.data import DataLoader

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler
from bss_sampler.integrations.lightning import BalanceSamplingCallback, trainer_settings

SAMPLER_TYPES = {"learned": LearnedBalanceSampler, "heuristic": HeuristicCurriculumSampler}


class ToyModule(L.LightningModule):
    """The toy model trained with plain SGD; remembers the indices this rank trained on."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.model = ToyAVModel()
        self.lr = lr
        self.seen: list[int] = []

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, list[Tensor]]:
        out: tuple[Tensor, list[Tensor]] = self.model(a, v)
        return out

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        self.seen.extend(batch["index"].tolist())
        return training_loss(self.model, batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class ToyData(L.LightningDataModule):
    """The toy dataset and its BSS sampler, built once in ``setup`` (the process group exists)."""

    def __init__(self, kind: str, num_samples: int, batch_size: int, seed: int) -> None:
        super().__init__()
        self.kind, self.batch_size, self.seed = kind, batch_size, seed
        self.train_set = ToyAV(num_samples, seed=seed)
        self.sampler: BSSSampler | None = None

    def setup(self, stage: str) -> None:
        if self.sampler is None:  # shards by the process group, as DistributedSampler
            self.sampler = make_sampler(self.kind, self.train_set, seed=self.seed)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=self.sampler)


class RecordCallback(L.Callback):
    """Writes what this rank trained on, epoch by epoch (for the checks; not needed to train)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.epochs: list[dict[str, Any]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the sampler's scores and epoch as the loader uses them, before anything re-scores
        # Trainer sets .datamodule at runtime without declaring it; setup() has built the sampler
        data: ToyData = trainer.datamodule  # type: ignore[attr-defined]
        record = epoch_record(trainer.current_epoch, cast(BSSSampler, data.sampler), [])
        self.epochs.append(record)
        pl_module.seen = record["indices"]

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the score summary BalanceSamplingCallback logged for this epoch (identical on every
        # rank); its bss/report/ values are logged once per scoring pass, not per epoch
        logged = trainer.callback_metrics
        self.epochs[-1]["logged"] = {
            k: float(v) for k, v in logged.items() if k.startswith("bss/") and "/report/" not in k
        }

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        save_record(self.out, trainer.global_rank, self.epochs)


class DestroyProcessGroup(L.Callback):
    """Destroys the process group when ``fit`` ends, in each training process.

    Lightning destroys it itself only with NCCL; a gloo group would live into interpreter exit,
    where its worker threads can abort the process (SIGABRT, "terminate called without an active
    exception"): see the teardown in ``torchrun_ddp.py``. ``teardown`` runs after the strategy
    has unwrapped DDP, so nothing else holds the group and its threads are joined here.
    """

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and dist.is_initialized():
            dist.barrier()
            gc.collect()
            dist.destroy_process_group()


def main() -> None:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument(
        "--strategy", default="ddp", help="ddp (re-launches this script) or ddp_spawn"
    )
    parser.add_argument("--resume", type=Path, default=None, help="a checkpoint to continue from")
    args = parser.parse_args()

    L.seed_everything(args.seed, verbose=False)
    data = ToyData(args.sampler, args.num_samples, args.batch_size, args.seed)
    trainer = L.Trainer(
        **trainer_settings(SAMPLER_TYPES[args.sampler]),  # what the sampler needs
        accelerator="cpu",
        devices=args.devices,
        strategy=args.strategy,
        max_epochs=args.epochs,
        callbacks=[
            BalanceSamplingCallback(),
            RecordCallback(args.out),
            ModelCheckpoint(dirpath=args.out / "checkpoints", filename="{epoch}", save_top_k=-1),
            DestroyProcessGroup(),
        ],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(ToyModule(args.lr), datamodule=data, ckpt_path=args.resume)


if __name__ == "__main__":
    main()
