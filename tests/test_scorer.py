from __future__ import annotations

import math

import pytest
import torch

from bss_sampler import BalanceScorer, CoverageError, balance_loss, prediction_similarity
from bss_sampler.functional import balance_score


def _batch(n: int = 6, classes: int = 3, modalities: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    multi = torch.randn(n, classes, generator=g)
    unis = [torch.randn(n, classes, generator=g) for _ in range(modalities)]
    y = torch.randint(0, classes, (n,), generator=g)
    return multi, unis, y


def test_two_modalities_by_hand():
    """Three samples whose Eq. 6 scores are worked out on paper."""
    ln3 = math.log(3.0)
    multi = torch.zeros(3, 2)  # CE = ln 2 for everyone
    a = torch.tensor([[ln3, 0.0], [ln3, 0.0], [0.0, ln3]])  # softmax .75/.25
    v = torch.tensor([[ln3, 0.0], [0.0, 0.0], [ln3, 0.0]])
    y = torch.tensor([0, 0, 0])
    scorer = BalanceScorer(3, alpha=0.5)
    scorer.update(torch.tensor([2, 0, 1]), multi, [a, v], y)  # indices out of order on purpose
    # similarities: identical -> 1; [.75,.25]·[.5,.5] -> .5/(.7906*.7071) = .8944; mirrored -> .6
    sim = [1.0, 0.5 / (math.sqrt(0.625) * math.sqrt(0.5)), 0.375 / 0.625]
    ce75, ce50, ce25 = -math.log(0.75), math.log(2), -math.log(0.25)
    loss = [
        0.5 * ce50 + 0.5 * (ce75 + ce75),
        0.5 * ce50 + 0.5 * (ce75 + ce50),
        0.5 * ce50 + 0.5 * (ce25 + ce75),
    ]
    norm = lambda xs: [(x - min(xs)) / (max(xs) - min(xs)) for x in xs]  # noqa: E731
    want = [a - b for a, b in zip(norm(sim), norm(loss))]  # in batch order: indices 2, 0, 1
    got = scorer.compute()
    assert got.dtype == torch.float32 and got.device.type == "cpu"
    assert got[[2, 0, 1]].tolist() == pytest.approx(want, abs=1e-6)
    assert got[2].item() == pytest.approx(1.0)  # most similar, lowest loss
    assert got[1].item() == pytest.approx(-1.0)


def test_three_modalities_by_hand():
    ln3 = math.log(3.0)
    multi = torch.zeros(2, 2)
    a = torch.tensor([[ln3, 0.0], [ln3, 0.0]])
    v = torch.tensor([[ln3, 0.0], [ln3, 0.0]])
    d = torch.tensor([[ln3, 0.0], [0.0, ln3]])
    scorer = BalanceScorer(2, criteria=("similarity",))
    scorer.update(torch.arange(2), multi, [a, v, d], torch.tensor([0, 0]))
    assert scorer.compute().tolist() == pytest.approx([1.0, 0.0])
    raw = prediction_similarity([a, v, d])
    assert raw[1].item() == pytest.approx((1.0 + 0.6 + 0.6) / 3)


@pytest.mark.parametrize("criteria", [("similarity", "loss"), ("similarity",), ("loss",)])
def test_matches_functional_over_batches(criteria):
    multi, unis, y = _batch(10, modalities=3)
    scorer = BalanceScorer(10, alpha=0.3, criteria=criteria)
    for part in (slice(0, 4), slice(4, 10)):
        scorer.update(torch.arange(10)[part], multi[part], [u[part] for u in unis], y[part])
    want = balance_score(prediction_similarity(unis), balance_loss(multi, unis, y, 0.3), criteria)
    assert torch.allclose(scorer.compute(), want, atol=1e-6)


def test_accepts_stacked_and_mapping_unimodal():
    multi, unis, y = _batch()
    ref = BalanceScorer(6)
    ref.update(torch.arange(6), multi, unis, y)
    for form in (torch.stack(unis), {"audio": unis[0], "video": unis[1]}):
        s = BalanceScorer(6)
        s.update(torch.arange(6), multi, form, y)
        assert torch.equal(s.compute(), ref.compute())


def test_repeated_updates_average_and_reset():
    multi, unis, y = _batch()
    s = BalanceScorer(6)
    s.update(torch.arange(6), multi, unis, y)
    once = s.compute()
    s.update(torch.arange(6), multi, unis, y)
    assert torch.allclose(s.compute(), once)
    s.reset()
    with pytest.raises(RuntimeError, match="before any update"):
        s.compute()


def test_constant_criteria_give_zero():
    multi = torch.zeros(4, 3)
    unis = [torch.zeros(4, 3), torch.zeros(4, 3)]
    s = BalanceScorer(4)
    s.update(torch.arange(4), multi, unis, torch.tensor([0, 1, 2, 0]))
    assert torch.equal(s.compute(), torch.zeros(4))


def test_low_precision_logits():
    multi, unis, y = _batch()
    s = BalanceScorer(6)
    s.update(torch.arange(6), multi.bfloat16(), [u.bfloat16() for u in unis], y)
    assert s.compute().dtype == torch.float32


def test_state_dict_round_trip():
    multi, unis, y = _batch()
    s = BalanceScorer(6, alpha=0.4)
    s.update(torch.arange(3), multi[:3], [u[:3] for u in unis], y[:3])
    t = BalanceScorer(6, alpha=0.4)
    t.load_state_dict(s.state_dict())
    for x in (s, t):
        x.update(torch.arange(3, 6), multi[3:], [u[3:] for u in unis], y[3:])
    assert torch.equal(s.compute(), t.compute())
    with pytest.raises(ValueError, match="num_samples=6, this scorer has num_samples=7"):
        BalanceScorer(7, alpha=0.4).load_state_dict(s.state_dict())
    with pytest.raises(ValueError, match="alpha=0.4, this scorer has alpha=0.2"):
        BalanceScorer(6).load_state_dict(s.state_dict())


# -- errors -------------------------------------------------------------------------------------
def test_missing_samples_are_named():
    multi, unis, y = _batch()
    s = BalanceScorer(10)
    s.update(torch.arange(6), multi, unis, y)
    with pytest.raises(CoverageError, match=r"4 of 10 samples were never updated .*\[6, 7, 8, 9\]"):
        s.compute()


@pytest.mark.parametrize("where", ["multi", "uni"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_logits(where, value):
    multi, unis, y = _batch()
    (multi if where == "multi" else unis[1])[2, 0] = value
    name = "multimodal_logits" if where == "multi" else r"unimodal_logits\[1\]"
    with pytest.raises(ValueError, match=rf"{name} contain NaN or inf for 1 samples .*\[12\]"):
        BalanceScorer(20).update(torch.arange(10, 16), multi, unis, y)


def test_labels_out_of_range():
    multi, unis, _ = _batch()
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\] .* got \[3, -1\]"):
        BalanceScorer(6).update(torch.arange(6), multi, unis, torch.tensor([0, 3, 1, -1, 0, 0]))


def test_indices_out_of_range():
    multi, unis, y = _batch()
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 5\] .* got \[6\]"):
        BalanceScorer(6).update(torch.tensor([0, 1, 2, 3, 4, 6]), multi, unis, y)


def test_one_modality_is_refused():
    multi, unis, y = _batch()
    with pytest.raises(ValueError, match="at least 2 modalities, got 1"):
        BalanceScorer(6).update(torch.arange(6), multi, [unis[0]], y)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m, u, y, i: (m[:, :2], u, y, i), r"unimodal_logits\[0\] must have the shape"),
        (lambda m, u, y, i: (m[0], u, y, i), r"multimodal_logits must have shape \(batch, cl"),
        (lambda m, u, y, i: (m, u, y[:3], i), r"targets must be an integer tensor of shape \(6,\)"),
        (lambda m, u, y, i: (m, u, y.float(), i), r"targets must be an integer tensor"),
        (lambda m, u, y, i: (m, u, y, i[:5]), r"indices must be an integer tensor of shape \(6,\)"),
    ],
)
def test_wrong_shapes(change, match):
    multi, unis, y = _batch()
    m, u, t, i = change(multi, unis, y, torch.arange(6))
    with pytest.raises(ValueError, match=match):
        BalanceScorer(6).update(i, m, u, t)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_samples": 0}, "num_samples must be a positive int, got 0"),
        ({"num_samples": 3, "alpha": 1.5}, r"alpha must lie in \[0, 1\], got 1.5"),
        ({"num_samples": 3, "criteria": ()}, "criteria must be a non-empty subset"),
        ({"num_samples": 3, "criteria": ("sim",)}, r"criteria must be .* got \('sim',\)"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BalanceScorer(**kwargs)


def test_deferred_errors_path_masks_bad_samples(monkeypatch):
    """On an accelerator errors are counted and raised by compute(); emulate that path on CPU."""
    multi, unis, y = _batch()
    multi[1, 0] = float("nan")
    s = BalanceScorer(6)
    monkeypatch.setattr(BalanceScorer, "_check_eagerly", staticmethod(lambda device: False))
    s.update(torch.arange(6), multi, unis, y)
    with pytest.raises(ValueError, match=r"NaN or inf for 1 samples \(dataset indices \[1\]\)"):
        s.compute()
    s.reset()
    s.update(torch.tensor([0, 1, 2, 3, 4, 9]), multi.nan_to_num(), unis, y)
    with pytest.raises(ValueError, match=r"1 indices passed to update\(\) lay outside \[0, 5\]"):
        s.compute()
    s.reset()
    s.update(torch.arange(6), multi.nan_to_num(), unis, torch.tensor([0, 1, 2, 7, 0, 0]))
    with pytest.raises(ValueError, match=r"targets out of range .* for 1 samples .*\[3\]"):
        s.compute()
