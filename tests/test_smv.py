"""SMV: valuation, copy counts, the epoch stream, the valuator, the dataset wrapper."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bss_sampler import CoverageError, SMVSampler
from bss_sampler.ordering import epoch_generator, shard
from bss_sampler.smv import (
    GAP_FUNCTIONS,
    ModalityMaskedDataset,
    ModalityValuator,
    coalition_correct,
    coalition_logits,
    coalition_masks,
    copy_counts,
    mask_features,
    modality_level_copies,
    shapley_contributions,
    smv_stream,
    stream_index,
    stream_variant,
    valuate_dataset,
    variant_masks,
)

from . import smv_released as released
from .smv_cases import valuate_case, valuation_case
from .test_distributed import _spawn

#: (right with audio alone, right with video alone, right fused) -> (contrib_a, contrib_v), by
#: hand from contrib_a = (v_a + v_all - v_v) / 2 with v_all in {0, 2}, v_a and v_v in {0, 1}.
TWO_MODALITIES = {
    (0, 0, 0): (0.0, 0.0),
    (1, 0, 0): (0.5, -0.5),
    (0, 1, 0): (-0.5, 0.5),
    (1, 1, 0): (0.0, 0.0),
    (0, 0, 1): (1.0, 1.0),
    (1, 0, 1): (1.5, 0.5),
    (0, 1, 1): (0.5, 1.5),
    (1, 1, 1): (1.0, 1.0),
}
# released copies per contribution: 3, 2, 1 for -0.5, 0, 0.5; none from 1 up
COPIES = {-0.5: 3, 0.0: 2, 0.5: 1, 1.0: 0, 1.5: 0}


def brute_force_shapley(correct: list[bool], m: int) -> list[float]:
    """Shapley values by averaging marginal values over all orderings; v(S) = |S| * right(S)."""
    masks = coalition_masks(m).tolist()

    def value(members: frozenset[int]) -> float:
        if not members:
            return 0.0
        row = masks.index([i in members for i in range(m)])
        return len(members) * float(correct[row])

    totals = [0.0] * m
    orders = list(itertools.permutations(range(m)))
    for order in orders:
        before: frozenset[int] = frozenset()
        for i in order:
            totals[i] += value(before | {i}) - value(before)
            before = before | {i}
    return [t / len(orders) for t in totals]


def test_coalition_masks_put_singletons_at_powers_of_two_and_all_last():
    assert coalition_masks(2).tolist() == [[True, False], [False, True], [True, True]]
    masks = coalition_masks(3)
    assert masks.shape == (7, 3)
    assert masks[[0, 1, 3]].tolist() == torch.eye(3, dtype=torch.bool).tolist()
    assert masks[-1].all()


@pytest.mark.parametrize(("case", "expected"), TWO_MODALITIES.items())
def test_two_modalities_follow_the_released_rule(case, expected):
    correct = torch.tensor(case, dtype=torch.bool).view(3, 1)
    assert shapley_contributions(correct).tolist() == [list(expected)]


@pytest.mark.parametrize(("contribution", "copies"), COPIES.items())
def test_copy_counts_follow_the_released_thresholds(contribution, copies):
    assert copy_counts(torch.tensor([[contribution, 1.0]])).tolist() == [[copies, 0]]


def test_three_modalities_hand_computed():
    # only the fused prediction with all three is right: each modality gets v(all) / 3 = 1
    only_all = torch.zeros(7, 1, dtype=torch.bool)
    only_all[-1] = True
    assert shapley_contributions(only_all).tolist() == [[1.0, 1.0, 1.0]]
    # only modality 0 alone is right: phi_0 = 1/3 * 1; the others lose 1/6 each
    only_first = torch.zeros(7, 1, dtype=torch.bool)
    only_first[0] = True
    assert torch.allclose(
        shapley_contributions(only_first), torch.tensor([[1 / 3, -1 / 6, -1 / 6]])
    )
    # 2 copies for 1/3 (in [-0.1, 0.4)), 3 for -1/6 (below -0.1)
    assert copy_counts(shapley_contributions(only_first)).tolist() == [[2, 3, 3]]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 4).flatmap(
        lambda m: st.tuples(
            st.just(m), st.lists(st.booleans(), min_size=2**m - 1, max_size=2**m - 1)
        )
    )
)
def test_exact_shapley_matches_brute_force(case):
    m, correct = case
    got = shapley_contributions(torch.tensor(correct).view(-1, 1))[0].double()
    expected = torch.tensor(brute_force_shapley(correct, m), dtype=torch.float64)
    assert torch.allclose(got, expected, atol=1e-6)
    assert math.isclose(float(got.sum()), m * correct[-1], abs_tol=1e-6)  # efficiency


def test_shapley_refuses_a_row_count_that_is_no_coalition_set():
    with pytest.raises(ValueError, match=r"^correct must have 2\^M - 1 rows .* got 4$"):
        shapley_contributions(torch.zeros(4, 2, dtype=torch.bool))


def test_side_by_side_with_the_released_code_on_identical_logits():
    """The released fusion, valuation and resampled dataset against ours, same features."""
    torch.manual_seed(0)
    n, classes = 64, 3
    fc = nn.Linear(8, classes)
    a, v = torch.randn(n, 4), torch.randn(n, 4)
    labels = torch.randint(classes, (n,))
    with torch.no_grad():
        out, out_v, out_a = released.concat_fusion_outputs(fc, a, v)
        ours = coalition_logits(lambda feats: fc(torch.cat(feats, 1)), [a, v])
    assert torch.equal(ours, torch.stack([out_a, out_v, out]))  # only a, only v, both
    theirs = released.contributions(out, out_v, out_a, labels)
    contributions = shapley_contributions(coalition_correct(ours, labels))
    assert contributions.tolist() == [list(theirs[i]) for i in range(n)]
    assert len(set(contributions.flatten().tolist())) >= 4  # the case exercises the rule
    items = Counter(released.sample_level_items(theirs))
    ids = smv_stream(copy_counts(contributions), torch.Generator().manual_seed(0))
    drop_of_variant = {0: 0, 1: 2, 2: 1}  # variant 1 keeps audio: the released drop 2
    mine = Counter(
        (int(i), drop_of_variant[int(k)])
        for i, k in zip(stream_index(ids, n), stream_variant(ids, n))
    )
    assert mine == items


@pytest.mark.parametrize("function", ["linear", "tanh", "power1.5"])
@pytest.mark.parametrize("means", [(0.2, 0.9), (0.8, -0.1), (0.5, 0.5)])
def test_modality_level_count_and_kept_modality_match_the_released_code(function, means):
    n, alpha = 200, 1.5
    func = "square" if function == "power1.5" else function
    items = released.modality_level_items(*means, alpha, func, n, np.random.default_rng(0))
    copies = modality_level_copies(
        means, n, torch.Generator().manual_seed(0), alpha=alpha, function=function
    )
    drops = Counter(drop for _, drop in items[n:])
    assert int(copies.sum()) == len(items) - n
    if drops:
        kept = 0 if set(drops) == {2} else 1
        assert int(copies[:, kept].sum()) == len(items) - n


def test_modality_level_copies_draw_with_replacement_from_the_generator():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    first = modality_level_copies([0.9, 0.3, 0.6], 50, g1, alpha=1.0)
    assert torch.equal(first, modality_level_copies([0.9, 0.3, 0.6], 50, g2, alpha=1.0))
    assert int(first.sum()) == int(GAP_FUNCTIONS["linear"](0.6 * 2 / 3, 1.0) * 50) == 20
    assert first[:, [0, 2]].sum() == 0  # all keep modality 1, the lowest mean


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"function": "cube"},
            r"^function must be one of \['linear', 'tanh', 'power1.5', 'square'\]",
        ),
        ({"alpha": -1}, r"^alpha must lie in \[0, inf\), got -1$"),
        ({"mean_contributions": [0.5]}, r"^mean_contributions must hold M >= 2 finite numbers"),
        ({"num_samples": 0}, r"^num_samples must be an int >= 1, got 0$"),
    ],
)
def test_modality_level_copies_refuse_bad_arguments(kwargs, match):
    args = {"mean_contributions": [0.5, 0.1], "num_samples": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        modality_level_copies(generator=torch.Generator(), **args)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(0, 3), min_size=2, max_size=2), min_size=n, max_size=n
        )
    ),
    st.integers(0, 2**32),
    st.integers(0, 100),
)
def test_stream_holds_each_original_once_and_every_copy(copies, seed, epoch):
    copies = torch.tensor(copies)
    n = len(copies)
    ids = smv_stream(copies, epoch_generator(seed, epoch))
    assert ids.dtype == torch.int64 and len(ids) == n + int(copies.sum())
    count = Counter(zip(stream_index(ids, n).tolist(), stream_variant(ids, n).tolist()))
    expected = Counter({(i, 0): 1 for i in range(n)})
    for i, m in itertools.product(range(n), range(2)):
        if copies[i, m]:
            expected[(i, m + 1)] = int(copies[i, m])
    assert count == expected
    assert torch.equal(ids, smv_stream(copies, epoch_generator(seed, epoch)))


def test_stream_order_changes_with_the_epoch():
    copies = torch.full((30, 2), 1)
    orders = {tuple(smv_stream(copies, epoch_generator(0, e)).tolist()) for e in range(3)}
    assert len(orders) == 3


@pytest.mark.parametrize(
    ("copies", "match"),
    [
        (torch.zeros(3, 2), r"^copies must be an integer tensor \(N, M\), got torch.float32"),
        (torch.tensor([[0, -1]]), r"^copies must be >= 0, got a minimum of -1$"),
    ],
)
def test_stream_refuses_bad_copies(copies, match):
    with pytest.raises(ValueError, match=match):
        smv_stream(copies, torch.Generator())


def test_variant_masks_and_mask_features():
    masks = variant_masks(torch.tensor([0, 1, 2, 3]), 3)
    assert masks.int().tolist() == [[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match=r"^variants must lie in \[0, 2\] for 2 modalities"):
        variant_masks(torch.tensor([3]), 2)
    a, v = torch.ones(2, 3), torch.ones(2, 2, 4)
    out = mask_features([a, v], variant_masks(torch.tensor([1, 2]), 2))
    assert out[0].tolist() == [[1, 1, 1], [0, 0, 0]]
    assert out[1][0].abs().sum() == 0 and out[1][1].sum() == 8
    with pytest.raises(ValueError, match=r"^mask must have shape \(batch, 2\) for 2 modalities"):
        mask_features([a, v], torch.ones(2, 3, dtype=torch.bool))


def test_masked_dataset_through_a_dataloader_with_workers():
    n = 6
    data = ModalityMaskedDataset(TensorDataset(torch.arange(n) * 10), num_modalities=2)
    ids = smv_stream(torch.tensor([[1, 0], [0, 2]] * 3), epoch_generator(0, 0))
    loader = DataLoader(data, batch_size=4, sampler=ids.tolist(), num_workers=2)
    seen = []
    for (values,), masks in loader:
        assert masks.dtype == torch.bool and masks.shape[1] == 2
        seen += list(zip((values // 10).tolist(), masks.tolist()))
    expected = [(int(i), variant_masks(k, 2).tolist()) for i, k in zip(ids % n, ids // n)]
    assert seen == expected
    assert len(data) == n
    with pytest.raises(IndexError, match=r"^stream id must lie in \[0, 17\] for 6 samples"):
        data[18]


def test_valuator_averages_updates_and_reports():
    logits, targets = valuation_case(2, n=5)
    valuator = ModalityValuator(5, 2)
    valuator.update(torch.arange(5), logits, targets)
    valuator.update(torch.tensor([0]), logits[:, :1], targets[:1])  # a repeat: same mean
    got = valuator.compute()
    correct = coalition_correct(logits, targets)
    assert torch.equal(got, shapley_contributions(correct.double()).float())
    report = valuator.last_report
    assert report is not None
    assert report.fused_accuracy == pytest.approx(correct[2].double().mean().item())
    assert report.alone_accuracy == pytest.approx(correct[:2].double().mean(1).tolist())
    assert report.mean_contribution == pytest.approx(got.double().mean(0).tolist())
    assert report.no_contribution == pytest.approx((got <= 0).double().mean(0).tolist())
    assert sum(report.mean_contribution) == pytest.approx(2 * report.fused_accuracy)


def test_valuator_checks_coverage_and_values():
    logits, targets = valuation_case(2, n=4)
    valuator = ModalityValuator(4, 2)
    valuator.update(torch.arange(3), logits[:, :3], targets[:3])
    with pytest.raises(
        CoverageError, match=r"^1 of 4 samples were never updated \(first indices: \[3\]\)"
    ):
        valuator.compute()
    with pytest.raises(ValueError, match=r"^logits must have shape \(3, batch, classes\)"):
        valuator.update(torch.arange(4), logits[:2], targets)
    with pytest.raises(ValueError, match=r"^targets must be an integer tensor of shape \(4,\)"):
        valuator.update(torch.arange(4), logits, targets.float())
    bad = logits.clone()
    bad[1, 2, 0] = float("nan")
    with pytest.raises(
        ValueError, match=r"^logits contain NaN or inf for 1 samples \(dataset indices \[2\]\)"
    ):
        valuator.update(torch.arange(4), bad, targets)
    with pytest.raises(
        ValueError,
        match=r"^targets must lie in \[0, C - 1\] for logits with C classes, but 1 samples",
    ):
        valuator.update(torch.arange(4), logits, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(
        ValueError, match=r"^indices must lie in \[0, 3\] \(num_samples=4\), but 1 indices"
    ):
        valuator.update(torch.tensor([0, 1, 2, 4]), logits, targets)


def test_valuate_dataset_runs_in_eval_mode_and_restores_training():
    logits, targets = valuation_case(3)
    model = nn.Linear(1, 1)
    modes = []

    def forward(m, batch):
        modes.append(m.training)
        (idx,) = batch
        return logits[:, idx], targets[idx], idx

    loader = DataLoader(TensorDataset(torch.arange(len(targets))), batch_size=4)
    contributions, report = valuate_dataset(model, loader, len(targets), 3, forward)
    assert modes and not any(modes) and model.training
    correct = coalition_correct(logits, targets).double()
    assert torch.equal(contributions, shapley_contributions(correct).float())
    assert len(report.mean_contribution) == 3


def single_process(modalities: int):
    logits, targets = valuation_case(modalities)
    loader = DataLoader(TensorDataset(torch.arange(len(targets))), batch_size=2)
    return valuate_case(loader, logits, targets)


@pytest.fixture(scope="module")
def smv_ranks(tmp_path_factory):
    return _spawn(tmp_path_factory, "smv", 2, timeout=300)


@pytest.mark.parametrize("modalities", [2, 3])
def test_two_ranks_value_exactly_as_one_process(smv_ranks, modalities):
    """Padded DistributedSampler shares (9 samples over 2 ranks), one all-reduce."""
    contributions, report = single_process(modalities)
    for result in smv_ranks:
        assert torch.equal(result[f"{modalities}/contributions"], contributions)
        assert result[f"{modalities}/report"] == dataclasses.asdict(report)


@pytest.mark.parametrize("modalities", [2, 3])
def test_two_ranks_share_the_whole_stream_copies_included(smv_ranks, modalities):
    """An SMVSampler built under the group shards the epoch's stream as DistributedSampler
    would: the copies are split over the ranks too, none dropped or doubled."""
    contributions, _ = single_process(modalities)
    whole = SMVSampler(range(9), modalities, seed=3)
    whole.set_values(contributions)
    whole.set_epoch(1)
    stream = whole.epoch_indices()
    assert len(stream) > 9  # this valuation adds copies
    for rank, result in enumerate(smv_ranks):
        assert result[f"{modalities}/shard"] == shard(stream, 2, rank, False).tolist()


def test_nan_on_one_rank_raises_on_every_rank(smv_ranks):
    messages = [result["nan"] for result in smv_ranks]
    assert messages[0] == messages[1]
    assert re.match(
        r"^logits contain NaN or inf for 1 samples \(dataset indices \[5\]\)", messages[0]
    )
