"""Video frames for the audio-video examples: frame choice, JPEG loading with PIL, and the
train/test transforms (RandomResizedCrop + flip / Resize, ImageNet normalisation) in torch.

Frame choice is explicit: the folder listing is *sorted*; at test time the ``k`` frames are
evenly spaced (deterministic), at training time ``k`` distinct frames are drawn from the given
generator and kept in temporal order. The released loaders (CREMA-D, Kinetics-Sounds,
VGGSound) compute a random choice and then read the first ``k`` entries of ``os.listdir``,
in the file system's order, in training and testing alike: :func:`released_frames` gives those
(``--preset official``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "choose_frames",
    "list_frames",
    "load_frames",
    "random_resized_crop",
    "released_frames",
]

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
_EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_frames(folder: str | Path) -> list[Path]:
    """The image files of ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in _EXTENSIONS)


def released_frames(folder: str | Path, k: int) -> list[Path]:
    """The first ``k`` image files of ``folder`` in ``os.listdir``'s order (unsorted: the file
    system's), the frames the released loaders read whatever their random choice; fewer than
    ``k`` are repeated cyclically (the released loaders raise there)."""
    names = [n for n in os.listdir(folder) if Path(n).suffix.lower() in _EXTENSIONS]
    if not names:
        raise ValueError(f"no frame (jpg, jpeg, png) in {folder}")
    return [Path(folder) / names[i % len(names)] for i in range(k)]


def choose_frames(num_available: int, k: int, generator: torch.Generator | None) -> list[int]:
    """``k`` frame positions: evenly spaced centres without a generator, else a seeded draw.

    Fewer than ``k`` frames are repeated cyclically. Positions are sorted (temporal order).

    >>> choose_frames(10, 3, None)
    [1, 5, 8]
    """
    if num_available < 1:
        raise ValueError(f"num_available must be >= 1, got {num_available}")
    if num_available < k:
        return [i % num_available for i in range(k)]
    if generator is None:
        return [math.floor((i + 0.5) * num_available / k) for i in range(k)]
    return sorted(torch.randperm(num_available, generator=generator)[:k].tolist())


def _read(path: Path) -> Tensor:
    from PIL import Image

    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def random_resized_crop(
    shape: tuple[int, int],
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a random crop, as torchvision's RandomResizedCrop."""
    height, width = shape
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(3, generator=generator).tolist()
        target = area * (scale[0] + u[0] * (scale[1] - scale[0]))
        aspect = math.exp(log_ratio[0] + u[1] * (log_ratio[1] - log_ratio[0]))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    # Fallback: the central crop with the aspect ratio clamped into ``ratio``.
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _crop_flip(frames: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """``(T, 3, H, W)`` -> ``(T, 3, size, size)``: one RandomResizedCrop, one flip (p = 0.5)."""
    top, left, h, w = random_resized_crop((frames.shape[-2], frames.shape[-1]), generator)
    frames = frames[..., top : top + h, left : left + w]
    if bool(torch.rand(1, generator=generator) < 0.5):
        frames = frames.flip(-1)
    return F.interpolate(frames, size=(size, size), mode="bilinear", antialias=True)


def load_frames(
    paths: list[Path], size: int, generator: torch.Generator | None, *, per_frame: bool = False
) -> Tensor:
    """``(T, 3, size, size)`` normalised frames.

    With a generator (training): a RandomResizedCrop and a horizontal flip (p = 0.5) drawn once
    per clip and applied to all its frames, or, with ``per_frame``, drawn for each frame in turn
    (the released loaders transform each frame on its own). Without (testing): a plain resize
    to ``size``.
    """
    frames = torch.stack([_read(p) for p in paths])
    if generator is None:
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", antialias=True)
    elif per_frame:
        frames = torch.cat([_crop_flip(f[None], size, generator) for f in frames])
    else:
        frames = _crop_flip(frames, size, generator)
    return (frames - IMAGENET_MEAN) / IMAGENET_STD
