"""Tri-modal classification with BSS: NVGesture, RGB + optical flow + depth (paper Table 1).

Three I3D encoders (weights from local files when given), a concat head and one linear head per
modality, trained with the paper's joint loss (Eq. 5) and predicted with Eq. 12 (all four
heads). The balance score uses all three modalities: the core scorer's similarity is the mean of
the three pairwise cosine similarities. Paper defaults: SGD lr 1e-2, momentum 0.9, weight decay
1e-4, batch 2. NVGesture has no validation split: by default the best epoch is selected on test
(as every published NVGesture number); ``--val-fraction`` holds out part of train instead. Flow
must be precomputed (``python -m examples.gesture.flow``). See docs/examples/trimodal.md.

    python examples/trimodal.py --dataset nvgesture --root data/nvgesture \\
        --i3d-rgb weights/rgb_imagenet.pt --i3d-flow weights/flow_imagenet.pt --sampler heuristic
    python examples/trimodal.py --demo    # tiny generated NVGesture layout, seconds on CPU
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from examples.common import LateFusionClassifier, add_common_args
from examples.common.cli import DefaultsHelpFormatter
from examples.common.methods import METHODS as METHODS_TRAIN
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
from examples.gesture.data import NUM_CLASSES, ClipSpec, NVGestureDataset
from examples.gesture.demo_data import make_nvgesture_demo_data
from examples.vision.i3d import ENDPOINTS, I3D

#: Modality -> input channels, in the order of the unimodal heads.
MODALITIES = {"rgb": 3, "flow": 2, "depth": 1}

#: ``--demo``: 4 clips per class and split, 3 classes; I3D 1/16 wide stopped at Mixed_3c, short
#: small clips, 20 epochs (BSS-H sees every clip from epoch 10), one CPU thread.
DEMO_SETTINGS: dict[str, Any] = {
    "i3d_width": 0.0625,
    "i3d_endpoint": "Mixed_3c",
    "train_frames": 8,
    "test_frames": 11,
    "frame_size": 36,
    "crop": 32,
    "batch_size": 4,
    "epochs": 20,
    "t_grow": 10,
    "progress": False,
    "threads": 1,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument("--dataset", default="nvgesture", choices=["nvgesture"], help="dataset")
    parser.add_argument("--root", help="NVGesture folder (layout in the docs)")
    parser.add_argument("--demo", action="store_true", help=DEMO_HELP.format("NVGesture"))
    parser.add_argument(
        "--i3d-rgb", help="local I3D state_dict for the RGB encoder (default: random init)"
    )
    parser.add_argument(
        "--i3d-flow", help="local I3D state_dict for the flow encoder (default: random init)"
    )
    parser.add_argument(
        "--i3d-depth", help="local I3D state_dict for the depth encoder (default: --i3d-rgb's)"
    )
    parser.add_argument("--i3d-width", type=float, default=1.0, help="I3D channel factor")
    parser.add_argument(
        "--i3d-endpoint",
        default="Mixed_5c",
        choices=ENDPOINTS,
        metavar="BLOCK",
        help="last I3D block, one of " + ", ".join(ENDPOINTS) + "; an earlier one is smaller",
    )
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout on I3D features")
    parser.add_argument("--train-frames", type=int, default=64, help="frames per training clip")
    parser.add_argument("--test-frames", type=int, default=80, help="frames per test clip")
    parser.add_argument(
        "--frame-size", type=int, default=256, help="frames resized to this square size"
    )
    parser.add_argument("--crop", type=int, default=224, help="crop size after resizing")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="hold out this stratified fraction of train for model selection (0: select on "
        "test, as the published NVGesture numbers)",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of --val-fraction")
    add_common_args(
        parser,
        methods=METHODS_TRAIN,
        default_out="runs/trimodal/nvgesture-METHOD-SAMPLER-seedSEED",
        augmented=True,
    )
    parser.set_defaults(optimizer="sgd", lr=1e-2, batch_size=2)
    if peek(argv).demo:
        parser.set_defaults(**DEMO_SETTINGS)
    args = parser.parse_args(argv)
    check_root(parser, args)
    if args.out is None and not args.demo:
        args.out = default_out("trimodal", args)
    return resolve_preset(args)


def load_data(
    args: argparse.Namespace,
) -> tuple[NVGestureDataset, dict[str, NVGestureDataset], NVGestureDataset]:
    """``(train, eval splits, scoring view of train)``; see ``--score-augmented``."""
    spec = ClipSpec(args.train_frames, args.test_frames, args.frame_size, args.crop)
    train = NVGestureDataset(args.root, "train", spec=spec, seed=args.seed)
    evals = {"test": NVGestureDataset(args.root, "test", spec=spec)}
    score_seed = scoring_seed(args.seed) if args.score_augmented else None
    return hold_out_validation(
        train, evals, args.val_fraction, args.split_seed, score_seed=score_seed
    )


def build_model(args: argparse.Namespace) -> LateFusionClassifier:
    """One I3D per modality (RGB weights adapted for depth), concat head, three linear heads."""
    weights = {"rgb": args.i3d_rgb, "flow": args.i3d_flow, "depth": args.i3d_depth or args.i3d_rgb}
    encoders = {
        name: I3D(
            channels,
            width=args.i3d_width,
            final_endpoint=args.i3d_endpoint,
            dropout=args.dropout,
            weights=weights[name],
        )
        for name, channels in MODALITIES.items()
    }
    dims = {k: e.out_features for k, e in encoders.items()}
    return LateFusionClassifier(encoders, dims, NUM_CLASSES)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.demo:
        demo_folder("trimodal", args)
        make_nvgesture_demo_data(args.root, per_class=4, seed=args.seed)
    return run_example(args, load_data(args), lambda: build_model(args), unit="clips")


if __name__ == "__main__":
    main()
