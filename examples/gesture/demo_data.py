"""A tiny NVGesture in the real layout (lists, MJPG clips, Farneback flow), for ``--demo``.

Each clip is a bright square moving across a dark background, its direction and colour set by
the class; the depth video is the same square in grey. Flow is computed from the colour video
with :func:`examples.gesture.flow.compute_flow`, exactly as for the real dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from examples.gesture.data import list_path
from examples.gesture.flow import compute_flow
from examples.vision.video import write_video

__all__ = ["make_nvgesture_demo_data", "panning_clip"]

_DIRECTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1)]


def _frames(
    label: int, count: int, height: int, width: int, rng: np.random.Generator
) -> np.ndarray:
    """RGB uint8 ``(count, height, width, 3)``: a square moving in the class's direction."""
    dx, dy = _DIRECTIONS[label % len(_DIRECTIONS)]
    side = max(4, height // 2)
    frames = rng.integers(0, 30, (count, height, width, 3)).astype(np.uint8)
    colour = np.roll([230, 40 + 60 * (label // 3) % 160, 40], label % 3)
    for t in range(count):
        x = (width - side) // 2 + dx * (t * 2 - count)
        y = (height - side) // 2 + dy * (t * 2 - count)
        x, y = int(np.clip(x, 0, width - side)), int(np.clip(y, 0, height - side))
        frames[t, y : y + side, x : x + side] = colour
    return frames


def panning_clip(
    image: np.ndarray, count: int, height: int, width: int, step: tuple[int, int] = (2, 3)
) -> np.ndarray:
    """``(count, height, width, 3)`` windows of an RGB uint8 ``image`` moving ``step = (dy, dx)``
    pixels a frame: a camera panning across a photograph (the fidelity tests' real frames).
    The image is resized to just hold the last window."""
    from PIL import Image

    dy, dx = step
    size = (width + dx * count, height + dy * count)
    photo = np.asarray(Image.fromarray(image).convert("RGB").resize(size))
    return np.stack(
        [photo[dy * t : dy * t + height, dx * t : dx * t + width] for t in range(count)]
    )


def make_nvgesture_demo_data(
    root: str | Path,
    *,
    classes: int = 3,
    per_class: int = 2,
    frames: int = 12,
    size: tuple[int, int] = (24, 32),
    seed: int = 0,
) -> Path:
    """Write ``per_class`` clips of each of the first ``classes`` gestures per split in ``root``.

    Clip frames ``1 .. frames - 1`` are the listed gesture (frame 0 precedes it, as in the
    real lists whose ranges start inside the video).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        lines = []
        for label in range(classes):
            for j in range(per_class):
                rel = f"./Video_data/class_{label + 1:02d}/subject{j}_{split}"
                video = _frames(label, frames, *size, rng)
                write_video(root / rel / "sk_color.avi", video)
                write_video(
                    root / rel / "sk_depth.avi",
                    video.mean(-1, keepdims=True).repeat(3, -1).astype(np.uint8),
                )
                ranges = f"depth:sk_depth:1:{frames} color:sk_color:1:{frames}"
                lines.append(f"path:{rel} {ranges} duo_left:duo_left:0:1 label:{label + 1}")
        list_path(root, split).parent.mkdir(parents=True, exist_ok=True)
        list_path(root, split).write_text("\n".join(lines) + "\n")
    compute_flow(root, verbose=False)
    return root
