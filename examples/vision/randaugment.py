"""The released Sarcasm code's RandomAugment policy, re-written from its parameters.

``RandomAugment(2, 7)`` over ten ops: ``num_ops`` ops drawn uniformly *with replacement*, each
then applied with probability ``p = 0.5``, at level 7 of 10:

* identity; autocontrast (per channel, no cut-off); equalize (per-channel histogram);
* brightness and sharpness by the factor ``level / 10 * 1.8 + 0.1`` (1.36 at level 7; no
  random sign: the images only get brighter and sharper);
* shear X/Y by ``+-level / 10 * 0.3`` (0.21), translate X/Y by ``+-level / 10 * 10`` pixels (7),
  rotate by ``+-level / 10 * 30`` degrees (21), a random sign each, bilinear, grey fill
  ``(128, 128, 128)``.

As the released code, the ops work on the ``uint8`` RGB array with numpy and OpenCV
(``opencv-python-headless``, the ``opencv`` extra), so they give its pixels exactly:
look-up tables that truncate (``astype(uint8)``, not rounding), OpenCV's ``warpAffine``
(fixed-point bilinear) with the matrices as given (forward maps; rotation about
``(W / 2, H / 2)``), and a sharpness blend whose values outside ``[0, 255]`` *wrap around*
(the released float-to-``uint8`` cast keeps the low byte: 260 becomes 4, -3 becomes 253;
bright edges turn dark) instead of saturating as PIL's ``ImageEnhance`` does (measured:
0.5-1.8% of the values of a sharpened photograph, each by about 250 grey levels). Random choices
come from an explicit ``torch.Generator``; :meth:`ReleasedRandAugment.draw` and
:meth:`ReleasedRandAugment.apply` split the draw from the image work, so a test can replay one
draw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from examples.vision.video import require_cv2

__all__ = ["GREY", "MAX_LEVEL", "Draw", "ReleasedRandAugment"]

#: The released level scale (magnitudes are ``level / MAX_LEVEL`` of each op's maximum).
MAX_LEVEL = 10
#: Fill of the pixels a geometric op uncovers.
GREY = (128, 128, 128)
#: The released sharpness' smoothing kernel: 1 around, 5 in the centre, over 13.
_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / np.float32(13)


@dataclass(frozen=True)
class Draw:
    """One applied op: its name and its magnitude (signed for the geometric ops)."""

    name: str
    magnitude: float


def _cv2() -> Any:
    return require_cv2("the released Sarcasm augmentation (--preset official)")


def _lut(a: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[a]`` with ``table`` (256 values, float) cut to ``[0, 255]`` and truncated."""
    out: np.ndarray = np.clip(table, 0, 255).astype(np.uint8)[a]
    return out


def _autocontrast(a: np.ndarray, m: float) -> np.ndarray:
    """Each channel's ``[min, max]`` stretched linearly onto ``[0, 255]`` (float64 table)."""
    out = a.copy()
    for c in range(a.shape[2]):
        lo, hi = int(a[..., c].min()), int(a[..., c].max())
        if hi > lo:
            scale = 255 / (hi - lo)
            out[..., c] = _lut(a[..., c], np.arange(256) * scale - lo * scale)
    return out


def _equalize(a: np.ndarray, m: float) -> np.ndarray:
    """Per channel: ``step = (pixels - count of the last used level) // 255``; level ``v`` maps
    to ``(step // 2 + pixels below v) // step`` (unchanged when ``step`` is 0)."""
    out = a.copy()
    for c in range(a.shape[2]):
        hist = np.bincount(a[..., c].ravel(), minlength=256)
        used = hist[hist > 0]
        step = int(used[:-1].sum()) // 255
        if step:
            below = np.concatenate([[0], np.cumsum(hist)[:-1]])
            out[..., c] = _lut(a[..., c], (step // 2 + below) // step)
    return out


def _brightness(a: np.ndarray, m: float) -> np.ndarray:
    """Every level times ``m`` (float32), truncated."""
    return _lut(a, np.arange(256, dtype=np.float32) * np.float32(m))


def _sharpness(a: np.ndarray, m: float) -> np.ndarray:
    """``blur + m (a - blur)`` inside the one-pixel border (float32, ``blur``: OpenCV's
    ``filter2D`` with the 3x3 smoothing kernel, rounded to ``uint8``); values outside
    ``[0, 255]`` wrap around modulo 256 (truncated first), the border kept."""
    blur = _cv2().filter2D(a, -1, _SMOOTH)
    if m == 0.0:
        return np.asarray(blur)
    if m == 1.0:
        return a
    b = blur[1:-1, 1:-1].astype(np.float32)
    mixed = b + np.float32(m) * (a[1:-1, 1:-1].astype(np.float32) - b)
    out = a.copy()
    out[1:-1, 1:-1] = (np.trunc(mixed).astype(np.int64) & 0xFF).astype(np.uint8)
    return out


def _warp(a: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """OpenCV's ``warpAffine`` with the forward ``matrix``, bilinear, grey outside."""
    h, w = a.shape[:2]
    cv2 = _cv2()
    out: np.ndarray = cv2.warpAffine(a, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=GREY)
    return out


def _shift(dx: float, dy: float, sx: float = 0.0, sy: float = 0.0) -> np.ndarray:
    """The forward matrix ``[[1, sx, dx], [sy, 1, dy]]`` (float32, as the released ones)."""
    return np.array([[1, sx, dx], [sy, 1, dy]], np.float32)


def _rotate(a: np.ndarray, degrees: float) -> np.ndarray:
    """Counter-clockwise by ``degrees`` about ``(W / 2, H / 2)`` (OpenCV's rotation matrix)."""
    h, w = a.shape[:2]
    return _warp(a, _cv2().getRotationMatrix2D((w / 2, h / 2), degrees, 1))


Op = Callable[[np.ndarray, float], np.ndarray]


class ReleasedRandAugment:
    """``__call__(img, gen) -> img``: ``num_ops`` ops with replacement, each kept with ``p``."""

    #: op name -> (uint8 RGB array, magnitude) -> array.
    OPS: ClassVar[dict[str, Op]] = {
        "identity": lambda a, m: a,
        "autocontrast": _autocontrast,
        "equalize": _equalize,
        "brightness": _brightness,
        "sharpness": _sharpness,
        "shear_x": lambda a, m: _warp(a, _shift(0.0, 0.0, sx=m)),
        "shear_y": lambda a, m: _warp(a, _shift(0.0, 0.0, sy=m)),
        "translate_x": lambda a, m: _warp(a, _shift(-m, 0.0)),
        "translate_y": lambda a, m: _warp(a, _shift(0.0, -m)),
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
        _cv2()  # fail at construction, not in a DataLoader worker
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
        """``img`` (RGB) after the ops of ``draws`` (a translation by ``m`` moves the content
        by ``-m`` pixels, as the released one)."""
        if not draws:
            return img
        a = np.asarray(img.convert("RGB"))
        for d in draws:
            a = self.OPS[d.name](a, d.magnitude)
        return Image.fromarray(np.ascontiguousarray(a))

    def __call__(self, img: Image.Image, gen: torch.Generator) -> Image.Image:
        return self.apply(img, self.draw(gen))
