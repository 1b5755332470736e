"""Logits whose `BalanceReport` is worked out by hand, shared by the unit and distributed tests.

Each head's logits per sample are one of a few rows with round softmax values, so every number of
the report is a small fraction. All targets are class 0.

* ``two``: 5 samples, 2 classes, 2 modalities. ``R = [ln 3, 0]`` (softmax ``[3/4, 1/4]``, right),
  ``W = [0, ln 3]`` (``[1/4, 3/4]``, wrong).
* ``three``: 4 samples, 3 classes, 3 modalities. ``R = [ln 2, 0, 0]`` (``[1/2, 1/4, 1/4]``),
  ``W = [0, ln 2, 0]`` (``[1/4, 1/2, 1/4]``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


class Case(NamedTuple):
    multi: Tensor  # (N, C)
    unis: list[Tensor]  # M tensors (N, C)
    targets: Tensor  # (N,)
    expected: dict[str, object]  # the report's fields, by hand


def _heads(pattern: str, right: list[float], wrong: list[float]) -> Tensor:
    return torch.tensor([right if c == "R" else wrong for c in pattern], dtype=torch.float64)


def _loss(alpha: float, multi: float, unis: list[float]) -> float:
    return (1 - alpha) * multi + alpha * sum(unis)


def two_modalities(alpha: float = 0.2) -> Case:
    r, w = [math.log(3.0), 0.0], [0.0, math.log(3.0)]
    fused, audio, video = "RRRWR", "RRWRR", "WRWWW"
    # CE of R: -ln(3/4); of W: -ln(1/4). Per sample (fused, audio, video):
    ce = {"R": -math.log(0.75), "W": math.log(4.0)}
    losses = [_loss(alpha, ce[f], [ce[a], ce[v]]) for f, a, v in zip(fused, audio, video)]
    # cosine of [3/4, 1/4] and [1/4, 3/4]: (3/16 + 3/16) / (10/16) = 3/5; equal rows: 1
    similarity = [1.0 if a == v else 0.6 for a, v in zip(audio, video)]  # 0.6, 1, 1, 0.6, 0.6
    c_audio, c_video = (4 * 0.75 + 0.25) / 5, (0.75 + 4 * 0.25) / 5  # 13/20, 7/20
    expected = {
        "num_samples": 5,
        "multimodal_accuracy": 4 / 5,
        "multimodal_confidence": 13 / 20,
        "unimodal_accuracy": (4 / 5, 1 / 5),
        "unimodal_confidence": (c_audio, c_video),
        "confidence_ratio": (13 / 7, 7 / 13),  # OGM-GE: c_a / c_v and c_v / c_a
        "imbalance_ratio": 13 / 7,
        "similarity": sum(similarity) / 5,  # 3.8 / 5 = 0.76
        "loss": sum(losses) / 5,
    }
    return Case(
        _heads(fused, r, w),
        [_heads(audio, r, w), _heads(video, r, w)],
        torch.zeros(5, dtype=torch.int64),
        expected,
    )


def three_modalities(alpha: float = 0.2) -> Case:
    r, w = [math.log(2.0), 0.0, 0.0], [0.0, math.log(2.0), 0.0]
    fused, heads = "RRRW", ["RRRR", "RWRW", "WWWR"]
    ce = {"R": math.log(2.0), "W": math.log(4.0)}
    losses = [_loss(alpha, ce[f], [ce[h[i]] for h in heads]) for i, f in enumerate(fused)]
    # cosine of [1/2, 1/4, 1/4] and [1/4, 1/2, 1/4]: (5/16) / (6/16) = 5/6; every sample has
    # two equal heads and one other: pairs 1, 5/6, 5/6, mean 8/9
    confidence = (0.5, (0.5 + 0.25 + 0.5 + 0.25) / 4, (3 * 0.25 + 0.5) / 4)  # 1/2, 3/8, 5/16
    others = [(sum(confidence) - c) / 2 for c in confidence]
    expected = {
        "num_samples": 4,
        "multimodal_accuracy": 3 / 4,
        "multimodal_confidence": (3 * 0.5 + 0.25) / 4,
        "unimodal_accuracy": (1.0, 1 / 2, 1 / 4),
        "unimodal_confidence": confidence,
        "confidence_ratio": tuple(c / o for c, o in zip(confidence, others)),
        "imbalance_ratio": 0.5 / (5 / 16),  # 8/5
        "similarity": 8 / 9,
        "loss": sum(losses) / 4,
    }
    return Case(
        _heads(fused, r, w),
        [_heads(h, r, w) for h in heads],
        torch.zeros(4, dtype=torch.int64),
        expected,
    )


CASES = {"two": two_modalities, "three": three_modalities}
