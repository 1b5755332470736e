from __future__ import annotations

import gc
import math
import re
import weakref
from fractions import Fraction

import numpy as np
import pytest
import torch

from bss_sampler import BalanceScorer, CoverageError
from bss_sampler.functional import balance_loss, balance_score, balance_terms, prediction_similarity


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


@pytest.fixture(params=["eager", "deferred"])
def check_path(request, monkeypatch):
    """Both ways an invalid value is reported: at the faulty batch (CPU, no process group) and by
    compute() (accelerators, process groups), forced here on the CPU."""
    if request.param == "deferred":
        monkeypatch.setattr(BalanceScorer, "check_eagerly", staticmethod(lambda device: False))
    return request.param


def _error(check_path, scorer, *args):
    """The error an invalid update gets on ``check_path``: from update() or from compute()."""
    with pytest.raises(ValueError) as info:
        scorer.update(*args)
        assert check_path == "deferred", "the eager path must raise in update()"
        scorer.compute()
    return str(info.value)


NONFINITE = r"^logits contain NaN or inf for 1 samples \(dataset indices \[12\]\); the balance score needs finite multimodal and unimodal logits$"
BAD_TARGET = r"^targets must lie in \[0, 2\] for logits with 3 classes, but 2 samples had a target outside \(dataset indices \[1, 3\]\)$"
BAD_INDEX = r"^indices must lie in \[0, 5\] \(num_samples=6\), but 2 indices passed to update\(\) lay outside$"


