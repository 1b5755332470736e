"""`BalanceReport`: hand-computed values, the samplers' `last_report`, checkpoints, misuse."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bss_sampler import (
    BalanceReport,
    BalanceScorer,
    CoverageError,
    HeuristicCurriculumSampler,
    LearnedBalanceSampler,
    _dist,
    score_dataset,
)
from bss_sampler.report import HISTOGRAM_BINS, QUANTILE_LEVELS

from .report_cases import CASES, Case


def assert_matches(report: BalanceReport, expected: dict[str, object]) -> None:
    for name, value in expected.items():
        assert getattr(report, name) == pytest.approx(value, rel=1e-12, abs=1e-12), name


def assert_scores_described(report: BalanceReport, scores: torch.Tensor) -> None:
    """Quantiles and histogram of ``scores``, as NumPy computes them."""
    values = scores.double().numpy()
    want = np.quantile(values, QUANTILE_LEVELS)
    assert report.score_quantiles == pytest.approx(want.tolist(), abs=1e-12)
    counts, _ = np.histogram(values, bins=HISTOGRAM_BINS, range=(-1.0, 1.0))
    assert report.score_histogram == tuple(counts.tolist())
    assert sum(report.score_histogram) == report.num_samples


@pytest.mark.parametrize("name", list(CASES))
def test_report_by_hand(name):
    case: Case = CASES[name]()
    n = len(case.targets)
    scorer = BalanceScorer(n)
    assert scorer.last_report is None
    order = torch.arange(n).flip(0)  # indices out of order, in two batches
    for part in (order[:2], order[2:]):
        scorer.update(part, case.multi[part], [u[part] for u in case.unis], case.targets[part])
    scores = scorer.compute()
    report = scorer.last_report
    assert report is not None
    assert_matches(report, case.expected)
    assert_scores_described(report, scores)
    assert report.ema_score_quantiles == report.score_quantiles
    assert report.num_modalities == len(case.unis)
    assert report.dominant_modality == 0
    # plain numbers only, frozen
    for field in dataclasses.fields(report):
        value = getattr(report, field.name)
        items = value if isinstance(value, tuple) else (value,)
        assert all(type(x) in (int, float) for x in items), field.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.loss = 0.0  # type: ignore[misc]


def test_two_modalities_ratio_is_ogm_ge():
    """OGM-GE's ratio of modality a: sum of softmax(a)[y] over sum of softmax(v)[y]."""
    case = CASES["two"]()
    scorer = BalanceScorer(5)
    scorer.update(torch.arange(5), case.multi, case.unis, case.targets)
    scorer.compute()
    report = scorer.last_report
    assert report is not None
    p = [torch.softmax(u, dim=1)[:, 0].sum().item() for u in case.unis]
    assert report.confidence_ratio == pytest.approx((p[0] / p[1], p[1] / p[0]))
    assert report.imbalance_ratio == pytest.approx(max(p) / min(p))


def test_each_sample_counts_once_whatever_its_updates():
    """A sample updated twice contributes the mean of its two updates, as its score does."""
    case = CASES["two"]()
    scorer = BalanceScorer(5)
    scorer.update(torch.arange(5), case.multi, case.unis, case.targets)
    # sample 0 again, its fused head now wrong (softmax [1/4, 3/4]) and audio wrong too
    wrong = case.multi[3:4]
    scorer.update([0], wrong, [wrong, case.unis[1][:1]], case.targets[:1])
    scorer.compute()
    report = scorer.last_report
    assert report is not None
    assert report.multimodal_accuracy == pytest.approx((3 + 0.5) / 5)
    assert report.multimodal_confidence == pytest.approx((3 * 0.75 + 0.25 + 0.5) / 5)
    assert report.unimodal_accuracy == pytest.approx(((3 + 0.5) / 5, 1 / 5))


def test_deferred_checks_give_the_same_report(monkeypatch):
    """The path for accelerators and process groups masks nothing when every value is valid."""
    case = CASES["three"]()
    eager = BalanceScorer(4)
    eager.update(torch.arange(4), case.multi, case.unis, case.targets)
    eager.compute()
    monkeypatch.setattr(BalanceScorer, "check_eagerly", staticmethod(lambda device: False))
    deferred = BalanceScorer(4)
    deferred.update(torch.arange(4), case.multi, case.unis, case.targets)
    deferred.compute()
    assert deferred.last_report == eager.last_report


def test_report_dtype_and_float32_logits():
    case = CASES["two"]()
    scorer = BalanceScorer(5)
    scorer.update(torch.arange(5), case.multi.float(), [u.float() for u in case.unis], case.targets)
    scorer.compute()
    assert scorer.last_report is not None
    for name, value in case.expected.items():
        assert getattr(scorer.last_report, name) == pytest.approx(value, rel=1e-6), name


