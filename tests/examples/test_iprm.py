"""IPRM (examples/common/iprm.py): geodesic mixup, probe weights, EMA, one encoder pass, and the
scripts' training step under ``--method iprm``."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from examples import audio_video
from examples.common.evaluation import combine_logits
from examples.common.iprm import IPRMClassifier, batch_kl, geodesic_mixup, rebalance_weight
from examples.common.models import LateFusionClassifier, mlp_encoder


def late_fusion(
    dims: dict[str, int], width: dict[str, int], classes: int = 3
) -> LateFusionClassifier:
    encoders = {k: mlp_encoder(d, width[k], depth=1) for k, d in dims.items()}
    return LateFusionClassifier(encoders, width, classes)


def batch(dims: dict[str, int], n: int = 8, seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(n, d, generator=g) for k, d in dims.items()}


def iprm_step(
    model: nn.Module, inputs: dict[str, Tensor], targets: Tensor
) -> tuple[Tensor, Tensor]:
    """The scripts' training step under ``--method iprm``: ``(loss, multimodal logits)``."""
    batch = {**inputs, "target": targets, "index": torch.arange(len(targets))}
    args = argparse.Namespace(method="iprm")
    loss, multi, *_ = audio_video.training_step(model, model, batch, args, torch.device("cpu"))
    return loss, multi


def slerp64(a: Tensor, b: Tensor, lam: float | Tensor) -> Tensor:
    """Reference GMM in float64 with the plain formula (valid away from theta = 0)."""
    u, v = F.normalize(a.double(), dim=-1), F.normalize(b.double(), dim=-1)
    theta = torch.acos((u * v).sum(-1, keepdim=True))
    return (torch.sin(lam * theta) * u + torch.sin((1 - lam) * theta) * v) / torch.sin(theta)


# --- geodesic mixup --------------------------------------------------------------------------


def test_gmm_endpoints_are_the_normalised_features() -> None:
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    torch.testing.assert_close(geodesic_mixup(a, b, 1.0), F.normalize(a, dim=-1))
    torch.testing.assert_close(geodesic_mixup(a, b, 0.0), F.normalize(b, dim=-1))
    per_sample = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    expected = torch.where(per_sample[:, None] > 0, F.normalize(a, dim=-1), F.normalize(b, dim=-1))
    torch.testing.assert_close(geodesic_mixup(a, b, per_sample), expected)


def test_gmm_matches_slerp_and_stays_on_the_unit_sphere() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(64, 16, generator=g), torch.randn(64, 16, generator=g)
    b[:4] = 3.0 * a[:4] + 1e-4 * b[:4]  # near-parallel rows take the Taylor branch
    lam = torch.rand(64, generator=g)
    out = geodesic_mixup(a, b, lam)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        out[4:].double(), slerp64(a[4:], b[4:], lam[4:, None]), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("gap", [0.9e-4, 1.1e-4])  # either side of the Taylor threshold eps=1e-4
def test_gmm_is_accurate_on_both_sides_of_the_small_angle_branch(gap: float) -> None:
    theta = math.acos(1.0 - gap)
    a = torch.tensor([[1.0, 0.0, 0.0]])
    b = torch.tensor([[math.cos(theta), math.sin(theta), 0.0]])
    torch.testing.assert_close(
        geodesic_mixup(a, b, 0.3).double(), slerp64(a, b, 0.3), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["parallel", "antiparallel"])
def test_gmm_gradient_is_finite_for_parallel_and_antiparallel_features(sign: float) -> None:
    a = torch.randn(4, 6, requires_grad=True)
    b = (sign * 2.0 * a.detach()).requires_grad_()
    out = geodesic_mixup(a, b, torch.tensor([0.0, 0.3, 0.5, 1.0]))
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(out).all()
    assert a.grad is not None and torch.isfinite(a.grad).all()
    assert b.grad is not None and torch.isfinite(b.grad).all()
    if sign > 0:  # every point of the (zero-length) geodesic is the common direction
        torch.testing.assert_close(out, F.normalize(a.detach(), dim=-1).expand_as(out))


# --- probe weights and EMA -------------------------------------------------------------------


def test_rebalance_weight_on_hand_made_probabilities() -> None:
    p_a = torch.tensor([[0.9, 0.1], [0.8, 0.2]])
    p_v = torch.tensor([[0.6, 0.4], [0.5, 0.5]])
    p_bar = torch.tensor([[0.7, 0.3], [0.6, 0.4]])

    def kl(p: Tensor, q: Tensor) -> float:
        return math.fsum(
            pi * math.log(pi / qi)
            for row_p, row_q in zip(p, q)
            for pi, qi in zip(row_p.tolist(), row_q.tolist())
        )

    kl_a, kl_v = batch_kl(p_a.log(), p_bar.log()), batch_kl(p_v.log(), p_bar.log())
    assert kl_a.item() == pytest.approx(kl(p_a, p_bar), rel=1e-5)
    assert kl_v.item() == pytest.approx(kl(p_v, p_bar), rel=1e-5)
    w_a = rebalance_weight(kl_a, kl_v)
    assert w_a.item() == pytest.approx(kl(p_v, p_bar) / (kl(p_a, p_bar) + kl(p_v, p_bar)), rel=1e-5)
    # The modality the fused prediction already follows gets the smaller share.
    assert rebalance_weight(torch.tensor(0.0), torch.tensor(2.0)).item() == 1.0
    assert rebalance_weight(torch.tensor(2.0), torch.tensor(0.0)).item() == 0.0
    assert rebalance_weight(torch.tensor(0.0), torch.tensor(0.0)).item() == 0.5


