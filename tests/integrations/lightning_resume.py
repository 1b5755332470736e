"""A ``Trainer.fit`` that records what every step trained, for the kill-and-resume test.

    python lightning_resume.py --sampler learned --out DIR [--stop-at STEP] [--resume CKPT]

`BalanceSamplingCallback` keeps the sampler of ``_toy.make_any_sampler`` in step (SMV's with its
valuation forward, ``_toy.valuation_forward``); the loader is
a torchdata ``StatefulDataLoader`` with 2 workers (``--loader plain``: a torch ``DataLoader``).
``ModelCheckpoint`` saves ``DIR/checkpoints/step=S.ckpt`` after every step, and every training
step appends ``{"epoch", "step", "indices"}`` to ``DIR/steps.jsonl``. ``--stop-at S`` ends the
process with ``os._exit`` (no clean-up, as a kill) before step ``S + 1`` trains, once step ``S``
is checkpointed; ``--resume`` continues in this new process from a checkpoint (``ckpt_path``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "integrations"))
from _toy import (
    KINDS,
    AnySampler,
    ToyAVModel,
    make_any_sampler,
    make_train_set,
    training_loss,
    valuation_forward,
)

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler, SMVSampler
from bss_sampler.integrations.lightning import (
    BalanceSamplingCallback,
    trainer_settings,
)

STOPPED = 3
"""The exit status of a run ended by ``--stop-at``."""


class Module(L.LightningModule):
    def __init__(self, steps: Path) -> None:
        super().__init__()
        self.model, self.steps = ToyAVModel(), steps

    def forward(self, a: Tensor, v: Tensor, mask: Tensor | None = None) -> Any:
        return self.model(a, v, mask)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        record = {
            "epoch": self.current_epoch,
            "step": self.global_step,
            "indices": batch["index"].tolist(),
        }
        with self.steps.open("a") as file:
            file.write(json.dumps(record) + "\n")
        return training_loss(self.model, batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Data(L.LightningDataModule):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.args, self.train_set = args, make_train_set(args.sampler, args.num_samples)
        self.sampler: AnySampler | None = None

    def setup(self, stage: str) -> None:
        if self.sampler is None:
            self.sampler = make_any_sampler(self.args.sampler, self.train_set)

    def train_dataloader(self) -> DataLoader[dict[str, Any]]:
        loader = StatefulDataLoader if self.args.loader == "stateful" else DataLoader
        return loader(  # type: ignore[no-any-return]
            self.train_set,
            batch_size=self.args.batch_size,
            sampler=self.sampler,
            num_workers=self.args.num_workers,
        )


class Stop(L.Callback):
    """``os._exit(STOPPED)`` before the step after ``stop_at`` (whose checkpoint is written),
    its DataLoader workers SIGKILLed first, as a kill of the process tree would (orphaned, they
    would take up to their 5 s status check to notice)."""

    def __init__(self, stop_at: int) -> None:
        self.stop_at = stop_at

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.stop_at:
            for worker in multiprocessing.active_children():
                worker.kill()
                worker.join()
            os._exit(STOPPED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sampler", choices=KINDS, default="learned")
    parser.add_argument("--loader", choices=("stateful", "plain"), default="stateful")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--num-samples", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop-at", type=int, default=None)
    parser.add_argument("--resume", type=Path, default=None)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    kind = {"learned": LearnedBalanceSampler, "heuristic": HeuristicCurriculumSampler}.get(
        args.sampler, SMVSampler
    )
    checkpoints = ModelCheckpoint(
        dirpath=args.out / "checkpoints",
        filename="{step}",
        every_n_train_steps=1,
        save_top_k=-1,
    )
    forward = valuation_forward if args.sampler == "smv" else None  # SMV's pass needs its own
    callbacks: list[L.Callback] = [BalanceSamplingCallback(forward=forward), checkpoints]
    if args.stop_at is not None:
        callbacks.append(Stop(args.stop_at))
    trainer = L.Trainer(
        **trainer_settings(kind),
        accelerator="cpu",
        max_epochs=args.epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(Module(args.out / "steps.jsonl"), datamodule=Data(args), ckpt_path=args.resume)


if __name__ == "__main__":
    main()