@pytest.mark.parametrize("where", ["multi", "uni"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_logits(check_path, where, value):
    multi, unis, y = _batch()
    (multi if where == "multi" else unis[1])[2, 0] = value
    message = _error(check_path, BalanceScorer(20), torch.arange(10, 16), multi, unis, y)
    assert re.match(NONFINITE, message), message


def test_labels_out_of_range(check_path):
    multi, unis, _ = _batch()
    y = torch.tensor([0, 3, 1, -1, 0, 0])
    message = _error(check_path, BalanceScorer(6), torch.arange(6), multi, unis, y)
    assert re.match(BAD_TARGET, message), message


def test_indices_out_of_range(check_path):
    multi, unis, y = _batch()
    idx = torch.tensor([0, 1, 2, 3, -1, 6])
    message = _error(check_path, BalanceScorer(6), idx, multi, unis, y)
    assert re.match(BAD_INDEX, message), message


def test_one_message_per_mistake_on_both_paths(monkeypatch):
    """The same mistake is worded identically whether update() or compute() reports it."""
    multi, unis, y = _batch()
    multi[4, 1] = float("nan")
    y = torch.tensor([0, 1, 2, 5, 0, 1])
    cases = [
        (torch.arange(6), multi, unis, y.clamp(max=2)),
        (torch.arange(6), multi.nan_to_num(), unis, y),
        (torch.tensor([0, 1, 2, 3, 4, 7]), multi, unis, y),
    ]
    for args in cases:
        eager = _error("eager", BalanceScorer(6), *args)
        with monkeypatch.context() as m:
            m.setattr(BalanceScorer, "check_eagerly", staticmethod(lambda device: False))
            deferred = _error("deferred", BalanceScorer(6), *args)
        assert eager == deferred


def test_deferred_errors_keep_bad_samples_out_of_the_sums(monkeypatch):
    """Invalid updates are counted, not added; a clean pass after reset() scores normally."""
    monkeypatch.setattr(BalanceScorer, "check_eagerly", staticmethod(lambda device: False))
    multi, unis, y = _batch()
    ref = BalanceScorer(6)
    ref.update(torch.arange(6), multi, unis, y)
    s = BalanceScorer(6)
    bad = multi.clone()
    bad[1, 0] = float("nan")
    s.update(torch.arange(6), bad, unis, y)
    with pytest.raises(ValueError, match=r"NaN or inf for 1 samples \(dataset indices \[1\]\)"):
        s.compute()
    s.reset()
    s.update(torch.arange(6), multi, unis, y)
    assert torch.equal(s.compute(), ref.compute())


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
        ({"num_samples": 0}, r"^num_samples must be an int >= 1, got 0$"),
        ({"num_samples": True}, r"^num_samples must be an int >= 1, got True \(bool\)$"),
        ({"num_samples": 3.0}, r"^num_samples must be an int >= 1, got 3.0$"),
        ({"alpha": 1.5}, r"^alpha must lie in \[0, 1\], got 1.5$"),
        ({"alpha": True}, r"^alpha must be a real number in \[0, 1\], got True \(bool\)$"),
        ({"alpha": None}, r"^alpha must be a real number in \[0, 1\], got None$"),
        ({"alpha": "0.5"}, r"^alpha must be a real number in \[0, 1\], got '0.5' \(str\)$"),
        ({"alpha": float("nan")}, r"^alpha must lie in \[0, 1\], got nan$"),
        ({"criteria": ()}, r"^criteria must be a non-empty subset .* got \(\)$"),
        ({"criteria": ("sim",)}, r"^criteria must be .* got \('sim',\)$"),
        ({"criteria": None}, r"^criteria must be a non-empty subset .* got None$"),
        ({"criteria": ("loss", "loss")}, r"^criteria must be .* got \('loss', 'loss'\)$"),
        ({"criteria": [1]}, r"^criteria must be .* got \[1\]$"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BalanceScorer(**{"num_samples": 3, **kwargs})


@pytest.mark.parametrize(
    "alpha", [np.float32(0.25), np.float64(0.25), torch.tensor(0.25), 0.25, Fraction(1, 4)]
)
def test_numpy_and_tensor_scalars_are_accepted(alpha):
    """As PyTorch accepts them; stored as a plain float."""
    s = BalanceScorer(np.int64(6), alpha=alpha, criteria=["loss", "similarity"])
    assert s.alpha == 0.25 and type(s.alpha) is float and s.num_samples == 6
    assert s.criteria == ("loss", "similarity")
    multi, unis, y = _batch()
    s.update(torch.arange(6), multi, unis, y)
    want = balance_score(prediction_similarity(unis), balance_loss(multi, unis, y, 0.25))
    assert torch.allclose(s.compute(), want, atol=1e-6)


def test_lists_for_indices_and_targets():
    multi, unis, y = _batch()
    ref = BalanceScorer(6)
    ref.update(torch.arange(6), multi, unis, y)
    s = BalanceScorer(6)
    s.update(list(range(6)), multi, unis, y.tolist())
    assert torch.equal(s.compute(), ref.compute())


def test_bool_mask_as_indices_is_refused():
    multi, unis, y = _batch()
    mask = torch.tensor([True, False, True, True, False, True])
    with pytest.raises(
        ValueError,
        match=r"^indices must hold integers, got a bool tensor of shape \(6,\) \(a mask\?\)",
    ):
        BalanceScorer(6).update(mask, multi, unis, y)
    with pytest.raises(ValueError, match=r"^targets must hold integers, got a bool tensor"):
        BalanceScorer(6).update(torch.arange(6), multi, unis, mask)


def test_single_class_is_refused():
    multi, unis, _ = _batch(classes=1)
    with pytest.raises(ValueError, match=r"at least 2 classes, got shape \(6, 1\)"):
        BalanceScorer(6).update(torch.arange(6), multi, unis, torch.zeros(6, dtype=torch.long))


def test_stacked_unimodal_must_be_modalities_first_and_unambiguous():
    multi, unis, y = _batch(n=4, modalities=4)
    stacked = torch.stack(unis)  # (M, B, C) with M == B == 4
    with pytest.raises(ValueError, match=r"tensor of shape \(4, 4, 3\) is ambiguous.*pass a list"):
        BalanceScorer(4).update(torch.arange(4), multi, stacked, y)
    multi, unis, y = _batch(n=5, modalities=2)
    batch_first = torch.stack(unis, dim=1)  # (B, M, C): refused, not read as (M, B, C)
    with pytest.raises(
        ValueError, match=r"\(modalities, batch, classes\) with batch = 5, got \(5, 2, 3\)"
    ):
        BalanceScorer(5).update(torch.arange(5), multi, batch_first, y)
    ref, s = BalanceScorer(5), BalanceScorer(5)
    ref.update(torch.arange(5), multi, unis, y)
    s.update(torch.arange(5), multi, torch.stack(unis), y)
    assert torch.equal(s.compute(), ref.compute())


def test_wrong_kinds_of_logits():
    multi, unis, y = _batch()
    with pytest.raises(
        TypeError, match=r"multimodal_logits must be a \(batch, classes\) tensor, got list"
    ):
        BalanceScorer(6).update(torch.arange(6), multi.tolist(), unis, y)
    with pytest.raises(TypeError, match=r"unimodal_logits\[1\] must be a tensor, got list"):
        BalanceScorer(6).update(torch.arange(6), multi, [unis[0], unis[1].tolist()], y)
    with pytest.raises(TypeError, match=r"unimodal_logits must be a list or tuple .* got NoneType"):
        BalanceScorer(6).update(torch.arange(6), multi, None, y)
    with pytest.raises(
        ValueError, match=r"unimodal_logits\[0\] must hold floating-point logits, got torch.int64"
    ):
        BalanceScorer(6).update(torch.arange(6), multi, [unis[0].long(), unis[1]], y)


def test_finite_float64_logits_beyond_float32_range():
    """1e39 is finite in float64 (inf in float32): scored in float64, not reported as inf."""
    big = 1e39
    multi = torch.zeros(3, 2, dtype=torch.float64)
    a = torch.tensor([[big, 0.0], [0.0, 0.0], [0.0, big]], dtype=torch.float64)
    v = torch.tensor([[big, 0.0]] * 3, dtype=torch.float64)
    y = torch.tensor([0, 0, 1])
    sim, loss = balance_terms(multi, [a, v], y, 0.2)
    assert sim.dtype == loss.dtype == torch.float64
    assert loss[2].item() == pytest.approx(0.8 * math.log(2) + 0.2 * big)
    scorer = BalanceScorer(3)
    scorer.update(torch.arange(3), multi, [a, v], y)
    assert scorer.compute().tolist() == pytest.approx([1.0, 1 / math.sqrt(2), -1.0], abs=1e-6)


def test_logits_carrying_gradients_are_detached():
    """Online scoring passes the training logits: no graph may be kept alive by the scorer."""
    multi, unis, y = _batch()
    w = torch.randn(3, 3, requires_grad=True)
    hidden = multi @ w  # saved by the product below: alive as long as the graph is
    alive = weakref.ref(hidden)
    logits = hidden * hidden
    s = BalanceScorer(6)
    s.update(torch.arange(6), logits, [u @ w for u in unis], y)
    del hidden, logits
    gc.collect()
    assert alive() is None
    scores = s.compute()
    assert not scores.requires_grad and scores.grad_fn is None
    assert not any(t.requires_grad for t in s.state_dict().values() if isinstance(t, torch.Tensor))


def test_compute_can_return_visits():
    multi, unis, y = _batch()
    s = BalanceScorer(8)
    s.update(torch.arange(6), multi, unis, y)
    s.update(torch.tensor([0, 6, 7, 0, 6, 7]), multi, unis, y)
    scores, visits = s.compute(return_visits=True)
    assert visits.dtype == torch.int64 and visits.tolist() == [3, 1, 1, 1, 1, 1, 2, 2]
    assert torch.equal(scores, s.compute())


def test_empty_batches_and_no_update():
    multi, unis, _ = _batch()
    s = BalanceScorer(6)
    s.update([], multi[:0], [u[:0] for u in unis], [])
    with pytest.raises(
        CoverageError,
        match="all 6 samples were never updated: compute.. was called before any update",
    ):
        s.compute()


def test_state_dict_has_named_rows_and_reads_the_old_layout():
    multi, unis, y = _batch()
    s = BalanceScorer(6)
    s.update(torch.arange(6), multi, unis, y)
    state = s.state_dict()
    assert {"similarity", "loss", "visits", "nonfinite", "bad_target", "bad_index"} <= set(state)
    assert state["visits"].tolist() == [1.0] * 6
    old = {k: state[k] for k in ("num_samples", "alpha", "criteria", "bad_index")}
    old["buffer"] = torch.stack(
        [state[k] for k in ("similarity", "loss", "visits", "nonfinite", "bad_target")]
    )
    t = BalanceScorer(6)
    t.load_state_dict(old)
    assert torch.equal(t.compute(), s.compute())
    with pytest.raises(ValueError, match=r"state_dict\['loss'\] must be a tensor of shape \(6,\)"):
        BalanceScorer(6).load_state_dict({**state, "loss": torch.zeros(5)})


@pytest.mark.parametrize("chunk", [1, 40, 1 << 22])
def test_pending_batches_give_the_same_scores_whenever_they_are_flushed(monkeypatch, chunk):
    """update() copies batches; the maths runs per chunk of logits. The chunking is invisible."""
    multi, unis, y = _batch(n=30, modalities=3, seed=4)
    want = balance_score(prediction_similarity(unis), balance_loss(multi, unis, y, 0.2))
    monkeypatch.setattr(BalanceScorer, "_chunk_elements", chunk)
    s = BalanceScorer(30)
    for part in (slice(0, 7), slice(7, 8), slice(8, 30)):
        s.update(torch.arange(30)[part], multi[part], [u[part] for u in unis], y[part])
    assert torch.allclose(s.compute(), want, atol=1e-6)
    assert len(s._pending) == 0  # compute() ran every pending batch


def test_pending_batches_are_copies():
    """Logits changed in place after update() (a reused output buffer) do not change the scores."""
    multi, unis, y = _batch()
    ref = BalanceScorer(6)
    ref.update(torch.arange(6), multi, unis, y)
    s = BalanceScorer(6)
    idx = torch.arange(6)
    s.update(idx, multi, unis, y)
    for t in (multi, *unis, y, idx):
        t.zero_()
    assert torch.equal(s.compute(), ref.compute())


def test_updates_inside_and_outside_inference_mode():
    multi, unis, y = _batch()
    s = BalanceScorer(12)
    with torch.inference_mode():
        s.update(torch.arange(6), multi, unis, y)
    w = torch.ones((), requires_grad=True)
    s.update(torch.arange(6, 12), multi * w, [u * w for u in unis], y)
    assert s.compute().shape == (12,)


# A state written by the scorer of bss-sampler's main branch before its state was declared once
# (float64 rows; N = 5, two modalities, sample 2 updated twice), with what it computed then.
_MAIN_STATE = {
    "num_samples": 5,
    "alpha": 0.3,
    "criteria": "similarity,loss",
    "similarity": torch.tensor(
        [
            0.6308932900428772,
            0.8109385371208191,
            1.7107018828392029,
            0.7619310617446899,
            0.7923893332481384,
        ],
        dtype=torch.float64,
    ),
    "loss": torch.tensor(
        [
            2.2613890171051025,
            1.5645633935928345,
            3.6845134496688843,
            1.1066921949386597,
            1.7547800540924072,
        ],
        dtype=torch.float64,
    ),
    "visits": torch.tensor([1.0, 1.0, 2.0, 1.0, 1.0], dtype=torch.float64),
    "nonfinite": torch.zeros(5, dtype=torch.float64),
    "bad_target": torch.zeros(5, dtype=torch.float64),
    "bad_index": 0,
    "classes": 3,
    "correct": torch.tensor(
        [[0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]],
        dtype=torch.float64,
    ),
    "confidence": torch.tensor(
        [
            [
                0.31320810317993164,
                0.3568585515022278,
                0.6406238675117493,
                0.7513653039932251,
                0.17248086631298065,
            ],
            [
                0.1749744862318039,
                0.17598466575145721,
                1.0831762552261353,
                0.1613907366991043,
                0.3991646468639374,
            ],
            [
                0.045679252594709396,
                0.3417932987213135,
                0.4526696605607867,
                0.301787406206131,
                0.4359949231147766,
            ],
        ],
        dtype=torch.float64,
    ),
}
_MAIN_SCORES = [-1.0, 0.4056052267551422, 0.3629803955554962, 0.58379727602005, 0.15823213756084442]


def test_loads_a_state_written_by_the_previous_layout():
    """Checkpoints of the hand-listed state keep loading and computing what they computed."""
    s = BalanceScorer(5, alpha=0.3)
    s.load_state_dict(_MAIN_STATE)
    assert torch.allclose(s.compute(), torch.tensor(_MAIN_SCORES), atol=1e-6)
    report = s.last_report
    assert report is not None
    assert report.unimodal_accuracy == pytest.approx((0.1, 0.1))
    assert report.unimodal_confidence == pytest.approx((0.2906205326318741, 0.2703179421834648))
    assert report.multimodal_accuracy == pytest.approx(0.2)
    assert report.similarity == pytest.approx(0.7703006327152252)
    assert report.loss == pytest.approx(1.7059362769126891)
    again = BalanceScorer(5, alpha=0.3)
    again.load_state_dict(s.state_dict())  # and the new state dict round-trips
    assert torch.equal(again.compute(), s.compute())
    with pytest.raises(ValueError, match=r"state_dict\['visits'\] must be a tensor of shape"):
        BalanceScorer(5, alpha=0.3).load_state_dict({**_MAIN_STATE, "visits": None})


def test_state_is_declared_once():
    """state_dict, reset and the one all-reduce cover exactly the declared states."""
    multi, unis, y = _batch()
    s = BalanceScorer(6)
    s.update(torch.arange(6), multi, unis, y)
    rows = {"visits", "similarity", "loss", "correct", "confidence", "nonfinite", "bad_target"}
    assert set(s.state_dict()) == rows | {"bad_index", "classes", "reporting"} | {
        "num_samples",
        "alpha",
        "criteria",
    }
    assert s.state("correct").shape == (3, 6)
    s.reset()
    assert not s.allocated and s.state_dict().keys() == {"num_samples", "alpha", "criteria"}


@pytest.mark.parametrize("chunk", [1, 4, 5, 1 << 18])
def test_compute_in_chunks_is_exact(monkeypatch, chunk):
    """compute() works through the samples in chunks (its memory bound); the scores and the
    report are those of one pass over all of them."""
    multi, unis, y = _batch(n=30, modalities=3, seed=4)
    ref = BalanceScorer(30)
    ref.update(torch.arange(30), multi, unis, y)
    want = ref.compute()
    monkeypatch.setattr(BalanceScorer, "_chunk_samples", chunk)
    s = BalanceScorer(30)
    s.update(torch.arange(30), multi, unis, y)
    assert torch.equal(s.compute(), want)
    assert s.last_report == ref.last_report
