"""The order-only core with a third, toy method: what SMV-like methods rely on.

The toy policy adds one extra copy (encoded ``N + index``) of every sample whose valuation is
positive, so its epoch length depends on the valuation and its stream items reach ``2N - 1``.
"""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler, ScoredSampler
from bss_sampler.core import OrderPolicy, PolicySampler
from bss_sampler.integrations._common import find_sampler


class CopiesPolicy(OrderPolicy):
    varies_epoch_length = True

    def epoch_size(self, epoch: int, values: Tensor | None, num_samples: int) -> int:
        return num_samples + (0 if values is None else int((values > 0).sum()))

    def epoch_order(self, epoch: int, values: Tensor, generator: torch.Generator) -> Tensor:
        n = len(values)
        items = torch.cat([torch.arange(n), n + (values > 0).nonzero().flatten()])
        return items[torch.randperm(len(items), generator=generator)]

    def last_scheduled(self, epoch: int) -> int | None:
        return epoch - epoch % 2

    def item_limit(self, num_samples: int) -> int:
        return 2 * num_samples


class CopiesSampler(PolicySampler):
    def __init__(self, data_source, **shard) -> None:
        super().__init__(data_source, CopiesPolicy(), **shard)

    def set_valuation(self, values) -> Tensor:
        return self.set_values(values, "valuations")


def test_the_length_follows_the_valuation_and_items_reach_beyond_n():
    sampler = CopiesSampler(range(6))
    sampler.set_valuation(torch.tensor([1.0, -1, 1, -1, -1, -1]))
    items = list(sampler)
    assert len(sampler) == len(items) == 8 and sorted(items) == [0, 1, 2, 3, 4, 5, 6, 8]
    assert sampler.varies_epoch_length and CopiesSampler.varies_epoch_length is False


def test_a_valuation_set_mid_epoch_waits_for_the_next_set_epoch():
    sampler = CopiesSampler(range(6))
    sampler.set_valuation(torch.zeros(6))
    it = iter(sampler)
    next(it)
    sampler.set_valuation(torch.ones(6))  # the epoch has started: from the next set_epoch
    assert len(sampler) == 6 and len([next(it) for _ in range(5)]) == 5
    assert not sampler.needs_update(1) and sampler.epoch_length(1) == 12
    sampler.set_epoch(1)
    assert len(sampler) == len(list(sampler)) == 12


@pytest.mark.parametrize("replicas", [1, 2, 3])
@pytest.mark.parametrize("stop", [0, 1, 5, 8])
def test_a_resumed_pass_continues_exactly(replicas, stop):
    valuation = torch.tensor([1.0, -1, 1, 1, -1, 1, -1])
    shares = []
    for rank in range(replicas):
        sampler = CopiesSampler(range(7), num_replicas=replicas, rank=rank, seed=4)
        sampler.set_valuation(valuation)
        sampler.set_epoch(3)
        full = sampler.epoch_indices().tolist()
        it = iter(sampler)
        head = [next(it) for _ in range(min(stop, len(full)))]
        fresh = CopiesSampler(range(7), num_replicas=replicas, rank=rank, seed=4)
        fresh.load_state_dict(pickle.loads(pickle.dumps(sampler.state_dict())))
        assert len(fresh) == len(full) and head + list(fresh) == full
        shares.append(full)
    everything = sorted(i for share in shares for i in share)
    assert set(everything) == set(range(7)) | {7, 9, 10, 12}


def test_new_valuations_before_an_epoch_apply_to_it_and_are_scheduled():
    sampler = CopiesSampler(range(4))
    assert sampler.needs_update(0)
    sampler.set_valuation(torch.zeros(4))
    list(sampler)  # epoch 0 drew from it (never drawn, it would be epoch 3's: issue 26, item 1)
    sampler.set_epoch(3)
    assert sampler.needs_update(3)  # scheduled at 2, skipped
    sampler.set_valuation(torch.ones(4))  # epoch 3 not started: applies to it
    assert len(sampler) == 8 and not sampler.needs_update(3)


def test_integrations_ask_the_protocol_not_a_list_of_classes():
    assert isinstance(LearnedBalanceSampler(range(4)), ScoredSampler)
    assert isinstance(HeuristicCurriculumSampler(range(4)), ScoredSampler)
    assert not isinstance(CopiesSampler(range(4)), ScoredSampler)  # no update_scores

    class ScoredCopies(CopiesSampler):
        scores = property(lambda self: self._newest_values())
        scores_epoch = property(lambda self: self._values_epoch)
        last_report = None

        def update_scores(self, model, loader, *, forward=None, progress=True) -> Tensor:
            return self.set_valuation(torch.ones(self.num_samples))

    sampler = ScoredCopies(range(4))
    assert isinstance(sampler, ScoredSampler)
    assert find_sampler(DataLoader(range(4), sampler=sampler)) is sampler
    with pytest.raises(TypeError, match="must draw from a scored sampler"):
        find_sampler(DataLoader(range(4)))
