"""The sampler contract in the loops people write: resume with workers, re-scoring epochs,
independent iterators, scores or epochs changed mid-epoch, process-group defaults, misuse.

Each test is one way a run could silently train on the wrong samples.
"""

from __future__ import annotations

import importlib.util
import math
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler, _dist
from bss_sampler.ordering import shard

from .readme_loop import roundtrip, train
from .sampler_cases import (
    BSS_SAMPLERS,
    IDS,
    SAMPLERS,
    make,
    newest,
    schedule,
    scored,
    valuation,
    value,
)

SLOW = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# -- 1. a plain DataLoader with workers: the loop counts what it consumed ------------------------
@SLOW
@given(
    cls=st.sampled_from(SAMPLERS),
    n=st.integers(5, 90),
    batch_size=st.integers(1, 9),
    workers=st.sampled_from([0, 2]),
    replicas=st.integers(1, 3),
    data=st.data(),
)
def test_resume_with_workers_loses_and_repeats_nothing(cls, n, batch_size, workers, replicas, data):
    rank = data.draw(st.integers(0, replicas - 1), label="rank")
    epoch = data.draw(st.integers(0, 4), label="epoch")
    sampler = scored(cls, n, num_replicas=replicas, rank=rank)
    sampler.set_epoch(epoch)
    loader = DataLoader(IDS, batch_size=batch_size, sampler=sampler, num_workers=workers)
    batches = len(loader)
    stop = data.draw(st.integers(0, batches), label="stop")
    consumed, seen, state = 0, [], None
    for step, batch in enumerate(loader):
        if step == stop:
            state = roundtrip(sampler.state_dict(consumed=consumed))
        seen.append(batch.tolist())
        consumed += len(batch)
    if state is None:  # checkpoint after the last batch
        state = roundtrip(sampler.state_dict(consumed=consumed))
    assert [i for b in seen for i in b] == sampler.epoch_indices().tolist()

    fresh = make(cls, n, num_replicas=replicas, rank=rank)
    fresh.load_state_dict(state)
    fresh.set_epoch(epoch)  # the loop's call for the resumed epoch keeps the position
    rest = [b.tolist() for b in DataLoader(IDS, batch_size=batch_size, sampler=fresh)]
    assert [i for b in rest for i in b] == [i for b in seen[stop:] for i in b]


def test_the_samplers_own_count_runs_ahead_with_workers():
    """Why `consumed` exists: with workers the sampler has handed out prefetched indices."""
    sampler = scored(LearnedBalanceSampler, 400)
    loader = DataLoader(range(400), batch_size=32, sampler=sampler, num_workers=2)
    batches = iter(loader)
    for _ in range(3):
        next(batches)
    assert sampler.state_dict()["yielded"] > 96 == sampler.state_dict(consumed=96)["yielded"]
    del batches


def test_consumed_is_checked():
    sampler = scored(LearnedBalanceSampler, 10, num_replicas=2, rank=0)
    it = iter(sampler)
    next(it)
    with pytest.raises(ValueError, match=r"consumed must lie in \[0, 5\] .* got 6"):
        sampler.state_dict(consumed=6)
    with pytest.raises(ValueError, match="consumed must be an int >= 0, got -1"):
        sampler.state_dict(consumed=-1)
    assert sampler.state_dict(consumed=np.int64(2))["yielded"] == 2


