"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from examples.common.metrics import (
    accuracy,
    average_precision,
    classification_metrics,
    macro_f1,
    mean_average_precision,
)


def test_accuracy() -> None:
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert accuracy(scores, torch.tensor([0, 1, 1, 1])) == 0.75


def test_average_precision_by_hand() -> None:
    # Ranked: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg): AP = 1/2 * 1 + 1/2 * 2/3.
    ap = average_precision(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
    assert ap == pytest.approx(0.5 + 1 / 3)


def test_average_precision_ties_form_one_threshold() -> None:
    # All scores tied: one threshold, precision 2/4 at recall 1.
    ap = average_precision(torch.tensor([0.5, 0.5, 0.5, 0.5]), torch.tensor([1, 0, 1, 0]))
    assert ap == pytest.approx(0.5)


def test_average_precision_without_positive_is_nan() -> None:
    assert math.isnan(average_precision(torch.tensor([0.1, 0.2]), torch.tensor([0, 0])))


def test_map_by_hand() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0], [0.0, 1.0, 2.0]])
    targets = torch.tensor([0, 1, 1, 2])
    # Class 0 ranks sample 0 first: AP 1. Class 1: softmax column ranks samples 1, 0/3, 2;
    # sample 1 first (hit), then samples 0 and 3 tie (no hit), then sample 2 (hit): 1/2 + 1/2*2/4.
    # Class 2 ranks 2 and 3 tied first (one hit of two), then 1, 0: AP 1/2.
    assert mean_average_precision(logits, targets) == pytest.approx((1 + 0.75 + 0.5) / 3)


def test_map_skips_absent_classes() -> None:
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    assert mean_average_precision(logits, torch.tensor([0, 1])) == pytest.approx(1.0)


def test_macro_f1_by_hand() -> None:
    preds = torch.tensor([0, 0, 1, 1, 2, 2])
    targets = torch.tensor([0, 1, 1, 1, 2, 0])
    scores = torch.nn.functional.one_hot(preds, 3).float()
    # F1: class 0 tp1 fp1 fn1 -> 1/2; class 1 tp2 fp0 fn1 -> 4/5; class 2 tp1 fp1 fn0 -> 2/3.
    assert macro_f1(scores, targets) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_classification_metrics_keys() -> None:
    out = classification_metrics(torch.eye(3), torch.tensor([0, 1, 2]))
    assert out == {"acc": 1.0, "map": 1.0, "f1": 1.0}
