from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler, score_dataset
from bss_sampler.pacing import root_pacing

from .sampler_cases import BSS_SAMPLERS as SAMPLERS

N = 50
SCORES = torch.linspace(-1, 1, N)[torch.randperm(N, generator=torch.Generator().manual_seed(0))]


def make(cls, **kwargs):
    if cls is HeuristicCurriculumSampler:
        kwargs.setdefault("lambda0", 0.3)
        kwargs.setdefault("t_grow", 5)
    sampler = cls(range(N), **kwargs)
    sampler.set_scores(SCORES)
    return sampler


# -- heuristic ----------------------------------------------------------------------------------
@pytest.mark.parametrize("epoch", [0, 1, 3, 7, 40])
def test_heuristic_subset_is_top_ranked(epoch):
    s = HeuristicCurriculumSampler(range(N))
    s.set_scores(SCORES)
    s.set_epoch(epoch)
    count = max(1, math.floor(N * root_pacing(epoch, lambda0=0.1, t_grow=40)))
    got = list(s)
    assert len(got) == len(s) == count
    assert set(got) == set(torch.argsort(SCORES, descending=True)[:count].tolist())


def test_heuristic_imbalanced_first_and_callable_pacing():
    s = HeuristicCurriculumSampler(range(N), order="imbalanced_first", pacing=lambda t: 0.1)
    s.set_scores(SCORES)
    assert set(s) == set(torch.argsort(SCORES)[:5].tolist())


def test_heuristic_at_least_one_sample():
    s = HeuristicCurriculumSampler(range(3), lambda0=0.1)
    s.set_scores(torch.tensor([0.0, 1.0, 0.5]))
    assert list(s) == [1]


def test_heuristic_official_preset_paces_at_epoch_plus_one():
    paper = make(HeuristicCurriculumSampler)
    official = make(HeuristicCurriculumSampler, preset="official")
    official.set_epoch(2)
    paper.set_epoch(3)
    assert len(official) == len(paper) > len(make(HeuristicCurriculumSampler))
    assert official.train_mode and not paper.train_mode


def test_heuristic_order_is_shuffled_per_epoch_and_seed():
    s = make(HeuristicCurriculumSampler, lambda0=1.0)
    first = list(s)
    assert s.epoch_indices().tolist() == first  # same epoch, same order
    s.set_epoch(1)
    second = list(s)
    assert second != first and sorted(second) == sorted(first)
    assert list(make(HeuristicCurriculumSampler, lambda0=1.0, seed=1)) != first


def test_heuristic_rescoring_schedule():
    assert not make(HeuristicCurriculumSampler).needs_update(5)
    assert HeuristicCurriculumSampler(range(N)).needs_update(0)  # no scores yet
    s = make(HeuristicCurriculumSampler, rescore_every=5)  # scored for epoch 0 already
    # epoch 5's re-scoring stays due until it happens, also when epoch 5 is skipped (issue 17)
    assert [s.needs_update(t) for t in range(7)] == [False, False, False, False, False, True, True]


# -- learned ------------------------------------------------------------------------------------
def test_learned_is_a_permutation_every_epoch():
    s = make(LearnedBalanceSampler)
    orders = []
    for epoch in range(4):
        s.set_epoch(epoch)
        order = list(s)
        assert sorted(order) == list(range(N)) and len(s) == N
        orders.append(order)
    assert len({tuple(o) for o in orders}) == 4


def test_learned_first_position_frequencies_match_softmax():
    """Chi-square over many epochs: P(first = i) = softmax(s / T)_i (Eq. 10)."""
    scores = torch.tensor([1.0, 0.5, 0.0, -0.5, -1.0])
    s = LearnedBalanceSampler(range(5), temperature=0.5)
    s.set_scores(scores)
    trials = 6000
    counts = torch.zeros(5)
    for epoch in range(trials):
        s.set_epoch(epoch)
        counts[next(iter(s))] += 1
    expected = torch.softmax(scores / 0.5, 0) * trials
    assert torch.allclose(s.sampling_probabilities(), expected / trials)
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 18.47  # 0.999 quantile, 4 degrees of freedom


