"""The vendored UCI Multiple Features digits (``examples/data/uci_mfeat.npz``) as a multi-view
dataset: each chosen feature view is one "modality"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from examples.common.splits import stratified_split

__all__ = ["MFEAT_PATH", "MFEAT_VIEWS", "MfeatDataset", "MfeatSplits", "load_mfeat"]

MFEAT_PATH = Path(__file__).resolve().parent.parent / "data" / "uci_mfeat.npz"
#: View name -> number of features.
MFEAT_VIEWS = {"fac": 216, "fou": 76, "kar": 64, "mor": 6, "pix": 240, "zer": 47}


class MfeatDataset(Dataset[dict[str, Tensor]]):
    """Items ``{view: float32 (F_view,), ..., "target": int, "index": int}``."""

    def __init__(self, views: dict[str, Tensor], targets: Tensor) -> None:
        for name, x in views.items():
            if len(x) != len(targets):
                raise ValueError(f"view {name!r} has {len(x)} rows, targets have {len(targets)}")
        self.views = views
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item: dict[str, Tensor | int] = {k: v[index] for k, v in self.views.items()}
        item["target"] = int(self.targets[index])
        item["index"] = index
        return item  # type: ignore[return-value]


@dataclass
class MfeatSplits:
    """Train / validation / test datasets over the same views."""

    train: MfeatDataset
    val: MfeatDataset
    test: MfeatDataset
    num_classes: int = 10


def load_mfeat(
    views: Sequence[str] = ("pix", "mor"),
    *,
    test_fraction: float = 0.3,
    val_fraction: float = 0.15,
    split_seed: int = 0,
    path: str | Path = MFEAT_PATH,
) -> MfeatSplits:
    """Fixed stratified splits, each view standardised with the training split's mean and std.

    ``test_fraction`` of each class goes to test, then ``val_fraction`` of the remaining
    training rows to validation. The split depends on ``split_seed`` only, not on the run seed.
    """
    for v in views:
        if v not in MFEAT_VIEWS:
            raise ValueError(f"views must be among {sorted(MFEAT_VIEWS)}, got {v!r}")
    data = np.load(path)
    labels = torch.from_numpy(data["label"].astype(np.int64))
    trainval, test = stratified_split(labels, test_fraction, split_seed)
    train_pos, val_pos = stratified_split(labels[trainval], val_fraction, split_seed + 1)
    train = [trainval[i] for i in train_pos]
    val = [trainval[i] for i in val_pos]
    raw = {v: torch.from_numpy(data[v].astype(np.float32)) for v in views}
    mean = {v: x[train].mean(0) for v, x in raw.items()}
    std = {v: x[train].std(0).clamp(min=1e-6) for v, x in raw.items()}

    def subset(rows: list[int]) -> MfeatDataset:
        return MfeatDataset({v: (x[rows] - mean[v]) / std[v] for v, x in raw.items()}, labels[rows])

    return MfeatSplits(subset(train), subset(val), subset(test))
