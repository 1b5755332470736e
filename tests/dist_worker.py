"""Run by ``test_distributed.py``: gloo ranks on CPU run one scenario each.

Usage: ``python tests/dist_worker.py SCENARIO OUT_DIR PORT``; each rank saves what it saw to
``OUT_DIR/{SCENARIO}_rank{r}.pt``. Scenarios:

* ``samplers`` (2 ranks): score and order the toy dataset (scores, orders, shards).
* ``errors`` (2 ranks): one rank feeds invalid values; every rank records the error it raised
  and how long it took.
* ``padding`` (3 ranks): score datasets of 1 and 2 samples, which ``DistributedSampler`` pads.
* ``late_group`` (2 ranks): samplers built before ``init_process_group`` (issue 17 item 4): an
  untouched one shards by the group once it exists; one already iterating refuses.
* ``report`` (2 ranks): the hand-computed reports of ``report_cases.py`` from uneven shards (a
  padded ``DistributedSampler`` share in a scoring pass, and unequal online shares), and how many
  all-reduces each took.
* ``smv`` (2 ranks): SMV valuations of fixed coalition logits over padded
  ``DistributedSampler`` shares (two and three modalities), and one with NaN on rank 1 only.

The process group times out after 60 s, so a rank left waiting shows up as a failure, not a hang.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, str(Path(__file__).parent))
from conftest import PairDataset, PairModel
from report_cases import CASES, Case
from smv_cases import valuate_case, valuation_case

from bss_sampler import (
    BalanceScorer,
    HeuristicCurriculumSampler,
    LearnedBalanceSampler,
    SMVSampler,
    _dist,
    default_forward,
    score_dataset,
)

WORLD = {"samplers": 2, "errors": 2, "padding": 3, "report": 2, "late_group": 2, "smv": 2}


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
        result[f"{name}/report"] = dataclasses.asdict(global_sampler.last_report)  # type: ignore[arg-type]
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


def report(rank: int, world: int) -> dict[str, object]:
    """Each hand-computed case from uneven shards; every report should equal the hand values."""
    calls: list[int] = []
    real = _dist.all_reduce_sum_

    def counting(tensor: torch.Tensor) -> torch.Tensor:
        calls.append(tensor.numel())
        return real(tensor)

    _dist.all_reduce_sum_ = counting  # type: ignore[assignment]
    result: dict[str, object] = {}
    for name, make in CASES.items():
        case = make()
        n = len(case.targets)

        def forward(model: torch.nn.Module, batch: Any, case: Case = case) -> Any:
            (i,) = batch
            return case.multi[i], [u[i] for u in case.unis], case.targets[i], i

        # a scoring pass over DistributedSampler's share: N odd pads sample 0 onto rank 1
        data = torch.utils.data.TensorDataset(torch.arange(n))
        loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, shuffle=False))
        calls.clear()
        scores, pass_report = score_dataset(
            torch.nn.Identity(), loader, n, forward=forward, progress=False, return_report=True
        )
        result[f"{name}/pass"] = dataclasses.asdict(pass_report)
        result[f"{name}/pass/scores"] = scores
        result[f"{name}/pass/all_reduces"] = list(calls)
        # online: rank 0 updates the first n // 2 + 1 samples, rank 1 the rest, 2 per batch
        mine = torch.arange(n)[: n // 2 + 1] if rank == 0 else torch.arange(n)[n // 2 + 1 :]
        scorer = BalanceScorer(n)
        for part in mine.split(2):
            scorer.update(part, case.multi[part], [u[part] for u in case.unis], case.targets[part])
        calls.clear()
        scorer.compute()
        result[f"{name}/online"] = dataclasses.asdict(scorer.last_report)  # type: ignore[arg-type]
        result[f"{name}/online/all_reduces"] = list(calls)
    # a rank with no update: fine when num_modalities says how many heads there are
    case = CASES["two"]()
    scorer = BalanceScorer(5, num_modalities=2)
    if rank == 0:
        scorer.update(torch.arange(5), case.multi, case.unis, case.targets)
    scorer.compute()
    result["idle_rank"] = dataclasses.asdict(scorer.last_report)  # type: ignore[arg-type]
    _dist.all_reduce_sum_ = real  # type: ignore[assignment]
    return result


def built_before_group() -> dict[str, Any]:
    """Samplers of 20 samples built with no process group (so with one replica, for now)."""
    built: dict[str, Any] = {}
    for cls in (LearnedBalanceSampler, HeuristicCurriculumSampler):
        for name in ("untouched", "iterating"):
            sampler = cls(range(20), seed=1)
            sampler.set_scores(torch.linspace(-1, 1, 20))
            built[f"{cls.__name__}/{name}"] = sampler
        started = iter(built[f"{cls.__name__}/iterating"])
        built[f"{cls.__name__}/iterating/head"] = [next(started)]
    return built


def late_group(rank: int, world: int, built: dict[str, Any]) -> dict[str, object]:
    result: dict[str, object] = {}
    for cls in (LearnedBalanceSampler, HeuristicCurriculumSampler):
        name = cls.__name__
        untouched = built[f"{name}/untouched"]
        result[f"{name}/len"] = len(untouched)
        untouched.set_epoch(0)
        result[f"{name}/shard"] = list(untouched)
        result[f"{name}/state_replicas"] = untouched.state_dict()["config"]["num_replicas"]
        try:
            list(built[f"{name}/iterating"])
            result[f"{name}/error"] = "no error"
        except RuntimeError as error:
            result[f"{name}/error"] = str(error)
    return result


def smv(rank: int, world: int) -> dict[str, object]:
    result: dict[str, object] = {}
    for modalities in (2, 3):
        logits, targets = valuation_case(modalities)
        data = torch.utils.data.TensorDataset(torch.arange(len(targets)))
        loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, shuffle=False))
        contributions, report = valuate_case(loader, logits, targets)
        result[f"{modalities}/contributions"] = contributions
        result[f"{modalities}/report"] = dataclasses.asdict(report)
        sampler = SMVSampler(data, modalities, seed=3)  # shards by the process group
        sampler.set_values(contributions)
        sampler.set_epoch(1)
        result[f"{modalities}/shard"] = list(sampler)
    logits, targets = valuation_case(2)
    if rank == 1:
        logits = logits.index_fill(1, torch.tensor([5]), float("nan"))
    try:
        valuate_case(
            DataLoader(data, sampler=DistributedSampler(data, shuffle=False)), logits, targets
        )
        result["nan"] = "no error"
    except ValueError as error:
        result["nan"] = str(error)
    return result


SCENARIOS = {
    "samplers": samplers,
    "errors": errors,
    "padding": padding,
    "report": report,
    "smv": smv,
}


def run(rank: int, scenario: str, out_dir: str, port: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    world = WORLD[scenario]
    built = built_before_group() if scenario == "late_group" else None
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    result = SCENARIOS[scenario](rank, world) if built is None else late_group(rank, world, built)
    torch.save(result, Path(out_dir) / f"{scenario}_rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    scenario = sys.argv[1]
    mp.spawn(run, args=(scenario, sys.argv[2], sys.argv[3]), nprocs=WORLD[scenario], join=True)
