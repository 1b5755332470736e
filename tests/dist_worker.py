"""Run by ``test_distributed.py``: gloo ranks on CPU run one scenario each.

Usage: ``python tests/dist_worker.py SCENARIO OUT_DIR PORT``; each rank saves what it saw to
``OUT_DIR/{SCENARIO}_rank{r}.pt``. Scenarios:

* ``samplers`` (2 ranks): score and order the toy dataset (scores, orders, shards).
* ``errors`` (2 ranks): one rank feeds invalid values; every rank records the error it raised
  and how long it took.
* ``padding`` (3 ranks): score datasets of 1 and 2 samples, which ``DistributedSampler`` pads.

The process group times out after 60 s, so a rank left waiting shows up as a failure, not a hang.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, str(Path(__file__).parent))
from conftest import PairDataset, PairModel

from bss_sampler import (
    BalanceScorer,
    HeuristicCurriculumSampler,
    LearnedBalanceSampler,
    default_forward,
    score_dataset,
)

WORLD = {"samplers": 2, "errors": 2, "padding": 3}


def samplers(rank: int, world: int) -> dict[str, object]:
    torch.manual_seed(0)
    model, data = PairModel(), PairDataset(n=41)  # odd: DistributedSampler pads one sample
    result: dict[str, object] = {}
    for cls in (LearnedBalanceSampler, HeuristicCurriculumSampler):
        name = cls.__name__
        score_loader = DataLoader(
            data, batch_size=8, sampler=DistributedSampler(data, shuffle=False)
        )
        global_sampler = cls(data, seed=3, global_order=True)
        result[f"{name}/scores"] = global_sampler.update_scores(model, score_loader, progress=False)
        sharded = cls(data, seed=3, num_replicas=world, rank=rank)
        by_group = cls(data, seed=3)  # like DistributedSampler: the process group's world and rank
        for sampler in (sharded, by_group):
            sampler.set_scores(result[f"{name}/scores"])  # type: ignore[arg-type]
        for epoch in range(3):
            for sampler in (global_sampler, sharded, by_group):
                sampler.set_epoch(epoch)
            result[f"{name}/global/{epoch}"] = list(global_sampler)
            result[f"{name}/shard/{epoch}"] = list(sharded)
            result[f"{name}/by_group/{epoch}"] = list(by_group)
    # positional scoring: forward returns no indices; the DistributedSampler order is used
    tuple_data = torch.utils.data.TensorDataset(data.a, data.v, data.y)
    tuple_loader = DataLoader(
        tuple_data, batch_size=8, sampler=DistributedSampler(tuple_data, shuffle=False)
    )
    result["positional"] = LearnedBalanceSampler(data).update_scores(
        model, tuple_loader, progress=False
    )
    # online accumulation: each rank updates with its own share, compute() syncs
    online = BalanceScorer(len(data))
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=8, sampler=DistributedSampler(data, shuffle=True)):
            multi, unis = model(batch["a"], batch["v"])
            online.update(batch["index"], multi, unis, batch["target"])
    result["online"] = online.compute()
    return result


def errors(rank: int, world: int) -> dict[str, object]:
    """Rank 1 alone feeds an invalid value; each rank records its error and the time it took."""
    g = torch.Generator().manual_seed(rank)
    multi, unis = torch.randn(4, 3, generator=g), [torch.randn(4, 3, generator=g) for _ in "av"]
    targets, indices = torch.tensor([0, 1, 2, 0]), torch.arange(4) + 4 * rank
    cases = {
        "nan": lambda: (indices, multi.index_fill(0, torch.tensor([2]), float("nan")), targets),
        "target": lambda: (indices, multi, torch.tensor([0, 1, 3, 0])),
        "index": lambda: (indices + 8, multi, targets),
    }
    result: dict[str, object] = {}
    for name, bad in cases.items():
        idx, logits, labels = bad() if rank == 1 else (indices, multi, targets)
        start = time.monotonic()
        try:
            scorer = BalanceScorer(4 * world)
            scorer.update(idx, logits, unis, labels)
            scorer.compute()
            result[name] = "no error"
        except ValueError as error:
            result[name] = str(error)
        result[f"{name}/seconds"] = time.monotonic() - start
    # a scoring pass whose model gives NaN on rank 1 only
    torch.manual_seed(0)
    model, data = PairModel(), PairDataset(n=8)

    def forward(model: torch.nn.Module, batch: object) -> object:
        multi, unis, targets, indices = default_forward(model, batch)
        return multi * float("nan") if rank == 1 else multi, unis, targets, indices

    start = time.monotonic()
    loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, shuffle=True))
    try:
        score_dataset(model, loader, len(data), forward=forward, progress=False)  # type: ignore[arg-type]
        result["score_dataset"] = "no error"
    except ValueError as error:
        result["score_dataset"] = str(error)
    result["score_dataset/seconds"] = time.monotonic() - start
    return result


def padding(rank: int, world: int) -> dict[str, object]:
    """Datasets smaller than the world: DistributedSampler repeats samples to fill every rank."""
    result: dict[str, object] = {}
    for n in (1, 2):
        torch.manual_seed(0)
        model, data = PairModel(), PairDataset(n=n)
        for shuffle in (False, True):
            loader = DataLoader(
                data, batch_size=8, sampler=DistributedSampler(data, shuffle=shuffle)
            )
            result[f"{n}/{shuffle}"] = score_dataset(model, loader, n, progress=False)
        tuple_data = torch.utils.data.TensorDataset(data.a, data.v, data.y)
        positional = DataLoader(tuple_data, sampler=DistributedSampler(tuple_data, shuffle=False))
        result[f"{n}/positional"] = score_dataset(model, positional, n, progress=False)
    return result


SCENARIOS = {"samplers": samplers, "errors": errors, "padding": padding}


def run(rank: int, scenario: str, out_dir: str, port: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    world = WORLD[scenario]
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    result = SCENARIOS[scenario](rank, world)
    torch.save(result, Path(out_dir) / f"{scenario}_rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    scenario = sys.argv[1]
    mp.spawn(run, args=(scenario, sys.argv[2], sys.argv[3]), nprocs=WORLD[scenario], join=True)