def test_learned_balanced_last_reverses_the_same_draw():
    first = make(LearnedBalanceSampler)
    last = make(LearnedBalanceSampler, order="balanced_last")
    assert list(last) == list(first)[::-1]


def test_learned_ema_eq9():
    s = LearnedBalanceSampler(range(3))
    a, b, c = torch.tensor([1.0, 0, -1]), torch.tensor([0.0, 1, 0]), torch.tensor([-1.0, -1, 1])
    assert torch.equal(s.set_scores(a), a)  # k = 0: s_upd = s_cur
    assert torch.allclose(s.set_scores(b), 0.4 * a + 0.6 * b)
    assert torch.allclose(s.set_scores(c), 0.4 * (0.4 * a + 0.6 * b) + 0.6 * c)
    assert s.num_updates == 3


def test_learned_presets():
    paper = LearnedBalanceSampler(range(3))
    assert (paper.beta, paper.update_every, paper.probabilities) == (0.6, 5, "softmax")
    assert [paper.needs_update(t) for t in range(6)] == [True] * 6  # no scores yet
    paper.set_scores(torch.zeros(3))
    # never re-scored: every epoch from 5 on is past a due re-scoring
    assert [paper.needs_update(t) for t in range(11)] == [False] * 5 + [True] * 6
    official = LearnedBalanceSampler(range(3), preset="official")
    assert (official.beta, official.update_every, official.probabilities) == (1.0, 1, "linear")
    assert official.train_mode
    official.set_scores(torch.tensor([1.0, 0.0, -1.0]))
    official.set_scores(torch.tensor([-1.0, 0.0, 1.0]))  # no EMA: replaced
    w = torch.tensor([0.01, 1.01, 2.01])
    assert torch.allclose(official.sampling_probabilities(), w / w.sum())
    explicit = LearnedBalanceSampler(range(3), preset="official", beta=0.5, probabilities="softmax")
    assert (explicit.beta, explicit.probabilities, explicit.update_every) == (0.5, "softmax", 1)