# -- 2. the README loop, resumed in a fresh process from a checkpoint at any step ---------------
@SLOW
@given(
    cls=st.sampled_from(BSS_SAMPLERS),
    n=st.integers(6, 30),
    batch_size=st.integers(2, 7),
    every=st.integers(1, 3),
    workers=st.sampled_from([0, 2]),
    data=st.data(),
)
def test_readme_loop_resumes_exactly_from_any_step(cls, n, batch_size, every, workers, data):
    schedule = {"update_every": every} if cls is LearnedBalanceSampler else {"rescore_every": every}
    config = {"n": n, "batch_size": batch_size, "workers": workers, "epochs": 4, **schedule}
    full = train(cls, **config)
    stop = data.draw(st.integers(1, len(full.steps) - 1), label="stop")
    crashed = train(cls, **config, stop_at=stop)
    assert crashed.steps == full.steps[:stop]
    resumed = train(cls, **config, resume=roundtrip(crashed.checkpoint))
    assert crashed.steps + resumed.steps == full.steps  # each step: (epoch, indices)
    assert all(torch.equal(full.weights[k], resumed.weights[k]) for k in full.weights)
    assert torch.equal(full.scores, resumed.scores)


def test_a_rescoring_epoch_is_not_scored_twice_after_a_resume():
    """E=2: a checkpoint inside epoch 2 must not take a second EMA step when resumed."""
    config = {"n": 20, "batch_size": 4, "workers": 0, "epochs": 3, "update_every": 2}
    full = train(LearnedBalanceSampler, **config)
    stop = next(i for i, (epoch, _) in enumerate(full.steps) if epoch == 2) + 2
    crashed = train(LearnedBalanceSampler, **config, stop_at=stop)
    assert crashed.checkpoint["epoch"] == 2 and crashed.checkpoint["sampler"]["scores_epoch"] == 2
    resumed = train(LearnedBalanceSampler, **config, resume=roundtrip(crashed.checkpoint))
    assert resumed.updates == [] and crashed.steps + resumed.steps == full.steps


# -- 3. iterators are independent ---------------------------------------------------------------
@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_second_iterator_moves_neither_the_first_nor_the_position(cls):
    sampler = scored(cls, 40, lambda0=1.0)
    want = sampler.epoch_indices().tolist()
    loader_pass = iter(sampler)
    head = [next(loader_pass) for _ in range(7)]
    peek = iter(sampler)  # a logging hook looking at the order
    assert next(peek) == want[0]
    assert sampler.state_dict()["yielded"] == 7
    assert list(peek) == want[1:]
    assert sampler.state_dict()["yielded"] == 7
    sampler.set_epoch(1)  # even another epoch: the running pass keeps its own order
    assert head + list(loader_pass) == want


def test_an_earlier_iterator_read_to_its_end_does_not_hide_the_loaders():
    """Lightning iterates a reloaded loader twice per epoch; with workers the first iterator's
    indices may all be dispatched while it is still referenced. The loader's pass counts."""
    sampler = scored(LearnedBalanceSampler, 12)
    stale = iter(sampler)
    assert len(list(zip(range(12), stale))) == 12  # read to the end, never told it is over
    loader_pass = iter(sampler)
    for _ in range(5):
        next(loader_pass)
    assert sampler.state_dict()["yielded"] == 5
    fresh = make(LearnedBalanceSampler, 12)
    fresh.load_state_dict(sampler.state_dict())
    assert list(fresh) == list(loader_pass)


def test_each_iterator_has_its_own_state_which_torchdata_restores():
    """torchdata's StatefulDataLoader saves the state of the iterator it draws from: with an
    older iterator still alive (Lightning's reloaded loaders), that one says where the loader was."""
    sampler = scored(LearnedBalanceSampler, 12)
    want = sampler.epoch_indices().tolist()
    stale = iter(sampler)
    for _ in range(9):
        next(stale)
    loader_pass = iter(sampler)
    for _ in range(4):
        next(loader_pass)
    assert sampler.state_dict()["yielded"] == 9  # the oldest live iterator
    state = {"sampler": sampler.state_dict(), "iterator": loader_pass.state_dict()}
    assert state["iterator"] == {"epoch": 0, "yielded": 4}
    fresh = make(LearnedBalanceSampler, 12)
    fresh.load_state_dict(state["sampler"])
    resumed = iter(fresh)
    resumed.load_state_dict(state["iterator"])
    assert list(resumed) == want[4:] and fresh.remaining == 12
    with pytest.warns(UserWarning, match="a second time"):
        again = iter(fresh)
    again.load_state_dict({"epoch": 3, "yielded": 7})  # another epoch's: changes nothing
    assert next(again) == want[0]
    with pytest.raises(ValueError, match="loaded before its first index, not after"):
        again.load_state_dict({"epoch": 0, "yielded": 7})
    with pytest.raises(ValueError, match=r"yielded'\] must lie in \[0, 12\] for epoch 0, got 13"):
        iter(fresh).load_state_dict({"epoch": 0, "yielded": 13})


