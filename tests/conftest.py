"""Shared fixtures: a tiny two-modality model and dataset in the library's conventions."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

if __package__:  # under pytest (tests/dist_worker.py imports this file alone, for the fixtures)
    # The check that no process a test starts outlives it (a plugin: hooks, an autouse fixture).
    from .processes import (  # noqa: F401
        _no_process_left_behind,
        pytest_configure,
        pytest_sessionfinish,
        pytest_terminal_summary,
    )


class PairDataset(Dataset[dict[str, Tensor]]):
    """Random two-modality features with labels; items are mappings with their index."""

    def __init__(self, n: int = 40, classes: int = 3, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.a = torch.randn(n, 5, generator=g)
        self.v = torch.randn(n, 4, generator=g)
        self.y = torch.randint(0, classes, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"a": self.a[i], "v": self.v[i], "target": self.y[i], "index": torch.tensor(i)}


class PairModel(nn.Module):
    """Two linear encoders, a concat head and one head per modality."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.enc_a = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.enc_v = nn.Linear(4, 8)
        self.head = nn.Linear(16, classes)
        self.head_a = nn.Linear(8, classes)
        self.head_v = nn.Linear(8, classes)

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, list[Tensor]]:
        za, zv = self.enc_a(a), self.enc_v(v)
        return self.head(torch.cat([za, zv], 1)), [self.head_a(za), self.head_v(zv)]


@pytest.fixture
def dataset() -> PairDataset:
    return PairDataset()


@pytest.fixture
def model() -> PairModel:
    torch.manual_seed(0)
    return PairModel()