# -- both ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", SAMPLERS)
def test_iterating_before_scores_says_what_to_do(cls):
    with pytest.raises(RuntimeError, match=r"call sampler.update_scores\(model, loader\)"):
        iter(cls(range(4)))


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sharding_covers_epoch_disjointly(cls, replicas, drop_last):
    whole = make(cls)
    whole.set_epoch(3)
    epoch = list(whole)
    shares = []
    for rank in range(replicas):
        s = make(cls, num_replicas=replicas, rank=rank, drop_last=drop_last)
        s.set_epoch(3)
        shares.append(list(s))
        assert len(shares[-1]) == len(s)
    flat = [i for share in shares for i in share]
    if drop_last:
        assert len(flat) == len(set(flat)) == len(epoch) - len(epoch) % replicas
        assert set(flat) <= set(epoch)
    else:
        assert set(flat) == set(epoch) and len(flat) - len(epoch) < replicas
    interleaved = [shares[k % replicas][k // replicas] for k in range(len(flat))]
    assert (
        interleaved[: len(epoch) - (len(epoch) % replicas if drop_last else 0)]
        == epoch[: len(interleaved)]
    )


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("k", [0, 1, 7, 20])
def test_resume_after_k_indices(cls, k):
    s = make(cls, lambda0=1.0) if cls is HeuristicCurriculumSampler else make(cls)
    s.set_epoch(2)
    it = iter(s)
    head = [next(it) for _ in range(k)]
    state = s.state_dict()
    rest = list(it)
    fresh = cls(
        range(N), **({"lambda0": 1.0, "t_grow": 5} if cls is HeuristicCurriculumSampler else {})
    )
    fresh.load_state_dict(state)
    fresh.set_epoch(2)  # the training loop's call for the resumed epoch keeps the position
    assert fresh.remaining == len(rest) and len(fresh) == N
    assert list(fresh) == rest and head + rest == s.epoch_indices().tolist()
    fresh.set_epoch(3)
    s.set_epoch(3)
    assert list(fresh) == list(s)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_resume_through_dataloader_and_torch_save(cls, tmp_path):
    s = make(cls)
    loader = DataLoader(range(N), batch_size=4, sampler=s)
    batches = iter(loader)
    seen = [next(batches).tolist() for _ in range(3)]
    torch.save(s.state_dict(), tmp_path / "s.pt")
    rest = [b.tolist() for b in batches]
    fresh = cls(
        range(N), **({"lambda0": 0.3, "t_grow": 5} if cls is HeuristicCurriculumSampler else {})
    )
    fresh.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert [b.tolist() for b in DataLoader(range(N), batch_size=4, sampler=fresh)] == rest
    assert [i for b in seen + rest for i in b] == s.epoch_indices().tolist()


@pytest.mark.parametrize("cls", SAMPLERS)
def test_state_dict_from_another_dataset_or_config(cls):
    state = make(cls).state_dict()
    with pytest.raises(
        ValueError, match="dataset of 50 samples, this sampler's data_source has 49"
    ):
        cls(range(N - 1)).load_state_dict(state)
    other = make(cls, order="imbalanced_first")
    with pytest.raises(
        ValueError,
        match="saved with order='balanced_first', this sampler has order='imbalanced_first'",
    ):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="is from a"):
        (SAMPLERS[1] if cls is SAMPLERS[0] else SAMPLERS[0])(range(N)).load_state_dict(state)
    broken = {**state, "yielded": 10_000}
    with pytest.raises(ValueError, match=r"state_dict\['yielded'\] must lie in"):
        make(cls).load_state_dict(broken)
    with pytest.raises(KeyError, match="lacks the field 'epoch'"):
        make(cls).load_state_dict({k: v for k, v in state.items() if k != "epoch"})


@pytest.mark.parametrize("cls", SAMPLERS)
def test_update_scores_end_to_end(cls, model, dataset):
    s = cls(dataset)
    loader = DataLoader(dataset, batch_size=16)
    scores = s.update_scores(model, loader, progress=False)
    assert scores.shape == (len(dataset),) and torch.equal(scores, s.scores)
    assert scores.min() >= -1 and scores.max() <= 1
    assert len(list(DataLoader(dataset, batch_size=8, sampler=s))) == math.ceil(len(s) / 8)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (HeuristicCurriculumSampler, {"lambda0": 0.0}, r"lambda0 must lie in \(0, 1\], got 0.0"),
        (HeuristicCurriculumSampler, {"lambda0": 1.5}, r"lambda0 must lie in \(0, 1\], got 1.5"),
        (HeuristicCurriculumSampler, {"t_grow": 0}, "t_grow must be a positive number .* got 0"),
        (HeuristicCurriculumSampler, {"t_grow": -3}, "t_grow must be a positive .* got -3"),
        (HeuristicCurriculumSampler, {"pacing": "cubic"}, r"pacing must be one of .* got 'cubic'"),
        (HeuristicCurriculumSampler, {"order": "balanced_last"}, "order must be one of"),
        (HeuristicCurriculumSampler, {"rescore_every": 0}, "rescore_every must be an int >= 1"),
        (LearnedBalanceSampler, {"beta": 1.2}, r"beta must lie in \[0, 1\], got 1.2"),
        (LearnedBalanceSampler, {"beta": -0.1}, r"beta must lie in \[0, 1\], got -0.1"),
        (LearnedBalanceSampler, {"temperature": 0}, "temperature must be a positive finite .* 0"),
        (LearnedBalanceSampler, {"update_every": 0}, "update_every must be an int >= 1, got 0"),
        (LearnedBalanceSampler, {"probabilities": "exp"}, "probabilities must be one of"),
        (LearnedBalanceSampler, {"order": "imbalanced_last"}, "order must be one of"),
        (
            LearnedBalanceSampler,
            {"preset": "code"},
            r"preset must be one of \['official', 'paper'\]",
        ),
        (
            LearnedBalanceSampler,
            {"num_replicas": 2, "rank": 5},
            r"rank must lie in \[0, 1\].* got 5",
        ),
        (LearnedBalanceSampler, {"num_replicas": 2, "rank": -1}, r"rank must lie in \[0, 1\]"),
        (LearnedBalanceSampler, {"num_replicas": 0, "rank": 0}, "num_replicas must be an int >= 1"),
        (
            LearnedBalanceSampler,
            {"num_replicas": 2},
            "num_replicas and rank must be given together",
        ),
        (LearnedBalanceSampler, {"seed": 1.5}, "seed must be an int, got 1.5"),
    ],
)
def test_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(range(4), **kwargs)


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("setting", [{"alpha": 0.5}, {"criteria": ("loss",)}, {"train_mode": True}])
def test_scoring_settings_are_refused_with_where_they_go(cls, setting):
    """Issue 18: the sampler holds only its order; scoring settings go to update_scores."""
    key, name = next(iter(setting)), cls.__name__
    with pytest.raises(
        TypeError,
        match=rf"{name}\(\) no longer takes the scoring settings {key}=.*"
        rf"sampler\.update_scores\(model, loader, {key}=",
    ):
        cls(range(4), **setting)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['alhpa'\]"):
        cls(range(4), alhpa=0.5)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_update_scores_takes_the_scoring_settings(cls, model, dataset):
    loader = DataLoader(dataset, batch_size=16)
    s = cls(dataset)
    got = s.update_scores(model, loader, alpha=0.5, criteria=("loss",), progress=False)
    want = score_dataset(model, loader, len(dataset), alpha=0.5, criteria=("loss",), progress=False)
    assert torch.equal(got, want)
    official = cls(dataset, preset="official")  # the preset's scoring half: train mode
    model.train(False)
    torch.manual_seed(0)
    got = official.update_scores(model, loader, progress=False)
    torch.manual_seed(0)
    assert torch.equal(
        got, score_dataset(model, loader, len(dataset), train_mode=True, progress=False)
    )