def test_score_dataset_returns_the_report(model, dataset):
    scores, report = score_dataset(
        model, DataLoader(dataset, batch_size=8), len(dataset), progress=False, return_report=True
    )
    assert torch.equal(
        scores, score_dataset(model, DataLoader(dataset, batch_size=8), 40, progress=False)
    )
    model.eval()
    with torch.no_grad():
        multi, unis = model(dataset.a, dataset.v)
    y = dataset.y
    accuracy = [(z.argmax(1) == y).double().mean().item() for z in (multi, *unis)]
    confidence = [torch.softmax(z.double(), 1)[torch.arange(40), y].mean().item() for z in unis]
    assert report.multimodal_accuracy == pytest.approx(accuracy[0])
    assert report.unimodal_accuracy == pytest.approx(accuracy[1:])
    assert report.unimodal_confidence == pytest.approx(confidence, rel=1e-6)
    assert_scores_described(report, scores)


def test_one_all_reduce_carries_the_report(model, dataset, monkeypatch):
    calls = []
    real = _dist.all_reduce_sum_
    monkeypatch.setattr(_dist, "all_reduce_sum_", lambda t: calls.append(t.numel()) or real(t))
    score_dataset(model, DataLoader(dataset, batch_size=8), 40, progress=False, return_report=True)
    # 5 score rows, then correct and confidence of 3 heads (fused + 2), then 3 scalars
    assert calls == [(5 + 2 * 3) * 40 + 3]


@pytest.mark.parametrize("cls", [LearnedBalanceSampler, HeuristicCurriculumSampler])
def test_samplers_keep_the_last_report(model, dataset, cls):
    sampler = cls(dataset)
    assert sampler.last_report is None
    loader = DataLoader(dataset, batch_size=8)
    first = sampler.update_scores(model, loader, progress=False)
    report = sampler.last_report
    assert report is not None
    assert report.ema_score_quantiles == report.score_quantiles  # first scores: no EMA yet
    with torch.no_grad():  # move the model so that the second scores differ
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    newest = sampler.update_scores(model, loader, progress=False)
    second = sampler.last_report
    assert second is not None and second != report
    new_scores = score_dataset(model, loader, 40, progress=False)
    assert_scores_described(second, new_scores)
    in_use = np.quantile(newest.double().numpy(), QUANTILE_LEVELS).tolist()
    assert second.ema_score_quantiles == pytest.approx(in_use, abs=1e-6)
    if cls is LearnedBalanceSampler:  # Eq. 9: (1 - beta) s_old + beta s_new
        assert torch.allclose(newest, 0.4 * first + 0.6 * new_scores, atol=1e-6)
        assert second.ema_score_quantiles != pytest.approx(second.score_quantiles)
    else:
        assert second.ema_score_quantiles == pytest.approx(second.score_quantiles, abs=1e-6)
    # scores without a report forget it; a checkpoint does not carry it
    sampler.set_scores(new_scores)
    assert sampler.last_report is None
    sampler.set_scores(new_scores, report=second)
    fresh = cls(dataset)
    fresh.load_state_dict(sampler.state_dict())
    assert fresh.last_report is None


def test_online_scoring_passes_the_report_to_the_sampler(model, dataset):
    sampler = LearnedBalanceSampler(dataset)
    sampler.update_scores(model, DataLoader(dataset, batch_size=8), progress=False)
    sampler.set_epoch(0)
    scorer = BalanceScorer(len(dataset))
    for batch in DataLoader(dataset, batch_size=8, sampler=sampler):
        with torch.no_grad():
            multi, unis = model(batch["a"], batch["v"])
        scorer.update(batch["index"], multi, unis, batch["target"])
    newest = sampler.set_scores(scorer.compute(), report=scorer.last_report)
    scorer.reset()
    assert scorer.last_report is not None  # reset() keeps the report of the finished pass
    report = sampler.last_report
    assert report is not None
    assert dataclasses.replace(report, ema_score_quantiles=()) == dataclasses.replace(
        scorer.last_report, ema_score_quantiles=()
    )
    want = np.quantile(newest.double().numpy(), QUANTILE_LEVELS).tolist()
    assert report.ema_score_quantiles == pytest.approx(want, abs=1e-6)


def test_set_scores_refuses_a_foreign_report(dataset):
    case = CASES["two"]()
    scorer = BalanceScorer(5)
    scorer.update(torch.arange(5), case.multi, case.unis, case.targets)
    scorer.compute()
    sampler = LearnedBalanceSampler(dataset)
    with pytest.raises(ValueError, match=r"^report must be a BalanceReport of 40 samples"):
        sampler.set_scores(torch.zeros(40), report=scorer.last_report)
    with pytest.raises(ValueError, match=r"^report must be a BalanceReport of 40 samples"):
        sampler.set_scores(torch.zeros(40), report={"loss": 1.0})  # type: ignore[arg-type]
    assert sampler.scores is None  # nothing was set


