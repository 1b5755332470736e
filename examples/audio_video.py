"""Audio-video classification with BSS: CREMA-D, Kinetics-Sounds or VGGSound (paper Tables 1-2).

Two ResNet18 encoders trained from scratch (1-channel log-STFT audio; frames folded into the
batch and averaged over time), a concat head and one linear head per modality, trained with the
paper's joint loss (Eq. 5) and predicted with Eq. 12. See docs/examples/audio_video.md for the
data layouts and the command lines of the paper's rows.

    python examples/audio_video.py --dataset cremad --root data/CREMA-D --sampler learned
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from examples.av.audio import AudioSpec
from examples.av.datasets import AVClipDataset, FrameSpec, cremad, kinetics_sounds, vggsound
from examples.av.resnet import AudioEncoder, VisualEncoder
from examples.common import (
    LateFusionClassifier,
    add_common_args,
)
from examples.common.script import default_out, hold_out_validation, run_example


@dataclass(frozen=True)
class DatasetDefaults:
    """Per-dataset defaults: the community pipelines' audio/frames, the paper's batch size."""

    load: Callable[..., AVClipDataset]
    sample_rate: int
    audio_seconds: float
    frames: int
    image_size: int
    batch_size: int


DATASETS = {
    "cremad": DatasetDefaults(cremad, 22_050, 20.0, 1, 224, 64),
    "ks": DatasetDefaults(kinetics_sounds, 35_400, 10.0, 3, 224, 64),
    "vggsound": DatasetDefaults(vggsound, 35_400, 20.0, 1, 384, 16),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--root", required=True, help="dataset folder (layouts in the docs)")
    parser.add_argument("--width", type=int, default=64, help="ResNet18 base width (64 = paper)")
    parser.add_argument("--frames", type=int, help="frames per clip")
    parser.add_argument("--image-size", type=int, help="frame size in pixels")
    parser.add_argument("--sample-rate", type=int, help="audio sample rate (Hz)")
    parser.add_argument("--audio-seconds", type=float, help="audio tiled to this length")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="carve a stratified validation split from train for model selection (0: none, "
        "the best epoch is then selected on test as in the released code)",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of --val-fraction")
    add_common_args(parser)
    known, _ = parser.parse_known_args(argv)
    if known.dataset in DATASETS:
        d = DATASETS[known.dataset]
        parser.set_defaults(
            frames=d.frames,
            image_size=d.image_size,
            sample_rate=d.sample_rate,
            audio_seconds=d.audio_seconds,
            batch_size=d.batch_size,
        )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = default_out("audio_video", args)
    return args


def load_data(
    args: argparse.Namespace,
) -> tuple[AVClipDataset, dict[str, AVClipDataset], AVClipDataset]:
    """``(train, eval splits, train without augmentation for scoring)``."""
    opts: dict[str, Any] = {
        "audio": AudioSpec(sample_rate=args.sample_rate, seconds=args.audio_seconds),
        "frames": FrameSpec(count=args.frames, size=args.image_size),
        "seed": args.seed,
    }
    load = DATASETS[args.dataset].load
    train = load(args.root, "train", **opts)
    evals = {"test": load(args.root, "test", **opts)}
    return hold_out_validation(train, evals, args.val_fraction, args.split_seed)


def build_model(num_classes: int, width: int) -> LateFusionClassifier:
    """Audio and visual ResNet18 encoders, concat head, one linear head per modality."""
    encoders = {"audio": AudioEncoder(width), "visual": VisualEncoder(width)}
    dims = {k: e.out_features for k, e in encoders.items()}
    return LateFusionClassifier(encoders, dims, num_classes)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    data = load_data(args)
    return run_example(
        args, data, lambda: build_model(data[0].num_classes, args.width), unit="clips"
    )


if __name__ == "__main__":
    main()
