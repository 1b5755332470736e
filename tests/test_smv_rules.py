"""Issue 26, item 7: SMV's sample-level rule exactly as released, at its edges.

The released rule is open intervals: one copy for a contribution in (0.4, upper), two in
(-0.1, 0.4), three below -0.1, none elsewhere. ``upper`` was 0.9 as first released (March 2024)
and is 1 since November 2024 (``dataloader.py``, commit d08ff20). The library follows the
current rule by default and keeps the first as ``thresholds="march2024"``; the oracle is
``smv_released`` (written from that description).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bss_sampler import SMVSampler
from bss_sampler.smv import (
    MARCH_2024_THRESHOLDS,
    RELEASED_THRESHOLDS,
    SMV_RULES,
    copy_counts,
    shapley_contributions,
    smv_stream,
    stream_index,
    stream_variant,
)

from . import smv_released as released

EDGES = [-0.5, -0.2, -0.1, 0.0, 0.39, 0.4, 0.41, 0.5, 0.89, 0.9, 11 / 12, 0.99, 1.0, 1.01, 1.5]
"""Every bound, a value on each side of it, and the two- and four-modality values in between."""

EXPECTED = {  # by hand, from the rule's text
    "released": {-0.5: 3, -0.1: 0, 0.0: 2, 0.4: 0, 0.5: 1, 0.9: 1, 11 / 12: 1, 1.0: 0, 1.5: 0},
    "march2024": {-0.5: 3, -0.1: 0, 0.0: 2, 0.4: 0, 0.5: 1, 0.9: 0, 11 / 12: 0, 1.0: 0, 1.5: 0},
}


def test_the_named_rules_are_the_released_bounds():
    assert SMV_RULES == {"released": (-0.1, 0.4, 1.0), "march2024": (-0.1, 0.4, 0.9)}
    assert SMV_RULES["released"] is RELEASED_THRESHOLDS
    assert SMV_RULES["march2024"] is MARCH_2024_THRESHOLDS


@pytest.mark.parametrize("rule", ["released", "march2024"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_copy_counts_at_every_edge(rule, dtype):
    values = torch.tensor(EDGES, dtype=dtype)
    got = dict(zip(EDGES, copy_counts(values.view(-1, 1), rule).flatten().tolist()))
    for value, copies in EXPECTED[rule].items():
        assert got[value] == copies, (rule, value)
    if dtype == torch.float64:  # the released code's numbers: python floats
        upper = released.UPPER_BOUNDS[rule]
        assert got == {value: released._copies(value, upper) for value in EDGES}
    default = copy_counts(values.view(-1, 1)).flatten().tolist()
    assert default == copy_counts(values.view(-1, 1), "released").flatten().tolist()


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_copy_counts_of_whole_number_contributions_follow_the_rule(dtype):
    # The bounds were cast to the contributions' dtype: an integer tensor turned -0.1 and 0.4
    # into 0, so a contribution of 0 sat "exactly on a bound" and got no copy instead of 2.
    whole = torch.tensor([[-1, 0], [1, 2]]).to(dtype)
    for rule in ("released", "march2024"):
        expected = copy_counts(whole.double(), rule)
        assert torch.equal(copy_counts(whole, rule), expected), (dtype, rule)
    assert copy_counts(torch.tensor([[0, 1]], dtype=dtype)).tolist() == [[2, 0]]


def _four_modality_value(target: float) -> torch.Tensor:
    """A coalition pattern of four modalities giving some modality the contribution ``target``."""
    patterns = torch.arange(2**15).unsqueeze(0) >> torch.arange(15).unsqueeze(1) & 1 == 1
    values = shapley_contributions(patterns.double())
    sample, modality = (values - target).abs().lt(1e-9).nonzero()[0].tolist()
    return values[sample].float().unsqueeze(0), modality


def test_a_four_modality_value_of_eleven_twelfths():
    contributions, modality = _four_modality_value(11 / 12)
    assert abs(float(contributions[0, modality]) - 11 / 12) < 1e-6
    assert int(copy_counts(contributions)[0, modality]) == 1
    assert int(copy_counts(contributions, "march2024")[0, modality]) == 0


def test_the_sampler_follows_its_rule():
    values = torch.tensor([[0.9, 11 / 12], [0.4, -0.1], [0.5, 1.0]])
    default, march = SMVSampler(range(3)), SMVSampler(range(3), thresholds="march2024")
    default.set_values(values)
    march.set_values(values)
    assert len(default) == 3 + 2 + 0 + 1 and len(march) == 3 + 0 + 0 + 1
    assert sorted(default) == [0, 1, 2, 3 + 0, 3 + 2, 2 * 3 + 0]  # variant * N + index
    assert sorted(march) == [0, 1, 2, 3 + 2]


def test_a_checkpoint_of_the_march_2024_rule_names_it_and_the_remedy_works():
    """A 0.2.0 default state holds the March 2024 bounds; loading it into today's default says
    which keyword keeps them, and that call loads it."""
    values = torch.tensor([[0.5, 0.0], [1.0, -0.5], [1.5, 0.5]])
    old = SMVSampler(range(3), thresholds=(-0.1, 0.4, 0.9))
    old.set_values(values)
    state = old.state_dict()
    assert state["config"]["thresholds"] == "-0.1,0.4,0.9"  # as 0.2.0 wrote its default
    with pytest.raises(ValueError, match="saved with thresholds='-0.1,0.4,0.9'") as error:
        SMVSampler(range(3)).load_state_dict(state)
    remedy = re.search(r"build the sampler with (thresholds='\w+')", str(error.value))
    assert remedy and remedy.group(1) == "thresholds='march2024'"
    fixed = eval(f"SMVSampler(range(3), {remedy.group(1)})", {"SMVSampler": SMVSampler})
    fixed.load_state_dict(state)
    assert list(fixed) == list(old)
    custom = SMVSampler(range(3), thresholds=(0.0, 0.5))
    custom.set_values(values)
    with pytest.raises(ValueError) as error:
        SMVSampler(range(3)).load_state_dict(custom.state_dict())
    call = re.search(r"build the sampler with (thresholds=\(.*\))$", str(error.value))
    assert call
    again = eval(f"SMVSampler(range(3), {call.group(1)})", {"SMVSampler": SMVSampler})
    again.load_state_dict(custom.state_dict())


@settings(max_examples=30, deadline=None)
@given(
    rule=st.sampled_from(["released", "march2024"]),
    halves=st.lists(st.tuples(st.integers(-2, 4), st.integers(-2, 4)), min_size=1, max_size=40),
    edges=st.lists(st.tuples(st.sampled_from(EDGES), st.sampled_from(EDGES)), max_size=10),
)
def test_an_epoch_holds_the_released_items_exactly(rule, halves, edges):
    """The (index, drop) multiset of an epoch equals the released dataset's, on two-modality
    values (multiples of 0.5) and on the edges (in float64, the released code's numbers)."""
    rows = [(a / 2, v / 2) for a, v in halves] + list(edges)
    contribution = dict(enumerate(rows))
    n = len(rows)
    copies = copy_counts(torch.tensor(rows, dtype=torch.float64), rule)
    ids = smv_stream(copies, torch.Generator().manual_seed(0))
    drop_of_variant = {0: 0, 1: 2, 2: 1}  # variant 1 keeps audio: the released drop 2
    mine = Counter(
        (int(i), drop_of_variant[int(k)])
        for i, k in zip(stream_index(ids, n), stream_variant(ids, n))
    )
    assert mine == Counter(released.sample_level_items(contribution, rule))
