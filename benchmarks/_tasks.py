"""Real, bundled multi-view datasets and small models for the benchmarks (CPU, no download).

* ``mfeat_*``: the vendored UCI Multiple Features digits (``examples/common/tabular.py``); each
  chosen feature view is one modality.
* ``digits_halves``: scikit-learn's bundled ``load_digits`` (1,797 8x8 images) cut into a top and a
  bottom half, one modality each; flattened for MLPs, or ``(1, 4, 8)`` images for the small CNN.

Every dataset comes as ``examples.common.tabular.MfeatSplits`` (train / val / test, items
``{view: tensor, "target": int, "index": int}``), the format ``_harness.fit``
takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import _common  # noqa: F401  (puts the repository root on sys.path)
import torch
from torch import Tensor, nn

from examples.common.models import LateFusionClassifier, mlp_encoder
from examples.common.splits import stratified_split
from examples.common.tabular import MfeatDataset, MfeatSplits, load_mfeat

__all__ = ["DATASETS", "DatasetSpec", "cnn_classifier", "digits_halves", "mlp_classifier"]

DIGITS_VIEWS = ("top", "bottom")


def digits_halves(*, images: bool = False, split_seed: int = 0) -> MfeatSplits:
    """``load_digits`` split into top / bottom halves; stratified 70/15/15-style splits.

    Pixels are scaled to ``[0, 1]`` and standardised per feature with the training split's
    statistics (flattened) or by one global mean and std (``images=True``, shape ``(1, 4, 8)``).
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    raw = load_digits()
    x = torch.as_tensor(raw.images, dtype=torch.float32) / 16.0  # (N, 8, 8)
    labels = torch.as_tensor(raw.target, dtype=torch.int64)
    trainval, test = stratified_split(labels, 0.3, split_seed)
    train_pos, val_pos = stratified_split(labels[trainval], 0.15, split_seed + 1)
    rows = {
        "train": [trainval[i] for i in train_pos],
        "val": [trainval[i] for i in val_pos],
        "test": test,
    }
    halves = {"top": x[:, :4], "bottom": x[:, 4:]}
    if images:
        views = {k: v.unsqueeze(1) for k, v in halves.items()}
        train = rows["train"]
        mean = {k: v[train].mean() for k, v in views.items()}
        std = {k: v[train].std().clamp(min=1e-6) for k, v in views.items()}
    else:
        views = {k: v.flatten(1) for k, v in halves.items()}
        train = rows["train"]
        mean = {k: v[train].mean(0) for k, v in views.items()}
        std = {k: v[train].std(0).clamp(min=1e-6) for k, v in views.items()}

    def subset(split: str) -> MfeatDataset:
        r = rows[split]
        return MfeatDataset({k: (v[r] - mean[k]) / std[k] for k, v in views.items()}, labels[r])

    return MfeatSplits(subset("train"), subset("val"), subset("test"))


def mlp_classifier(splits: MfeatSplits, hidden: int = 64) -> LateFusionClassifier:
    """One two-layer MLP encoder per view, concat head and one head per view."""
    views = splits.train.views
    encoders = {k: mlp_encoder(v.shape[1], hidden) for k, v in views.items()}
    return LateFusionClassifier(encoders, dict.fromkeys(views, hidden), splits.num_classes)


def _cnn_encoder(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, 2 * channels, 3, padding=1),
        nn.BatchNorm2d(2 * channels),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def cnn_classifier(splits: MfeatSplits, channels: int = 32) -> LateFusionClassifier:
    """A two-conv-layer CNN (with BatchNorm) per image view; late fusion as in the paper."""
    views = list(splits.train.views)
    encoders = {k: _cnn_encoder(channels) for k in views}
    return LateFusionClassifier(encoders, dict.fromkeys(views, 2 * channels), splits.num_classes)


@dataclass(frozen=True)
class DatasetSpec:
    """A quality-benchmark dataset: how to load it, which model, and what it tests."""

    load: Callable[[], MfeatSplits]
    model: Callable[[MfeatSplits], nn.Module]
    note: str


def _mfeat(views: Sequence[str]) -> Callable[[], MfeatSplits]:
    return lambda: load_mfeat(tuple(views))


DATASETS: dict[str, DatasetSpec] = {
    "mfeat_pix_mor": DatasetSpec(
        _mfeat(("pix", "mor")), mlp_classifier, "strong view (240 pixel averages) + weak (6 morph.)"
    ),
    "mfeat_fou_zer": DatasetSpec(
        _mfeat(("fou", "zer")), mlp_classifier, "two shape views of similar, moderate strength"
    ),
    "mfeat_pix_fou_mor": DatasetSpec(
        _mfeat(("pix", "fou", "mor")), mlp_classifier, "three views: strong, moderate, weak"
    ),
    "digits_halves": DatasetSpec(
        digits_halves, mlp_classifier, "sklearn load_digits, top / bottom 8x4 halves"
    ),
}


def unimodal_inputs(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The modality entries of a mapping batch."""
    return {k: v for k, v in batch.items() if k not in ("target", "index")}
