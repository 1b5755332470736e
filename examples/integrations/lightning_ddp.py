"""BSS in PyTorch Lightning: DDP on 2 CPU processes, a Callback for scores and checkpoints.

Run::

    python examples/integrations/lightning_ddp.py --sampler heuristic --out runs/lightning
    # continue from the checkpoint written after epoch 0
    python examples/integrations/lightning_ddp.py --sampler heuristic --out runs/resumed \\
        --resume "runs/lightning/checkpoints/epoch=0.ckpt"

What it shows:

* the sampler is built *global* (``num_replicas=None``) and handed to the ``DataLoader``;
  Lightning (``use_distributed_sampler=True``, the default) wraps it in its
  ``DistributedSamplerWrapper``, which iterates the whole order on every rank and keeps a strided
  share, and forwards ``set_epoch``;
* :class:`BalanceSamplingCallback` scores before the first epoch (``on_fit_start``), re-scores
  at the end of each epoch when ``needs_update(next_epoch)`` says so (over a
  ``DistributedSampler(shuffle=False)`` share per rank, synced by ``update_scores``), moves the
  sampler to the next epoch, and keeps the sampler state in the checkpoint
  (``Callback.state_dict``);
* the heuristic sampler's epoch grows, and Lightning fixes the number of batches when it builds
  the loader: ``reload_dataloaders_every_n_epochs=1`` rebuilds it each epoch, after the callback
  has set the new epoch, so the wrapper sees the new length.

Lightning restarts an interrupted epoch from its beginning; checkpoints are taken at epoch ends.
Each rank writes ``record-rank{r}.json`` (per epoch: scores, length, consumed indices) to ``--out``.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import Any

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
from torch.utils.data import DataLoader, DistributedSampler


class ToyModule(L.LightningModule):
    """The toy model trained with plain SGD; remembers the indices this rank trained on."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.model = ToyAVModel()
        self.lr = lr
        self.seen: list[int] = []

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, list[Tensor]]:
        return self.model(a, v)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        self.seen.extend(batch["index"].tolist())
        return training_loss(self.model, batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class ToyData(L.LightningDataModule):
    """The toy dataset and its BSS sampler, built in ``setup`` once the ranks are known.

    ``shard_by="sampler"`` (recommended) shards in the sampler (``num_replicas``/``rank`` from the
    trainer) and needs ``use_distributed_sampler=False``; ``shard_by="lightning"`` builds the
    global sampler and lets Lightning wrap it in ``DistributedSamplerWrapper``, which *reshuffles*
    the order of training loaders (see the module docstring).
    """

    def __init__(
        self, kind: str, num_samples: int, batch_size: int, seed: int, shard_by: str = "sampler"
    ) -> None:
        super().__init__()
        self.kind, self.batch_size, self.seed, self.shard_by = kind, batch_size, seed, shard_by
        self.train_set = ToyAV(num_samples, seed=seed)
        self.sampler: BSSSampler | None = None

    def setup(self, stage: str) -> None:
        if self.sampler is None:
            shard = self.shard_by == "sampler"
            self.sampler = make_sampler(
                self.kind,
                self.train_set,
                seed=self.seed,
                num_replicas=self.trainer.world_size if shard else None,
                rank=self.trainer.global_rank if shard else None,
            )

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=self.sampler)


class BalanceSamplingCallback(L.Callback):
    """Keeps the datamodule's BSS sampler in step with a Lightning run.

    The datamodule exposes ``sampler`` (built in its ``setup``, which Lightning runs before the
    callbacks' ``setup``) and ``train_set``. The callback scores before the first epoch,
    re-scores when ``needs_update(next_epoch)``, moves the sampler to the next epoch before the
    next loader is built, and saves the sampler state in checkpoints.

    Args:
        batch_size: batch size of the scoring pass.
    """

    def __init__(self, batch_size: int = 16) -> None:
        self.batch_size = batch_size
        self.sampler: BSSSampler | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.sampler = getattr(trainer.datamodule, "sampler", None)
        if self.sampler is None:
            raise RuntimeError("BalanceSamplingCallback needs a datamodule with a BSS `sampler`")

    def _score(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        assert self.sampler is not None
        dataset = trainer.datamodule.train_set
        share = DistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )
        loader = DataLoader(dataset, batch_size=self.batch_size, sampler=share)
        self.sampler.update_scores(module, loader, progress=False)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after setup and checkpoint restore, before the first training loader is built
        assert self.sampler is not None
        if self.sampler.scores is None:
            self._score(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # callbacks run before ModelCheckpoint: the checkpoint holds the next epoch's sampler
        assert self.sampler is not None
        next_epoch = trainer.current_epoch + 1
        if self.sampler.needs_update(next_epoch):
            self._score(trainer, pl_module)
        self.sampler.set_epoch(next_epoch)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.sampler is None else {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning checkpoints the callbacks of rank 0 only. The ranks' sampler states differ
        # only in ``rank`` (same scores and epoch; in lockstep, so the same position): each rank
        # loads rank 0's state under its own rank.
        assert self.sampler is not None, "restored before setup"
        state = state_dict["sampler"]
        own_rank = self.sampler.state_dict()["config"]["rank"]
        self.sampler.load_state_dict({**state, "config": {**state["config"], "rank": own_rank}})


class RecordCallback(L.Callback):
    """Writes what this rank trained on, epoch by epoch (for the checks; not needed to train)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.epochs: list[dict[str, Any]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the sampler's scores and epoch as the loader uses them, before anything re-scores
        self.epochs.append(epoch_record(trainer.current_epoch, trainer.datamodule.sampler, []))
        pl_module.seen = self.epochs[-1]["indices"]

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
    parser.add_argument(
        "--shard-by",
        choices=("sampler", "lightning"),
        default="sampler",
        help="sampler: explicit num_replicas/rank; lightning: global sampler in "
        "Lightning's DistributedSamplerWrapper (reshuffles the order)",
    )
    parser.add_argument("--resume", type=Path, default=None, help="a checkpoint to continue from")
    args = parser.parse_args()

    L.seed_everything(args.seed, verbose=False)
    data = ToyData(args.sampler, args.num_samples, args.batch_size, args.seed, args.shard_by)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy=args.strategy,
        max_epochs=args.epochs,
        reload_dataloaders_every_n_epochs=1,  # the heuristic sampler's length changes per epoch
        use_distributed_sampler=args.shard_by == "lightning",
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