@pytest.mark.parametrize("cls", SAMPLERS)
def test_bad_scores_and_epochs(cls):
    s = cls(range(4))
    with pytest.raises(ValueError, match=r"scores must have shape \(4,\) .* got \(3,\)"):
        s.set_scores(torch.zeros(3))
    with pytest.raises(ValueError, match=r"scores must be finite, got NaN or inf at indices \[2\]"):
        s.set_scores(torch.tensor([0.0, 1.0, float("nan"), 0.0]))
    with pytest.raises(ValueError, match="epoch must be an int >= 0, got -1"):
        s.set_epoch(-1)
    with pytest.raises(ValueError, match="data_source must hold at least one sample"):
        cls([])


def test_callable_pacing_out_of_range():
    with pytest.raises(
        ValueError, match=r"pacing\(0\) must return a fraction in \(0, 1\], got 1.5"
    ):
        HeuristicCurriculumSampler(range(4), pacing=lambda t: 1.5)


def test_linear_probabilities_need_scores_above_minus_1_01():
    s = LearnedBalanceSampler(range(2), probabilities="linear")
    with pytest.raises(ValueError, match="needs scores > -1.01"):
        s.set_scores(torch.tensor([-2.0, 0.0]))


def test_learned_sampler_beyond_multinomial_limit():
    n = 2**24 + 1
    s = LearnedBalanceSampler(range(n), num_replicas=2, rank=1)
    s.set_scores(torch.linspace(-1, 1, n))
    share = list(s)
    assert len(share) == len(s) == (n + 1) // 2
    assert len(set(share)) == len(share)


