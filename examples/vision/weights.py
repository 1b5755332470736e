"""Load pretrained weights from a local file (nothing is downloaded).

The backbones name their parameters like the widely shared checkpoints (torchvision's ResNet50
``state_dict``; the ``Conv3d_1a_7x7 ... Mixed_5c`` names of the public PyTorch I3D ports), so
such a file loads directly. Tensors whose shape does not fit are skipped and reported, except a
first convolution with a different number of input channels, which is adapted (below).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["adapt_input_channels", "load_local_weights"]


def adapt_input_channels(weight: Tensor, channels: int) -> Tensor:
    """A conv kernel ``(O, C_in, ...)`` re-made for ``channels`` inputs.

    The mean over the pretrained input channels, repeated ``channels`` times and scaled by
    ``C_in / channels``, so a constant input gives the same response (one depth channel from
    RGB weights gets their sum).
    """
    mean = weight.mean(dim=1, keepdim=True)
    repeat = (1, channels) + (1,) * (weight.dim() - 2)
    return mean.repeat(repeat) * (weight.shape[1] / channels)


def _state_dict(obj: object) -> dict[str, Tensor]:
    """The tensors of a checkpoint: a bare ``state_dict`` or one under ``state_dict``/``model``."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a state_dict mapping, got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_local_weights(
    module: nn.Module, path: str | Path, *, verbose: bool = True
) -> tuple[list[str], list[str]]:
    """Copy the matching tensors of the checkpoint at ``path`` into ``module``.

    Returns ``(missing, skipped)``: parameter names of ``module`` left as initialised, and
    checkpoint keys not used (absent from ``module`` or of another shape). A 4-D/5-D weight
    differing only in input channels is adapted with :func:`adapt_input_channels`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    source = _state_dict(torch.load(path, map_location="cpu", weights_only=True))
    target = module.state_dict()
    chosen: dict[str, Tensor] = {}
    skipped: list[str] = []
    for key, value in source.items():
        if key not in target:
            skipped.append(key)
            continue
        want = target[key].shape
        kernel = value.dim() in (4, 5) and value.shape[0] == want[0]
        if value.shape != want and kernel and value.shape[2:] == want[2:]:
            value = adapt_input_channels(value, want[1])
        if value.shape != want:
            skipped.append(key)
            continue
        chosen[key] = value.to(target[key].dtype)
    module.load_state_dict(chosen, strict=False)
    missing = [k for k in target if k not in chosen]
    if verbose:
        print(
            f"{path.name}: loaded {len(chosen)}/{len(target)} tensors"
            + (f", {len(missing)} left as initialised" if missing else "")
            + (f", {len(skipped)} checkpoint keys unused" if skipped else "")
        )
    return missing, skipped
