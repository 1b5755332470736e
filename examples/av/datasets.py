"""Audio-video clip datasets in the community's on-disk layouts (see
``docs/examples/audio_video.md``). Items: ``{"audio": (1, F, T), "visual": (K, 3, S, S),
"target": int, "index": int}``.

Training randomness (frame choice, crop, flip) comes from a generator seeded by
``(seed, epoch, index)``: call ``set_epoch`` before each epoch (the training loop does). An
item is then the same whatever the worker count, and a resumed run sees the same data.

Every csv is read as ``utf-8-sig``: a byte-order mark (spreadsheet exports) is dropped, not
glued to the first clip id. ``--preset official`` passes the released loaders' choices
(``examples.common.released``): every dataset's ``frame_choice="listdir"`` (the first frames
of the unsorted folder listing), CREMA-D's ``audio_repeats=20``, VGGSound's
``clip_ids="released"`` and ``min_frames=4``, Kinetics-Sounds' ``frame_augment="frame"`` and
``class_order="first_seen"``.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from examples.av.audio import AudioSpec, fills, load_spectrogram
from examples.av.spectrograms import CACHE_DIR, SpectrogramCache, open_cache
from examples.common.frames import choose_frames, list_frames, load_frames, released_frames
from examples.common.textfiles import numbered_rows, read_utf8

__all__ = [
    "CLASS_ORDERS",
    "CLIP_IDS",
    "CREMAD_CLASSES",
    "FRAME_AUGMENTS",
    "FRAME_CHOICES",
    "AVClipDataset",
    "Clip",
    "FrameSpec",
    "cremad",
    "kinetics_sounds",
    "vggsound",
]

CREMAD_CLASSES = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")

#: ``frame_augment``: one crop and flip per clip (ours), or one per frame (the released loaders).
FRAME_AUGMENTS = ("clip", "frame")

#: ``frame_choice``: ``sorted`` (ours: the sorted listing, evenly spaced frames at test time, a
#: seeded draw in temporal order when training) or ``listdir`` (the released loaders: the first
#: ``count`` entries of ``os.listdir``, in the file system's order, in every split).
FRAME_CHOICES = ("sorted", "listdir")

#: Kinetics-Sounds' ``class_order``: class ids by ``sorted`` class name (ours), or in the order
#: the classes are ``first_seen`` among the training clips found on disk (the released loader).
CLASS_ORDERS = ("sorted", "first_seen")

#: VGGSound's ``clip_ids``: how the third csv field names a clip. ``written``: the field without
#: surrounding whitespace; ``released``: the field without its first character, as the released
#: loader reads it (``item[2][1:]``: the csv files it reads carry one character before each id,
#: such as a space after the comma); ``auto``: whichever of the two finds more clips on disk
#: (ties: ``written``).
CLIP_IDS = ("auto", "written", "released")


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
        frame_augment: str = "clip",
        frame_choice: str = "sorted",
    ) -> None:
        full = replace(audio, repeats=None)  # a full-length cache serves clips that fill it
        if spectrograms is not None and spectrograms.spec not in (audio, full):
            raise ValueError(
                f"spectrograms: the cache was made with {spectrograms.spec}, "
                f"the dataset reads audio as {audio}"
            )
        if frame_augment not in FRAME_AUGMENTS:
            raise ValueError(
                f"frame_augment must be one of {FRAME_AUGMENTS}, got {frame_augment!r}"
            )
        if frame_choice not in FRAME_CHOICES:
            raise ValueError(f"frame_choice must be one of {FRAME_CHOICES}, got {frame_choice!r}")
        self.clips = list(clips)
        self.num_classes = num_classes
        self.audio, self.frames, self.train, self.seed = audio, frames, train, seed
        self.spectrograms = spectrograms
        self.frame_augment = frame_augment
        self.frame_choice = frame_choice
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
            frame_augment=self.frame_augment,
            frame_choice=self.frame_choice,
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
        if self.frame_choice == "listdir":
            chosen = released_frames(clip.frames, self.frames.count)
        else:
            paths = list_frames(clip.frames)
            chosen = [paths[i] for i in choose_frames(len(paths), self.frames.count, gen)]
        audio = self._cached(clip.wav)
        return {
            "audio": load_spectrogram(clip.wav, self.audio) if audio is None else audio,
            "visual": load_frames(
                chosen, self.frames.size, gen, per_frame=self.frame_augment == "frame"
            ),
            "target": torch.tensor(clip.target),
            "index": torch.tensor(index),
        }

    def _cached(self, wav: Path) -> Tensor | None:
        """The cached spectrogram of ``wav``, if any and if it is this dataset's value (a
        clip shorter than ``seconds / repeats`` under `AudioSpec.repeats` is not)."""
        if self.spectrograms is None:
            return None
        if self.audio.repeats is not None and not fills(wav, self.audio):
            return None
        return self.spectrograms.load(wav)


def _exists(clip: Clip) -> bool:
    return clip.wav.is_file() and clip.frames.is_dir()


def _keep(clips: list[Clip], min_frames: int, listed: Path | None = None) -> list[Clip]:
    """Clips whose wav exists and whose folder has at least ``min_frames`` frames. With
    ``listed`` (the csv the clips come from), warn about the clips whose wav or frame folder
    is missing (a clip ``prepare.py --skip-bad`` skipped, or one not prepared yet)."""
    there = [c for c in clips if _exists(c)]
    if listed is not None and 0 < len(there) < len(clips):  # none there: the caller raises
        absent = next(c for c in clips if not _exists(c))
        warnings.warn(
            f"{listed}: {len(clips) - len(there)} of its {len(clips)} clips have no wav or no "
            f"frame folder and are left out (e.g. {absent.wav.stem}: {absent.wav} or "
            f"{absent.frames}); prepare.py --skip-bad lists the clips it skipped in prepare.json",
            stacklevel=4,
        )
    return [c for c in there if len(list_frames(c.frames)) >= min_frames]


def _rows(path: Path) -> list[list[str]]:
    """The non-empty rows of a csv file, a leading byte-order mark dropped."""
    return [row for _, row in _numbered_rows(path)]


def _numbered_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line the row starts on, fields)`` of the non-empty rows of a csv file."""
    return numbered_rows(csv.reader(io.StringIO(read_utf8(path), newline="")))