def test_a_live_iterator_keeps_its_epoch_across_chunk_boundaries():
    n = 70_000
    sampler = LearnedBalanceSampler(range(n))
    sampler.set_scores(torch.zeros(n))
    first = iter(sampler)
    got = [next(first) for _ in range(60_000)]
    sampler.set_epoch(1)
    other = iter(sampler)
    next(other)
    got.extend(first)
    assert len(got) == n and len(set(got)) == n
    sampler.set_epoch(0)
    assert got == sampler.epoch_indices().tolist()


# -- 4. scores or epoch changed while an epoch runs ---------------------------------------------
@pytest.mark.parametrize("cls", SAMPLERS)
def test_new_scores_mid_epoch_apply_from_the_next_epoch(cls):
    sampler = scored(cls, 20, seed=1)
    sampler.set_epoch(1)
    want = sampler.epoch_indices().tolist()
    it = iter(sampler)
    head = [next(it) for _ in range(4)]
    used = value(sampler, valuation(cls, 20, seed=7))
    assert torch.equal(newest(sampler), used) and sampler.needs_update(1) is False
    state = roundtrip(sampler.state_dict())
    sampler.set_epoch(1)  # the current epoch again: a no-op, the position stays
    assert sampler.state_dict()["yielded"] == 4
    rest = list(it)
    assert head + rest == want
    fresh = make(cls, 20)
    fresh.load_state_dict(state)
    assert list(fresh) == rest  # the resumed epoch keeps the order it started with
    reference = make(cls, 20)
    value(reference, used)
    for s in (fresh, sampler, reference):
        s.set_epoch(2)
    assert list(fresh) == list(sampler) == list(reference)


@pytest.mark.parametrize("cls", BSS_SAMPLERS)
def test_update_scores_mid_epoch_keeps_the_running_order(cls, model, dataset):
    sampler = cls(dataset)
    score_loader = DataLoader(dataset, batch_size=8)
    sampler.update_scores(model, score_loader, progress=False)
    want = sampler.epoch_indices().tolist()
    it = iter(DataLoader(dataset, batch_size=4, sampler=sampler))
    got = next(it)["index"].tolist()
    torch.nn.init.normal_(model.head.weight)
    sampler.update_scores(model, score_loader, progress=False)
    got += [i for batch in it for i in batch["index"].tolist()]
    assert got == want and sampler.scores_epoch == 1


def test_learned_ema_counts_each_update_once_across_epochs():
    sampler = LearnedBalanceSampler(range(3))
    a, b = torch.tensor([1.0, 0.0, -1.0]), torch.tensor([0.0, 1.0, 0.0])
    sampler.set_scores(a)
    it = iter(sampler)
    next(it)
    assert torch.allclose(sampler.set_scores(b), 0.4 * a + 0.6 * b)  # pending for epoch 1
    assert torch.allclose(sampler.sampling_probabilities(), torch.softmax(a, 0))
    sampler.set_epoch(1)
    assert torch.allclose(sampler.sampling_probabilities(), torch.softmax(0.4 * a + 0.6 * b, 0))
    state = sampler.state_dict()
    assert state["num_updates"] == 2 and "next_scores" not in state


