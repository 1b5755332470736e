"""Two gloo ranks on CPU give exactly the scores and orders of one process."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler

from .conftest import PairDataset, PairModel

WORKER = Path(__file__).with_name("dist_worker.py")


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(out), _free_port()],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


@pytest.mark.parametrize("cls", [LearnedBalanceSampler, HeuristicCurriculumSampler])
def test_two_ranks_equal_one_process(ranks, cls):
    torch.manual_seed(0)
    model, data = PairModel(), PairDataset(n=41)
    single = cls(data, seed=3)
    scores = single.update_scores(model, DataLoader(data, batch_size=8), progress=False)
    name = cls.__name__
    for result in ranks:
        assert torch.allclose(result[f"{name}/scores"], scores, atol=1e-6)
    assert torch.equal(ranks[0][f"{name}/scores"], ranks[1][f"{name}/scores"])
    single.set_scores(ranks[0][f"{name}/scores"])  # identical inputs: identical orders
    for epoch in range(3):
        single.set_epoch(epoch)
        order = list(single)
        assert ranks[0][f"{name}/global/{epoch}"] == ranks[1][f"{name}/global/{epoch}"] == order
        shares = [r[f"{name}/shard/{epoch}"] for r in ranks]
        assert shares == [r[f"{name}/by_group/{epoch}"] for r in ranks]
        padded = order + order[: len(order) % 2]
        assert shares[0] == padded[0::2] and shares[1] == padded[1::2]


def test_positional_and_online_scoring_sync(ranks):
    torch.manual_seed(0)
    model, data = PairModel(), PairDataset(n=41)
    want = LearnedBalanceSampler(data).update_scores(model, DataLoader(data), progress=False)
    for result in ranks:
        assert torch.allclose(result["positional"], want, atol=1e-6)
        assert torch.allclose(result["online"], want, atol=1e-6)
