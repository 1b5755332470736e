"""Gloo ranks on CPU: two ranks give exactly the scores and orders of one process, an invalid
value on one rank is the same prompt error on every rank, and DistributedSampler's padding of a
dataset smaller than the world is not a coverage error."""

from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler

from .conftest import PairDataset, PairModel
from .report_cases import CASES

WORKER = Path(__file__).with_name("dist_worker.py")


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _spawn(tmp_path_factory, scenario: str, world: int, timeout: float) -> list[dict]:
    """Run one scenario of ``dist_worker.py``; each rank's saved results."""
    out = tmp_path_factory.mktemp(scenario)
    proc = subprocess.run(
        [sys.executable, str(WORKER), scenario, str(out), _free_port()],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [torch.load(out / f"{scenario}_rank{r}.pt", weights_only=True) for r in range(world)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return _spawn(tmp_path_factory, "samplers", 2, timeout=300)


@pytest.mark.parametrize("cls", [LearnedBalanceSampler, HeuristicCurriculumSampler])
def test_two_ranks_equal_one_process(ranks, cls):
    torch.manual_seed(0)
    model, data = PairModel(), PairDataset(n=41)
    single = cls(data, seed=3)
    scores = single.update_scores(model, DataLoader(data, batch_size=8), progress=False)
    name = cls.__name__
    for result in ranks:
        assert torch.allclose(result[f"{name}/scores"], scores, atol=1e-6)
    # the report: identical on both ranks, and what one process reports
    assert ranks[0][f"{name}/report"] == ranks[1][f"{name}/report"]
    report = dataclasses.asdict(single.last_report)
    for key, value in report.items():
        assert ranks[0][f"{name}/report"][key] == pytest.approx(value, abs=1e-6), key
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


@pytest.fixture(scope="module")
def errors(tmp_path_factory):
    # The process group times out after 60 s: a rank left waiting in the all-reduce would make
    # this subprocess outlive its timeout instead of reporting the error.
    return _spawn(tmp_path_factory, "errors", 2, timeout=45)


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("nan", r"^logits contain NaN or inf for 1 samples \(dataset indices \[6\]\)"),
        ("target", r"^targets must lie in \[0, 2\] for logits with 3 classes, but 1 samples "),
        ("index", r"^indices must lie in \[0, 7\] \(num_samples=8\), but 4 indices passed"),
        ("score_dataset", r"^logits contain NaN or inf for 4 samples"),
    ],
)
def test_invalid_values_on_one_rank_raise_on_every_rank(errors, case, match):
    """Rank 1 alone feeds the bad value; both ranks raise the same error, promptly."""
    messages = [result[case] for result in errors]
    assert messages[0] == messages[1]
    assert re.match(match, messages[0]), messages[0]
    assert all(result[f"{case}/seconds"] < 20 for result in errors)


@pytest.fixture(scope="module")
def padding(tmp_path_factory):
    return _spawn(tmp_path_factory, "padding", 3, timeout=300)


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("how", ["False", "True", "positional"])
def test_three_ranks_pad_datasets_smaller_than_the_world(padding, n, how):
    """N = 1 or 2 on 3 ranks: DistributedSampler repeats samples; scores equal one process's."""
    torch.manual_seed(0)
    model, data = PairModel(), PairDataset(n=n)
    want = LearnedBalanceSampler(data).update_scores(model, DataLoader(data), progress=False)
    for result in padding:
        assert torch.allclose(result[f"{n}/{how}"], want, atol=1e-6)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return _spawn(tmp_path_factory, "report", 2, timeout=300)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("how", ["pass", "online"])
def test_report_from_uneven_shards_is_the_hand_computed_one(reports, name, how):
    """2 gloo ranks, uneven shares (a padded DistributedSampler share, or 3 + 2 samples): the
    report is identical on both ranks, equals the hand-computed values, and took the pass's one
    all-reduce."""
    case = CASES[name]()
    assert reports[0][f"{name}/{how}"] == reports[1][f"{name}/{how}"]
    for key, value in case.expected.items():
        assert reports[0][f"{name}/{how}"][key] == pytest.approx(value, rel=1e-12), key
    modalities, n = len(case.unis), len(case.targets)
    size = (5 + 2 * (1 + modalities)) * n + 3
    assert reports[0][f"{name}/{how}/all_reduces"] == reports[1][f"{name}/{how}/all_reduces"]
    assert reports[0][f"{name}/{how}/all_reduces"] == [size]


def test_a_rank_without_updates_reports_with_num_modalities(reports):
    expected = CASES["two"]().expected
    assert reports[0]["idle_rank"] == reports[1]["idle_rank"]
    for key, value in expected.items():
        assert reports[1]["idle_rank"][key] == pytest.approx(value, rel=1e-12), key


@pytest.fixture(scope="module")
def late_ranks(tmp_path_factory):
    return _spawn(tmp_path_factory, "late_group", 2, timeout=300)


@pytest.mark.parametrize("cls", [LearnedBalanceSampler, HeuristicCurriculumSampler])
def test_a_sampler_built_before_the_process_group_shards_by_it(late_ranks, cls):
    """Issue 17 item 4: built before ``init_process_group`` under 2 gloo ranks, a sampler
    never silently trains every rank on all 20 samples."""
    ranks = late_ranks
    name = cls.__name__
    reference = cls(range(20), seed=1)
    reference.set_scores(torch.linspace(-1, 1, 20))
    order = reference.epoch_indices().tolist()
    for rank, result in enumerate(ranks):
        assert result[f"{name}/shard"] == order[rank::2]
        assert result[f"{name}/state_replicas"] == 2
        assert re.fullmatch(
            rf"{name} was built with num_replicas=1, rank=0 \(no process group yet\) and epoch 0 "
            rf"is under way, but the process group now has world size 2 and rank {rank}: build "
            r"the sampler after init_process_group, or pass num_replicas and rank",
            result[f"{name}/error"],
        )
