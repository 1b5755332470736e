"""``benchmarks/bench_scoring.py``: the summary of repeated runs, and each case on a tiny loader."""

from __future__ import annotations

import torch
from bench_scoring import (
    bare_forward,
    bare_forward_autograd,
    bare_forward_train,
    ratio_ranges,
)
from torch import nn


def _run(channels: int, forward_train: float, ours: float, released: float) -> dict[str, object]:
    timings = {
        "forward": {"ratio": 1.0},
        "forward_train": {"ratio": forward_train},
        "update_scores": {"ratio": ours},
        "released_style": {"ratio": released},
    }
    return {
        "channels": channels,
        "timings": timings,
        "released_style_over_update_scores": released / ours,
    }


def test_ratio_ranges_are_min_median_max_over_the_runs_per_width() -> None:
    runs = [
        [_run(32, 1.2, 1.1, 1.5), _run(96, 1.10, 1.00, 1.20)],
        [_run(32, 1.4, 1.0, 1.6), _run(96, 1.20, 0.98, 1.08)],
        [_run(32, 1.3, 1.2, 1.8), _run(96, 1.15, 1.02, 1.10)],
    ]
    got = ratio_ranges(runs)
    assert list(got) == ["width 32", "width 96"]
    assert got["width 32"]["forward_train"] == [1.2, 1.3, 1.4]
    assert got["width 96"]["update_scores"] == [0.98, 1.0, 1.02]
    assert got["width 96"]["released_style/update_scores"] == [1.078, 1.102, 1.2]


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(3)
        self.grad_enabled: list[bool] = []

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.bn(a + b)


def test_the_forward_cases_differ_only_in_mode_and_autograd() -> None:
    loader = [{"a": torch.randn(4, 3), "b": torch.randn(4, 3), "target": torch.zeros(4)}]
    for case, training, grad in (
        (bare_forward, False, False),
        (bare_forward_train, True, False),
        (bare_forward_autograd, False, True),
    ):
        net = _Net()
        before = net.bn.running_mean.clone()
        case(net, loader)
        assert net.training is training and net.grad_enabled == [grad], case.__name__
        assert torch.equal(net.bn.running_mean, before) is not training, case.__name__
