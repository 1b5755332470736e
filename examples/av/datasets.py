"""Audio-video clip datasets in the community's on-disk layouts (see
``docs/examples/audio_video.md``). Items: ``{"audio": (1, F, T), "visual": (K, 3, S, S),
"target": int, "index": int}``.

Training randomness (frame choice, crop, flip) comes from a generator seeded by
``(seed, epoch, index)``: call ``set_epoch`` before each epoch (the training loop does). An
item is then the same whatever the worker count, and a resumed run sees the same data.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from examples.av.audio import AudioSpec, load_spectrogram
from examples.av.spectrograms import CACHE_DIR, SpectrogramCache, open_cache
from examples.common.frames import choose_frames, list_frames, load_frames

__all__ = [
    "CREMAD_CLASSES",
    "AVClipDataset",
    "Clip",
    "FrameSpec",
    "cremad",
    "kinetics_sounds",
    "vggsound",
]

CREMAD_CLASSES = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")


@dataclass(frozen=True)
class Clip:
    """One clip: its wav file, its frame folder and its class id."""

    wav: Path
    frames: Path
    target: int


@dataclass(frozen=True)
class FrameSpec:
    """``count`` frames per clip, resized/cropped to ``size`` pixels."""

    count: int = 1
    size: int = 224


class AVClipDataset(Dataset[dict[str, Tensor]]):
    """A list of clips read as ``audio`` spectrograms and ``visual`` frames.

    ``spectrograms``: a cache made with ``audio`` (`examples.av.spectrograms.open_cache`);
    a clip found there is read from it (equal to the on-the-fly value within the stored
    precision), any other is computed on the fly. The audio is never augmented, so the cache
    holds every epoch's value.
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        num_classes: int,
        *,
        audio: AudioSpec,
        frames: FrameSpec,
        train: bool,
        seed: int = 0,
        spectrograms: SpectrogramCache | None = None,
    ) -> None:
        if spectrograms is not None and spectrograms.spec != audio:
            raise ValueError(
                f"spectrograms: the cache was made with {spectrograms.spec}, "
                f"the dataset reads audio as {audio}"
            )
        self.clips = list(clips)
        self.num_classes = num_classes
        self.audio, self.frames, self.train, self.seed = audio, frames, train, seed
        self.spectrograms = spectrograms
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the training augmentations of ``epoch``."""
        self.epoch = epoch

    def subset(
        self, positions: Sequence[int], *, train: bool | None = None, seed: int | None = None
    ) -> AVClipDataset:
        """A dataset over ``clips[positions]`` (re-indexed from 0), optionally another mode or
        augmentation seed."""
        out = AVClipDataset(
            [self.clips[i] for i in positions],
            self.num_classes,
            audio=self.audio,
            frames=self.frames,
            train=self.train if train is None else train,
            seed=self.seed if seed is None else seed,
            spectrograms=self.spectrograms,
        )
        out.epoch = self.epoch
        return out

    @property
    def targets(self) -> list[int]:
        return [c.target for c in self.clips]

    def __len__(self) -> int:
        return len(self.clips)

    def _generator(self, index: int) -> torch.Generator | None:
        if not self.train:
            return None
        seed = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(seed))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        clip = self.clips[index]
        gen = self._generator(index)
        paths = list_frames(clip.frames)
        chosen = [paths[i] for i in choose_frames(len(paths), self.frames.count, gen)]
        audio = None if self.spectrograms is None else self.spectrograms.load(clip.wav)
        return {
            "audio": load_spectrogram(clip.wav, self.audio) if audio is None else audio,
            "visual": load_frames(chosen, self.frames.size, gen),
            "target": torch.tensor(clip.target),
            "index": torch.tensor(index),
        }


def _keep(clips: list[Clip], min_frames: int) -> list[Clip]:
    """Clips whose wav exists and whose folder has at least ``min_frames`` frames."""
    return [
        c
        for c in clips
        if c.wav.is_file() and c.frames.is_dir() and len(list_frames(c.frames)) >= min_frames
    ]


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return [row for row in csv.reader(fh) if row]


def cremad(root: str | Path, split: str, **kwargs: object) -> AVClipDataset:
    """CREMA-D: ``{split}.csv`` rows ``clip_id,LABEL`` (no header), ``AudioWAV/<clip>.wav``,
    ``Image-01-FPS/<clip>/*.jpg``; 6 classes in the order of :data:`CREMAD_CLASSES`.

    Spectrograms are read from ``Spectrograms/`` when it was written with the same
    `AudioSpec` (``examples/prepare.py cremad --spectrograms``); made with another spec, it is
    ignored with a warning. Pass ``spectrograms=None`` to compute every clip on the fly.
    """
    root = Path(root)
    ids = {name: i for i, name in enumerate(CREMAD_CLASSES)}
    clips = [
        Clip(root / "AudioWAV" / f"{clip}.wav", root / "Image-01-FPS" / clip, ids[label])
        for clip, label, *_ in _rows(root / f"{split}.csv")
        if label in ids
    ]
    if "spectrograms" not in kwargs:
        audio = kwargs.get("audio", AudioSpec())
        if not isinstance(audio, AudioSpec):
            raise TypeError(f"audio must be an AudioSpec, got {audio!r}")
        kwargs["spectrograms"] = _cache(root / CACHE_DIR, audio, clips)
    return _dataset(_keep(clips, 1), len(ids), split, kwargs)


def _cache(folder: Path, audio: AudioSpec, clips: list[Clip]) -> SpectrogramCache | None:
    """`open_cache`, warning when some of ``clips`` are not in it (computed on the fly)."""
    cache = open_cache(folder, audio)
    missing = [] if cache is None else cache.missing(c.wav for c in clips if c.wav.is_file())
    if missing:
        warnings.warn(
            f"{len(missing)} of {len(clips)} clips are not in the spectrogram cache {folder} "
            f"(e.g. {missing[0].stem}); they are computed on the fly",
            stacklevel=3,
        )
    return cache


def kinetics_sounds(
    root: str | Path, split: str, *, min_frames: int = 4, **kwargs: object
) -> AVClipDataset:
    """Kinetics-Sounds: ``annotations/{split}.csv`` (header ``youtube_id,label``), frames
    ``{split}_img/Image-01-FPS/<id>/``, audio ``{split}_wav/<id>.wav``.

    Class ids are the sorted class names of the *training* csv (stable across splits).
    ``min_frames=4`` drops clips with 3 or fewer frames, as the released code does.
    """
    root = Path(root)
    names = sorted({row[1] for row in _rows(root / "annotations" / "train.csv")[1:]})
    ids = {name: i for i, name in enumerate(names)}
    clips = [
        Clip(
            root / f"{split}_wav" / f"{vid}.wav",
            root / f"{split}_img" / "Image-01-FPS" / vid,
            ids[label],
        )
        for vid, label, *_ in _rows(root / "annotations" / f"{split}.csv")[1:]
        if label in ids
    ]
    return _dataset(_keep(clips, min_frames), len(ids), split, kwargs)


def vggsound(root: str | Path, split: str, **kwargs: object) -> AVClipDataset:
    """VGGSound: ``{split}.csv`` rows ``<any>,<label name>,<clip id>``, ``label_encoding.json``
    (name -> id), ``AudioWAV/<id>.wav``, ``Image-01-FPS/<id>/``."""
    root = Path(root)
    ids: dict[str, int] = json.loads((root / "label_encoding.json").read_text())
    clips = [
        Clip(root / "AudioWAV" / f"{vid}.wav", root / "Image-01-FPS" / vid, ids[label])
        for _, label, vid, *_ in _rows(root / f"{split}.csv")
        if label in ids
    ]
    return _dataset(_keep(clips, 1), max(ids.values()) + 1, split, kwargs)


def _dataset(
    clips: list[Clip], num_classes: int, split: str, kwargs: dict[str, Any]
) -> AVClipDataset:
    if not clips:
        raise ValueError(f"no usable clip in split {split!r} (missing wav or frames?)")
    opts: dict[str, Any] = {"audio": AudioSpec(), "frames": FrameSpec(), "train": split == "train"}
    return AVClipDataset(clips, num_classes, **{**opts, **kwargs})
