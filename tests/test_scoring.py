from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import (
    ConcatDataset,
    DataLoader,
    DistributedSampler,
    Subset,
    TensorDataset,
    random_split,
)

from bss_sampler import BalanceScorer, CoverageError, _dist, default_forward, score_dataset
from bss_sampler.scoring import check_once
from tests.conftest import PairDataset


def _manual_scores(model, dataset):
    scorer = BalanceScorer(len(dataset))
    model.eval()
    with torch.no_grad():
        batch = next(iter(DataLoader(dataset, batch_size=len(dataset))))
        multi, unis = model(batch["a"], batch["v"])
    scorer.update(batch["index"], multi, unis, batch["target"])
    return scorer.compute()


def test_mapping_batches_with_indices_any_order(model, dataset):
    want = _manual_scores(model, dataset)
    shuffled = DataLoader(dataset, batch_size=7, shuffle=True)
    got = score_dataset(model, shuffled, len(dataset), progress=False)
    assert torch.allclose(got, want, atol=1e-6)


def test_tuple_batches_are_positional(model, dataset):
    tensors = TensorDataset(dataset.a, dataset.v, dataset.y)
    got = score_dataset(model, DataLoader(tensors, batch_size=8), len(dataset), progress=False)
    assert torch.allclose(got, _manual_scores(model, dataset), atol=1e-6)


def test_restores_modes_and_uses_eval(model, dataset):
    model.train()
    model.enc_v.eval()
    running = model.enc_a[1].running_mean.clone()
    score_dataset(model, DataLoader(dataset, batch_size=8), len(dataset), progress=False)
    assert model.training and not model.enc_v.training
    assert torch.equal(model.enc_a[1].running_mean, running)  # eval: BatchNorm untouched
    score_dataset(
        model, DataLoader(dataset, batch_size=8), len(dataset), train_mode=True, progress=False
    )
    assert not torch.equal(model.enc_a[1].running_mean, running)  # released code: stats move
    assert model.training and not model.enc_v.training


def test_custom_forward_and_mapping_output(dataset):
    class DictModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(5, 3)

        def forward(self, a, v):
            z = self.lin(a)
            return {"multimodal": z, "unimodal": {"a": z, "v": z * 0.5}}

    got = score_dataset(
        DictModel(), DataLoader(dataset, batch_size=9), len(dataset), progress=False
    )
    assert got.shape == (len(dataset),)

    def forward(model, batch):
        multi, unis, targets, _ = default_forward(model, batch)
        return multi, unis, targets, batch["index"]

    again = score_dataset(
        DictModel(),
        DataLoader(dataset, batch_size=9),
        len(dataset),
        forward=forward,
        progress=False,
    )
    assert again.shape == got.shape


def test_loader_missing_samples(model, dataset):
    loader = DataLoader(Subset(dataset, range(30)), batch_size=8)
    with pytest.raises(CoverageError, match=r"10 of 40 samples were never updated .*\[30, 31"):
        score_dataset(model, loader, len(dataset), progress=False)


def test_loader_repeating_samples(model, dataset):
    batches = list(DataLoader(Subset(dataset, [*range(40), 3, 5]), batch_size=8))
    with pytest.raises(CoverageError, match=r"repeated 2 samples \(first indices: \[3, 5\]\)"):
        score_dataset(model, batches, len(dataset), progress=False)


def test_positional_loader_beyond_the_dataset(model, dataset):
    tensors = TensorDataset(dataset.a, dataset.v, dataset.y)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 29\]"):
        score_dataset(model, DataLoader(tensors, batch_size=8), 30, progress=False)


def test_plain_iterable_without_indices_is_refused(model, dataset):
    """A list of batches may have been shuffled: its order is never assumed."""
    tensors = TensorDataset(dataset.a, dataset.v, dataset.y)
    batches = list(DataLoader(tensors, batch_size=8, shuffle=True))
    with pytest.raises(
        CoverageError,
        match=r"forward returned no indices and the loader is a list, not a DataLoader.*return "
        r"indices from forward .* or use a DataLoader with a SequentialSampler",
    ):
        score_dataset(model, batches, len(dataset), progress=False)


def test_plain_iterable_with_indices_in_any_order(model, dataset):
    batches = list(DataLoader(dataset, batch_size=7, shuffle=True))
    got = score_dataset(model, iter(batches), len(dataset), progress=False)
    assert torch.allclose(got, _manual_scores(model, dataset), atol=1e-6)


