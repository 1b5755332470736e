"""Training methods: a small registry of step functions, one per method.

A step function computes the loss of one batch; the training loop owns everything else
(autocast, backward, optimiser, scaler, scoring, logging). A method that changes the model
(e.g. IPRM's geodesic mixup head) wraps the model and registers its own step function::

    @register_method("my_method")
    def my_step(model, inputs, targets, cfg):
        ...
        return StepOutput(loss, multimodal_logits, unimodal_logits)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch.nn.functional as F
from torch import Tensor, nn

from examples.common.models import ConcatClassifier, joint_loss

if TYPE_CHECKING:
    from examples.common.training import TrainConfig

__all__ = [
    "METHODS",
    "MODEL_WRAPPERS",
    "StepFn",
    "StepOutput",
    "concat_step",
    "get_method",
    "joint_loss",
    "register_method",
    "wrap_for_method",
]


@dataclass
class StepOutput:
    """What a step function returns: the scalar loss and the batch's logits (for scoring)."""

    loss: Tensor
    multimodal_logits: Tensor
    unimodal_logits: Sequence[Tensor]


class StepFn(Protocol):
    """``step(model, inputs, targets, cfg) -> StepOutput``; ``inputs`` are the modality tensors."""

    def __call__(
        self, model: nn.Module, inputs: Mapping[str, Tensor], targets: Tensor, cfg: TrainConfig
    ) -> StepOutput: ...


METHODS: dict[str, StepFn] = {}
#: ``wrap(model, cfg) -> model`` of the methods that change the model (e.g. IPRM's mixup head).
MODEL_WRAPPERS: dict[str, Callable[[nn.Module, TrainConfig], nn.Module]] = {}


def register_method(
    name: str, *, wrap: Callable[[nn.Module, TrainConfig], nn.Module] | None = None
) -> Callable[[StepFn], StepFn]:
    """Decorator adding a step function to :data:`METHODS` under ``name``.

    ``wrap`` (optional) turns the user's model into the one the method trains; it must return an
    already wrapped model unchanged, since :func:`wrap_for_method` may be called more than once.
    """

    def add(fn: StepFn) -> StepFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        METHODS[name] = fn
        if wrap is not None:
            MODEL_WRAPPERS[name] = wrap
        return fn

    return add


def wrap_for_method(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """The model ``cfg.method`` trains: ``model`` itself, or its registered wrapper's output.

    ``fit`` calls this; call it yourself before ``fit`` to keep a handle on the wrapped model.
    """
    wrap = MODEL_WRAPPERS.get(cfg.method)
    return model if wrap is None else wrap(model, cfg)


def get_method(name: str) -> StepFn:
    """The step function registered as ``name``."""
    if name not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {name!r}")
    return METHODS[name]


@register_method("joint")
def joint_step(
    model: nn.Module, inputs: Mapping[str, Tensor], targets: Tensor, cfg: TrainConfig
) -> StepOutput:
    """Joint training of the fused head and every unimodal head: Eq. 5, or the released weights
    (``cfg.train_loss_weights``)."""
    multimodal, unimodal = model(**inputs)
    unimodal = list(unimodal)
    loss = joint_loss(multimodal, unimodal, targets, cfg.train_loss_weights)
    return StepOutput(loss, multimodal, unimodal)


def wrap_concat(model: nn.Module, cfg: TrainConfig | None = None) -> ConcatClassifier:
    """The model hook of method ``"concat"``: `ConcatClassifier.from_model` (idempotent)."""
    return ConcatClassifier.from_model(model)


@register_method("concat", wrap=wrap_concat)
def concat_step(
    model: nn.Module, inputs: Mapping[str, Tensor], targets: Tensor, cfg: TrainConfig
) -> StepOutput:
    """The paper's "Concat" baseline (Table 1): the fused head's cross-entropy alone.

    The unimodal logits (for scoring, evaluation and the balance report) are the fused head's
    per-modality parts (`examples.common.models.ConcatClassifier`); nothing trains them apart.
    With ``--sampler random`` this is the baseline BSS is compared with in the paper.
    """
    multimodal, unimodal = model(**inputs)
    loss = F.cross_entropy(multimodal.float(), targets)
    return StepOutput(loss, multimodal, list(unimodal))
