"""Tiny audio-video datasets in the real on-disk layouts, for ``audio_video.py --demo``.

Each clip is a sine tone (frequency set by its class) as a 16-bit wav, plus a few small JPEG
frames (colour set by its class, with noise). ``make_av_demo_data(kind, root)`` writes one
layout; the tests train on the same data.
"""

from __future__ import annotations

import csv
import json
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["LAYOUTS", "make_av_demo_data", "write_frames", "write_sine_wav"]


def write_sine_wav(path: Path, freq: float, *, rate: int = 8_000, seconds: float = 0.25) -> None:
    """A mono 16-bit PCM sine tone."""
    t = np.arange(round(rate * seconds)) / rate
    pcm = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(pcm.tobytes())


def write_frames(
    folder: Path, colour: tuple[int, int, int], count: int, rng: np.random.Generator
) -> None:
    """``count`` noisy single-colour 24x32 JPEG frames ``frame_00001.jpg ...``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.clip(np.array(colour) + rng.normal(0, 20, (24, 32, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"frame_{i + 1:05d}.jpg")


def _clips(classes: list[str], per_class: int) -> list[tuple[str, str, int]]:
    """``(clip id, class name, class position)`` for ``per_class`` clips of each class."""
    return [
        (f"{name}_{j:03d}", name, c) for c, name in enumerate(classes) for j in range(per_class)
    ]


def _media(wav: Path, frames: Path, c: int, count: int, rng: np.random.Generator) -> None:
    write_sine_wav(wav, 200.0 * (c + 1))
    write_frames(frames, ((70 * c) % 256, 128, (255 - 60 * c) % 256), count, rng)


def _cremad(root: Path, per_class: int, rng: np.random.Generator) -> None:
    classes = ["NEU", "HAP", "SAD"]
    for split in ("train", "test"):
        rows = _clips(classes, per_class)
        with (root / f"{split}.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows([(f"{split}_{cid}", name) for cid, name, _ in rows])
        for cid, _, c in rows:
            clip = f"{split}_{cid}"
            _media(root / "AudioWAV" / f"{clip}.wav", root / "Image-01-FPS" / clip, c, 2, rng)


def _kinetics_sounds(root: Path, per_class: int, rng: np.random.Generator) -> None:
    classes = ["playing drums", "barking", "chopping wood"]
    for split in ("train", "test"):
        rows = _clips([c.replace(" ", "_") for c in classes], per_class)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        with (root / "annotations" / f"{split}.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["youtube_id", "label"])
            writer.writerows([(cid, classes[c]) for cid, _, c in rows])
        for cid, _, c in rows:
            frames = root / f"{split}_img" / "Image-01-FPS" / cid
            _media(root / f"{split}_wav" / f"{cid}.wav", frames, c, 4, rng)


def _vggsound(root: Path, per_class: int, rng: np.random.Generator) -> None:
    classes = ["dog barking", "rain", "engine"]
    (root / "label_encoding.json").write_text(json.dumps({n: i for i, n in enumerate(classes)}))
    for split in ("train", "test"):
        rows = _clips([c.replace(" ", "_") for c in classes], per_class)
        with (root / f"{split}.csv").open("w", newline="") as fh:  # the public shape: " <id>"
            csv.writer(fh).writerows(
                [(i, classes[c], f" {split}_{cid}") for i, (cid, _, c) in enumerate(rows)]
            )
        for cid, _, c in rows:  # 4 frames: the released loader keeps clips of more than 3
            clip = f"{split}_{cid}"
            _media(root / "AudioWAV" / f"{clip}.wav", root / "Image-01-FPS" / clip, c, 4, rng)


LAYOUTS: dict[str, Callable[[Path, int, np.random.Generator], None]] = {
    "cremad": _cremad,
    "ks": _kinetics_sounds,
    "vggsound": _vggsound,
}


def make_av_demo_data(kind: str, root: str | Path, *, per_class: int = 4, seed: int = 0) -> Path:
    """Write a 3-class dataset of layout ``kind`` (``cremad``, ``ks``, ``vggsound``) in ``root``."""
    if kind not in LAYOUTS:
        raise ValueError(f"kind must be one of {sorted(LAYOUTS)}, got {kind!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    LAYOUTS[kind](root, per_class, np.random.default_rng(seed))
    return root
