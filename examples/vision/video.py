"""Video I/O and optical flow with OpenCV (``opencv-python-headless``, imported on first use).

Frames are returned as ``uint8 (T, H, W, 3)`` **RGB** (OpenCV decodes BGR; converted here).
Optical flow is Farneback's dense method between consecutive grey frames, stored as
``float32 (H, W, 2, T - 1)`` (channel 0: horizontal, 1: vertical displacement in pixels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["farneback_flow", "read_frames", "require_cv2", "write_video"]


def require_cv2(purpose: str = "reading videos and computing optical flow") -> Any:
    """The ``cv2`` module, or an ImportError saying that ``purpose`` needs it and how to
    install it."""
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{purpose} needs OpenCV: pip install opencv-python-headless (or bss-sampler[opencv])"
        ) from err
    return cv2


def read_frames(path: str | Path, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Frames ``start .. stop - 1`` (all from ``start`` when ``stop`` is None) as RGB uint8.

    Reads sequentially (no seeking, which is unreliable for some codecs). Raises when the file
    cannot be opened or holds no frame in the range.
    """
    cv2 = require_cv2()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise OSError(f"OpenCV cannot open video {path}")
    frames: list[np.ndarray] = []
    position = 0
    try:
        while stop is None or position < stop:
            ok = capture.grab()
            if not ok:
                break
            if position >= start:
                ok, frame = capture.retrieve()
                if not ok:
                    break
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            position += 1
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"video {path} has no frame in [{start}, {stop})")
    return np.stack(frames)


def write_video(path: str | Path, frames: np.ndarray, fps: float = 30.0) -> Path:
    """Write RGB uint8 ``(T, H, W, 3)`` frames as a Motion-JPEG ``.avi``."""
    cv2 = require_cv2()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write video {path}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def farneback_flow(frames: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Dense optical flow of RGB uint8 ``(T, H, W, 3)`` frames: ``float32 (H', W', 2, T - 1)``.

    ``size=(H', W')`` resizes the frames first (flow then in pixels of that size). Parameters
    are OpenCV's usual ones: pyramid scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5,
    poly_sigma 1.2.
    """
    cv2 = require_cv2()
    if len(frames) < 2:
        raise ValueError(f"optical flow needs at least 2 frames, got {len(frames)}")
    grey = []
    for frame in frames:
        if size is not None:
            frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        grey.append(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    flows = [
        cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        for a, b in zip(grey[:-1], grey[1:])
    ]
    return np.stack(flows, axis=-1).astype(np.float32)