# -- 5. under a process group the default shards by it -------------------------------------------
@pytest.fixture
def two_ranks(monkeypatch):
    """Pretend this process is rank 1 of an initialised 2-process group."""
    monkeypatch.setattr(_dist, "is_initialized", lambda: True)
    monkeypatch.setattr(_dist, "is_distributed", lambda: True)
    monkeypatch.setattr(_dist, "world_size", lambda: 2)
    monkeypatch.setattr(_dist, "rank", lambda: 1)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_process_group_default_shards_like_distributed_sampler(cls, two_ranks):
    default = make(cls, 100)
    assert (default.num_replicas, default.rank) == (2, 1)
    assert (make(cls, 100, rank=0).num_replicas, make(cls, 100, num_replicas=4).rank) == (2, 1)
    whole = make(cls, 100, global_order=True)
    assert (whole.num_replicas, whole.rank) == (1, 0)
    for s in (default, whole):
        value(s, valuation(cls, 100))
    padded = shard(whole.epoch_indices(), 2, 1, False)  # DistributedSampler's padding
    assert default.epoch_indices().tolist() == padded.tolist()
    with pytest.raises(ValueError, match="global_order=True .* got num_replicas=2, rank=None"):
        make(cls, 100, global_order=True, num_replicas=2)


def test_without_a_process_group_the_default_is_the_whole_order():
    sampler = make(LearnedBalanceSampler, 10)
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (1, 0, 10)
    with pytest.raises(ValueError, match="num_replicas and rank must be given together"):
        make(LearnedBalanceSampler, 10, rank=1)


# -- 6. a forgotten set_epoch warns ---------------------------------------------------------------
@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_second_pass_over_the_same_epoch_warns_once(cls):
    sampler = scored(cls, 20)
    first = list(sampler)
    with pytest.warns(UserWarning, match=r"yields epoch 0 a second time.*set_epoch\(epoch\)"):
        again = list(sampler)
    assert again == first
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(sampler)  # once per sampler
        sampler.set_epoch(1)
        list(sampler)
    assert "set_epoch" in (cls.__doc__ or "")


# -- 7. epoch sizes of a schedule ahead of time ---------------------------------------------------
def test_heuristic_schedule_sizes_ahead_of_time():
    sampler = HeuristicCurriculumSampler(range(1000))
    lengths = [sampler.epoch_length(t) for t in range(50)]
    assert lengths[0] == 100 and lengths[-1] == 1000 and sum(lengths) == 36_434
    assert sampler.total_batches(50, 64) == sum(math.ceil(n / 64) for n in lengths)
    sharded = HeuristicCurriculumSampler(range(1000), num_replicas=3, rank=2)
    assert sharded.epoch_length(0) == 34 and len(sharded) == 34


