"""Run by ``test_distributed.py``: two gloo ranks score and order the toy dataset.

Usage: ``python tests/dist_worker.py OUT_DIR``. Each rank saves its scores and orders to
``OUT_DIR/rank{r}.pt``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, str(Path(__file__).parent))
from conftest import PairDataset, PairModel

from bss_sampler import BalanceScorer, HeuristicCurriculumSampler, LearnedBalanceSampler

WORLD = 2


def run(rank: int, out_dir: str, port: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
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
        sharded = cls(data, seed=3, num_replicas=WORLD, rank=rank)
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
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(run, args=(sys.argv[1], sys.argv[2]), nprocs=WORLD, join=True)