def test_positional_needs_a_sequential_loader(model, dataset):
    tensors = TensorDataset(dataset.a, dataset.v, dataset.y)
    with pytest.raises(CoverageError, match=r"sampler \(RandomSampler\) is not sequential"):
        score_dataset(model, DataLoader(tensors, shuffle=True), len(dataset), progress=False)
    unshuffled = DistributedSampler(tensors, num_replicas=1, rank=0, shuffle=False)
    got = score_dataset(
        model, DataLoader(tensors, batch_size=8, sampler=unshuffled), len(dataset), progress=False
    )
    assert torch.allclose(got, _manual_scores(model, dataset), atol=1e-6)


def test_bad_batch_and_output_conventions(model, dataset):
    with pytest.raises(KeyError, match="needs one of the keys"):
        default_forward(model, {"a": dataset.a[:2], "v": dataset.v[:2]})
    with pytest.raises(
        TypeError,
        match=r"the model must return \(multimodal_logits.* its output was a tensor of shape \(2, 3\)",
    ):
        default_forward(torch.nn.Bilinear(5, 4, 3), (dataset.a[:2], dataset.v[:2], dataset.y[:2]))


def test_forward_must_return_four_values(model, dataset):
    def forward(model, batch):
        multi, unis, targets, _ = default_forward(model, batch)
        return multi, unis, targets

    with pytest.raises(
        ValueError,
        match=r"^forward must return \(multimodal_logits, unimodal_logits, targets, indices or "
        r"None\), got a tuple of 3 values$",
    ):
        score_dataset(model, DataLoader(dataset, batch_size=8), 40, forward=forward, progress=False)
    with pytest.raises(ValueError, match=r"forward must return .* got a tensor of shape \(3,\)$"):
        score_dataset(
            model,
            DataLoader(dataset, batch_size=8),
            40,
            forward=lambda m, b: torch.zeros(3),
            progress=False,
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train_mode": "no"}, r"^train_mode must be True or False, got 'no' \(str\)$"),
        ({"progress": None}, r"^progress must be True or False, got None$"),
        ({"alpha": None}, r"^alpha must be a real number in \[0, 1\], got None$"),
        ({"criteria": None}, r"^criteria must be a non-empty subset .* got None$"),
    ],
)
def test_bad_arguments_are_named(model, dataset, kwargs, match):
    with pytest.raises(ValueError, match=match):
        score_dataset(model, DataLoader(dataset, batch_size=8), len(dataset), **kwargs)


def test_one_all_reduce_per_pass(model, dataset, monkeypatch):
    calls = []
    real = _dist.all_reduce_sum_
    monkeypatch.setattr(_dist, "all_reduce_sum_", lambda t: calls.append(t.shape) or real(t))
    score_dataset(model, DataLoader(dataset, batch_size=8), len(dataset), progress=False)
    assert len(calls) == 1


def _padded_visits(n: int, world: int, shuffle: bool) -> torch.Tensor:
    visits = torch.zeros(n, dtype=torch.int64)
    for rank in range(world):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle)
        for i in sampler:
            visits[i] += 1
    return visits


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), world=st.integers(1, 9), shuffle=st.booleans())
def test_coverage_accepts_exactly_distributed_padding(n, world, shuffle):
    """What DistributedSampler's padding produces passes; one more repeat does not."""
    visits = _padded_visits(n, world, shuffle)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_dist, "world_size", lambda: world)
        check_once(visits, n)
        worse = visits.clone()
        worse[int(visits.argmax())] += 1  # a sample visited once more than padding allows
        if int(worse.sum()) - n < world:
            worse = visits.clone()
            worse[int(visits.argmax())] += n + 1  # or too many extra visits
        with pytest.raises(CoverageError, match="repeated"):
            check_once(worse, n)


def test_coverage_padding_rule_by_hand(monkeypatch):
    monkeypatch.setattr(_dist, "world_size", lambda: 3)
    check_once(torch.tensor([3]), 1)  # N=1 on 3 ranks: sample 0 on every rank
    check_once(torch.tensor([2, 1]), 2)  # N=2 on 3 ranks: sample 0 padded once
    with pytest.raises(CoverageError, match=r"repeated 1 samples \(first indices: \[0\]\)"):
        check_once(torch.tensor([3, 1]), 2)  # two extra visits of one sample: not padding
    with pytest.raises(CoverageError, match="repeated"):
        check_once(torch.tensor([4]), 1)  # 3 extra visits on 3 ranks: more than padding
    monkeypatch.setattr(_dist, "world_size", lambda: 1)
    with pytest.raises(CoverageError, match="repeated"):
        check_once(torch.tensor([2, 1]), 2)  # no padding without a process group


# -- the "index" entry against dataset wrappers (issue 17 item 3) ---------------------------------


