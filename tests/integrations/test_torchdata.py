"""``examples/integrations/torchdata_stateful.py``: StatefulDataLoader mid-epoch resume."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

pytest.importorskip(
    "torchdata.stateful_dataloader", reason="the `torchdata` extra is not installed"
)

from _toy import ToyAV, ToyAVModel, make_sampler
from torchdata_stateful import interrupted_and_resumed

from .oracles import check_shards

EPOCH, WORLD_SIZE, BATCH_SIZE = 1, 2, 4


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("kind", ["learned", "heuristic"])
def test_snapshot_resumes_exactly_the_remaining_batches(kind: str, num_workers: int) -> None:
    dataset = ToyAV(64)
    reference = make_sampler(kind, dataset)
    torch.manual_seed(0)
    scores = reference.update_scores(
        ToyAVModel(), DataLoader(dataset, batch_size=16), progress=False
    )
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
    check_shards(list(reference), shards)  # both ranks: the global order, each sample once
