"""Inception-3D (I3D; Carreira and Zisserman, 2017) as a clip feature encoder.

The inflated Inception-v1: a 3-D stem (7x7x7 conv, pools, 1x1x1 and 3x3x3 convs) followed by
nine Inception modules (``Mixed_3b`` ... ``Mixed_5c``), each concatenating a 1x1x1 branch, two
1x1x1 -> 3x3x3 branches and a 3x3x3 max-pool -> 1x1x1 branch. Convolutions and pools use
TensorFlow "SAME" padding, as the original. Module names follow the end points of the original
graph, which the public PyTorch ports of the Kinetics/ImageNet checkpoints also use, so such a
``state_dict`` saved locally loads with :func:`examples.vision.weights.load_local_weights`.

Two size knobs for tests: ``width`` scales every channel count and ``final_endpoint`` stops the
network early (e.g. ``"Mixed_3c"``). Two knobs reproduce the released NVGesture model
(``--preset official``): ``pool="released"`` and ``random_init``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from examples.vision.weights import load_local_weights

__all__ = [
    "ENDPOINTS",
    "I3D",
    "POOLS",
    "RELEASED_POOL",
    "InceptionBlock",
    "Unit3D",
    "pool_features",
]

Triple = tuple[int, int, int]

#: Inception branch widths ``(b0, b1a, b1b, b2a, b2b, b3b)`` of the original network.
_MIXED: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

#: The end points in order; pools are ``(name, kernel, stride)``.
ENDPOINTS = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)

#: Input channels -> the stream's name in messages.
_STREAMS = {3: "RGB", 2: "flow", 1: "depth"}

_POOLS: dict[str, tuple[Triple, Triple]] = {
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}


#: ``pool``: the mean over every cell of the last feature map (ours), or the released model's
#: ``AvgPool3d(RELEASED_POOL)`` (stride = kernel) and the mean of its output cells.
POOLS = ("mean", "released")

#: The released NVGesture I3D's pooling window ``(T, H, W)``: on an 80-frame 224-pixel clip the
#: last feature map is ``10 x 7 x 7``, and the window averages its first 8 temporal cells.
RELEASED_POOL: Triple = (8, 7, 7)


def pool_features(x: Tensor, pool: str = "mean") -> Tensor:
    """``(B, C, T, H, W)`` -> ``(B, C)`` as ``pool`` says (:data:`POOLS`).

    ``released``: ``avg_pool3d`` with kernel and stride :data:`RELEASED_POOL`, each side cut to
    the feature map's when smaller (the released model raises there), then the mean of the
    output cells (one cell on 64- and 80-frame 224-pixel clips).
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    if pool == "released":
        kernel = tuple(min(k, n) for k, n in zip(RELEASED_POOL, x.shape[2:]))
        x = F.avg_pool3d(x, kernel)
    return x.mean(dim=(2, 3, 4))


def _same_pad(x: Tensor, kernel: Triple, stride: Triple) -> Tensor:
    """Zero-pad ``(B, C, T, H, W)`` like TensorFlow's "SAME" (the extra pixel at the end)."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """SAME-padded ``Conv3d`` (no bias) -> ``BatchNorm3d`` -> ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
    ) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, bias=False)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv3d(_same_pad(x, self.kernel, self.stride))))


class _MaxPool(nn.Module):
    """SAME-padded 3-D max pooling (inputs follow a ReLU, so zero padding is neutral)."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels: ``b0 + b1b + b2b + b3b`` outputs."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = widths
        k3 = (3, 3, 3)
        self.b0 = Unit3D(in_channels, c0)
        self.b1a = Unit3D(in_channels, c1a)
        self.b1b = Unit3D(c1a, c1b, k3)
        self.b2a = Unit3D(in_channels, c2a)
        self.b2b = Unit3D(c2a, c2b, k3)
        self.b3a = _MaxPool(k3, (1, 1, 1))
        self.b3b = Unit3D(in_channels, c3b)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1
        )


class I3D(nn.Module):
    """``forward(x: (B, C, T, H, W)) -> (B, out_features)``: features pooled over time and space.

    ``in_channels``: 3 for RGB, 2 for optical flow, 1 for depth. ``out_features`` is 1024 at
    ``width=1`` up to ``Mixed_5c``. ``weights``: a local ``state_dict`` file; a first
    convolution trained on other inputs (RGB weights for depth) is adapted channel-wise; the
    original classifier (``logits``) is ignored. ``pool``: see :func:`pool_features`.
    ``random_init``: ``state_dict`` keys kept at their random initialisation whatever
    ``weights`` hold (the released depth I3D names its first convolution otherwise than its
    checkpoint, so ``("Conv3d_1a_7x7.conv3d.weight",)`` is never loaded there).
    """

    def __init__(
        self,
        in_channels: int = 3,
        *,
        width: float = 1.0,
        final_endpoint: str = "Mixed_5c",
        dropout: float = 0.0,
        weights: str | Path | None = None,
        pool: str = "mean",
        random_init: Sequence[str] = (),
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        if final_endpoint not in ENDPOINTS:
            raise ValueError(f"final_endpoint must be one of {ENDPOINTS}, got {final_endpoint!r}")

        def w(c: int) -> int:
            return max(1, round(c * width))

        stem: dict[str, tuple[int, Triple, Triple]] = {
            "Conv3d_1a_7x7": (w(64), (7, 7, 7), (2, 2, 2)),
            "Conv3d_2b_1x1": (w(64), (1, 1, 1), (1, 1, 1)),
            "Conv3d_2c_3x3": (w(192), (3, 3, 3), (1, 1, 1)),
        }
        self.endpoints: list[str] = []
        channels = in_channels
        for name in ENDPOINTS:
            block: nn.Module
            if name in _POOLS:
                block = _MaxPool(*_POOLS[name])
            elif name in stem:
                out, kernel, stride = stem[name]
                block = Unit3D(channels, out, kernel, stride)
                channels = out
            else:
                block = InceptionBlock(channels, tuple(w(c) for c in _MIXED[name]))  # type: ignore[arg-type]
                channels = block.out_channels
            self.add_module(name, block)
            self.endpoints.append(name)
            if name == final_endpoint:
                break
        self.dropout = nn.Dropout(dropout)
        self.out_features = channels
        self.pool = pool
        state = self.state_dict()
        unknown = sorted(set(random_init) - set(state))
        if unknown:
            raise ValueError(f"random_init names no tensor of this I3D: {unknown}")
        initial = {k: state[k].clone() for k in random_init}
        if weights is not None:
            load_local_weights(self, weights)
        self.load_state_dict(initial, strict=False)  # the released model's unloaded layers
        if weights is not None and initial:  # as loud as an encoder at random weights
            stream = _STREAMS.get(in_channels, f"{in_channels}-channel")
            print(
                f"WARNING: the {stream} I3D encoder's {', '.join(initial)} starts from RANDOM "
                f"weights, the rest from {Path(weights).name} (the released model never loads "
                "it)",
                file=sys.stderr,
                flush=True,
            )

    def forward(self, x: Tensor) -> Tensor:
        for name in self.endpoints:
            x = getattr(self, name)(x)
        out: Tensor = self.dropout(pool_features(x, self.pool))
        return out
