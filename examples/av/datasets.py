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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from examples.av.audio import AudioSpec, load_spectrogram
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
    """A list of clips read as ``audio`` spectrograms and ``visual`` frames."""

    def __init__(
        self,
        clips: Sequence[Clip],
        num_classes: int,
        *,
        audio: AudioSpec,
        frames: FrameSpec,
        train: bool,
        seed: int = 0,
    ) -> None:
        self.clips = list(clips)
        self.num_classes = num_classes
        self.audio, self.frames, self.train, self.seed = audio, frames, train, seed
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
        return {
            "audio": load_spectrogram(clip.wav, self.audio),
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
    ``Image-01-FPS/<clip>/*.jpg``; 6 classes in the order of :data:`CREMAD_CLASSES`."""
    root = Path(root)
    ids = {name: i for i, name in enumerate(CREMAD_CLASSES)}
    clips = [
        Clip(root / "AudioWAV" / f"{clip}.wav", root / "Image-01-FPS" / clip, ids[label])
        for clip, label, *_ in _rows(root / f"{split}.csv")
        if label in ids
    ]
    return _dataset(_keep(clips, 1), len(ids), split, kwargs)


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