def test_ema_update_and_checkpoint() -> None:
    model = IPRMClassifier.from_model(late_fusion({"a": 3, "v": 3}, {"a": 4, "v": 4}))
    torch.testing.assert_close(model.lambdas, torch.tensor([0.5]))
    model.update_ema(torch.tensor([1.0]))
    torch.testing.assert_close(model.lambdas, torch.tensor([0.8 * 0.5 + 0.2 * 1.0]))
    model.update_ema(torch.tensor([0.0]))
    torch.testing.assert_close(model.lambdas, torch.tensor([0.8 * 0.6]))
    fresh = IPRMClassifier.from_model(late_fusion({"a": 3, "v": 3}, {"a": 4, "v": 4}))
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh.lambdas, torch.tensor([0.48]))


def test_step_probes_with_the_running_weight_then_learns_with_the_instantaneous_one() -> None:
    torch.manual_seed(0)
    dims = {"a": 5, "v": 4}
    model = IPRMClassifier.from_model(late_fusion(dims, {"a": 6, "v": 6}))
    inputs, y = batch(dims), torch.randint(0, 3, (8,))
    with torch.no_grad():  # the two phases written out by hand
        feats = [enc(inputs[k]) for k, enc in model.encoders.items()]
        uni = [model.heads[k](f) for k, f in zip(model.names, feats)]
        probe = model.mixup_heads[0](geodesic_mixup(feats[0], feats[1], 0.5))
        kl_a, kl_v = batch_kl(uni[0], probe), batch_kl(uni[1], probe)
        w = (kl_v / (kl_a + kl_v)).item()
        learn = model.mixup_heads[0](geodesic_mixup(feats[0], feats[1], w))
        expected = sum(F.cross_entropy(z, y).item() for z in (learn, *uni))

    loss, multimodal = iprm_step(model, inputs, y)
    assert loss.detach().item() == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(multimodal, probe)
    assert not multimodal.requires_grad
    torch.testing.assert_close(model.lambdas, torch.tensor([0.8 * 0.5 + 0.2 * w]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_encoders_run_once_per_step() -> None:
    dims = {"a": 5, "v": 4, "t": 3}
    model = IPRMClassifier.from_model(late_fusion(dims, {"a": 6, "v": 6, "t": 6}))
    calls = {k: 0 for k in [*dims, "mixup"]}

    def counter(name: str):  # type: ignore[no-untyped-def]
        def hook(*_: object) -> None:
            calls[name] += 1

        return hook

    for k, enc in model.encoders.items():
        enc.register_forward_hook(counter(k))
    model.mixup_heads[0].register_forward_hook(counter("mixup"))
    iprm_step(model, batch(dims), torch.randint(0, 3, (8,)))[0].backward()
    assert calls == {"a": 1, "v": 1, "t": 1, "mixup": 2}  # heads: probe + learn; encoders: once


# --- model contract --------------------------------------------------------------------------


def test_trimodal_forward_averages_the_pairwise_heads() -> None:
    dims = {"a": 5, "v": 4, "t": 3}
    model = IPRMClassifier.from_model(late_fusion(dims, {"a": 6, "v": 8, "t": 6}))
    assert model.pairs == [(0, 1), (0, 2), (1, 2)] and model.lambdas.shape == (3,)
    assert isinstance(model.projections["a"], nn.Linear)  # widths differ: projected to 8
    model.eval()
    inputs = batch(dims)
    multi, uni = model(**inputs)
    assert multi.shape == (8, 3) and len(uni) == 3
    feats = model.encode(inputs)
    torch.testing.assert_close(multi, torch.stack(model.pair_logits(feats, model.lambdas)).mean(0))
    combine_logits(multi, uni, "all")  # evaluation's Eq. 12 rule = IPRM's inference rule
    out = model(rebalance=True, **inputs)
    assert len(out.pair_logits) == 3 and out.weights.shape == (3,)
    assert ((out.weights >= 0) & (out.weights <= 1)).all()


def test_wrapping_is_idempotent_and_keeps_the_base_keys() -> None:
    base = late_fusion({"a": 3, "v": 3}, {"a": 4, "v": 4})
    wrap = audio_video.METHODS["iprm"]  # the scripts' --method iprm
    wrapped = wrap(base)
    assert isinstance(wrapped, IPRMClassifier) and wrap(wrapped) is wrapped
    assert audio_video.METHODS["joint"](base) is base
    assert wrapped.encoders["a"] is base.encoders["a"]  # shared, not copied
    assert not any(k.startswith("fusion_head") for k in wrapped.state_dict())
    assert {k for k in base.state_dict() if not k.startswith("fusion_head")} < set(
        wrapped.state_dict()
    )


def test_errors() -> None:
    base = late_fusion({"a": 3, "v": 3}, {"a": 4, "v": 4})
    with pytest.raises(TypeError, match="`encoders` and `heads`"):
        IPRMClassifier.from_model(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\), got 1.0"):
        IPRMClassifier.from_model(base, alpha=1.0)
    with pytest.raises(ValueError, match="at least 2 modalities"):
        IPRMClassifier({"a": nn.Identity()}, {"a": nn.Linear(2, 2)}, {"a": 2}, 2)
