"""Image and clip transforms in torch and PIL (no torchvision), on top of
:mod:`examples.common.frames` (ImageNet statistics, RandomResizedCrop).

Images: PIL in, normalised ``float32 (3, H, W)`` out (ImageNet statistics by default; CLIP's, or
none, for the released pipelines). Clips: ``(C, T, H, W)`` tensors
resized in torch. Every random choice comes from an explicit ``torch.Generator`` (datasets seed
one per ``(seed, epoch, index)``), so an item does not depend on the worker that loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps
from torch import Tensor

from examples.common.frames import IMAGENET_MEAN, IMAGENET_STD, random_resized_crop

__all__ = [
    "CLIP",
    "IMAGENET",
    "EvalImage",
    "Policy",
    "RandAugmentLite",
    "Stats",
    "TrainImage",
    "item_generator",
    "normalise",
    "pil_to_tensor",
    "resize_clip",
]

Op = Callable[[Image.Image, float, torch.Generator], Image.Image]
#: An augmentation policy: ``(image, generator) -> image``.
Policy = Callable[[Image.Image, torch.Generator], Image.Image]
#: ``(mean, std)`` of shape ``(3, 1, 1)``, or None: the ``[0, 1]`` pixels fed as they are.
Stats = tuple[Tensor, Tensor] | None

#: ImageNet's statistics (torchvision's pretrained models).
IMAGENET: Stats = (IMAGENET_MEAN, IMAGENET_STD)
#: CLIP's statistics (OpenAI CLIP), used by the released Sarcasm code.
CLIP: Stats = (
    torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1),
    torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1),
)


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded by ``(seed, epoch, index)``: one independent stream per item."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def pil_to_tensor(img: Image.Image) -> Tensor:
    """An RGB PIL image as ``float32 (3, H, W)`` in ``[0, 1]``."""
    array = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def _sign(gen: torch.Generator) -> float:
    return 1.0 if bool(torch.rand(1, generator=gen) < 0.5) else -1.0


def _enhance(kind: Callable[[Image.Image], ImageEnhance._Enhance]) -> Op:
    def op(img: Image.Image, m: float, gen: torch.Generator) -> Image.Image:
        return kind(img).enhance(1.0 + _sign(gen) * 0.9 * m)

    return op


def _rotate(img: Image.Image, m: float, gen: torch.Generator) -> Image.Image:
    return img.rotate(_sign(gen) * 30.0 * m, resample=Image.Resampling.BILINEAR)


def _posterize(img: Image.Image, m: float, gen: torch.Generator) -> Image.Image:
    return ImageOps.posterize(img, 8 - round(4 * m))


def _solarize(img: Image.Image, m: float, gen: torch.Generator) -> Image.Image:
    return ImageOps.solarize(img, 256 - round(256 * m))


class RandAugmentLite:
    """RandAugment-style policy: ``num_ops`` uniformly chosen PIL ops at ``magnitude`` in [0, 1].

    Ops: identity, autocontrast, equalize, rotate (up to 30 degrees), colour, contrast,
    brightness and sharpness (factor ``1 +- 0.9 m``), posterize (down to 4 bits), solarize.
    """

    OPS: ClassVar[dict[str, Op]] = {
        "identity": lambda img, m, gen: img,
        "autocontrast": lambda img, m, gen: ImageOps.autocontrast(img),
        "equalize": lambda img, m, gen: ImageOps.equalize(img),
        "rotate": _rotate,
        "color": _enhance(ImageEnhance.Color),
        "contrast": _enhance(ImageEnhance.Contrast),
        "brightness": _enhance(ImageEnhance.Brightness),
        "sharpness": _enhance(ImageEnhance.Sharpness),
        "posterize": _posterize,
        "solarize": _solarize,
    }

    def __init__(self, num_ops: int = 2, magnitude: float = 0.3) -> None:
        if num_ops < 0:
            raise ValueError(f"num_ops must be >= 0, got {num_ops}")
        if not 0.0 <= magnitude <= 1.0:
            raise ValueError(f"magnitude must lie in [0, 1], got {magnitude}")
        self.num_ops = num_ops
        self.magnitude = magnitude

    def __call__(self, img: Image.Image, gen: torch.Generator) -> Image.Image:
        names = list(self.OPS)
        for _ in range(self.num_ops):
            name = names[int(torch.randint(0, len(names), (1,), generator=gen))]
            img = self.OPS[name](img, self.magnitude, gen)
        return img


def normalise(img: Image.Image, stats: Stats = IMAGENET) -> Tensor:
    """``(pixels / 255 - mean) / std``, ``float32 (3, H, W)``; ``stats=None``: ``pixels / 255``."""
    x = pil_to_tensor(img)
    return x if stats is None else (x - stats[0]) / stats[1]


class EvalImage:
    """Resize to ``size x size`` (``resample``), then normalise with ``stats``:
    ``float32 (3, size, size)``."""

    def __init__(
        self,
        size: int,
        *,
        resample: Image.Resampling = Image.Resampling.BILINEAR,
        stats: Stats = IMAGENET,
    ) -> None:
        self.size, self.resample, self.stats = size, resample, stats

    def __call__(self, img: Image.Image, gen: torch.Generator | None = None) -> Tensor:
        img = img.convert("RGB").resize((self.size, self.size), self.resample)
        return normalise(img, self.stats)


class TrainImage:
    """RandomResizedCrop(``size``, ``scale``, ``resample``) + horizontal flip + an augmentation
    ``policy`` (default :class:`RandAugmentLite`; ``randaugment_ops=0`` turns it off), then
    normalisation with ``stats``."""

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.5, 1.0),
        randaugment_ops: int = 2,
        magnitude: float = 0.3,
        *,
        policy: Policy | None = None,
        resample: Image.Resampling = Image.Resampling.BILINEAR,
        stats: Stats = IMAGENET,
    ) -> None:
        self.size = size
        self.scale = scale
        self.augment: Policy = policy or RandAugmentLite(randaugment_ops, magnitude)
        self.resample, self.stats = resample, stats

    def __call__(self, img: Image.Image, gen: torch.Generator | None = None) -> Tensor:
        if gen is None:
            raise ValueError("TrainImage needs a generator (the dataset seeds one per item)")
        img = img.convert("RGB")
        top, left, h, w = random_resized_crop((img.height, img.width), gen, self.scale)
        # crop, then resize (torchvision's resized_crop): the filter never reads past the crop
        img = img.crop((left, top, left + w, top + h)).resize((self.size, self.size), self.resample)
        if bool(torch.rand(1, generator=gen) < 0.5):
            img = ImageOps.mirror(img)
        return normalise(self.augment(img, gen), self.stats)


def resize_clip(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of every frame of ``(C, T, H, W)`` to ``(C, T, *size)``."""
    c, t = x.shape[:2]
    frames = x.reshape(c * t, 1, *x.shape[2:]).float()
    out = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
    return out.reshape(c, t, *size)
