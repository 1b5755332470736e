"""The benchmarks' training harness (``benchmarks/_harness.py``): the scoring view's epochs,
the loss weights' checks, IPRM and SMV end to end. Warm-up and balance reports: their own
files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from _harness import METHODS, TrainConfig, fit

from examples.common.models import LateFusionClassifier, mlp_encoder
from examples.common.tabular import MfeatDataset, load_mfeat


class EpochLog(MfeatDataset):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


def test_fit_sets_the_epoch_of_the_scoring_view_before_each_pass() -> None:
    g = torch.Generator().manual_seed(0)
    views = {"a": torch.randn(12, 3, generator=g), "b": torch.randn(12, 2, generator=g)}
    targets = torch.arange(12) % 3
    train, score = MfeatDataset(views, targets), EpochLog(views, targets)
    torch.manual_seed(0)
    model = LateFusionClassifier(
        {"a": mlp_encoder(3, 4), "b": mlp_encoder(2, 4)}, {"a": 4, "b": 4}, 3
    )
    cfg = TrainConfig(
        epochs=3, batch_size=4, sampler="learned", preset="official", device="cpu",
        progress=False, verbose=False,
    )  # fmt: skip
    fit(model, train, {"test": train}, cfg, score_set=score)
    assert score.epochs == [0, 1, 2]  # the official preset re-scores before every epoch


def test_loss_weights_are_checked() -> None:
    with pytest.raises(ValueError, match=r"loss_weights must be two finite weights >= 0"):
        TrainConfig(loss_weights=(1.0, -1.0))
    assert TrainConfig(loss_weights=[0.1, 0.9]).loss_weights == (0.1, 0.9)  # type: ignore[arg-type]


def test_iprm_step_needs_an_iprm_model() -> None:
    base = LateFusionClassifier(
        {"a": mlp_encoder(3, 4), "v": mlp_encoder(3, 4)}, {"a": 4, "v": 4}, 3
    )
    inputs = {"a": torch.randn(8, 3), "v": torch.randn(8, 3)}
    with pytest.raises(TypeError, match="trains an IPRMClassifier"):
        METHODS["iprm"][1](base, inputs, torch.zeros(8, dtype=torch.long), TrainConfig())


def test_fit_iprm_with_the_learned_sampler(tmp_path: Path) -> None:
    cfg = TrainConfig(
        method="iprm", sampler="learned", epochs=2, device="cpu", progress=False, verbose=False
    )
    data = load_mfeat(("pix", "mor"))
    torch.manual_seed(0)
    encoders = {"pix": mlp_encoder(240, 16, depth=1), "mor": mlp_encoder(6, 16, depth=1)}
    model = LateFusionClassifier(encoders, {"pix": 16, "mor": 16}, 10)
    history = fit(model, data.train, {"val": data.val, "test": data.test}, cfg, out_dir=tmp_path)
    assert len(history) == 2 and all(math.isfinite(r["train_loss"]) for r in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_acc"] > 0.3  # 10 classes: well above chance after 2 epochs
    state = torch.load(tmp_path / "last.pt", weights_only=False)["model"]
    assert "lambdas" in state and "mixup_heads.0.weight" in state
    assert 0.0 <= float(state["lambdas"]) <= 1.0 and float(state["lambdas"]) != 0.5


@pytest.mark.parametrize("level", ["sample", "modality"])
def test_fit_smv_trains_the_originals_and_the_copies(tmp_path: Path, level: str) -> None:
    cfg = TrainConfig(
        method="concat", sampler="smv", smv_level=level, smv_alpha=2.0, epochs=3, warmup_epochs=1,
        device="cpu", progress=False, verbose=False,
    )  # fmt: skip
    data = load_mfeat(("pix", "mor"))
    torch.manual_seed(0)
    encoders = {"pix": mlp_encoder(240, 16, depth=1), "mor": mlp_encoder(6, 16, depth=1)}
    model = LateFusionClassifier(encoders, {"pix": 16, "mor": 16}, 10)
    history = fit(model, data.train, {"val": data.val, "test": data.test}, cfg, out_dir=tmp_path)
    n = len(data.train)
    assert history[0]["train_samples"] == n and "smv_epoch" not in history[0]  # warm-up
    for row in history[1:]:  # a valuation before every epoch after the warm-up
        assert row["train_samples"] == row["smv_epoch_length"] > n
        assert {"smv_pix_contribution", "smv_mor_none", "smv_fused_accuracy"} <= set(row)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["sampler"]["config"]["level"] == level


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"method": "joint"}, "sampler='smv' trains SMV's Concat model .* got 'joint'"),
        ({"method": "concat", "scoring": "online"}, "scoring must be 'pass', got 'online'"),
        ({"method": "concat", "smv_level": "x"}, r"smv_level must be one of \('sample', 'modal"),
        ({"method": "concat", "smv_function": "x"}, "smv_function must be one of"),
    ],
)
def test_smv_config_is_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(sampler="smv", **overrides)
