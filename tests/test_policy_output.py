"""Issue 26, item 6: what a custom `OrderPolicy` returns is checked at the first wrong epoch.

A policy written from the core's recipe that returns an order of the wrong length, dtype, shape
or range used to make ``len()`` disagree with what was yielded, or fail late in the dataset with
an unclear error. The core now checks each epoch's order once (one vectorised pass) and raises
naming the policy, the epoch, what it returned and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from bss_sampler.core import OrderPolicy, PolicySampler

N = 10
Order = Callable[[int], Any]


class RecipePolicy(OrderPolicy):
    """Epoch ``bad_epoch`` returns ``make(N)``; every other epoch a seeded permutation."""

    def __init__(self, make: Order, bad_epoch: int, limit: int | None = N) -> None:
        self.make, self.bad_epoch, self.limit = make, bad_epoch, limit

    def epoch_order(self, epoch: int, values: Tensor, generator: torch.Generator) -> Any:
        order = torch.randperm(len(values), generator=generator)
        return self.make(len(values)) if epoch == self.bad_epoch else order

    def item_limit(self, num_samples: int) -> int | None:
        return self.limit


def _sampler(make: Order, bad_epoch: int = 2, limit: int | None = N, **shard: Any) -> Any:
    sampler = PolicySampler(range(N), RecipePolicy(make, bad_epoch, limit), **shard)
    sampler.set_values(torch.zeros(N))
    return sampler


BAD: dict[str, tuple[Order, str]] = {
    "short": (lambda n: torch.arange(n - 1), r"shape \(9,\) for epoch 2, expected shape \(10,\)"),
    "long": (
        lambda n: torch.arange(n + 1) % n,
        r"shape \(11,\) for epoch 2, expected shape \(10,\)",
    ),
    "empty": (lambda n: torch.arange(0), r"shape \(0,\) for epoch 2, expected shape \(10,\)"),
    "2-D": (
        lambda n: torch.arange(n).view(2, -1),
        r"shape \(2, 5\) for epoch 2, expected shape \(10,\)",
    ),
    "column": (lambda n: torch.arange(n).view(-1, 1), r"shape \(10, 1\) for epoch 2, expected"),
    "scalar": (lambda n: torch.tensor(3), r"shape \(\) for epoch 2, expected shape \(10,\)"),
    "float": (
        lambda n: torch.arange(n).float(),
        r"dtype torch\.float32 for epoch 2, expected an integer",
    ),
    "double": (
        lambda n: torch.arange(n).double(),
        r"dtype torch\.float64 for epoch 2, expected an integer",
    ),
    "bool": (
        lambda n: torch.ones(n, dtype=torch.bool),
        r"dtype torch\.bool for epoch 2, expected an integer",
    ),
    "complex": (lambda n: torch.zeros(n, dtype=torch.cfloat), r"dtype torch\.complex64"),
    "negative": (
        lambda n: torch.arange(n) - 1,
        r"-1 at position 0 for epoch 2, expected items in \[0, 9\]",
    ),
    "too large": (
        lambda n: torch.arange(n) + 1,
        r"10 at position 9 for epoch 2, expected items in \[0, 9\]",
    ),
    "list": (
        lambda n: list(range(n)),
        r"a list for epoch 2, expected an integer tensor of shape \(10,\)",
    ),
    "numpy": (
        lambda n: torch.arange(n).numpy(),
        r"a ndarray for epoch 2, expected an integer tensor",
    ),
    "None": (lambda n: None, r"a NoneType for epoch 2, expected an integer tensor"),
    "meta": (
        lambda n: torch.arange(n, device="meta"),
        r"a strided tensor on device meta for epoch 2, expected a dense integer tensor",
    ),
    "sparse": (
        lambda n: torch.arange(n).to_sparse(),
        r"a sparse_coo tensor on device cpu for epoch 2, expected a dense integer tensor",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_order_is_refused_naming_the_policy_and_the_epoch(case):
    make, said = BAD[case]
    sampler = _sampler(make)
    assert len(list(sampler)) == N  # epoch 0 is fine
    sampler.set_epoch(2)
    named = r"RecipePolicy\.epoch_order returned .* for epoch 2"
    with pytest.raises(ValueError, match=named):
        sampler.epoch_indices()
    with pytest.raises(ValueError, match=named):
        _started_state(sampler)
    with pytest.raises(ValueError) as error:
        iter(sampler)
    assert re.search(said, str(error.value)), str(error.value)


def _started_state(sampler: Any) -> Any:
    sampler._start = 3  # as after a restore inside the epoch: the state draws the order head
    try:
        return sampler.state_dict()
    finally:
        sampler._start = 0


def test_a_bad_order_in_a_checkpoint_is_refused_at_load():
    good = _sampler(lambda n: torch.arange(n), bad_epoch=-1)
    good.set_epoch(2)
    iterator = iter(good)
    next(iterator)
    state = good.state_dict()
    bad = _sampler(lambda n: torch.arange(n) + 5, bad_epoch=2)
    with pytest.raises(
        ValueError, match=r"RecipePolicy\.epoch_order returned 10 at position 5 for epoch 2"
    ):
        bad.load_state_dict(state)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8])
def test_any_integer_dtype_in_range_is_accepted_as_int64(dtype):
    sampler = _sampler(lambda n: torch.arange(n - 1, -1, -1).to(dtype))
    sampler.set_epoch(2)
    assert sampler.epoch_indices().dtype == torch.int64
    assert list(sampler) == list(range(N - 1, -1, -1))


def test_a_policy_declares_a_wider_range_or_none():
    wide = _sampler(lambda n: torch.arange(n) + 7, limit=N + 7)
    wide.set_epoch(2)
    assert list(wide) == list(range(7, N + 7))
    unbounded = _sampler(lambda n: torch.arange(n) * 10**9, limit=None)
    unbounded.set_epoch(2)
    assert max(unbounded) == 9 * 10**9
    with pytest.raises(ValueError, match=r"-3 at position 0 for epoch 2, expected items >= 0"):
        negative = _sampler(lambda n: torch.arange(n) - 3, limit=None)
        negative.set_epoch(2)
        iter(negative)


class SizedWrongly(OrderPolicy):
    def __init__(self, size: Any) -> None:
        self.size = size

    def epoch_size(self, epoch: int, values: Tensor | None, num_samples: int) -> Any:
        return self.size

    def epoch_order(self, epoch: int, values: Tensor, generator: torch.Generator) -> Tensor:
        return torch.arange(len(values))


@pytest.mark.parametrize("size", [0, -1, 2.5, "10", None, True])
def test_a_bad_epoch_size_is_refused_naming_the_policy(size):
    sampler = PolicySampler(range(N), SizedWrongly(size))
    with pytest.raises(ValueError, match=r"SizedWrongly\.epoch_size returned .* for epoch 0"):
        len(sampler)


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(0, 2 * N),
    low=st.integers(-3, N),
    span=st.integers(0, 2 * N),
    dtype=st.sampled_from([torch.int64, torch.int32, torch.float32, torch.float64]),
    replicas=st.integers(1, 3),
)
def test_an_order_is_accepted_exactly_when_it_is_valid(length, low, span, dtype, replicas):
    """Oracle: the right length, an integer dtype, every item in [0, N)."""
    g = torch.Generator().manual_seed(length * 31 + low)
    order = (low + torch.randint(0, span + 1, (length,), generator=g)).to(dtype)
    valid = (
        length == N
        and not dtype.is_floating_point
        and (length == 0 or (int(order.min()) >= 0 and int(order.max()) < N))
    )
    sampler = _sampler(lambda n: order.clone(), num_replicas=replicas, rank=0)
    sampler.set_epoch(2)
    if valid:
        everything = order.tolist()
        assert list(sampler) == (everything * replicas)[: len(sampler) * replicas : replicas]
    else:
        with pytest.raises(ValueError, match=r"RecipePolicy\.epoch_order returned"):
            iter(sampler)