def test_state_dict_keeps_the_report_rows():
    case = CASES["three"]()
    s = BalanceScorer(4)
    s.update(torch.arange(2), case.multi[:2], [u[:2] for u in case.unis], case.targets[:2])
    state = s.state_dict()
    assert state["correct"].shape == state["confidence"].shape == (4, 4)  # 1 + M heads, N
    t = BalanceScorer(4)
    t.load_state_dict(state)
    for x in (s, t):
        x.update(torch.arange(2, 4), case.multi[2:], [u[2:] for u in case.unis], case.targets[2:])
        x.compute()
    assert t.last_report == s.last_report
    assert t.last_report is not None
    assert_matches(t.last_report, case.expected)
    with pytest.raises(ValueError, match="saved with 3 modalities, this scorer has num_modal"):
        BalanceScorer(4, num_modalities=2).load_state_dict(state)
    bad = {**state, "confidence": state["confidence"][:2]}
    with pytest.raises(ValueError, match=r"^state_dict\['correct'\] and state_dict\['confidence"):
        BalanceScorer(4).load_state_dict(bad)


def test_state_without_report_rows_reports_nan_until_reset():
    """A checkpoint from before reports were kept still scores; its report is unknown."""
    case = CASES["two"]()
    s = BalanceScorer(5)
    s.update(torch.arange(3), case.multi[:3], [u[:3] for u in case.unis], case.targets[:3])
    old = {k: v for k, v in s.state_dict().items() if k not in ("correct", "confidence")}
    t = BalanceScorer(5)
    t.load_state_dict(old)
    t.update(torch.arange(3, 5), case.multi[3:], [u[3:] for u in case.unis], case.targets[3:])
    scores = t.compute()
    s.update(torch.arange(3, 5), case.multi[3:], [u[3:] for u in case.unis], case.targets[3:])
    assert torch.equal(scores, s.compute())
    report = t.last_report
    assert report is not None
    assert math.isnan(report.multimodal_accuracy) and math.isnan(report.unimodal_accuracy[1])
    assert report.similarity == pytest.approx(case.expected["similarity"])  # from the score rows
    full = {k: v for k, v in s.state_dict().items() if k not in ("correct", "confidence")}
    u = BalanceScorer(5)
    u.load_state_dict(full)  # no update since: the number of modalities is unknown
    assert torch.equal(u.compute(), scores)
    assert u.last_report is None
    t.reset()
    t.update(torch.arange(5), case.multi, case.unis, case.targets)
    t.compute()
    assert t.last_report is not None
    assert_matches(t.last_report, case.expected)


def test_modalities_must_not_change():
    case = CASES["three"]()
    s = BalanceScorer(4)
    s.update(torch.arange(2), case.multi[:2], [u[:2] for u in case.unis], case.targets[:2])
    with pytest.raises(ValueError, match=r"^unimodal_logits must hold 3 modalities \(from earl"):
        s.update([2], case.multi[2:3], [u[2:3] for u in case.unis[:2]], case.targets[2:3])
    s.reset()
    s.update([2], case.multi[2:3], [u[2:3] for u in case.unis[:2]], case.targets[2:3])  # new M
    t = BalanceScorer(4, num_modalities=2)
    with pytest.raises(ValueError, match=r"^unimodal_logits must hold 2 modalities \(from num_mo"):
        t.update(torch.arange(4), case.multi, case.unis, case.targets)
    with pytest.raises(ValueError, match=r"^num_modalities must be an int >= 2, got 1$"):
        BalanceScorer(4, num_modalities=1)


def test_as_dict_and_summary():
    case = CASES["two"]()
    s = BalanceScorer(5)
    s.update(torch.arange(5), case.multi, case.unis, case.targets)
    s.compute()
    report = s.last_report
    assert report is not None
    row = report.as_dict(["audio", "video"])
    assert row["audio_accuracy"] == pytest.approx(0.8) and row["video_accuracy"] == 0.2
    assert row["audio_confidence_ratio"] == pytest.approx(13 / 7)
    assert row["score_q50"] == report.score_quantiles[3]
    assert row["ema_score_q100"] == report.ema_score_quantiles[-1]
    assert [row[f"score_bin{k}"] for k in range(HISTOGRAM_BINS)] == list(report.score_histogram)
    assert "modality1_accuracy" in report.as_dict()
    with pytest.raises(ValueError, match=r"^names must name the 2 modalities of the report"):
        report.as_dict(["audio"])
    text = str(report)
    assert text.startswith("balance report over 5 samples")
    assert "modality0  accuracy  80.00%  confidence 0.650  ratio 1.86" in text
    assert "imbalance ratio 1.86 (strongest: modality0)" in text
    assert "audio" in report.summary(["audio", "video"])


def test_an_idle_rank_without_num_modalities_raises_before_the_all_reduce(monkeypatch):
    """It cannot size its share of the buffer; joining with a wrong size would corrupt the sum."""
    calls = []
    monkeypatch.setattr(_dist, "is_distributed", lambda: True)
    monkeypatch.setattr(_dist, "all_reduce_sum_", lambda t: calls.append(t.numel()) or t)
    with pytest.raises(RuntimeError, match=r"pass num_modalities=M to BalanceScorer on every"):
        BalanceScorer(5).compute()
    assert calls == []
    with pytest.raises(CoverageError, match="all 5 samples were never updated"):
        BalanceScorer(5, num_modalities=2).compute()  # joins: (5 + 2 * 3) * 5 + 3 values
    assert calls == [(5 + 2 * 3) * 5 + 3]
