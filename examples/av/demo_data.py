"""Tiny audio-video releases in the real download formats, prepared as a user would prepare the
real ones, for ``audio_video.py --demo`` and the tests.

``make_av_demo_data(kind, root)`` writes a release under ``root/release`` (real encoded
containers written with PyAV, PCM wavs written with soundfile, the release's own lists) and runs
:mod:`examples.av.prepare` on it into ``root``: the demo trains on what ``examples/prepare.py``
makes. Each clip's audio is a sine tone whose pitch is set by its class and its frames are
noisy images whose colour is set by its class.

* ``cremad``: ``VideoFlash/<actor>_<sentence>_<EMO>_XX.flv`` (FLV1 at 30 fps, 2 s, a 22,050 Hz
  PCM track),
  ``AudioWAV/<clip>.wav`` (16 kHz mono), ``processedResults/summaryTable.csv``; a seeded
  stratified split of half the clips for test.
* ``ks``: Kinetics' ``annotations/{train,test}.csv`` (``label,youtube_id,time_start,time_end,
  split``) and ``<label>/<youtube_id>_<start:06d>_<end:06d>.mp4`` (MPEG-4 at 10 fps, 4 s, AAC
  stereo 44.1 kHz).
* ``vggsound``: ``vggsound.csv`` (``youtube_id,start_seconds,label,split``, a label with commas)
  and ``video/<youtube_id>_<start:06d>.mp4`` (as for ``ks``: 4 frames, which the released
  loader's more-than-3 rule keeps).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from examples.av.encode import write_clip
from examples.av.lists import csv_text
from examples.av.media import require
from examples.av.prepare import Options, Result, prepare_cremad, prepare_ks, prepare_vggsound

__all__ = [
    "LAYOUTS",
    "make_av_demo_data",
    "noisy_frames",
    "sine",
    "write_frames",
    "write_release",
    "write_sine_wav",
]

_ID_CHARS = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"))


def sine(freq: float, rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    """A sine tone at half scale, float32 ``(samples, channels)``."""
    t = np.arange(round(rate * seconds)) / rate
    tone = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(tone[:, None], channels, axis=1)


def write_sine_wav(
    path: Path, freq: float, *, rate: int = 8_000, seconds: float = 0.25, channels: int = 1
) -> None:
    """A 16-bit PCM wav of a sine tone (soundfile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile = require("soundfile")
    soundfile.write(str(path), sine(freq, rate, seconds, channels), rate, subtype="PCM_16")


def noisy_frames(colour: tuple[int, int, int], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` noisy single-colour 24x32 RGB frames, uint8 ``(count, 24, 32, 3)``."""
    pixels = np.array(colour) + rng.normal(0, 20, (count, 24, 32, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_frames(
    folder: Path, colour: tuple[int, int, int], count: int, rng: np.random.Generator
) -> None:
    """``count`` noisy single-colour 24x32 JPEG frames ``frame_00001.jpg ...``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(noisy_frames(colour, count, rng)):
        Image.fromarray(frame).save(folder / f"frame_{i + 1:05d}.jpg")


def _colour(c: int) -> tuple[int, int, int]:
    return (70 * c) % 256, 128, (255 - 60 * c) % 256


def _pitch(c: int) -> float:
    return 200.0 * (c + 1)


def _youtube_id(rng: np.random.Generator) -> str:
    """An 11-character id from YouTube's alphabet (which holds ``-`` and ``_``)."""
    return "".join(rng.choice(_ID_CHARS, 11))


def _cremad(release: Path, per_class: int, rng: np.random.Generator) -> None:
    names: list[str] = []
    for emotion in ("NEU", "HAP", "SAD"):
        for j in range(2 * per_class):  # half of them become test clips
            clip = f"{1001 + j}_IEO_{emotion}_XX"
            c = len(names) // (2 * per_class)
            frames, track = noisy_frames(_colour(c), 60, rng), sine(_pitch(c), 22_050, 2.0)
            write_clip(release / "VideoFlash" / f"{clip}.flv", frames, audio=track, rate=22_050)
            write_sine_wav(release / "AudioWAV" / f"{clip}.wav", _pitch(c), rate=16_000, seconds=1)
            names.append(clip)
    table = release / "processedResults" / "summaryTable.csv"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(csv_text(((i, n) for i, n in enumerate(names)), header=("", "FileName")))


def _av_clip(path: Path, c: int, seconds: int, rng: np.random.Generator) -> None:
    """An MPEG-4 + AAC clip at 10 fps with 1 s of stereo 44.1 kHz audio."""
    frames = noisy_frames(_colour(c), 10 * seconds, rng)
    write_clip(path, frames, fps=10, audio=sine(_pitch(c), 44_100, 1.0, 2), rate=44_100)


def _kinetics_sounds(release: Path, per_class: int, rng: np.random.Generator) -> None:
    classes = ["playing drums", "barking", "chopping wood"]
    (release / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        rows = []
        for c, label in enumerate(classes):
            for _ in range(per_class):
                vid, start = _youtube_id(rng), int(rng.integers(0, 300))
                name = f"{vid}_{start:06d}_{start + 10:06d}.mp4"
                _av_clip(release / label.replace(" ", "_") / name, c, 4, rng)
                rows.append((label, vid, start, start + 10, split))
        header = ("label", "youtube_id", "time_start", "time_end", "split")
        (release / "annotations" / f"{split}.csv").write_text(csv_text(rows, header=header))


def _vggsound(release: Path, per_class: int, rng: np.random.Generator) -> None:
    classes = ["dog barking", "rain", "engine accelerating, revving, vroom"]
    rows = []
    for split in ("train", "test"):
        for c, label in enumerate(classes):
            for _ in range(per_class):
                vid, start = _youtube_id(rng), int(rng.integers(0, 300))
                _av_clip(release / "video" / f"{vid}_{start:06d}.mp4", c, 4, rng)
                rows.append((vid, start, label, split))
    release.mkdir(parents=True, exist_ok=True)
    with (release / "vggsound.csv").open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


#: kind -> (write a release, prepare it).
LAYOUTS: dict[str, tuple[Callable[[Path, int, np.random.Generator], None], Callable[..., Result]]]
LAYOUTS = {
    "cremad": (_cremad, lambda s, r, o: prepare_cremad(s, r, test_fraction=0.5, options=o)),
    "ks": (_kinetics_sounds, lambda s, r, o: prepare_ks(s, r, options=o)),
    "vggsound": (_vggsound, lambda s, r, o: prepare_vggsound(s, r, options=o)),
}


def write_release(kind: str, release: str | Path, *, per_class: int = 4, seed: int = 0) -> Path:
    """Write a 3-class release of ``kind`` (``per_class`` clips per class and split)."""
    if kind not in LAYOUTS:
        raise ValueError(f"kind must be one of {sorted(LAYOUTS)}, got {kind!r}")
    release = Path(release)
    LAYOUTS[kind][0](release, per_class, np.random.default_rng(seed))
    return release


def make_av_demo_data(kind: str, root: str | Path, *, per_class: int = 4, seed: int = 0) -> Path:
    """Write a release of ``kind`` (``cremad``, ``ks``, ``vggsound``) in ``root/release`` and
    prepare it into ``root``, the folder to pass as ``--root``; returns ``root``."""
    root = Path(root)
    release = write_release(kind, root / "release", per_class=per_class, seed=seed)
    result = LAYOUTS[kind][1](release, root, Options(workers=1, progress=False))
    if result.bad:
        raise RuntimeError(f"the demo release has unreadable clips: {result.bad}")
    return root
