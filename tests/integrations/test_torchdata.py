"""``examples/integrations/torchdata_stateful.py``: StatefulDataLoader mid-epoch resume."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

pytest.importorskip(
    "torchdata.stateful_dataloader", reason="the `torchdata` extra is not installed"
)

from _toy import KINDS, ToyAV, ToyAVModel, make_any_sampler, make_train_set, set_valuation, update
from torchdata_stateful import STOPPED, interrupted_and_resumed

from ..sampler_cases import IDS, SAMPLERS, scored
from ..test_sampler_contract import _another_rng
from .oracles import check_shards

EPOCH, WORLD_SIZE, BATCH_SIZE = 1, 2, 4


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_resumes_exactly_the_remaining_batches(kind: str, num_workers: int) -> None:
    dataset = make_train_set(kind, 64)
    reference = make_any_sampler(kind, dataset)
    torch.manual_seed(0)
    scores = update(reference, ToyAVModel(), DataLoader(dataset, batch_size=16))
    reference.set_epoch(EPOCH)
    shards = []
    for rank in range(WORLD_SIZE):
        for stop_after in (1, 3):  # a snapshot inside the workers' prefetch window, and later
            full, head, tail = interrupted_and_resumed(
                kind,
                dataset,
                scores,
                epoch=EPOCH,
                rank=rank,
                world_size=WORLD_SIZE,
                batch_size=BATCH_SIZE,
                num_workers=num_workers,
                stop_after=stop_after,
            )
            assert head == full[:stop_after]
            assert tail == full[stop_after:]
        shards.append([index for batch in full for index in batch])
    # both ranks: the global order, each item once
    check_shards(list(reference), shards, distinct=kind != "smv")


@pytest.mark.parametrize("kind", KINDS)
def test_a_loader_killed_at_a_random_batch_resumes_exactly_in_a_new_process(
    kind: str, tmp_path: Path, run_recipe: Callable[..., object]
) -> None:
    # The recipe's process saves the snapshot after a random number of batches of epoch 1 on
    # a random rank of 2 (its 2 workers reading ahead) and ends at once; a new process restores
    # a fresh sampler and StatefulDataLoader from it and yields exactly the batches left.
    stop_after, rank = random.randint(1, 4), random.randint(0, 1)  # 5+ batches per rank
    snapshot = tmp_path / "snapshot.pt"
    common = ["torchdata_stateful.py", "--sampler", kind, "--rank", str(rank)]
    run_recipe(
        [*common, "--stop-after", str(stop_after), "--snapshot", str(snapshot)],
        returncode=STOPPED,
    )
    saved = torch.load(snapshot, weights_only=True)
    assert len(saved["head"]) == stop_after < len(saved["full"])
    run_recipe([*common, "--resume-from", str(snapshot)])  # exits 1 unless head + rest == full


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("kind", ["learned", "heuristic"])
def test_a_restore_after_an_epoch_ended_keeps_the_later_set_epoch(kind: str, num_workers: int):
    """Issue 17 item 5: StatefulDataLoader hands the sampler its saved state at ``iter()``, after
    ``set_epoch(4)``; a state saved once epoch 3 ended must not bring epoch 3 back."""
    from torchdata.stateful_dataloader import StatefulDataLoader

    dataset = ToyAV(40)
    scores = torch.linspace(-1, 1, 40)

    def fresh():
        sampler = make_any_sampler(kind, dataset)
        set_valuation(sampler, scores)
        return sampler

    sampler = fresh()
    sampler.set_epoch(3)
    loader = StatefulDataLoader(range(40), batch_size=6, sampler=sampler, num_workers=num_workers)
    assert [i for batch in loader for i in batch.tolist()] == sampler.epoch_indices().tolist()
    loader_state, sampler_state = loader.state_dict(), sampler.state_dict()
    resumed = fresh()
    resumed.load_state_dict(sampler_state)
    again = StatefulDataLoader(range(40), batch_size=6, sampler=resumed, num_workers=num_workers)
    again.load_state_dict(loader_state)
    resumed.set_epoch(4)
    reference = fresh()
    reference.set_epoch(4)
    assert [i for batch in again for i in batch.tolist()] == reference.epoch_indices().tolist()
    assert resumed.epoch == 4


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("cls", SAMPLERS, ids=lambda cls: cls.__name__)
def test_a_restore_inside_an_epoch_into_another_order_is_refused(cls, num_workers, monkeypatch):
    """Issue 26 item 2: torchdata hands the sampler the state it had when the last trained batch
    was dispatched; loading it checks that the epoch's order is regenerated."""
    from torchdata.stateful_dataloader import StatefulDataLoader

    sampler = scored(cls, 40)
    sampler.set_epoch(1)
    loader = StatefulDataLoader(IDS, batch_size=4, sampler=sampler, num_workers=num_workers)
    iterator = iter(loader)
    next(iterator), next(iterator)
    state = loader.state_dict()
    del iterator
    _another_rng(monkeypatch)
    resumed = scored(cls, 40)  # iter() comes before the restore: the valuation, given again
    again = StatefulDataLoader(IDS, batch_size=4, sampler=resumed, num_workers=num_workers)
    with pytest.raises(ValueError, match=r"saved 8 indices into epoch 1 .* differs"):
        again.load_state_dict(state)
        next(iter(again))