def test_heuristic_epoch_smaller_than_a_batch_warns():
    sampler = HeuristicCurriculumSampler(range(600))
    with pytest.warns(UserWarning, match=r"epochs \[0\] .*60 in epoch 0.* batch_size=64"):
        total = sampler.total_batches(50, 64, drop_last=True)
    assert total == sum(sampler.epoch_length(t) // 64 for t in range(50))


# -- 9. misuse is refused by name, PyTorch's scalar types are accepted ----------------------------
@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (
            HeuristicCurriculumSampler,
            {"lambda0": True},
            r"lambda0 must be a real number in \(0, 1\], got True \(bool\)",
        ),
        (HeuristicCurriculumSampler, {"t_grow": True}, "t_grow must be a positive number"),
        (HeuristicCurriculumSampler, {"rescore_every": 2.0}, "rescore_every must be an int"),
        (
            LearnedBalanceSampler,
            {"beta": True},
            r"beta must be a real number in \[0, 1\], got True \(bool\)",
        ),
        (LearnedBalanceSampler, {"temperature": True}, "temperature must be a positive finite"),
        (LearnedBalanceSampler, {"update_every": True}, "update_every must be an int >= 1"),
        (LearnedBalanceSampler, {"drop_last": "no"}, "drop_last must be True or False, got 'no'"),
        (LearnedBalanceSampler, {"global_order": 1}, "global_order must be True or False, got 1"),
        (LearnedBalanceSampler, {"seed": True}, "seed must be an int, got True"),
        (LearnedBalanceSampler, {"num_replicas": 2, "rank": True}, "rank must be an int"),
        (LearnedBalanceSampler, {"beta": float("nan")}, r"beta must lie in \[0, 1\], got nan"),
    ],
)
def test_bad_arguments_are_named(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(range(4), **kwargs)


def test_numpy_and_tensor_scalars_are_accepted():
    h = HeuristicCurriculumSampler(range(10), lambda0=np.float32(0.5), t_grow=np.int64(4))
    s = LearnedBalanceSampler(
        range(10), seed=np.int64(3), beta=torch.tensor(0.5), num_replicas=np.int64(2), rank=0
    )
    assert (h.lambda0, s.seed, s.beta, s.num_replicas) == (0.5, 3, 0.5, 2)
    s.set_scores(np.zeros(10, dtype=np.float32))
    s.set_epoch(np.int64(2))
    assert s.epoch == 2 and isinstance(s.epoch, int)
    assert isinstance(s.state_dict()["epoch"], int)


@pytest.mark.parametrize("cls", BSS_SAMPLERS)
def test_bad_scores_are_named(cls):
    s = make(cls, 3)
    with pytest.raises(
        ValueError, match="scores must be a tensor or sequence of 3 numbers, got None"
    ):
        s.set_scores(None)
    with pytest.raises(ValueError, match=r"scores must fit in float32 .* at indices \[1\]"):
        s.set_scores(torch.tensor([0.0, 1e300, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="scores must be real numbers, got dtype torch.bool"):
        s.set_scores(torch.tensor([True, False, True]))
    assert s.scores is None  # nothing was applied


# -- 10. checkpoint state ------------------------------------------------------------------------
@pytest.mark.parametrize("cls", SAMPLERS)
def test_failed_load_leaves_the_sampler_untouched(cls):
    saved = scored(cls, 20, seed=2)
    saved.set_epoch(3)
    state = saved.state_dict()
    target = scored(cls, 20, seed=5)
    before = (target.epoch, newest(target), target.state_dict())
    with pytest.raises(ValueError, match=r"state_dict\['yielded'\] must lie in"):
        target.load_state_dict({**state, "yielded": 10_000})
    with pytest.raises(ValueError, match=r"state_dict\['scores'\] must have shape \(20,"):
        target.load_state_dict({**state, "scores": torch.zeros(3)})
    assert target.epoch == before[0] and torch.equal(newest(target), before[1])
    assert str(target.state_dict()) == str(before[2])


@pytest.mark.parametrize("cls", SAMPLERS)
def test_seed_and_version_are_checked(cls):
    state = scored(cls, 10).state_dict()
    with pytest.raises(ValueError, match="saved with seed=0, this sampler has seed=4"):
        make(cls, 10, seed=4).load_state_dict(state)
    with pytest.raises(
        ValueError, match=r"state_dict\['version'\] must be one of \[1, 2\].* got 99"
    ):
        make(cls, 10).load_state_dict({**state, "version": 99})


def test_version_1_state_still_loads():
    sampler = scored(LearnedBalanceSampler, 10)
    sampler.set_epoch(2)
    it = iter(sampler)
    head = [next(it) for _ in range(3)]
    state = sampler.state_dict()
    old = {k: v for k, v in state.items() if k not in ("scores_epoch", "next_scores")}
    old["version"] = 1
    old["config"] = {k: v for k, v in state["config"].items() if k != "seed"}
    old["config"].update(num_replicas=-1, rank=-1)  # how 0.1.0 wrote the global order
    fresh = make(LearnedBalanceSampler, 10)
    fresh.load_state_dict(old)
    assert head + list(fresh) == sampler.epoch_indices().tolist()


def _another_rng(monkeypatch: pytest.MonkeyPatch) -> None:
    """Draw every epoch's order from other random numbers, as another torch version may."""
    monkeypatch.setattr(
        "bss_sampler.core.epoch_generator",
        lambda seed, epoch: torch.Generator().manual_seed(10_007 * seed + epoch + 1),
    )


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("num_replicas, saved_rank, rank", [(1, 0, 0), (2, 0, 1), (2, 1, 1)])
def test_a_mid_epoch_state_whose_order_is_not_regenerated_is_refused(
    cls, num_replicas, saved_rank, rank, monkeypatch
):
    # The rest of an epoch is found by regenerating its order: another order (torch's random
    # numbers changed between the torch that saved and the one that loads) would repeat some
    # samples and never yield others, silently.
    sampler = scored(cls, 40, num_replicas=num_replicas, rank=saved_rank, lambda0=1.0)
    sampler.set_epoch(1)
    it = iter(sampler)
    for _ in range(5):
        next(it)
    state = sampler.state_dict()
    assert state["torch"] == str(torch.__version__)
    target = make(cls, 40, num_replicas=num_replicas, rank=rank, lambda0=1.0)
    target.load_state_dict(state)  # the same torch: accepted
    _another_rng(monkeypatch)
    fresh = make(cls, 40, num_replicas=num_replicas, rank=rank, lambda0=1.0)
    with pytest.raises(
        ValueError,
        match=rf"saved 5 indices into epoch 1 \(rank {saved_rank}\), but the order regenerated "
        r"here .* differs .* would repeat some samples .* torch version",
    ):
        fresh.load_state_dict(state)
    assert fresh.epoch == 0 and newest(fresh) is None  # all or nothing
    fresh.load_state_dict({**state, "yielded": 0})  # the remedy the message names
    assert len(list(fresh)) == len(fresh)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_state_between_epochs_does_not_depend_on_the_order(cls, monkeypatch):
    sampler = scored(cls, 30, lambda0=1.0)
    sampler.set_epoch(0)
    list(sampler)
    ended = sampler.state_dict()  # the epoch ended: the next one starts from its beginning
    sampler.set_epoch(1)
    fresh = sampler.state_dict()  # not started
    assert "order_head" not in ended and "order_head" not in fresh
    _another_rng(monkeypatch)
    for state in (ended, fresh):
        make(cls, 30, lambda0=1.0).load_state_dict(state)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_restored_sampler_saves_the_order_check_again(cls):
    sampler = scored(cls, 30, lambda0=1.0)
    it = iter(sampler)
    next(it), next(it)
    state = sampler.state_dict()
    again = make(cls, 30, lambda0=1.0)
    again.load_state_dict(state)
    assert torch.equal(again.state_dict()["order_head"], state["order_head"])


def test_two_lambda_pacings_are_told_apart():
    a = HeuristicCurriculumSampler(range(50), pacing=lambda t: 0.2)
    b = HeuristicCurriculumSampler(range(50), pacing=lambda t: 0.6)
    assert a.pacing.__qualname__ == b.pacing.__qualname__
    a.set_scores(torch.zeros(50))
    with pytest.raises(
        ValueError, match="saved with a pacing callable giving 10 samples at epoch 0"
    ):
        b.load_state_dict(a.state_dict())
    same = HeuristicCurriculumSampler(range(50), pacing=lambda t: 0.2)
    same.load_state_dict(a.state_dict())


@pytest.mark.parametrize("cls", SAMPLERS)
def test_an_iterated_sampler_pickles_and_resumes(cls):
    sampler = scored(cls, 30, lambda0=1.0)
    it = iter(sampler)
    head = [next(it) for _ in range(11)]
    copy = pickle.loads(pickle.dumps(sampler))
    assert (len(copy), copy.remaining) == (len(sampler), len(sampler) - 11)
    assert head + list(copy) == sampler.epoch_indices().tolist() == head + list(it)


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("workers", [0, 2])
def test_len_stays_the_whole_epoch_through_a_resumed_pass(cls, workers):
    """Issue 17 item 2: len() is fixed for an epoch (as torch's and torchdata's samplers), before,
    during and after a resumed pass; `remaining` is what that pass has left."""
    sampler = scored(cls, 40, lambda0=1.0)
    whole = len(sampler)  # 40, plus SMV's copies
    loader = DataLoader(IDS, batch_size=6, sampler=sampler)
    batches = iter(loader)
    next(batches), next(batches)
    fresh = make(cls, 40, lambda0=1.0)
    fresh.load_state_dict(sampler.state_dict())
    assert fresh.remaining == whole - 12
    resumed = DataLoader(IDS, batch_size=6, sampler=fresh, num_workers=workers)
    lengths, got = [len(resumed)], []
    for batch in resumed:
        lengths.append(len(resumed))
        got += batch.tolist()
    lengths.append(len(resumed))
    assert set(lengths) == {math.ceil(whole / 6)} and len(fresh) == whole
    assert got == sampler.epoch_indices().tolist()[12:]


# -- issue 17, round two -------------------------------------------------------------------------
@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_restore_never_undoes_a_later_set_epoch(cls):
    """Item 5: torchdata's loader restores the sampler at ``iter()``, after ``set_epoch``."""
    sampler = scored(cls, 30)
    sampler.set_epoch(3)
    list(sampler)
    state = sampler.state_dict()  # epoch 3 finished
    resumed = make(cls, 30)
    resumed.set_epoch(4)
    resumed.load_state_dict(state)
    reference = scored(cls, 30)
    reference.set_epoch(4)
    assert resumed.epoch == 4 and list(resumed) == reference.epoch_indices().tolist()
    same = make(cls, 30)  # set_epoch to the state's own epoch keeps its position
    same.set_epoch(3)
    same.load_state_dict(state)
    assert (same.epoch, list(same)) == (3, [])


def _due(scores_epoch, epoch, every):
    """Oracle: some scheduled epoch s (a multiple of ``every``) with scores_epoch < s <= epoch."""
    return any(s % every == 0 for s in range(scores_epoch + 1, epoch + 1))


@SLOW
@given(
    cls=st.sampled_from(SAMPLERS),
    every=st.integers(1, 6),
    epochs=st.lists(st.integers(1, 4), min_size=1, max_size=8),
)
def test_needs_update_keeps_a_skipped_rescoring_due(cls, every, epochs):
    """Item 6: a re-scoring scheduled at a skipped epoch is still due at the next epoch run."""
    sampler = make(cls, 12, **schedule(cls, every))
    epoch, scored_at = 0, None
    for step in [0, *epochs]:  # epoch increments: skips of 0-3 epochs
        epoch += step
        want = scored_at is None or _due(scored_at, epoch, every)
        assert sampler.needs_update(epoch) == want, (epoch, scored_at)
        if want:
            value(sampler, valuation(cls, 12, seed=epoch))
            scored_at = epoch
        sampler.set_epoch(epoch)
        list(sampler)
        assert not sampler.needs_update(epoch)


def test_needs_update_after_epochs_0_to_3_then_7():
    sampler = scored(LearnedBalanceSampler, 10)  # update_every=5
    for epoch in range(4):
        sampler.set_epoch(epoch)
        list(sampler)
    assert sampler.needs_update(7)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_checkpoints_refuse_what_set_scores_refuses(cls):
    """Item 8: NaN or inf scores inside a checkpoint are refused at load, as by set_scores."""
    state = scored(cls, 10).state_dict()
    for bad in (float("nan"), float("inf")):
        broken = {**state, "scores": state["scores"].index_fill(0, torch.tensor([3]), bad)}
        with pytest.raises(ValueError, match=r"state_dict\['scores'\] must be finite.*\[3\]"):
            make(cls, 10).load_state_dict(broken)


@pytest.mark.parametrize("cls", BSS_SAMPLERS)
def test_an_old_checkpoints_scoring_settings_are_never_silent(cls):
    """Item 8 with issue 18: a sampler state holds only order state now; one written by 0.1.0
    still carries alpha, criteria and train_mode, and where they differ from update_scores'
    defaults loading says so and where they go."""
    state = scored(cls, 10).state_dict()
    assert not {"alpha", "criteria", "train_mode"} & set(state["config"])
    old = {**state, "config": {**state["config"], "alpha": 0.2, "criteria": "similarity,loss"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(cls, 10).load_state_dict({**old, "config": {**old["config"], "train_mode": False}})
    official = {**old, "config": {**old["config"], "train_mode": True}}
    with pytest.warns(
        UserWarning,
        match=r"scored with train_mode=True; .* sampler\.update_scores\(model, loader, "
        r"train_mode=True\)",
    ):
        make(cls, 10).load_state_dict(official)


def test_a_version_1_checkpoint_averages_its_next_update():
    """Item 8: a version-1 state has no ``num_updates``; its scores count as one update."""
    sampler = scored(LearnedBalanceSampler, 10)
    state = {**sampler.state_dict(), "version": 1}
    del state["num_updates"]
    resumed = make(LearnedBalanceSampler, 10)
    resumed.load_state_dict(state)
    new = torch.rand(10)
    assert torch.allclose(resumed.set_scores(new), 0.4 * state["scores"] + 0.6 * new)
    assert resumed.num_updates == 2


def _pacing_in_module(tmp_path, module):
    path = tmp_path / f"{module}.py"
    path.write_text("def pace(t):\n    return min(1.0, 0.2 + 0.1 * t)\n")
    spec = importlib.util.spec_from_file_location(module, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded.pace


def test_a_pacing_callable_is_not_identified_by_its_module(tmp_path):
    """Item 8: a script run as ``__main__`` and later imported keeps its checkpoints; a real
    mismatch names one epoch, not 128 sizes."""
    as_script = HeuristicCurriculumSampler(
        range(50), pacing=_pacing_in_module(tmp_path, "__main__")
    )
    as_script.set_scores(torch.rand(50))
    imported = HeuristicCurriculumSampler(range(50), pacing=_pacing_in_module(tmp_path, "train"))
    imported.load_state_dict(as_script.state_dict())
    other = HeuristicCurriculumSampler(range(50), pacing=lambda t: min(1.0, 0.2 + 0.2 * t))
    with pytest.raises(ValueError) as error:
        other.load_state_dict(as_script.state_dict())
    assert str(error.value) == (
        "state_dict was saved with a pacing callable giving 15 samples at epoch 1, this "
        "sampler's pacing gives 20"
    )


@pytest.mark.parametrize("order", ["balanced_first", "imbalanced_first"])
def test_linear_probabilities_refuse_scores_on_arrival(order):
    """Item 9: refused at set_scores and load_state_dict, not at iter()."""
    sampler = LearnedBalanceSampler(range(3), probabilities="linear", order=order)
    bad = torch.tensor([-1.5, 0.0, 1.5])
    bound = "< 1.01" if order == "imbalanced_first" else "> -1.01"
    with pytest.raises(ValueError, match=f"needs scores {re.escape(bound)}"):
        sampler.set_scores(bad)
    assert sampler.scores is None and sampler.num_updates == 0
    state = {**LearnedBalanceSampler(range(3)).state_dict(), "scores": bad, "num_updates": 1}
    state["config"] = {**state["config"], "probabilities": "linear", "order": order}
    with pytest.raises(ValueError, match=rf"needs state_dict\['scores'\] {re.escape(bound)}"):
        sampler.load_state_dict(state)


@pytest.mark.parametrize("value", [0.0, float("nan"), 1.5, -0.1])
def test_a_pacing_callable_is_checked_over_the_schedule_at_construction(value):
    """Item 9: a value reached only at epoch 30 is refused when the sampler is built."""
    with pytest.raises(ValueError, match=r"pacing\(30\) must return a fraction in \(0, 1\]"):
        HeuristicCurriculumSampler(range(10), pacing=lambda t: value if t == 30 else 0.5)