def cremad(
    root: str | Path, split: str, *, audio_repeats: int | None = None, **kwargs: object
) -> AVClipDataset:
    """CREMA-D: ``{split}.csv`` rows ``clip_id,LABEL`` (no header), ``AudioWAV/<clip>.wav``,
    ``Image-01-FPS/<clip>/*.jpg``; 6 classes in the order of :data:`CREMAD_CLASSES`.

    ``audio_repeats``: at most that many copies of the clip are tiled (`AudioSpec.repeats`;
    the released loader's ``np.tile(samples, 20)``): only a clip shorter than 1 s (20 s / 20)
    changes, its spectrogram then shorter. ``None``: tiled to the full length.

    Spectrograms are read from ``Spectrograms/`` when it was written with the same
    `AudioSpec` (``examples/prepare.py cremad --spectrograms``); made with another spec, it is
    ignored with a warning. Pass ``spectrograms=None`` to compute every clip on the fly.
    """
    root = Path(root)
    ids = {name: i for i, name in enumerate(CREMAD_CLASSES)}
    path = root / f"{split}.csv"
    rows = _numbered_rows(path)
    for n, row in rows:
        if len(row) < 2:
            raise ValueError(f"{path} line {n}: {row}, expected 'clip_id,LABEL'")
    clips = [
        Clip(root / "AudioWAV" / f"{clip}.wav", root / "Image-01-FPS" / clip, ids[label])
        for _, (clip, label, *_) in rows
        if label in ids
    ]
    audio = kwargs.get("audio", AudioSpec())
    if not isinstance(audio, AudioSpec):
        raise TypeError(f"audio must be an AudioSpec, got {audio!r}")
    if audio_repeats is not None:
        kwargs["audio"] = audio = replace(audio, repeats=audio_repeats)
    if "spectrograms" not in kwargs:  # a full-length cache serves clips that fill the length
        kwargs["spectrograms"] = _cache(root / CACHE_DIR, replace(audio, repeats=None), clips)
    return _dataset(clips, 1, len(ids), split, kwargs, root / f"{split}.csv")


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
    root: str | Path,
    split: str,
    *,
    min_frames: int = 4,
    class_order: str = "sorted",
    **kwargs: object,
) -> AVClipDataset:
    """Kinetics-Sounds: ``annotations/{split}.csv`` with a header naming the columns
    ``youtube_id`` and ``label`` (any others, in any order, are ignored: the released loader
    reads them by name), frames ``{split}_img/Image-01-FPS/<id>/``, audio
    ``{split}_wav/<id>.wav``.

    Class ids come from the *training* csv (stable across splits): its ``sorted`` class names,
    or (``class_order="first_seen"``, the released loader) the classes in the order they first
    appear among the training clips found on disk. A clip of a class with no training clip is
    skipped. ``min_frames=4`` drops clips with 3 or fewer frames, as the released code does.
    """
    if class_order not in CLASS_ORDERS:
        raise ValueError(f"class_order must be one of {CLASS_ORDERS}, got {class_order!r}")
    root = Path(root)

    def read(part: str) -> list[tuple[str, Clip]]:
        """``(label, clip)`` of every row of ``part``'s csv, clips kept or not."""
        rows = _named_rows(root / "annotations" / f"{part}.csv", ("youtube_id", "label"))
        wav, img = root / f"{part}_wav", root / f"{part}_img" / "Image-01-FPS"
        return [(label, Clip(wav / f"{vid}.wav", img / vid, -1)) for vid, label in rows]

    train = read("train")
    if class_order == "sorted":
        names = sorted({label for label, _ in train})
    else:
        kept = {c.frames for c in _keep([c for _, c in train], min_frames)}
        names = list(dict.fromkeys(label for label, c in train if c.frames in kept))
    ids = {name: i for i, name in enumerate(names)}
    rows = train if split == "train" else read(split)
    clips = [replace(c, target=ids[label]) for label, c in rows if label in ids]
    listed = root / "annotations" / f"{split}.csv"
    return _dataset(clips, min_frames, len(ids), split, kwargs, listed)


