"""SMVSampler: SMV's epochs (originals plus single-modality copies) on the sampler core.

Resume, workers, shards and checkpoints run in the shared contract tests
(``tests/sampler_cases.py``); here what is SMV's own.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from bss_sampler import CoverageError, SMVSampler
from bss_sampler.ordering import epoch_generator
from bss_sampler.smv import (
    ModalityMaskedDataset,
    coalition_logits,
    copy_counts,
    mask_features,
    modality_level_count,
    stream_index,
    stream_variant,
)

CONTRIBUTIONS = torch.tensor([[1.0, 1.0], [0.5, 1.5], [0.0, 1.0], [-0.5, 0.5], [1.5, 0.5]])


def test_an_epoch_is_the_originals_once_and_the_copies_of_the_released_rule():
    sampler = SMVSampler(range(5), num_modalities=2, seed=4)
    sampler.set_values(CONTRIBUTIONS)
    ids = torch.tensor(list(sampler))
    assert len(ids) == len(sampler) == 5 + int(copy_counts(CONTRIBUTIONS).sum()) == 13
    got = Counter(zip(stream_index(ids, 5).tolist(), stream_variant(ids, 5).tolist()))
    assert all(got[(i, 0)] == 1 for i in range(5))
    # sample 3: -0.5 -> 3 copies keeping modality 0; 0.5 -> 1 keeping modality 1
    assert (got[(3, 1)], got[(3, 2)], got[(2, 1)], got[(0, 1)], got[(0, 2)]) == (3, 1, 2, 0, 0)


def test_an_epoch_is_a_pure_function_of_seed_epoch_and_valuation():
    def epoch(seed: int, t: int) -> list[int]:
        sampler = SMVSampler(range(5), seed=seed)
        sampler.set_values(CONTRIBUTIONS)
        sampler.set_epoch(t)
        return list(sampler)

    assert epoch(0, 2) == epoch(0, 2)
    assert len({tuple(epoch(0, t)) for t in range(4)}) == 4
    assert epoch(0, 2) != epoch(1, 2)


def test_the_modality_level_copies_the_weaker_modality_and_knows_its_length_ahead():
    sampler = SMVSampler(range(5), level="modality", alpha=2.0, seed=1)
    sampler.set_values(CONTRIBUTIONS)
    # means 0.5 and 0.9: gap 0.4 * 2/3, times alpha 2 -> int(0.5333 * 5) = 2 copies keeping 0
    assert modality_level_count(CONTRIBUTIONS.mean(0), 5, alpha=2.0) == 2
    lengths = [sampler.epoch_length(t) for t in range(3)]
    for t in range(3):
        sampler.set_epoch(t)
        ids = torch.tensor(list(sampler))
        assert len(ids) == lengths[t] == 7
        assert Counter(stream_variant(ids, 5).tolist()) == {0: 5, 1: 2}


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    replicas=st.integers(1, 4),
    epoch=st.integers(0, 5),
    level=st.sampled_from(["sample", "modality"]),
    seed=st.integers(0, 2**16),
)
def test_shards_are_the_global_stream_padded_as_distributed_sampler(
    n, replicas, epoch, level, seed
):
    g = torch.Generator().manual_seed(seed)
    values = torch.randint(0, 5, (n, 2), generator=g).float() * 0.5 - 0.5
    whole = SMVSampler(range(n), level=level, seed=seed, global_order=True)
    whole.set_values(values)
    whole.set_epoch(epoch)
    stream = whole.epoch_indices().tolist()
    shards = []
    for rank in range(replicas):
        sampler = SMVSampler(range(n), level=level, seed=seed, num_replicas=replicas, rank=rank)
        sampler.set_values(values)
        sampler.set_epoch(epoch)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler) == -(-len(stream) // replicas)
    interleaved = [shards[r][i] for i in range(len(shards[0])) for r in range(replicas)]
    padded = (stream * replicas)[: len(interleaved)]  # repeated from its start, as torch pads
    assert interleaved == padded


def test_needs_update_follows_the_released_schedule():
    every_epoch = SMVSampler(range(5))
    assert every_epoch.needs_update(0)
    every_epoch.set_values(CONTRIBUTIONS)
    assert not every_epoch.needs_update(0) and every_epoch.needs_update(1)
    sparse = SMVSampler(range(5), update_every=3)
    sparse.set_values(CONTRIBUTIONS)
    assert [sparse.needs_update(t) for t in range(5)] == [False, False, False, True, True]


def test_iterating_before_a_valuation_says_what_to_call():
    with pytest.raises(RuntimeError, match=r"SMVSampler has no modality valuation yet: .*"):
        iter(SMVSampler(range(5)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_modalities": 1}, r"num_modalities must lie in \[2, 16\], got 1"),
        ({"level": "batch"}, r"level must be one of \['sample', 'modality'\], got 'batch'"),
        (
            {"thresholds": "0.4"},
            r"thresholds must be one of \['released', 'march2024'\] or a sequence of numbers, "
            r"got '0.4'",
        ),
        ({"alpha": -1.0}, r"alpha must"),
        ({"function": "cubic"}, r"function must be one of"),
        ({"update_every": 0}, r"update_every must be an int >= 1, got 0"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SMVSampler(range(5), **kwargs)


def test_a_valuation_of_the_wrong_shape_is_refused_by_name():
    sampler = SMVSampler(range(5), num_modalities=3)
    with pytest.raises(
        ValueError, match=r"contributions must have shape \(5, 3\) \(one row per sample\)"
    ):
        sampler.set_values(CONTRIBUTIONS)
    with pytest.raises(ValueError, match=r"contributions must be finite, .* at indices \[2\]"):
        sampler.set_values(torch.zeros(5, 3).index_fill(0, torch.tensor([2]), float("nan")))


def test_a_checkpoint_of_another_level_or_threshold_is_refused():
    sampler = SMVSampler(range(5))
    sampler.set_values(CONTRIBUTIONS)
    state = sampler.state_dict()
    with pytest.raises(ValueError, match="saved with level='sample', this sampler has level="):
        SMVSampler(range(5), level="modality").load_state_dict(state)
    with pytest.raises(ValueError, match="saved with thresholds="):
        SMVSampler(range(5), thresholds=(0.0, 0.5)).load_state_dict(state)
    with pytest.raises(ValueError, match="is from a SMVSampler, not a LearnedBalanceSampler"):
        from bss_sampler import LearnedBalanceSampler

        LearnedBalanceSampler(range(5)).load_state_dict(state)


# -- the valuation pass with a model that follows the contract ------------------------------------
class Pairs(Dataset[tuple[Tensor, Tensor, Tensor]]):
    """Class 1 throughout; the audio says so, the video is noise."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.y = torch.ones(n, dtype=torch.int64)
        self.audio = 1 + 0.1 * torch.randn(n, 1, generator=g)
        self.video = torch.randn(n, 1, generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.audio[i], self.video[i], self.y[i]


class Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.audio, self.video = nn.Linear(1, 4), nn.Linear(1, 4)
        self.head = nn.Linear(8, 2)
        with torch.no_grad():  # a model that reads the audio only
            self.audio.weight.fill_(1.0), self.audio.bias.zero_()
            self.video.weight.zero_(), self.video.bias.zero_()
            self.head.weight.zero_(), self.head.bias.zero_()
            self.head.weight[1, :4] = 1.0  # class 1 from the audio; class 0 without it
            self.head.bias[0] = 0.5

    def encode(self, audio: Tensor, video: Tensor) -> list[Tensor]:
        return [self.audio(audio), self.video(video)]

    def fuse(self, features: list[Tensor]) -> Tensor:
        return self.head(torch.cat(features, 1))

    def forward(self, audio: Tensor, video: Tensor, mask: Tensor) -> Tensor:
        return self.fuse(mask_features(self.encode(audio, video), mask))


def valuation_forward(model: Masked, batch: list[Tensor]) -> tuple[Tensor, Tensor, None]:
    audio, video, target = batch
    return coalition_logits(model.fuse, model.encode(audio, video)), target, None


def test_update_values_copies_the_modality_that_contributes_nothing():
    data, model = Pairs(12), Masked()
    sampler = SMVSampler(data)
    got = sampler.update_values(
        model, DataLoader(data, batch_size=5), forward=valuation_forward, progress=False
    )
    # audio alone and fused are right, video alone is not: phi = (1.5, 0.5) for every sample
    assert torch.equal(got, torch.tensor([[1.5, 0.5]]).expand(12, 2))
    report = sampler.last_report
    assert report is not None and report.mean_contribution == (1.5, 0.5)
    assert report.fused_accuracy == 1.0 and report.alone_accuracy == (1.0, 0.0)
    assert Counter(stream_variant(sampler.epoch_indices(), 12).tolist()) == {0: 12, 2: 12}
    # the copies reach the model as masks that keep the video only
    masked = ModalityMaskedDataset(data, 2)
    seen = Counter()
    for (audio, video, _), mask in DataLoader(masked, batch_size=7, sampler=sampler):
        model(audio, video, mask)
        seen.update(map(tuple, mask.int().tolist()))
    assert seen == {(1, 1): 12, (0, 1): 12}
    sampler.set_values(got)
    assert sampler.last_report is None  # set_values brings no report


def test_update_values_refuses_a_shuffled_loader_without_indices():
    data = Pairs(6)
    sampler = SMVSampler(data)
    with pytest.raises(CoverageError, match="indices"):
        sampler.update_values(
            Masked(),
            DataLoader(data, batch_size=2, shuffle=True),
            forward=valuation_forward,
            progress=False,
        )
    assert sampler.contributions is None


def test_a_forward_of_the_wrong_arity_is_named():
    data = Pairs(4)
    with pytest.raises(ValueError, match=r"forward must return \(coalition_logits, targets, "):
        SMVSampler(data).update_values(
            Masked(),
            DataLoader(data, batch_size=2),
            forward=lambda model, batch: valuation_forward(model, batch)[:2],
            progress=False,
        )


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stateful_dataloader_resumes_an_smv_epoch_exactly(num_workers):
    stateful = pytest.importorskip("torchdata.stateful_dataloader")
    n = 30
    values = torch.randint(0, 5, (n, 2), generator=epoch_generator(0, 0)).float() * 0.5 - 0.5

    def loader() -> tuple[SMVSampler, DataLoader]:
        sampler = SMVSampler(range(n), seed=2)
        sampler.set_values(values)
        sampler.set_epoch(1)
        return sampler, stateful.StatefulDataLoader(
            range(4 * n), batch_size=4, sampler=sampler, num_workers=num_workers
        )

    sampler, first = loader()
    want = sampler.epoch_indices().tolist()
    assert len(want) > n
    batches = iter(first)
    head = [i for _ in range(3) for i in next(batches).tolist()]
    state = first.state_dict()
    _, again = loader()
    again.load_state_dict(state)
    rest = [i for batch in again for i in batch.tolist()]
    assert head + rest == want
