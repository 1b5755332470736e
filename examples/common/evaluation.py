"""Evaluation: run a model over a loader and score every head with accuracy, MAP and macro-F1."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from examples.common.metrics import classification_metrics
from examples.common.runtime import autocast

__all__ = ["PREDICTIONS", "combine_logits", "evaluate", "modality_names", "split_batch"]

#: Test-time predictions: paper Eq. 12 ("all"), and the released code's two variants.
PREDICTIONS = ("all", "unimodal_sum", "multimodal")


def combine_logits(multimodal: Tensor, unimodal: Sequence[Tensor], predict: str) -> Tensor:
    """The logits of the final prediction.

    ``"all"``: ``z_multi + sum_m z_m`` (paper Eq. 12); ``"unimodal_sum"``: ``sum_m z_m`` (released
    CREMA-D script); ``"multimodal"``: the fused head alone.
    """
    if predict == "all":
        return multimodal + torch.stack(list(unimodal)).sum(0)
    if predict == "unimodal_sum":
        return torch.stack(list(unimodal)).sum(0)
    if predict == "multimodal":
        return multimodal
    raise ValueError(f"predict must be one of {PREDICTIONS}, got {predict!r}")


def split_batch(
    batch: Mapping[str, Tensor], device: torch.device
) -> tuple[dict[str, Tensor], Tensor, Tensor | None]:
    """``(modality inputs on device, targets on device, indices or None)`` of a mapping batch."""
    non_blocking = device.type == "cuda"
    inputs = {
        k: v.to(device, non_blocking=non_blocking)
        for k, v in batch.items()
        if k not in ("target", "index")
    }
    targets = batch["target"].to(device, non_blocking=non_blocking)
    return inputs, targets, batch.get("index")


def modality_names(model: nn.Module) -> list[str] | None:
    """The names of the model's unimodal heads: its ``encoders`` mapping's keys, or ``None``."""
    encoders = getattr(model, "encoders", None)
    return list(encoders) if isinstance(encoders, (Mapping, nn.ModuleDict)) else None


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: Iterable[Mapping[str, Tensor]],
    device: torch.device,
    *,
    predict: str = "all",
    amp: bool = False,
) -> dict[str, float]:
    """Metrics of the final prediction and of every head over ``loader``.

    Keys: ``acc map f1`` (prediction ``predict``), ``multi_acc ...`` (fused head) and
    ``<modality>_acc ...`` per unimodal head, the j-th head named after the model's j-th
    encoder (a model with an ``encoders`` mapping) or else the j-th modality key of the batch.
    The model is put in eval mode and its previous mode restored.
    """
    was_training = model.training
    model.eval()
    names: list[str] = []
    multi: list[Tensor] = []
    uni: list[list[Tensor]] = []
    targets: list[Tensor] = []
    for batch in loader:
        inputs, target, _ = split_batch(batch, device)
        names = modality_names(model) or list(inputs)
        with autocast(device, amp):
            m, u = model(**inputs)
        multi.append(m.float().cpu())
        uni.append([x.float().cpu() for x in u])
        targets.append(target.cpu())
    model.train(was_training)
    y = torch.cat(targets)
    z_multi = torch.cat(multi)
    z_uni = [torch.cat([row[j] for row in uni]) for j in range(len(uni[0]))]
    heads = {"": combine_logits(z_multi, z_uni, predict), "multi_": z_multi}
    heads.update({f"{names[j] if j < len(names) else f'uni{j}'}_": z for j, z in enumerate(z_uni)})
    return {
        f"{head}{key}": value
        for head, logits in heads.items()
        for key, value in classification_metrics(logits, y).items()
    }
