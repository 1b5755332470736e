"""Audio-video classification with BSS: CREMA-D, Kinetics-Sounds or VGGSound (paper Tables 1-2).

Two ResNet18 encoders trained from scratch (1-channel log-STFT audio; frames folded into the
batch and averaged over time), a concat head and one linear head per modality, trained with the
paper's joint loss (Eq. 5) and predicted with Eq. 12. See docs/examples/audio_video.md for the
data layouts and the command lines of the paper's rows.

    python examples/audio_video.py --dataset cremad --root data/CREMA-D --sampler learned
    python examples/audio_video.py --demo        # tiny generated CREMA-D layout, seconds on CPU
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
from examples.av.demo_data import make_av_demo_data
from examples.av.resnet import AudioEncoder, VisualEncoder
from examples.common import LateFusionClassifier, add_common_args
from examples.common.cli import DefaultsHelpFormatter
from examples.common.released import resolve_preset
from examples.common.script import (
    DEMO_HELP,
    check_root,
    default_out,
    demo_folder,
    hold_out_validation,
    peek,
    run_example,
    scoring_seed,
)


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

#: ``--demo``: 8 clips per class and split, 3 classes; a narrow ResNet18, small frames, short
#: audio, 20 epochs (BSS-H sees every clip from epoch 10), one CPU thread.
DEMO_SETTINGS: dict[str, Any] = {
    "width": 8,
    "frames": 2,
    "image_size": 32,
    "sample_rate": 8_000,
    "audio_seconds": 0.25,
    "batch_size": 8,
    "epochs": 20,
    "t_grow": 10,
    "progress": False,
    "threads": 1,
}


def _per_dataset(field: str) -> str:
    values = ", ".join(f"{k} {getattr(d, field)}" for k, d in DATASETS.items())
    return f"per dataset: {values}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), help="dataset layout (required, except with --demo)"
    )
    parser.add_argument("--root", help="dataset folder (layouts in the docs)")
    parser.add_argument("--demo", action="store_true", help=DEMO_HELP.format("CREMA-D"))
    parser.add_argument("--width", type=int, default=64, help="ResNet18 base width")
    parser.add_argument("--frames", type=int, help="frames per clip; " + _per_dataset("frames"))
    parser.add_argument(
        "--image-size", type=int, help="frame size in pixels; " + _per_dataset("image_size")
    )
    parser.add_argument(
        "--sample-rate", type=int, help="audio sample rate (Hz); " + _per_dataset("sample_rate")
    )
    parser.add_argument(
        "--audio-seconds",
        type=float,
        help="audio tiled to this length; " + _per_dataset("audio_seconds"),
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="carve a stratified validation split from train for model selection (0: none, "
        "the best epoch is then selected on test as in the released code)",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of --val-fraction")
    add_common_args(
        parser, default_out="runs/audio_video/DATASET-METHOD-SAMPLER-seedSEED", augmented=True
    )
    known = peek(argv)
    if known.demo and known.dataset is None:
        parser.set_defaults(dataset="cremad")
        known.dataset = "cremad"
    if known.dataset in DATASETS:
        d = DATASETS[known.dataset]
        parser.set_defaults(
            frames=d.frames,
            image_size=d.image_size,
            sample_rate=d.sample_rate,
            audio_seconds=d.audio_seconds,
            batch_size=d.batch_size,
        )
    if known.demo:
        parser.set_defaults(**DEMO_SETTINGS)
    args = parser.parse_args(argv)
    if args.dataset is None:
        parser.error("--dataset is required (or try --demo)")
    check_root(parser, args)
    if args.out is None and not args.demo:
        args.out = default_out("audio_video", args)
    return resolve_preset(args)


def load_data(
    args: argparse.Namespace,
) -> tuple[AVClipDataset, dict[str, AVClipDataset], AVClipDataset]:
    """``(train, eval splits, scoring view of train)``; see ``--score-augmented``."""
    opts: dict[str, Any] = {
        "audio": AudioSpec(sample_rate=args.sample_rate, seconds=args.audio_seconds),
        "frames": FrameSpec(count=args.frames, size=args.image_size),
        "seed": args.seed,
    }
    load = DATASETS[args.dataset].load
    train = load(args.root, "train", **opts)
    evals = {"test": load(args.root, "test", **opts)}
    score_seed = scoring_seed(args.seed) if args.score_augmented else None
    return hold_out_validation(
        train, evals, args.val_fraction, args.split_seed, score_seed=score_seed
    )


def build_model(num_classes: int, width: int) -> LateFusionClassifier:
    """Audio and visual ResNet18 encoders, concat head, one linear head per modality."""
    encoders = {"audio": AudioEncoder(width), "visual": VisualEncoder(width)}
    dims = {k: e.out_features for k, e in encoders.items()}
    return LateFusionClassifier(encoders, dims, num_classes)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.demo:
        demo_folder("audio_video", args)
        make_av_demo_data(args.dataset, args.root, per_class=8, seed=args.seed)
    data = load_data(args)
    return run_example(
        args, data, lambda: build_model(data[0].num_classes, args.width), unit="clips"
    )


if __name__ == "__main__":
    main()
