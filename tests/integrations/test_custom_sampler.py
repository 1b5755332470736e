"""Issue 26 item 4: a new data-level method built by the recipe in ``bss_sampler.core`` (an
`OrderPolicy`, a `PolicySampler` subclass, an ``update_scores`` ending in ``set_values``) works
with every integration unchanged, its own scoring settings passed through."""

from __future__ import annotations

from collections.abc import Iterable, Sized
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import torch
from _toy import ToyAV, ToyAVModel, training_loss
from torch import Tensor, nn
from torch.utils.data import DataLoader

from bss_sampler import ScoredSampler, score_dataset
from bss_sampler.core import OrderPolicy, PolicySampler
from bss_sampler.integrations._common import find_sampler


class ImbalancedFirstPolicy(OrderPolicy):
    """Recipe step 2: the least balanced samples first, ties broken by the epoch's generator;
    a new valuation before every epoch."""

    def epoch_order(self, epoch: int, values: Tensor, generator: torch.Generator) -> Tensor:
        noise = torch.rand(len(values), generator=generator)
        return torch.argsort(values + 1e-3 * noise)

    def last_scheduled(self, epoch: int) -> int | None:
        return epoch


class ImbalancedFirstSampler(PolicySampler):
    """Recipe step 3: the sampler, and its way to compute a valuation (``scale``: its own
    setting, recorded per call)."""

    def __init__(self, data_source: Sized, **shard: Any) -> None:
        super().__init__(data_source, ImbalancedFirstPolicy(), **shard)
        self.scales: list[float] = []

    def update_scores(
        self,
        model: nn.Module,
        loader: Iterable[Any],
        *,
        forward: Any = None,
        progress: bool = True,
        scale: float = 1.0,
    ) -> Tensor:
        self.scales.append(scale)
        scores = score_dataset(model, loader, self.num_samples, forward=forward, progress=progress)
        return self.set_values(scale * scores)


def test_the_protocol_is_what_the_recipe_gives() -> None:
    sampler = ImbalancedFirstSampler(range(8))
    assert isinstance(sampler, ScoredSampler)
    assert find_sampler(DataLoader(range(8), sampler=sampler)) is sampler


def test_lightning(tmp_path: Path) -> None:
    pytest.importorskip("lightning", reason="the `lightning` extra is not installed")
    import lightning as L

    from bss_sampler.integrations.lightning import BalanceSamplingCallback, trainer_settings

    dataset = ToyAV(24)
    sampler = ImbalancedFirstSampler(dataset)
    orders: list[list[int]] = []
    trained: list[int] = []

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = ToyAVModel()

        def forward(self, a: Tensor, v: Tensor) -> Any:
            return self.model(a, v)

        def on_train_epoch_start(self) -> None:
            orders.append(sampler.epoch_indices().tolist())

        def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
            trained.extend(batch["index"].tolist())
            return training_loss(self.model, batch)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    trainer = L.Trainer(
        **trainer_settings(ImbalancedFirstSampler),
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[BalanceSamplingCallback(settings={"scale": 2.0})],
    )
    trainer.fit(Module(), train_dataloaders=DataLoader(dataset, batch_size=8, sampler=sampler))
    assert sampler.scales == [2.0, 2.0]  # before epochs 0 and 1
    assert trained == orders[0] + orders[1] and orders[0] != orders[1]
    assert sorted(orders[1]) == list(range(24))


def test_accelerate() -> None:
    pytest.importorskip("accelerate", reason="the `accelerate` extra is not installed")
    from bss_sampler.integrations.accelerate import prepare_loader

    from .test_accelerate import FakeAccelerator

    def loader() -> Any:
        sampler = ImbalancedFirstSampler(range(24), global_order=True)
        sampler.set_values(torch.linspace(1, -1, 24))
        prepared = prepare_loader(
            FakeAccelerator(), DataLoader(range(24), batch_size=4, sampler=sampler)
        )
        prepared.set_epoch(1)
        return prepared

    full = [batch.tolist() for batch in loader()]
    interrupted = loader()
    head = [batch.tolist() for batch in islice(interrupted, 2)]
    resumed = loader()
    resumed.load_state_dict(interrupted.state_dict())
    assert head + [batch.tolist() for batch in resumed] == full


def test_transformers(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed")
    pytest.importorskip("accelerate", reason="the Trainer needs accelerate")
    from transformers_ddp import ToyAVLabels, ToyHFModel

    from bss_sampler.integrations.transformers import BalanceSamplingTrainer

    from .test_transformers import _args

    dataset = ToyAVLabels(24)
    sampler = ImbalancedFirstSampler(dataset, global_order=True)
    trainer = BalanceSamplingTrainer(
        model=ToyHFModel(),
        args=_args(tmp_path, num_train_epochs=2),
        train_dataset=dataset,
        bss_sampler=sampler,
        bss_settings={"scale": 3.0},
    )
    trainer.train()
    assert sampler.scales == [3.0, 3.0] and sampler.epoch == 1
