from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from bss_sampler import BalanceScorer, CoverageError, _dist, default_forward, score_dataset


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
    loader = DataLoader(Subset(dataset, [*range(40), 3, 5]), batch_size=8)
    with pytest.raises(CoverageError, match=r"repeated 2 samples \(first indices: \[3, 5\]\)"):
        score_dataset(model, loader, len(dataset), progress=False)


def test_positional_loader_longer_than_dataset(model, dataset):
    tensors = TensorDataset(dataset.a, dataset.v, dataset.y)
    batches = list(DataLoader(tensors, batch_size=8))  # a plain iterable: positional from 0
    with pytest.raises(CoverageError, match="more than the 30 samples"):
        score_dataset(model, batches, 30, progress=False)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 29\]"):
        score_dataset(model, DataLoader(tensors, batch_size=8), 30, progress=False)


def test_positional_needs_a_sequential_loader(model, dataset):
    tensors = TensorDataset(dataset.a, dataset.v, dataset.y)
    with pytest.raises(CoverageError, match=r"sampler \(RandomSampler\) is not sequential"):
        score_dataset(model, DataLoader(tensors, shuffle=True), len(dataset), progress=False)


def test_bad_batch_and_output_conventions(model, dataset):
    with pytest.raises(KeyError, match="needs one of the keys"):
        default_forward(model, {"a": dataset.a[:2], "v": dataset.v[:2]})
    with pytest.raises(TypeError, match=r"must return \(multimodal_logits"):
        default_forward(torch.nn.Bilinear(5, 4, 3), (dataset.a[:2], dataset.v[:2], dataset.y[:2]))


def test_one_all_reduce_per_pass(model, dataset, monkeypatch):
    calls = []
    real = _dist.all_reduce_sum
    monkeypatch.setattr(_dist, "all_reduce_sum", lambda t: calls.append(t.shape) or real(t))
    score_dataset(model, DataLoader(dataset, batch_size=8), len(dataset), progress=False)
    assert len(calls) == 1