@pytest.mark.parametrize("k", [65_535, 65_536, 65_537, 150_000])
def test_resume_across_chunk_boundaries(k):
    n = 150_000
    s = LearnedBalanceSampler(range(n))
    s.set_scores(torch.zeros(n))
    it = iter(s)
    for _ in range(k):
        next(it)
    state = s.state_dict()
    assert state["yielded"] == k
    fresh = LearnedBalanceSampler(range(n))
    fresh.load_state_dict(state)
    assert list(fresh) == list(it)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_checkpoint_after_a_full_epoch_starts_the_next_one(cls):
    """The common pattern: finish epoch e, set_epoch(e + 1), save; resume yields all of e + 1."""
    s = make(cls)
    s.set_epoch(0)
    list(s)
    assert s.state_dict()["yielded"] == len(s)
    s.set_epoch(1)
    state = s.state_dict()
    assert state["yielded"] == 0
    fresh = make(cls)
    fresh.load_state_dict(state)
    assert list(fresh) == s.epoch_indices().tolist() and len(fresh) == len(s)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_checkpoint_at_the_end_of_an_epoch_resumes_to_nothing(cls):
    """Saved after the last batch and re-entered at the same epoch: nothing is trained twice."""
    s = make(cls)
    s.set_epoch(1)
    list(s)
    fresh = make(cls)
    fresh.load_state_dict(s.state_dict())
    fresh.set_epoch(1)
    assert fresh.remaining == 0 and len(fresh) == fresh.epoch_length() and list(fresh) == []
    fresh.set_epoch(2)
    s.set_epoch(2)
    assert list(fresh) == list(s)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_any_rank_resumes_from_another_ranks_state(cls):
    """Ranks advance in lockstep, so a framework may save rank 0's state for every rank."""
    r0, r1 = make(cls, num_replicas=2, rank=0), make(cls, num_replicas=2, rank=1)
    it0, it1 = iter(r0), iter(r1)
    for _ in range(3):
        next(it0), next(it1)
    fresh = make(cls, num_replicas=2, rank=1)
    fresh.load_state_dict(r0.state_dict())
    assert list(fresh) == list(it1)
    with pytest.raises(
        ValueError, match="saved with num_replicas=2, this sampler has num_replicas=3"
    ):
        make(cls, num_replicas=3, rank=1).load_state_dict(r0.state_dict())


def test_learned_imbalanced_first_is_the_released_twitter_draw():
    """The released Twitter script draws with weights 1 - s + 0.01; reading the usual draw
    backwards (``balanced_last``) is a different law (scores [-1, 0, 0, 0]: 0.98 vs 0.40)."""
    scores = torch.tensor([-1.0, 0.0, 0.0, 0.0])
    flipped = 1.01 - scores
    s = LearnedBalanceSampler(range(4), probabilities="linear", order="imbalanced_first")
    s.set_scores(scores)
    assert torch.allclose(s.sampling_probabilities(), flipped / flipped.sum())
    trials = 4000
    ours, released = torch.zeros(4), torch.zeros(4)
    g = torch.Generator().manual_seed(0)
    for epoch in range(trials):
        s.set_epoch(epoch)
        ours[next(iter(s))] += 1
        released[torch.multinomial(flipped, 4, replacement=False, generator=g)[0]] += 1
    expected = flipped / flipped.sum() * trials
    for counts in (ours, released):
        chi2 = ((counts - expected) ** 2 / expected).sum().item()
        assert chi2 < 16.27  # 0.999 quantile, 3 degrees of freedom
    backwards = LearnedBalanceSampler(range(4), probabilities="linear", order="balanced_last")
    backwards.set_scores(scores)
    firsts = []
    for epoch in range(400):
        backwards.set_epoch(epoch)
        firsts.append(next(iter(backwards)))
    assert firsts.count(0) > 360  # p 0.98: not the released law
