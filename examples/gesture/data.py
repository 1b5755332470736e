"""NVGesture (25 dynamic hand gestures) as RGB, optical-flow and depth clips.

Layout under ``root`` (the dataset as released, plus precomputed flow):

* ``nvgesture_{train,test}_correct_v2.lst``: one clip per line, e.g.
  ``path:./Video_data/class_01/subject13_r0 depth:sk_depth:138:218 color:sk_color:138:218
  duo_left:duo_left:161:254 label:1``; labels are 1-based (made 0-based here); ``S:E`` is the
  gesture's frame range, read as frames ``S .. E - 1``.
* ``<path>/sk_color.avi`` and ``<path>/sk_depth.avi``, read with OpenCV (as RGB; see ``colour``).
* ``flow_data/{train,test}/<position>.npy``: float32 ``(H, W, 2, T)`` Farneback flow of the
  colour frames ``S .. E - 1`` (``T = E - S - 1``), ``<position>`` the 0-based line number in
  the list (the released code's convention). Make them with ``python -m examples.gesture.flow``.

Items: ``{"rgb": (3, K, C, C), "flow": (2, K', C, C), "depth": (1, K, C, C), "target",
"index"}``. Frames are resized to ``frame_size`` (256) and cropped to ``crop`` (224): a random
crop and a random window of ``K`` consecutive frames (64) when training, the centre crop and the
first ``K`` frames (80) when testing. The same window and crop apply to all three modalities.
No flip: left and right swipes are different classes. Training randomness comes from a
generator seeded by ``(seed, epoch, index)`` (call ``set_epoch``).

By default (:class:`ClipSpec`'s defaults) RGB is ImageNet-normalised, depth scaled to
``[-1, 1]``, flow taken over the window (``K' = K``), its vectors rescaled to the resized frame,
clipped to +-20 pixels and divided by 20, and a clip shorter than ``K`` repeats its last frame.
``--preset official`` sets the released loader's choices (``examples.common.released``):
``colour="bgr"`` (OpenCV's BGR order under the RGB statistics, depth from OpenCV's first
channel), ``flow="raw"`` (every stored flow frame as stored, ``K' = max(T, test_frames - 1)``,
whatever the window, cropped at the stored resolution without resizing), ``depth="unit"``
(``[0, 1]``) and ``pad="zeros"`` (the released 80-frame container: the clip followed by black
frames, the training window drawn within it).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from examples.common.frames import IMAGENET_MEAN, IMAGENET_STD
from examples.common.textfiles import read_utf8
from examples.vision.transforms import item_generator, resize_clip
from examples.vision.video import read_frames

__all__ = [
    "CHOICES",
    "NUM_CLASSES",
    "ClipSpec",
    "NVClip",
    "NVGestureDataset",
    "flow_path",
    "list_path",
    "parse_line",
    "read_list",
]

NUM_CLASSES = 25


@dataclass(frozen=True)
class NVClip:
    """One line of a split list: folder, frame ranges ``[start, stop)`` and 0-based label."""

    path: str
    color: tuple[int, int]
    depth: tuple[int, int]
    label: int
    position: int


#: ``ClipSpec`` field -> its choices, the default (ours) first.
CHOICES: dict[str, tuple[str, ...]] = {
    "colour": ("rgb", "bgr"),
    "flow": ("window", "raw"),
    "depth": ("signed", "unit"),
    "pad": ("repeat", "zeros"),
}


@dataclass(frozen=True)
class ClipSpec:
    """Frames per clip (training / testing), the resize and crop sizes in pixels, and how each
    modality is fed (:data:`CHOICES`; the second choice of each is the released loader's).

    * ``colour``: ``rgb`` (frames converted from OpenCV's BGR) or ``bgr`` (kept as decoded);
      either is normalised with the RGB ImageNet statistics in channel order. Depth is read
      from the first channel of the decoded frame: red (``rgb``) or, as OpenCV decodes it,
      blue (``bgr``); a grey depth video has the same value in each.
    * ``flow``: ``window`` (the window's frames, vectors rescaled to the resized frame,
      clipped to +-``flow_clip`` pixels, divided by ``flow_clip``) or ``raw`` (every stored
      frame, padded as ``pad`` says to ``test_frames - 1`` when fewer, values as stored, cropped
      as stored: the released loader never resizes flow, so it must be stored at
      ``frame_size``; flow stored smaller than that is resized to it, with a warning, since the
      released crop would leave the array).
    * ``depth``: ``signed`` (``[-1, 1]``) or ``unit`` (``[0, 1]``).
    * ``pad``: a clip shorter than the window repeats its last frame (``repeat``), the window
      drawn within the clip; or (``zeros``, the released loader) the clip is put in a
      container of ``test_frames`` frames, black after its end (pixel value 0, then
      normalised), the training window drawn anywhere within the container (start in
      ``[0, test_frames - train_frames]`` whatever the clip's length) and frames past
      ``test_frames`` never read.
    """

    train_frames: int = 64
    test_frames: int = 80
    frame_size: int = 256
    crop: int = 224
    flow_clip: float = 20.0
    colour: str = "rgb"
    flow: str = "window"
    depth: str = "signed"
    pad: str = "repeat"

    def __post_init__(self) -> None:
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")


def list_path(root: str | Path, split: str) -> Path:
    """``root/nvgesture_{split}_correct_v2.lst``."""
    return Path(root) / f"nvgesture_{split}_correct_v2.lst"


def flow_path(root: str | Path, split: str, position: int) -> Path:
    """``root/flow_data/{split}/{position}.npy``."""
    return Path(root) / "flow_data" / split / f"{position}.npy"


def parse_line(line: str, position: int = 0) -> NVClip:
    """One list line as an :class:`NVClip`.

    >>> c = parse_line("path:./Video_data/class_02/s1_r0 depth:sk_depth:10:90 "
    ...                "color:sk_color:10:90 duo_left:duo_left:5:9 label:2")
    >>> c.path, c.color, c.label
    ('./Video_data/class_02/s1_r0', (10, 90), 1)
    """
    shape = "path:<dir> depth:<name>:<start>:<end> color:<name>:<start>:<end> label:<1-25>"
    tokens = line.split()
    bad = [t for t in tokens if ":" not in t]
    if bad:
        raise ValueError(f"field {bad[0]!r} is not 'key:value'; expected {shape}: {line!r}")
    fields = dict(token.split(":", 1) for token in tokens)
    missing = {"path", "color", "depth", "label"} - set(fields)
    if missing:
        raise ValueError(f"list line lacks {sorted(missing)}; expected {shape}: {line!r}")

    def frames(key: str) -> tuple[int, int]:
        parts = fields[key].rsplit(":", 2)
        if len(parts) != 3 or not all(p.isdigit() for p in parts[1:]):
            raise ValueError(f"{key}:{fields[key]!r} is not {key}:<name>:<start>:<end>: {line!r}")
        return int(parts[1]), int(parts[2])

    label = int(fields["label"]) if fields["label"].isdigit() else -1
    if not 1 <= label <= NUM_CLASSES:
        raise ValueError(f"label must lie in [1, {NUM_CLASSES}], got {fields['label']} in {line!r}")
    return NVClip(fields["path"], frames("color"), frames("depth"), label - 1, position)


def read_list(root: str | Path, split: str) -> list[NVClip]:
    """The clips of ``split`` (``train`` or ``test``) in list order (a byte-order mark is
    skipped; a line that does not parse is refused naming the file and the line)."""
    path = list_path(root, split)
    clips = []
    for i, line in enumerate(read_utf8(path).splitlines()):
        if line.strip():
            try:
                clips.append(parse_line(line, i))
            except ValueError as err:
                raise ValueError(f"{path} line {i + 1}: {err}") from None
    if not clips:
        raise ValueError(f"{path} lists no clip")
    return clips


def _window(available: int, count: int, gen: torch.Generator | None) -> list[int]:
    """``count`` consecutive positions from a random start when ``gen`` (else 0); positions
    past ``available`` are left for :func:`_take` to pad."""
    start = 0
    if gen is not None and available > count:
        start = int(torch.randint(0, available - count + 1, (1,), generator=gen))
    return list(range(start, start + count))


def _take(x: Tensor, positions: Sequence[int], pad: str) -> Tensor:
    """Frames ``positions`` of ``(C, T, H, W)``; past the end, the last one (``repeat``) or a
    zero frame (``zeros``)."""
    last = x.shape[1] - 1
    out = x[:, [min(t, last) for t in positions]]
    if pad == "zeros":
        out[:, [i for i, t in enumerate(positions) if t > last]] = 0
    return out


class NVGestureDataset(Dataset[dict[str, Tensor]]):
    """NVGesture clips of one split (see the module docstring for the tensors)."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        clips: Sequence[NVClip] | None = None,
        *,
        spec: ClipSpec | None = None,
        train: bool | None = None,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.clips = list(read_list(root, split) if clips is None else clips)
        self.spec = spec or ClipSpec()
        self.train = split == "train" if train is None else train
        self.num_classes = NUM_CLASSES
        self.seed, self.epoch = seed, 0

    @property
    def targets(self) -> list[int]:
        return [c.label for c in self.clips]

    def subset(
        self, positions: Sequence[int], *, train: bool | None = None, seed: int | None = None
    ) -> NVGestureDataset:
        """A dataset over ``clips[positions]`` (re-indexed from 0), optionally another mode or
        augmentation seed."""
        return NVGestureDataset(
            self.root,
            self.split,
            [self.clips[i] for i in positions],
            spec=self.spec,
            train=self.train if train is None else train,
            seed=self.seed if seed is None else seed,
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the training augmentations of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def _video(self, clip: NVClip, name: str, frames: tuple[int, int]) -> Tensor:
        """``uint8 (3, n, H, W)`` frames of ``<path>/<name>.avi``."""
        array = read_frames(self.root / clip.path / f"{name}.avi", *frames)
        return torch.from_numpy(array).permute(3, 0, 1, 2)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        clip, spec = self.clips[index], self.spec
        gen = item_generator(self.seed, self.epoch, index) if self.train else None
        rgb = self._video(clip, "sk_color", clip.color)
        channel = 2 if spec.colour == "bgr" else 0  # OpenCV's first channel is blue
        depth = self._video(clip, "sk_depth", clip.depth)[channel : channel + 1]
        stored = flow_path(self.root, self.split, clip.position)
        flow = torch.from_numpy(np.load(stored)).permute(2, 3, 0, 1)  # (H, W, 2, T) -> (2, T, H, W)
        count = spec.train_frames if self.train else spec.test_frames
        span = spec.test_frames if spec.pad == "zeros" else rgb.shape[1]  # released container
        window = _window(span, count, gen)
        size = (spec.frame_size, spec.frame_size)
        rgb = _take(rgb, window, spec.pad)
        if spec.colour == "bgr":
            rgb = rgb.flip(0)  # back to the order OpenCV decodes
        rgb = resize_clip(rgb, size) / 255.0
        depth = resize_clip(_take(depth, window, spec.pad), size)
        modalities = {
            "rgb": (rgb - IMAGENET_MEAN.unsqueeze(1)) / IMAGENET_STD.unsqueeze(1),
            "flow": self._flow(flow, window, stored),
            "depth": depth / 255.0 if spec.depth == "unit" else depth / 127.5 - 1.0,
        }
        top = left = (spec.frame_size - spec.crop) // 2
        if gen is not None:
            top, left = torch.randint(0, spec.frame_size - spec.crop + 1, (2,), generator=gen)
        rows = slice(int(top), int(top) + spec.crop)
        cols = slice(int(left), int(left) + spec.crop)
        item = {k: v[:, :, rows, cols].contiguous() for k, v in modalities.items()}
        return {**item, "target": torch.tensor(clip.label), "index": torch.tensor(index)}

    def _flow(self, flow: Tensor, window: list[int], stored: Path) -> Tensor:
        """``(2, T, H, W)`` stored flow as fed (see :class:`ClipSpec`'s ``flow``): resized to
        ``frame_size`` (``raw``: only when stored smaller), ready for the crop."""
        spec = self.spec
        size = (spec.frame_size, spec.frame_size)
        if spec.flow == "raw":
            # every stored frame (the released model's comment: 80), padded to test_frames - 1
            frames = max(flow.shape[1], spec.test_frames - 1)
            raw = _take(flow, range(frames), spec.pad)
            if min(raw.shape[2:]) >= spec.frame_size:
                return raw  # cropped as stored, as the released loader does
            warnings.warn(
                f"{stored.parent}: flow stored at {tuple(raw.shape[2:])}, smaller than frame_size "
                f"{spec.frame_size}: the released loader crops flow as stored (it must be "
                f"written at {spec.frame_size}x{spec.frame_size}); resized to it here",
                stacklevel=2,
            )
            return resize_clip(raw, size)
        scale = torch.tensor([spec.frame_size / flow.shape[3], spec.frame_size / flow.shape[2]])
        flow = resize_clip(_take(flow, window, spec.pad), size) * scale.view(2, 1, 1, 1)
        return flow.clamp(-spec.flow_clip, spec.flow_clip) / spec.flow_clip
