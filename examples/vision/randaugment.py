"""The released Sarcasm code's RandomAugment policy, re-written in PIL from its parameters.

``RandomAugment(2, 7)`` over ten ops: ``num_ops`` ops drawn uniformly *with replacement*, each
then applied with probability ``p = 0.5``, at level 7 of 10:

* identity; autocontrast (per channel, no cut-off); equalize (per-channel histogram);
* brightness and sharpness by the factor ``level / 10 * 1.8 + 0.1`` (1.36 at level 7; no
  random sign: the images only get brighter and sharper);
* shear X/Y by ``+-level / 10 * 0.3`` (0.21), translate X/Y by ``+-level / 10 * 10`` pixels (7),
  rotate by ``+-level / 10 * 30`` degrees (21), a random sign each, bilinear, grey fill
  ``(128, 128, 128)``.

The released ops run OpenCV's ``warpAffine`` on the arrays; the geometric ops here use PIL's
affine transform with the same matrices in OpenCV's pixel-index convention (pixel centres on
integers, rotation about ``(W / 2, H / 2)``), so they agree with OpenCV up to its fixed-point
rounding (``tests/examples/test_imtext_fidelity.py``). Random choices come from an explicit
``torch.Generator``; :meth:`ReleasedRandAugment.draw` and :meth:`ReleasedRandAugment.apply`
split the draw from the image work, so a test can replay one draw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from PIL import Image, ImageEnhance, ImageOps

__all__ = ["GREY", "MAX_LEVEL", "Draw", "ReleasedRandAugment"]

#: The released level scale (magnitudes are ``level / MAX_LEVEL`` of each op's maximum).
MAX_LEVEL = 10
#: Fill of the pixels a geometric op uncovers.
GREY = (128, 128, 128)


@dataclass(frozen=True)
class Draw:
    """One applied op: its name and its magnitude (signed for the geometric ops)."""

    name: str
    magnitude: float


def _affine(
    img: Image.Image, matrix: tuple[float, float, float, float, float, float]
) -> Image.Image:
    """OpenCV's ``warpAffine(img, inverse of M)`` in PIL: ``matrix`` maps an *output* pixel
    index ``(x, y)`` to its *input* position, both in OpenCV's index convention."""
    a, b, c, d, e, f = matrix
    # PIL samples output pixel centres (x + 0.5, y + 0.5) and reads input centres at i + 0.5.
    shift = (c + 0.5 - 0.5 * (a + b), f + 0.5 - 0.5 * (d + e))
    data = (a, b, shift[0], d, e, shift[1])
    return img.transform(
        img.size, Image.Transform.AFFINE, data, Image.Resampling.BILINEAR, fillcolor=GREY
    )


def _rotate(img: Image.Image, degrees: float) -> Image.Image:
    """Counter-clockwise by ``degrees`` about OpenCV's ``(W / 2, H / 2)`` (pixel indices)."""
    w, h = img.size
    rad = torch.tensor(degrees).deg2rad()
    cos, sin = float(rad.cos()), float(rad.sin())
    cx, cy = w / 2, h / 2
    # Inverse of OpenCV's getRotationMatrix2D: output index -> input index.
    return _affine(img, (cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy))


Op = Callable[[Image.Image, float], Image.Image]


class ReleasedRandAugment:
    """``__call__(img, gen) -> img``: ``num_ops`` ops with replacement, each kept with ``p``."""

    #: op name -> (image, magnitude) -> image.
    OPS: ClassVar[dict[str, Op]] = {
        "identity": lambda img, m: img,
        "autocontrast": lambda img, m: ImageOps.autocontrast(img),
        "equalize": lambda img, m: ImageOps.equalize(img),
        "brightness": lambda img, m: ImageEnhance.Brightness(img).enhance(m),
        "sharpness": lambda img, m: ImageEnhance.Sharpness(img).enhance(m),
        "shear_x": lambda img, m: _affine(img, (1.0, -m, 0.0, 0.0, 1.0, 0.0)),
        "shear_y": lambda img, m: _affine(img, (1.0, 0.0, 0.0, -m, 1.0, 0.0)),
        "translate_x": lambda img, m: _affine(img, (1.0, 0.0, m, 0.0, 1.0, 0.0)),
        "translate_y": lambda img, m: _affine(img, (1.0, 0.0, 0.0, 0.0, 1.0, m)),
        "rotate": _rotate,
    }
    #: Signed ops (a random sign per application) and each op's magnitude at ``level``.
    SIGNED: ClassVar[frozenset[str]] = frozenset(
        {"shear_x", "shear_y", "translate_x", "translate_y", "rotate"}
    )

    def __init__(
        self, num_ops: int = 2, level: float = 7, *, p: float = 0.5, translate: float = 10.0
    ) -> None:
        if num_ops < 0:
            raise ValueError(f"num_ops must be >= 0, got {num_ops}")
        if not 0 <= level <= MAX_LEVEL:
            raise ValueError(f"level must lie in [0, {MAX_LEVEL}], got {level}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        self.num_ops, self.level, self.p = num_ops, level, p
        x = level / MAX_LEVEL
        enhance = x * 1.8 + 0.1
        self.magnitudes = {
            "identity": 0.0,
            "autocontrast": 0.0,
            "equalize": 0.0,
            "brightness": enhance,
            "sharpness": enhance,
            "shear_x": x * 0.3,
            "shear_y": x * 0.3,
            "translate_x": x * translate,
            "translate_y": x * translate,
            "rotate": x * 30.0,
        }

    def draw(self, gen: torch.Generator) -> list[Draw]:
        """The ops applied to one image, in order (the skipped ones left out)."""
        names = list(self.OPS)
        out = []
        for _ in range(self.num_ops):
            name = names[int(torch.randint(0, len(names), (1,), generator=gen))]
            if float(torch.rand(1, generator=gen)) >= self.p:
                continue
            magnitude = self.magnitudes[name]
            if name in self.SIGNED and float(torch.rand(1, generator=gen)) < 0.5:
                magnitude = -magnitude
            out.append(Draw(name, magnitude))
        return out

    def apply(self, img: Image.Image, draws: list[Draw]) -> Image.Image:
        """``img`` (RGB) after the ops of ``draws``."""
        for d in draws:
            img = self.OPS[d.name](img, d.magnitude)
        return img

    def __call__(self, img: Image.Image, gen: torch.Generator) -> Image.Image:
        return self.apply(img, self.draw(gen))
