"""IPRM: Instantaneous Probe-and-Rebalance multimodal learning (Yang, Wu, Jiang, IJCAI 2025).

IPRM changes the *model* (a geodesic-mixup fusion head whose modality weights are re-balanced at
every step), not the order of the data, so it composes with every sampler:
``--method iprm --sampler learned`` trains IPRM in the BSS-L order. A training step is
``out = model(**inputs, rebalance=True)``, ``model.update_ema(out.weights)``, then
``iprm_loss(out, targets)`` (each script's ``training_step``).

Geodesic multimodal mixup (GMM) of two features with weight ``l`` of the first one: with
``u_a = z_a / ||z_a||``, ``u_b = z_b / ||z_b||`` and ``theta = arccos <u_a, u_b>``,

    GMM(z_a, z_b; l) = sin(l theta) / sin(theta) * u_a + sin((1 - l) theta) / sin(theta) * u_b,

the point a fraction ``1 - l`` of the way from ``u_a`` to ``u_b`` along the great circle (on the
unit sphere; ``l = 1`` gives ``u_a``, ``l = 0`` gives ``u_b``). Each training step runs the
encoders once, then

1. probes (no gradient, detached features) with the running weight ``l``:
   ``P_bar = softmax(h(GMM(z_a, z_b; l)))`` and, per modality over the batch ``T_t``,
   ``KL_m = sum_{i in T_t} KL(P_m,i || P_bar_i)`` with ``P_m = softmax(g_m(z_m))``;
2. sets the instantaneous weight ``w_a = KL_b / (KL_a + KL_b)``, ``w_b = 1 - w_a``;
3. learns under that balance: ``loss = CE(h(GMM(z_a, z_b; w_a)), y) + CE(g_a(z_a), y) +
   CE(g_b(z_b), y)``, one backward pass;
4. updates the running weight ``l <- alpha l + (1 - alpha) w_a`` (``alpha = 0.8``, ``l_0 = 0.5``).

Inference: ``h(GMM(z_a, z_b; l)) + g_a(z_a) + g_b(z_b)``, which is what
:func:`examples.common.evaluation.combine_logits` computes with ``predict="all"`` from the
``(multimodal, [unimodal...])`` pair that :class:`IPRMClassifier` returns.

With ``M >= 3`` modalities every unordered pair ``(i, j)``, ``i < j``, has its own mixup head
``h_ij`` and running weight ``l_ij`` (weight of modality ``i``; ``j`` gets ``1 - l_ij``). Each pair
is probed and re-balanced on its own, the loss sums ``CE`` over the pair heads and over the
unimodal heads, and the multimodal logits at inference are the *mean* of the pair heads' logits
(``(1 / P) sum_ij h_ij(GMM(z_i, z_j; l_ij))``, ``P = M (M - 1) / 2``), so that the fused term
keeps the weight of one head next to the ``M`` unimodal heads. For ``M = 2`` this is exactly the
two-modality method.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from examples.common.models import encoder_inputs

__all__ = [
    "IPRMClassifier",
    "IPRMOutput",
    "batch_kl",
    "geodesic_mixup",
    "iprm_loss",
    "rebalance_weight",
]


def geodesic_mixup(
    z_a: Tensor, z_b: Tensor, weight: Tensor | float, *, eps: float = 1e-4
) -> Tensor:
    """Geodesic multimodal mixup of ``(B, D)`` features; ``weight`` = ``l``, the share of ``z_a``.

    ``GMM = sin(l theta) / sin(theta) * u_a + sin((1 - l) theta) / sin(theta) * u_b`` with
    ``u = z / ||z||`` and ``theta = arccos <u_a, u_b>``; ``weight`` is a scalar or ``(B,)``.
    Returns float32 ``(B, D)`` on the unit sphere.

    Near-parallel features (``1 - cos theta < eps``) use the second-order expansion
    ``sin(l theta) / sin(theta) = l + l (1 - l^2) (1 - cos theta) / 3 + O(theta^4)``, which is
    exact in float32 there and keeps the gradient finite (``d arccos / d cos`` is infinite at
    ``cos = 1``). ``cos theta`` is clamped to ``>= -1 + eps``: antipodal features have no unique
    geodesic, and the clamp keeps the output and its gradient finite there.

    >>> u = torch.tensor([[1.0, 0.0]]); v = torch.tensor([[0.0, 2.0]])
    >>> geodesic_mixup(u, v, 0.5)
    tensor([[0.7071, 0.7071]])
    """
    u_a = F.normalize(z_a.float(), dim=-1)
    u_b = F.normalize(z_b.float(), dim=-1)
    lam = torch.as_tensor(weight, dtype=torch.float32, device=u_a.device)
    if lam.dim() == 1:
        lam = lam.unsqueeze(-1)
    cos = (u_a * u_b).sum(-1, keepdim=True).clamp(-1.0 + eps, 1.0)
    near = cos > 1.0 - eps
    # The exact branch only ever sees angles away from 0, so neither branch produces inf * 0.
    theta = torch.acos(torch.where(near, torch.zeros_like(cos), cos))
    sin_theta = torch.sin(theta)
    gap = 1.0 - cos  # theta^2 / 2 + O(theta^4)

    def coefficient(share: Tensor) -> Tensor:
        exact = torch.sin(share * theta) / sin_theta
        taylor = share + share * (1.0 - share * share) * gap / 3.0
        return torch.where(near, taylor, exact)

    return coefficient(lam) * u_a + coefficient(1.0 - lam) * u_b


def batch_kl(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """``sum_i sum_c P_ic (log P_ic - log Q_ic)`` over the batch, ``P, Q = softmax(logits)``.

    Float32 scalar: the probe's ``D_KL(P^m || P_bar; T_t)``.
    """
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum()


def rebalance_weight(kl_first: Tensor, kl_second: Tensor) -> Tensor:
    """Instantaneous weight of the first modality: ``w = KL_second / (KL_first + KL_second)``.

    The modality whose prediction the fused head already follows (small KL) gets the smaller
    share of the next fusion. ``0.5`` when both divergences are 0.
    """
    total = kl_first + kl_second
    return torch.where(total > 0, kl_second / total.clamp_min(1e-30), torch.full_like(total, 0.5))


class IPRMOutput(NamedTuple):
    """What ``IPRMClassifier(..., rebalance=True)`` returns for one training batch."""

    pair_logits: list[Tensor]  #: learn phase: ``h_ij(GMM(z_i, z_j; w_ij))`` per pair, with grad
    unimodal_logits: list[Tensor]  #: ``g_m(z_m)`` per modality, with grad
    weights: Tensor  #: float32 ``(P,)``: instantaneous ``w_ij`` of the probe
    probe_logits: Tensor  #: mean over pairs of ``h_ij(GMM(z_i, z_j; l_ij))``, no grad


class IPRMClassifier(nn.Module):
    """A late-fusion model whose fused head is IPRM's geodesic mixup, one head per modality pair.

    ``forward(**inputs) -> (multimodal_logits, [unimodal_logits, ...])`` like
    :class:`examples.common.models.LateFusionClassifier`, with multimodal logits the mean over
    pairs of ``h_ij(GMM(z_i, z_j; l_ij))`` at the running weights (see the module docstring), so
    BSS scoring and evaluation use an IPRM model unchanged. ``forward(rebalance=True, **inputs)``
    runs the encoders once and returns the probe and learn phases as an :class:`IPRMOutput`
    (through ``forward``, so that DDP sees it; under an initialised process group the per-pair
    divergences are summed over ranks, so every rank gets the weights of the global batch).

    ``encoders`` and ``heads`` are shared with the model they come from (not copied), so their
    state-dict keys are those of ``LateFusionClassifier``. Modalities of different feature widths
    are projected by a linear layer to ``fusion_dim`` (default: the largest width) before mixup.
    Buffer ``lambdas`` (float32 ``(P,)``, in ``state_dict``): the running weight ``l_ij`` of the
    first modality of each pair in :attr:`pairs`.
    """

    lambdas: Tensor

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        heads: Mapping[str, nn.Module],
        feature_dims: Mapping[str, int],
        num_classes: int,
        *,
        alpha: float = 0.8,
        initial_weight: float = 0.5,
        fusion_dim: int | None = None,
    ) -> None:
        super().__init__()
        if len(encoders) < 2:
            raise ValueError(f"encoders must hold at least 2 modalities, got {list(encoders)}")
        if set(heads) != set(encoders):
            raise ValueError(f"heads must name {sorted(encoders)}, got {sorted(heads)}")
        if set(feature_dims) != set(encoders):
            raise ValueError(
                f"feature_dims must name {sorted(encoders)}, got {sorted(feature_dims)}"
            )
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must lie in [0, 1), got {alpha}")
        if not 0.0 <= initial_weight <= 1.0:
            raise ValueError(f"initial_weight must lie in [0, 1], got {initial_weight}")
        if fusion_dim is not None and fusion_dim < 1:
            raise ValueError(f"fusion_dim must be >= 1, got {fusion_dim}")
        self.names = list(encoders)
        self.encoders = nn.ModuleDict(encoders)
        self.heads = nn.ModuleDict({k: heads[k] for k in self.names})
        width = fusion_dim if fusion_dim is not None else max(feature_dims.values())
        self.projections = nn.ModuleDict(
            {
                k: nn.Identity() if feature_dims[k] == width else nn.Linear(feature_dims[k], width)
                for k in self.names
            }
        )
        self.pairs = list(itertools.combinations(range(len(self.names)), 2))
        self.mixup_heads = nn.ModuleList(nn.Linear(width, num_classes) for _ in self.pairs)
        self.alpha = alpha
        self.register_buffer("lambdas", torch.full((len(self.pairs),), float(initial_weight)))

    @classmethod
    def from_model(cls, model: nn.Module, **kwargs: float | int | None) -> IPRMClassifier:
        """Wrap a ``LateFusionClassifier``-style model (``encoders`` and linear ``heads``).

        Its concat ``fusion_head`` is left out (IPRM replaces it); an ``IPRMClassifier`` is
        returned as is. ``kwargs`` go to the constructor.
        """
        if isinstance(model, IPRMClassifier):
            return model
        encoders = getattr(model, "encoders", None)
        heads = getattr(model, "heads", None)
        mappings = (Mapping, nn.ModuleDict)
        if not isinstance(encoders, mappings) or not isinstance(heads, mappings):
            raise TypeError(
                "IPRM needs a model with `encoders` and `heads` mappings (LateFusionClassifier), "
                f"got {type(model).__name__}"
            )
        if not all(isinstance(heads[k], nn.Linear) for k in encoders):
            raise TypeError(
                "IPRMClassifier.from_model reads feature widths from nn.Linear heads; build "
                "IPRMClassifier(encoders, heads, feature_dims, num_classes) directly instead"
            )
        dims = {k: heads[k].in_features for k in encoders}
        classes = heads[next(iter(encoders))].out_features
        return cls(encoders, heads, dims, classes, **kwargs)  # type: ignore[arg-type]

    def encode(self, inputs: Mapping[str, Tensor]) -> list[Tensor]:
        """One ``(B, D_m)`` feature per modality, in the order of ``encoders``."""
        return [self.encoders[k](*encoder_inputs(k, self.encoders[k], inputs)) for k in self.names]

    def pair_logits(self, features: Sequence[Tensor], weights: Tensor) -> list[Tensor]:
        """``h_ij(GMM(z_i, z_j; weights[p]))`` for each pair ``p = (i, j)`` of :attr:`pairs`."""
        projected = [self.projections[k](f) for k, f in zip(self.names, features)]
        return [
            head(geodesic_mixup(projected[i], projected[j], weights[p]))
            for p, ((i, j), head) in enumerate(zip(self.pairs, self.mixup_heads))
        ]

    @torch.no_grad()
    def probe(
        self, features: Sequence[Tensor], unimodal: Sequence[Tensor]
    ) -> tuple[Tensor, Tensor]:
        """Probe phase: ``(w, fused logits at l)``; ``w`` float32 ``(P,)``, nothing learns.

        ``w_ij = KL_j / (KL_i + KL_j)``, ``KL_m = sum_batch KL(P_m || P_bar_ij)`` and
        ``P_bar_ij = softmax(h_ij(GMM(z_i, z_j; l_ij)))``.
        """
        detached = [f.detach() for f in features]
        fused = self.pair_logits(detached, self.lambdas)
        kl = torch.stack(
            [
                torch.stack([batch_kl(unimodal[i], f), batch_kl(unimodal[j], f)])
                for (i, j), f in zip(self.pairs, fused)
            ]
        )  # (P, 2)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(kl)
        return rebalance_weight(kl[:, 0], kl[:, 1]), torch.stack(fused).mean(0)

    @torch.no_grad()
    def update_ema(self, weights: Tensor) -> None:
        """``l <- alpha l + (1 - alpha) w`` for every pair, in place."""
        self.lambdas.mul_(self.alpha).add_((1.0 - self.alpha) * weights.to(self.lambdas))

    def forward(
        self, *, rebalance: bool = False, **inputs: Tensor
    ) -> tuple[Tensor, list[Tensor]] | IPRMOutput:
        features = self.encode(inputs)
        unimodal = [self.heads[k](f) for k, f in zip(self.names, features)]
        if not rebalance:
            return torch.stack(self.pair_logits(features, self.lambdas)).mean(0), unimodal
        weights, probe_logits = self.probe(features, unimodal)
        return IPRMOutput(self.pair_logits(features, weights), unimodal, weights, probe_logits)


def iprm_loss(out: IPRMOutput, targets: Tensor) -> Tensor:
    """``sum_ij CE(h_ij(GMM(z_i, z_j; w_ij)), y) + sum_m CE(g_m(z_m), y)`` (batch means)."""
    logits = [*out.pair_logits, *out.unimodal_logits]
    return torch.stack([F.cross_entropy(z.float(), targets) for z in logits]).sum()
