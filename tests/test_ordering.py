from __future__ import annotations

import pytest
import torch

from bss_sampler.ordering import (
    epoch_generator,
    shard,
    shard_size,
    shuffled_prefix,
    weighted_permutation,
)


def is_permutation(order: torch.Tensor, n: int) -> bool:
    return torch.equal(torch.sort(order).values, torch.arange(n))


def test_generator_depends_on_seed_and_epoch():
    draws = {
        (s, e): torch.rand(3, generator=epoch_generator(s, e)).tolist()
        for s in range(3)
        for e in range(3)
    }
    assert len({tuple(v) for v in draws.values()}) == 9  # (0, 1) and (1, 0) differ too
    assert draws[(1, 2)] == torch.rand(3, generator=epoch_generator(1, 2)).tolist()


def test_shuffled_prefix_is_top_count():
    ranking = torch.tensor([4, 2, 0, 1, 3])
    got = shuffled_prefix(ranking, 3, epoch_generator(0, 0))
    assert sorted(got.tolist()) == [0, 2, 4]


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_weighted_permutation_is_permutation(n):
    logits = torch.randn(n, generator=torch.Generator().manual_seed(n)) * 5
    assert is_permutation(weighted_permutation(logits, epoch_generator(1, n)), n)


def test_weighted_permutation_first_position_matches_softmax():
    """Chi-square test of the first item's frequencies against p = softmax(logits)."""
    logits = torch.tensor([1.0, 0.5, 0.0, -0.5, -1.0])
    p = torch.softmax(logits, 0)
    trials = 20_000
    g = torch.Generator().manual_seed(123)
    counts = torch.zeros(5)
    for _ in range(trials):
        counts[weighted_permutation(logits, g)[0]] += 1
    expected = p * trials
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 18.47  # chi-square 0.999 quantile, 4 degrees of freedom


def test_weighted_permutation_second_position_is_plackett_luce():
    logits = torch.tensor([2.0, 0.0, 0.0])
    g = torch.Generator().manual_seed(7)
    trials = 20_000
    first_then = torch.zeros(3, 3)
    for _ in range(trials):
        o = weighted_permutation(logits, g)
        first_then[o[0], o[1]] += 1
    # P(0 then 1) = p0 * p1 / (1 - p0) = p0 / 2 by symmetry of items 1 and 2
    p0 = torch.softmax(logits, 0)[0].item()
    assert first_then[0, 1].item() / trials == pytest.approx(p0 / 2, abs=0.015)


def test_weighted_permutation_beyond_multinomial_limit():
    n = 2**24 + 1
    logits = torch.zeros(n)
    order = weighted_permutation(logits, epoch_generator(0, 0))
    assert order.shape == (n,)
    counts = torch.bincount(order, minlength=n)
    assert bool((counts == 1).all())


@pytest.mark.parametrize("n", [1, 5, 8, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shard_matches_distributed_sampler(n, replicas, drop_last):
    from torch.utils.data import DistributedSampler

    if drop_last and n < replicas:
        pytest.skip("DistributedSampler gives every rank 0 samples then")
    order = torch.arange(n)
    shares = [shard(order, replicas, r, drop_last).tolist() for r in range(replicas)]
    for r, share in enumerate(shares):
        ref = DistributedSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last)
        assert share == list(ref)
        assert len(share) == shard_size(n, replicas, drop_last)
    flat = sorted(i for share in shares for i in share)
    if drop_last:
        assert len(set(flat)) == len(flat) == n - n % replicas
    else:
        assert set(flat) == set(range(n))
        assert len(flat) - n < replicas


def test_ranking_is_a_stable_sort_of_floats():
    from bss_sampler.ordering import ranking

    scores = torch.tensor([0.5, -0.0, 1.0, 0.0, -2.5, 0.5, float("inf"), -1e-30, 3e38])
    for descending in (False, True):
        want = torch.sort(scores + 0.0, descending=descending, stable=True).indices
        assert torch.equal(ranking(scores, descending), want)
    big = torch.randn(100_000, generator=torch.Generator().manual_seed(0)).round(decimals=2)
    assert torch.equal(ranking(big, True), torch.sort(big, descending=True, stable=True).indices)


def test_weighted_permutation_temperature_scales_the_logits():
    logits = torch.tensor([0.3, -1.0, 2.0, 0.0, 1.1])
    for temperature in (0.5, 2.0):
        a = weighted_permutation(logits, epoch_generator(4, 2), temperature=temperature)
        b = weighted_permutation(logits / temperature, epoch_generator(4, 2))
        assert torch.equal(a, b)
