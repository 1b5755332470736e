from __future__ import annotations

import math
from itertools import combinations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bss_sampler.functional import (
    balance_loss,
    balance_score,
    balance_terms,
    min_max_normalize,
    prediction_similarity,
)


def _softmax(row: list[float]) -> list[float]:
    e = [math.exp(x) for x in row]
    return [x / sum(e) for x in e]


def _cos(p: list[float], q: list[float]) -> float:
    dot = sum(a * b for a, b in zip(p, q))
    return dot / (math.sqrt(sum(a * a for a in p)) * math.sqrt(sum(b * b for b in q)))


def _ce(row: list[float], y: int) -> float:
    return -math.log(_softmax(row)[y])


def reference_scores(multi, unis, targets, alpha, criteria=("similarity", "loss")):
    """Eq. 4-6 written out sample by sample, with plain Python floats."""
    n = len(targets)
    sims, losses = [], []
    for i in range(n):
        probs = [_softmax(u[i]) for u in unis]
        pairs = [_cos(p, q) for p, q in combinations(probs, 2)]
        sims.append(sum(pairs) / len(pairs))
        loss = (1 - alpha) * _ce(multi[i], targets[i])
        loss += alpha * sum(_ce(u[i], targets[i]) for u in unis)
        losses.append(loss)

    def norm(xs):
        lo, hi = min(xs), max(xs)
        return [0.0 if hi == lo else (x - lo) / (hi - lo) for x in xs]

    score = [0.0] * n
    if "similarity" in criteria:
        score = [s + x for s, x in zip(score, norm(sims))]
    if "loss" in criteria:
        score = [s - x for s, x in zip(score, norm(losses))]
    return score


def test_similarity_two_modalities_by_hand():
    # softmax([0, 0]) = [.5, .5]; softmax([ln 3, 0]) = [.75, .25]
    a = torch.tensor([[0.0, 0.0]])
    v = torch.tensor([[math.log(3.0), 0.0]])
    expected = (0.5 * 0.75 + 0.5 * 0.25) / (math.sqrt(0.5) * math.sqrt(0.75**2 + 0.25**2))
    assert prediction_similarity([a, v]).item() == pytest.approx(expected)


def test_similarity_three_modalities_is_mean_of_pairs():
    a = torch.tensor([[0.0, 0.0]])
    v = torch.tensor([[math.log(3.0), 0.0]])
    d = torch.tensor([[0.0, math.log(3.0)]])
    pairs = [prediction_similarity([x, y]).item() for x, y in combinations([a, v, d], 2)]
    # (a, d) by hand: [.5, .5] vs [.25, .75] is the mirror image of (a, v)
    assert pairs[1] == pytest.approx(pairs[0])
    assert prediction_similarity([a, v, d]).item() == pytest.approx(sum(pairs) / 3)


def test_loss_by_hand():
    multi = torch.tensor([[0.0, 0.0]])  # CE = ln 2
    a = torch.tensor([[math.log(3.0), 0.0]])  # CE(target 0) = -ln .75
    v = torch.tensor([[0.0, math.log(3.0)]])  # CE(target 0) = -ln .25
    got = balance_loss(multi, [a, v], torch.tensor([0]), alpha=0.2).item()
    assert got == pytest.approx(0.8 * math.log(2) + 0.2 * (-math.log(0.75) - math.log(0.25)))


def test_min_max_constant_is_zero():
    assert torch.equal(min_max_normalize(torch.full((4,), 3.0)), torch.zeros(4))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 12),
    modalities=st.integers(2, 4),
    classes=st.integers(2, 5),
    alpha=st.floats(0, 1),
    seed=st.integers(0, 10_000),
    criteria=st.sampled_from([("similarity", "loss"), ("similarity",), ("loss",)]),
)
def test_matches_reference(n, modalities, classes, alpha, seed, criteria):
    g = torch.Generator().manual_seed(seed)
    multi = torch.randn(n, classes, generator=g, dtype=torch.float64) * 3
    unis = [
        torch.randn(n, classes, generator=g, dtype=torch.float64) * 3 for _ in range(modalities)
    ]
    y = torch.randint(0, classes, (n,), generator=g)
    want = reference_scores(multi.tolist(), [u.tolist() for u in unis], y.tolist(), alpha, criteria)
    want = torch.tensor(want, dtype=torch.float64)
    sim, loss = prediction_similarity(unis), balance_loss(multi, unis, y, alpha)
    got = balance_score(sim, loss, criteria)
    assert got.dtype == torch.float64  # float64 logits are scored in float64
    assert torch.allclose(got, want, atol=1e-9)
    assert got.min() >= -1 and got.max() <= 1
    shared = balance_terms(multi, torch.stack(unis), y, alpha)  # one log_softmax per head
    assert torch.allclose(shared[0], sim, atol=1e-12) and torch.allclose(
        shared[1], loss, atol=1e-12
    )
    single = balance_score(
        *balance_terms(multi.float(), [u.float() for u in unis], y, alpha), criteria
    )
    assert single.dtype == torch.float32
    assert torch.allclose(single.double(), want, atol=1e-4)


def test_low_precision_logits_are_computed_in_float32():
    multi = torch.tensor([[0.0, 1.0]], dtype=torch.bfloat16)
    unis = [multi.half(), multi]
    sim, loss = balance_terms(multi, unis, torch.tensor([1]), 0.2)
    assert sim.dtype == loss.dtype == torch.float32
    ce = -math.log(math.e / (1 + math.e))  # every head the same: 0.8 ce + 0.2 (ce + ce)
    assert loss.item() == pytest.approx(1.2 * ce, rel=1e-6)
