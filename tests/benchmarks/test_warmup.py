"""``TrainConfig.warmup_epochs`` (the benchmarks' harness; the scripts' ``--warmup-epochs``): random order and no scoring for k epochs, then Algorithm 1."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from _harness import TrainConfig, fit
from torch import Tensor
from torch.utils.data import DistributedSampler

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler
from examples.common.cli import add_common_args
from examples.common.models import LateFusionClassifier, mlp_encoder
from examples.common.tabular import MfeatDataset

N, EPOCHS, WARMUP = 40, 5, 2


class RecordingDataset(MfeatDataset):
    """Records the indices fetched in each epoch (``fit`` calls ``set_epoch`` on datasets)."""

    def __init__(self, views: dict[str, Tensor], targets: Tensor) -> None:
        super().__init__(views, targets)
        self.epochs: list[list[int]] = []

    def set_epoch(self, epoch: int) -> None:
        assert epoch == len(self.epochs)
        self.epochs.append([])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        self.epochs[-1].append(index)
        return super().__getitem__(index)


def _data() -> tuple[RecordingDataset, MfeatDataset]:
    g = torch.Generator().manual_seed(0)
    views = {"a": torch.randn(N, 3, generator=g), "b": torch.randn(N, 2, generator=g)}
    targets = torch.arange(N) % 3
    return RecordingDataset(views, targets), MfeatDataset(views, targets)


def _model() -> LateFusionClassifier:
    torch.manual_seed(0)
    return LateFusionClassifier(
        {"a": mlp_encoder(3, 4), "b": mlp_encoder(2, 4)}, {"a": 4, "b": 4}, 3
    )


def _random_order(dataset: MfeatDataset, seed: int, epoch: int) -> list[int]:
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize(
    ("sampler", "extra", "scored_at"),
    [
        ("learned", {"update_every": 5}, [WARMUP]),
        ("learned", {"update_every": 2}, [WARMUP, WARMUP + 2]),
        ("heuristic", {"t_grow": 2}, [WARMUP]),
        ("heuristic", {"t_grow": 2, "rescore_every": 1}, list(range(WARMUP, EPOCHS))),
    ],
)
def test_warmup_is_random_order_then_bss(
    monkeypatch: pytest.MonkeyPatch, sampler: str, extra: dict[str, Any], scored_at: list[int]
) -> None:
    train, score = _data()
    calls: list[tuple[int, Any]] = []
    for cls in (LearnedBalanceSampler, HeuristicCurriculumSampler):
        original = cls.update_scores

        def spy(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Tensor:
            calls.append((len(train.epochs), self))  # epochs started before this scoring
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "update_scores", spy)
    cfg = TrainConfig(
        epochs=EPOCHS,
        batch_size=8,
        sampler=sampler,
        warmup_epochs=WARMUP,
        seed=3,
        device="cpu",
        progress=False,
        verbose=False,
        **extra,
    )
    fit(_model(), train, {}, cfg, score_set=score)

    assert [epoch for epoch, _ in calls] == scored_at
    for epoch in range(WARMUP):  # exactly a random-order run's first epochs
        assert train.epochs[epoch] == _random_order(train, cfg.seed, epoch)
    bss = calls[0][1]
    assert bss.epoch == EPOCHS - 1 - WARMUP  # Algorithm 1's epochs count from the warm-up's end
    if sampler == "heuristic":  # pacing restarts at lambda0 * N after the warm-up
        assert len(train.epochs[WARMUP]) == math.ceil(cfg.lambda0 * N)
        assert len(train.epochs[-1]) == N
    else:
        assert sorted(train.epochs[WARMUP]) == list(range(N))


def test_no_warmup_scores_before_the_first_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    train, score = _data()
    calls: list[int] = []
    original = LearnedBalanceSampler.update_scores

    def spy(self: Any, *args: Any, **kwargs: Any) -> Tensor:
        calls.append(len(train.epochs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LearnedBalanceSampler, "update_scores", spy)
    cfg = TrainConfig(epochs=2, batch_size=8, device="cpu", progress=False, verbose=False)
    fit(_model(), train, {}, cfg, score_set=score)
    assert calls == [0]
    assert train.epochs[0] != _random_order(train, cfg.seed, 0)


def test_warmup_flag_and_range() -> None:
    import argparse

    parser = add_common_args(argparse.ArgumentParser(), methods=["joint"])
    assert parser.parse_args(["--warmup-epochs", "3"]).warmup_epochs == 3
    with pytest.raises(ValueError, match=r"warmup_epochs must lie in \[0, epochs - 1\]"):
        TrainConfig(epochs=3, warmup_epochs=3)
    with pytest.raises(ValueError, match="got -1"):
        TrainConfig(warmup_epochs=-1)
