"""SMVOrder: the SMV ordering policy a sampler core plugs in."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from bss_sampler import epoch_generator, shard
from bss_sampler.smv import copy_counts, stream_index, stream_variant
from bss_sampler.smv_order import SMVOrder

CONTRIBUTIONS = torch.tensor([[1.0, 1.0], [0.5, 1.5], [0.0, 1.0], [-0.5, 0.5], [1.5, 0.5]])


def test_warmup_epochs_are_the_originals_and_resampled_epochs_add_the_copies():
    order = SMVOrder(5, 2, warmup=2)
    assert [order.needs_valuation(t) for t in range(3)] == [False, False, True]
    assert sorted(order.global_order(0, epoch_generator(0, 0)).tolist()) == list(range(5))
    order.set_contributions(CONTRIBUTIONS, epoch=2)
    assert not order.needs_valuation(2) and order.needs_valuation(3)
    assert order.epoch_size(1) == 5  # the valuation applies from epoch 2
    ids = order.global_order(2, epoch_generator(0, 2))
    assert len(ids) == order.epoch_size(2) == 5 + int(copy_counts(CONTRIBUTIONS).sum()) == 13
    got = Counter(zip(stream_index(ids, 5).tolist(), stream_variant(ids, 5).tolist()))
    assert got[(3, 1)] == 3 and got[(3, 2)] == 1 and got[(2, 1)] == 2 and got[(0, 1)] == 0


def test_modality_level_copies_keep_the_weakest_modality_and_the_size_is_known_ahead():
    order = SMVOrder(5, 2, level="modality", warmup=0, alpha=2.0)
    order.set_contributions(CONTRIBUTIONS, epoch=0)
    ids = order.global_order(0, epoch_generator(1, 0))
    assert len(ids) == order.epoch_size(0)
    # means 0.5 and 0.9: gap 0.4 * 2/3, times alpha 2 -> int(0.5333 * 5) = 2 copies keeping 0
    assert Counter(stream_variant(ids, 5).tolist()) == {0: 5, 1: 2}


@pytest.mark.parametrize("level", ["sample", "modality"])
def test_orders_are_deterministic_and_shard_into_disjoint_covering_shares(level):
    order = SMVOrder(5, 2, level=level, warmup=0)
    order.set_contributions(CONTRIBUTIONS, epoch=0)
    first = order.global_order(3, epoch_generator(7, 3))
    assert torch.equal(first, order.global_order(3, epoch_generator(7, 3)))
    shares = [shard(first, 3, rank, drop_last=True) for rank in range(3)]
    assert sum(len(s) for s in shares) == len(first) // 3 * 3
    whole = torch.stack(shares, dim=1).flatten()  # interleaved back: the global order's prefix
    assert torch.equal(whole, first[: len(whole)])


def test_state_dict_round_trip_regenerates_the_same_epoch():
    order = SMVOrder(5, 2, warmup=1)
    order.set_contributions(CONTRIBUTIONS, epoch=4)
    fresh = SMVOrder(5, 2, warmup=1)
    assert fresh.config() == order.config()
    fresh.load_state_dict(order.state_dict())
    assert fresh.epoch_size(4) == order.epoch_size(4)
    assert torch.equal(
        fresh.global_order(4, epoch_generator(0, 4)), order.global_order(4, epoch_generator(0, 4))
    )
    assert not fresh.needs_valuation(4)
    empty = SMVOrder(5, 2)
    empty.load_state_dict(SMVOrder(5, 2).state_dict())
    assert empty.epoch_size(9) == 5


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: SMVOrder(5, 2, level="class"), r"^level must be one of \['sample', 'modality'\]"),
        (lambda: SMVOrder(5, 2, warmup=-1), r"^warmup must be an int >= 0, got -1$"),
        (lambda: SMVOrder(5, 2, function="cube"), r"^function must be one of"),
        (
            lambda: SMVOrder(5, 2).set_contributions(torch.zeros(5), 0),
            r"^contributions must have shape \(5, 2\), got \(5,\)$",
        ),
        (
            lambda: SMVOrder(1, 2).set_contributions(torch.tensor([[float("nan"), 0.0]]), 0),
            r"^contributions must be finite",
        ),
    ],
)
def test_bad_arguments_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