def _keyed_error(wrapper: str) -> str:
    return (
        r"but the batches' 'index' entry says .*: the loader's dataset is "
        + wrapper
        + r", which renumbers .* Drop the 'index' entry"
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_index_entry_of_a_permuted_subset_is_refused(model, dataset, workers):
    """A sequential loader knows each batch's positions: an "index" entry numbering the wrapped
    dataset is refused instead of putting 39 of 40 scores on other samples."""
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(1)).tolist()
    loader = DataLoader(Subset(dataset, perm), batch_size=8, num_workers=workers)
    with pytest.raises(CoverageError, match=_keyed_error(r"Subset\(PairDataset\)")):
        score_dataset(model, loader, 40, progress=False)


def test_index_entry_under_random_split_is_refused(model, dataset):
    part, _ = random_split(dataset, [30, 10], generator=torch.Generator().manual_seed(0))
    with pytest.raises(CoverageError, match=_keyed_error(r"Subset\(PairDataset\)")):
        score_dataset(model, DataLoader(part, batch_size=8), 30, progress=False)


def test_index_entry_under_concat_and_nested_wrappers_is_refused(model, dataset):
    both = ConcatDataset([dataset, PairDataset(seed=1)])
    with pytest.raises(
        CoverageError, match=_keyed_error(r"ConcatDataset\(\[PairDataset, PairDataset\]\)")
    ):
        score_dataset(model, DataLoader(both, batch_size=8), 80, progress=False)
    nested = Subset(both, list(range(70, 80)))
    with pytest.raises(
        CoverageError,
        match=_keyed_error(r"Subset\(ConcatDataset\(\[PairDataset, PairDataset\]\)\)"),
    ):
        score_dataset(model, DataLoader(nested, batch_size=4), 10, progress=False)


def test_custom_forward_indices_are_checked_too(model, dataset):
    def forward(model, batch):
        multi, unis, targets, indices = default_forward(model, batch)
        return multi, unis, targets, indices.flip(0)

    with pytest.raises(CoverageError, match=r"but the indices forward returned says \[7, 6"):
        score_dataset(model, DataLoader(dataset, batch_size=8), 40, forward=forward, progress=False)


def test_index_entry_agreeing_with_positions_is_used(model, dataset):
    """An unwrapped dataset, or a Subset that keeps the numbering, scores as before."""
    want = _manual_scores(model, dataset)
    got = score_dataset(model, DataLoader(Subset(dataset, range(40)), batch_size=8), 40)
    assert torch.allclose(got, want, atol=1e-6)


def test_unchecked_index_errors_name_the_entry_and_the_wrapper(model, dataset):
    """A shuffled loader's positions are unknown, so the entry is trusted; when it is out of range
    or misses samples, the error says where the indices came from and what may be wrong."""
    part, _ = random_split(dataset, [30, 10], generator=torch.Generator().manual_seed(0))
    with (
        pytest.raises(
            ValueError,
            match=r"indices must lie in \[0, 29\].* came from the batches' 'index' entry.*"
            r"dataset is Subset\(PairDataset\)",
        ),
        pytest.warns(UserWarning, match="cannot check the batches' 'index' entry"),
    ):
        score_dataset(model, DataLoader(part, batch_size=8, shuffle=True), 30, progress=False)
    both = ConcatDataset([dataset, PairDataset(seed=1)])
    with (
        pytest.raises(
            CoverageError,
            match=r"40 of 80 samples were never updated.* came from the batches' 'index' entry.*"
            r"ConcatDataset",
        ),
        pytest.warns(UserWarning),
    ):
        score_dataset(model, DataLoader(both, batch_size=8, shuffle=True), 80, progress=False)


@settings(max_examples=25, deadline=None)
@given(
    keep=st.lists(st.integers(0, 39), min_size=1, max_size=40, unique=True),
    batch_size=st.integers(1, 9),
)
def test_wrapped_index_entries_are_used_or_refused_never_misplaced(keep, batch_size):
    """Over any Subset and batch size, a sequential pass either scores each sample by its own
    outputs (the entry agrees with the positions) or refuses, naming the entry."""
    torch.manual_seed(0)
    from tests.conftest import PairModel

    model, base = PairModel(), PairDataset()
    part = Subset(base, keep)
    loader = DataLoader(part, batch_size=batch_size)
    if keep == list(range(len(keep))):
        got = score_dataset(model, loader, len(keep), progress=False)
        assert torch.allclose(got, _manual_scores(model, part), atol=1e-6)
    else:
        with pytest.raises(CoverageError, match="'index' entry"):
            score_dataset(model, loader, len(keep), progress=False)