def _named_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The ``columns`` of every data row of a csv file whose first row names its columns (a row
    too short to hold them is refused, naming its line)."""
    rows = _numbered_rows(path)
    header = [name.strip() for name in rows[0][1]] if rows else []
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path}: the header {header} lacks the column(s) {missing}")
    at = [header.index(c) for c in columns]
    for n, row in rows[1:]:
        if len(row) <= max(at):
            raise ValueError(
                f"{path} line {n}: {len(row)} fields, expected the header's {len(header)} {header}"
            )
    return [tuple(row[i] for i in at) for _, row in rows[1:]]


def vggsound(
    root: str | Path,
    split: str,
    *,
    clip_ids: str = "auto",
    min_frames: int = 1,
    **kwargs: object,
) -> AVClipDataset:
    """VGGSound: ``{split}.csv`` rows ``<any>,<label name>,<clip id>``, ``label_encoding.json``
    (name -> id), ``AudioWAV/<id>.wav``, ``Image-01-FPS/<id>/``.

    ``clip_ids`` says how the third field names a clip (:data:`CLIP_IDS`): the released loader
    drops its first character, so ``auto`` reads a csv of that shape (a space or any other
    character before each id) as well as one with bare ids. Labels are looked up as written
    (the released loader's ``class_class[item[1]]``), else with surrounding whitespace removed;
    a row whose label is not in the encoding is skipped when its clip is absent (a header
    row), refused when it is on disk (the released loader's ``KeyError``). Clips with fewer
    than ``min_frames`` frames are skipped (the released loader keeps more than 3:
    ``min_frames=4``). Raises when no listed clip is found, naming how the ids were read.
    """
    if clip_ids not in CLIP_IDS:
        raise ValueError(f"clip_ids must be one of {CLIP_IDS}, got {clip_ids!r}")
    root = Path(root)
    csv_path = root / f"{split}.csv"
    ids: dict[str, int] = json.loads(read_utf8(root / "label_encoding.json"))

    def label(field: str) -> str:  # as written (the released loader's key), else stripped
        return field if field in ids else field.strip()

    numbered = [(n, r) for n, r in _numbered_rows(csv_path) if len(r) >= 3]
    rows = [(label(r[1]), r[2]) for _, r in numbered if label(r[1]) in ids]
    _check_labels(csv_path, root, numbered, ids, found=bool(rows))

    def read(how: str) -> list[Clip]:
        names = [vid.strip() if how == "written" else vid[1:] for _, vid in rows]
        return [
            Clip(root / "AudioWAV" / f"{vid}.wav", root / "Image-01-FPS" / vid, ids[label])
            for (label, _), vid in zip(rows, names)
        ]

    how = clip_ids
    if how == "auto":
        counts = {h: sum(map(_exists, read(h))) for h in ("written", "released")}
        how = "released" if counts["released"] > counts["written"] else "written"
    clips = read(how)
    if rows and not any(map(_exists, clips)):
        example = rows[0][1]
        read_as = example.strip() if how == "written" else example[1:]
        other = "released" if how == "written" else "written"
        found = sum(map(_exists, read(other)))
        raise ValueError(
            f"no clip of {csv_path} found under {root}: clip ids read as {how!r} "
            f"(clip_ids={clip_ids!r}), e.g. field {example!r} -> {read_as!r}; expected "
            f"AudioWAV/{read_as}.wav and Image-01-FPS/{read_as}/"
            + (f"; read as {other!r} the csv finds {found} clips" if found else "")
            + (
                " (the released loader drops the first character of each id: write the csv "
                "with a space before each id, or run without --preset official)"
                if found and how == "released"
                else ""
            )
        )
    other = "released" if how == "written" else "written"
    lost = [n for n, (a, b) in enumerate(zip(clips, read(other))) if _exists(b) and not _exists(a)]
    if lost:  # a csv of mixed shapes: some ids need the other reading
        warnings.warn(
            f"{len(lost)} clips of {csv_path} are found only when their ids are read as "
            f"{other!r} (e.g. field {rows[lost[0]][1]!r}), not as {how!r} (clip_ids="
            f"{clip_ids!r}): they are left out",
            stacklevel=2,
        )
    return _dataset(clips, min_frames, max(ids.values()) + 1, split, kwargs, csv_path)


def _check_labels(
    path: Path, root: Path, rows: list[tuple[int, list[str]]], ids: dict[str, int], found: bool
) -> None:
    """Refuse a VGGSound csv row whose label is not in ``label_encoding.json`` while its clip
    is on disk (the released loader raises ``KeyError`` there; a header row, whose clip is
    absent, passes), and a csv of which no row has a known label (another layout)."""
    for n, row in rows:
        if row[1] in ids or row[1].strip() in ids:
            continue
        vid = row[2]
        if any(_exists(Clip(root / "AudioWAV" / f"{v}.wav", root / "Image-01-FPS" / v, -1))
               for v in (vid.strip(), vid[1:])):  # fmt: skip
            raise ValueError(
                f"{path} line {n}: label {row[1]!r} (field 2) is not a key of "
                f"{root / 'label_encoding.json'}, yet clip {vid.strip()!r} is on disk"
            )
    if not rows:
        raise ValueError(
            f"{path}: no row of 3 or more comma-separated fields; expected rows "
            "'<any>,<label name>,<clip id>'"
        )
    if not found:
        n, row = rows[0]
        raise ValueError(
            f"{path}: no row has a label of {root / 'label_encoding.json'} in its second field "
            f"(e.g. line {n}: {row[1]!r}); expected rows '<any>,<label name>,<clip id>' (the "
            "public vggsound.csv, 'youtube_id,start,label,split', goes through "
            "examples/prepare.py vggsound)"
        )


def _dataset(
    listed: list[Clip],
    min_frames: int,
    num_classes: int,
    split: str,
    kwargs: dict[str, Any],
    csv_path: Path,
) -> AVClipDataset:
    """The dataset of the ``listed`` clips (from ``csv_path``) that :func:`_keep` keeps; none
    raises, saying why."""
    clips = _keep(listed, min_frames, csv_path)
    if not clips:
        found = [c for c in listed if _exists(c)]
        why = (
            f"{len(found)} have their wav and frame folder, none with {min_frames} frames or more"
            if found
            else f"none has its wav and frame folder (e.g. {listed[0].wav}, {listed[0].frames})"
            if listed
            else "the csv lists none"
        )
        raise ValueError(f"no usable clip in split {split!r}: of {len(listed)} listed, {why}")
    opts: dict[str, Any] = {"audio": AudioSpec(), "frames": FrameSpec(), "train": split == "train"}
    return AVClipDataset(clips, num_classes, **{**opts, **kwargs})
