"""Issue 26, item 1: valuations set before a sampler's first epoch count for the epoch that then
starts.

The README's loop (``needs_update(epoch)`` -> value -> ``set_epoch(epoch)``) entered at an epoch
past 0: after a warm-up in random order (SMV's released code warms up for 5 epochs), or from a
``start_epoch > 0``. The sampler was never iterated before, so the valuation set while it still
stood at epoch 0 is the one epoch ``warmup`` is drawn from: it must be recorded for that epoch,
the schedule must count from there, and a checkpoint inside that epoch must resume exactly.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bss_sampler import LearnedBalanceSampler, SMVSampler

from .readme_loop import roundtrip, train
from .sampler_cases import BSS_SAMPLERS, SAMPLERS, make, schedule, valuation, value

N = 12


def _run(
    cls: type,
    *,
    warmup: int,
    epochs: int,
    every: int,
    stop: int | None = None,
    resume: dict[str, Any] | None = None,
) -> tuple[list[tuple[int, int]], list[int], dict[str, Any] | None]:
    """The loop from epoch ``warmup`` (or a checkpoint's epoch): the (epoch, item) pairs yielded,
    the epochs valued before, and the checkpoint taken after the ``stop``-th item."""
    sampler = make(cls, N, **schedule(cls, every))
    start = warmup
    if resume is not None:
        sampler.load_state_dict(roundtrip(resume["sampler"]))
        start = resume["epoch"]
    items: list[tuple[int, int]] = []
    valued: list[int] = []
    for epoch in range(start, warmup + epochs):
        if sampler.needs_update(epoch):
            value(sampler, valuation(cls, N, seed=epoch))  # a "model" that changes every epoch
            valued.append(epoch)
        sampler.set_epoch(epoch)
        assert not sampler.needs_update(epoch) and sampler.values_epoch <= epoch
        for consumed, item in enumerate(sampler, 1):
            items.append((epoch, item))
            if len(items) == stop:
                state = sampler.state_dict(consumed=consumed)
                return items, valued, {"epoch": epoch, "sampler": state}
    return items, valued, None


def _scheduled(warmup: int, epochs: int, every: int) -> list[int]:
    """Epochs valued: the first, then every ``every`` epochs counted from it (Eq. 9's
    floor(t/E), t counted from the first valuation)."""
    return list(range(warmup, warmup + epochs, every))


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_valuation_before_the_first_epoch_counts_for_it(cls):
    sampler = make(cls, N, **schedule(cls, 5))
    assert sampler.needs_update(5)
    value(sampler, valuation(cls, N))
    sampler.set_epoch(5)
    assert sampler.values_epoch == 5 and not sampler.needs_update(5)
    assert [sampler.needs_update(t) for t in range(5, 11)] == [False] * 5 + [True]
    if cls is not SMVSampler:
        assert sampler.scores_epoch == 5


def test_learned_sampler_after_a_five_epoch_warm_up_next_scores_at_epoch_10():
    _, valued, _ = _run(LearnedBalanceSampler, warmup=5, epochs=7, every=5)
    assert valued == [5, 10]


@pytest.mark.parametrize("cls", SAMPLERS)
def test_the_schedule_counts_from_the_first_valuation(cls):
    _, valued, _ = _run(cls, warmup=3, epochs=11, every=5)
    assert valued == [3, 8, 13]
    sampler = make(cls, N, **schedule(cls, 5))
    value(sampler, valuation(cls, N))
    sampler.set_epoch(3)
    assert sampler.schedule_start == 3
    assert [sampler.needs_update(t) for t in range(3, 9)] == [False] * 5 + [True]


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_state_from_before_the_anchored_schedule_counts_from_epoch_0(cls):
    sampler = make(cls, N, **schedule(cls, 5))
    value(sampler, valuation(cls, N))
    sampler.set_epoch(3)
    state = sampler.state_dict()
    del state["valuations"], state["schedule_start"]  # as 0.2.0 wrote it
    fresh = make(cls, N, **schedule(cls, 5))
    fresh.load_state_dict(state)
    assert fresh.schedule_start == 0 and fresh.needs_update(5)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_stop_inside_the_first_epoch_after_warm_up_resumes_exactly(cls):
    full, valued, _ = _run(cls, warmup=5, epochs=4, every=5)
    crashed, _, checkpoint = _run(cls, warmup=5, epochs=4, every=5, stop=7)
    assert checkpoint is not None and checkpoint["sampler"]["scores_epoch"] == 5
    resumed, revalued, _ = _run(cls, warmup=5, epochs=4, every=5, resume=checkpoint)
    assert revalued == [] and valued == [5]
    assert crashed + resumed == full


@settings(max_examples=25, deadline=None)
@given(
    cls=st.sampled_from(SAMPLERS),
    warmup=st.integers(0, 7),
    every=st.integers(1, 5),
    data=st.data(),
)
def test_the_loop_from_any_first_epoch_keeps_its_schedule_and_resumes_exactly(
    cls, warmup, every, data
):
    full, valued, _ = _run(cls, warmup=warmup, epochs=4, every=every)
    assert valued == _scheduled(warmup, 4, every)
    stop = data.draw(st.integers(1, len(full) - 1), label="stop")
    crashed, _, checkpoint = _run(cls, warmup=warmup, epochs=4, every=every, stop=stop)
    assert checkpoint is not None
    resumed, revalued, _ = _run(cls, warmup=warmup, epochs=4, every=every, resume=checkpoint)
    assert crashed + resumed == full
    assert revalued == [t for t in valued if t > checkpoint["epoch"]]


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_valuation_of_an_iterated_epoch_still_counts_for_that_epoch(cls):
    """What item 1 does not change: an epoch that was drawn keeps its valuation's epoch, so a
    re-valuation scheduled at a skipped epoch stays due (issue 17)."""
    sampler = make(cls, N, **schedule(cls, 5))
    value(sampler, valuation(cls, N))
    list(sampler)
    sampler.set_epoch(7)
    assert sampler.values_epoch == 0 and sampler.needs_update(7)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_drawn_order_counts_as_a_started_epoch(cls):
    """``epoch_indices()`` draws the epoch's order as ``iter()`` does: a loop that reads the
    orders that way must not slide its valuation forward to every later epoch."""
    sampler = make(cls, N, **schedule(cls, 2))
    value(sampler, valuation(cls, N))
    for epoch in range(3):
        sampler.set_epoch(epoch)
        sampler.epoch_indices()
    assert sampler.values_epoch == 0 and sampler.needs_update(2)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_state_saved_before_the_first_epoch_moves_with_the_next_set_epoch(cls):
    """A checkpoint taken after valuing but before ``set_epoch`` resumes as the run it came from
    (also when torchdata restores it after the ``set_epoch``)."""
    sampler = make(cls, N, **schedule(cls, 5))
    value(sampler, valuation(cls, N))
    state = roundtrip(sampler.state_dict())
    sampler.set_epoch(5)
    order = list(sampler)
    before = make(cls, N, **schedule(cls, 5))
    before.load_state_dict(state)
    before.set_epoch(5)
    after = make(cls, N, **schedule(cls, 5))
    after.set_epoch(5)
    after.load_state_dict(state)  # a restore never undoes a later set_epoch
    for other in (before, after):
        assert (other.epoch, other.values_epoch) == (5, 5) and not other.needs_update(5)
        assert list(other) == order


@pytest.mark.parametrize("cls", BSS_SAMPLERS)
@pytest.mark.parametrize(("batch_size", "workers", "stop"), [(1, 0, 7), (3, 2, 4)])
def test_the_readme_loop_after_a_warm_up_resumes_exactly_with_a_model(
    cls, batch_size, workers, stop
):
    """The issue's case: 30 samples, epochs 0-4 in random order, the README's loop from epoch 5
    with ``update_scores`` of the trained model; stopped inside epoch 5 and resumed in a fresh
    model, optimiser and sampler: the same steps, weights and scores, no second scoring."""
    config = {"n": 30, "batch_size": batch_size, "workers": workers, "epochs": 9, "warmup": 5}
    config.update(schedule(cls, 5))
    full = train(cls, **config)
    assert full.updates == [5]
    crashed = train(cls, **config, stop_at=stop)
    assert crashed.checkpoint is not None and crashed.checkpoint["epoch"] == 5
    assert crashed.checkpoint["sampler"]["scores_epoch"] == 5
    resumed = train(cls, **config, resume=roundtrip(crashed.checkpoint))
    assert resumed.updates == [] and crashed.steps + resumed.steps == full.steps
    assert all(torch.equal(full.weights[k], resumed.weights[k]) for k in full.weights)
    assert torch.equal(full.scores, resumed.scores)
