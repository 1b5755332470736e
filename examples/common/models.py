"""Late-fusion classifier: one encoder per modality, a concat head and one head per modality.

Both models follow SMV's model contract (`bss_sampler.smv`): ``forward(**inputs, mask=None)``
encodes every modality, zeroes the features of the modalities a ``(B, M)`` boolean ``mask`` drops
(`bss_sampler.smv.mask_features`) and only then fuses. `ConcatClassifier` also splits the
forward into `ConcatClassifier.encode` and `ConcatClassifier.fuse`, so that SMV's valuation
runs the encoders once and the fusion once per coalition (`bss_sampler.smv.coalition_logits`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bss_sampler.smv import mask_features

__all__ = [
    "ConcatClassifier",
    "LateFusionClassifier",
    "encode",
    "encoder_inputs",
    "joint_loss",
    "mlp_encoder",
    "xavier_heads",
]


class LateFusionClassifier(nn.Module):
    """``forward(**inputs) -> (multimodal_logits, [unimodal_logits, ...])``.

    Each encoder maps its modality to a ``(B, feature_dims[name])`` embedding. The multimodal
    head is a linear layer on the concatenated embeddings (paper Eq. 2 with ``g`` = concat); each
    unimodal head is a linear layer on that modality's embedding. Unimodal logits come in the
    order of ``encoders``. An encoder reads ``inputs[name]``, or the inputs named by its
    ``input_keys`` attribute (e.g. BERT's ``input_ids`` and ``attention_mask``), see
    :func:`encoder_inputs`. ``mask``: SMV's ``(B, M)`` boolean modality mask (module docstring);
    a dropped modality's features are zeros for the fused and its own head.
    """

    def __init__(
        self, encoders: Mapping[str, nn.Module], feature_dims: Mapping[str, int], num_classes: int
    ) -> None:
        super().__init__()
        if len(encoders) < 2:
            raise ValueError(f"encoders must hold at least 2 modalities, got {list(encoders)}")
        if set(feature_dims) != set(encoders):
            raise ValueError(
                f"feature_dims must name {sorted(encoders)}, got {sorted(feature_dims)}"
            )
        self.encoders = nn.ModuleDict(encoders)
        self.heads = nn.ModuleDict({k: nn.Linear(feature_dims[k], num_classes) for k in encoders})
        self.fusion_head = nn.Linear(sum(feature_dims[k] for k in encoders), num_classes)

    def forward(
        self, *, mask: Tensor | None = None, **inputs: Tensor
    ) -> tuple[Tensor, list[Tensor]]:
        features = encode(self.encoders, inputs, mask)
        unimodal = [self.heads[k](f) for k, f in zip(self.encoders, features)]
        return self.fusion_head(torch.cat(features, dim=1)), unimodal


def xavier_heads(model: LateFusionClassifier) -> LateFusionClassifier:
    """Re-initialise the unimodal and fused heads as the released audio-video and NVGesture
    scripts do (``net.apply(weight_init)``: ``xavier_normal_`` weights, zero biases, where
    ``nn.Linear`` defaults to Kaiming-uniform weights and biases). Returns ``model``."""
    for head in [*model.heads.values(), model.fusion_head]:
        assert isinstance(head, nn.Linear)
        nn.init.xavier_normal_(head.weight)
        nn.init.zeros_(head.bias)
    return model


class ConcatClassifier(nn.Module):
    """The paper's "Concat" baseline: encoders and one linear head on their concatenation.

    ``forward(**inputs) -> (multimodal_logits, [unimodal_logits, ...])`` where the unimodal
    logits are the fused head split by modality, as OGM-GE measures each modality inside a
    concatenation model: ``W_m z_m + b / M`` for the columns ``W_m`` of the head's weight that
    read modality ``m``'s features ``z_m``. They sum to the fused logits, so a prediction from all
    heads (Eq. 12) is twice the fused logits (the same argmax), and BSS scoring and the
    `bss_sampler.BalanceReport` see how much each modality alone supports the target.

    ``encoders`` and ``fusion_head`` are shared with the model they come from (not copied); a
    ``LateFusionClassifier``'s per-modality ``heads`` are left out (Concat has none to train).
    """

    def __init__(self, encoders: Mapping[str, nn.Module], fusion_head: nn.Linear) -> None:
        super().__init__()
        if len(encoders) < 2:
            raise ValueError(f"encoders must hold at least 2 modalities, got {list(encoders)}")
        self.encoders = nn.ModuleDict(encoders)
        self.fusion_head = fusion_head

    @classmethod
    def from_model(cls, model: nn.Module) -> ConcatClassifier:
        """The ``encoders`` and linear ``fusion_head`` of a ``LateFusionClassifier``-style model
        (a ``ConcatClassifier`` is returned as is)."""
        if isinstance(model, ConcatClassifier):
            return model
        encoders = getattr(model, "encoders", None)
        head = getattr(model, "fusion_head", None)
        if not isinstance(encoders, (Mapping, nn.ModuleDict)) or not isinstance(head, nn.Linear):
            raise TypeError(
                "method 'concat' needs a model with an `encoders` mapping and a linear "
                f"`fusion_head` (LateFusionClassifier), got {type(model).__name__}"
            )
        return cls(dict(encoders.items()), head)

    def encode(self, **inputs: Tensor) -> list[Tensor]:
        """Each modality's ``(B, D_m)`` features, in the order of ``encoders``."""
        return encode(self.encoders, inputs, None)

    def fuse(self, features: list[Tensor]) -> Tensor:
        """The fused logits of (possibly masked) features: the head on their concatenation."""
        fused: Tensor = self.fusion_head(torch.cat(features, dim=1))
        return fused

    def forward(
        self, *, mask: Tensor | None = None, **inputs: Tensor
    ) -> tuple[Tensor, list[Tensor]]:
        """``(fused logits, per-modality parts)``; ``mask`` as in `LateFusionClassifier`."""
        features = encode(self.encoders, inputs, mask)
        weight, bias = self.fusion_head.weight, self.fusion_head.bias
        share = None if bias is None else bias / len(features)
        unimodal, start = [], 0
        for f in features:
            unimodal.append(F.linear(f, weight[:, start : start + f.shape[1]], share))
            start += f.shape[1]
        return self.fuse(features), unimodal


def encode(
    encoders: nn.ModuleDict, inputs: Mapping[str, Tensor], mask: Tensor | None
) -> list[Tensor]:
    """Each encoder's features of ``inputs``, zeroed where SMV's ``mask`` drops the modality."""
    features = [e(*encoder_inputs(k, e, inputs)) for k, e in encoders.items()]
    return features if mask is None else mask_features(features, mask.to(features[0].device))


def encoder_inputs(name: str, encoder: nn.Module, inputs: Mapping[str, Tensor]) -> list[Tensor]:
    """The positional inputs of modality ``name``'s encoder: ``inputs[k]`` for each ``k`` in
    ``encoder.input_keys`` when the encoder has that attribute, else ``[inputs[name]]``."""
    return [inputs[k] for k in getattr(encoder, "input_keys", (name,))]


def mlp_encoder(in_features: int, hidden: int, depth: int = 2) -> nn.Sequential:
    """``depth`` blocks of ``Linear -> ReLU`` ending at width ``hidden``."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_features if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*layers)


def joint_loss(
    multimodal_logits: Tensor,
    unimodal_logits: Sequence[Tensor],
    targets: Tensor,
    weights: tuple[float, float],
) -> Tensor:
    """Batch mean of ``w_multi * CE_multi + w_uni * sum_m CE_m``, ``weights = (w_multi, w_uni)``.

    Paper Eq. 5 is ``weights = (1 - alpha, alpha)``; the released scripts train with
    ``(0.1, 0.9)`` (CREMA-D) or the unweighted sum ``(1, 1)`` (the others).
    """
    multi, uni = weights
    loss = multi * F.cross_entropy(multimodal_logits.float(), targets)
    for logits in unimodal_logits:
        loss = loss + uni * F.cross_entropy(logits.float(), targets)
    return loss
