"""Image-text classification with BSS: Twitter2015 or Sarcasm (paper Table 1).

A ResNet50 image encoder (ImageNet weights from a local ``.pth``) and a BERT-base text encoder
(loaded from a local directory; nothing is downloaded), pooled [CLS], a concat head and one
linear head per modality, trained with the paper's joint loss (Eq. 5) and predicted with
Eq. 12. Paper defaults: Adam, lr 1e-5, batch 64. The best epoch is selected on the validation
split (Twitter2015 ``dev``, Sarcasm ``valid_data.json``) and test is reported at that epoch.
See docs/examples/image_text.md for the layouts and the commands of the paper's rows.

    python examples/image_text.py --dataset twitter2015 --root data/twitter2015 \\
        --bert weights/bert-base-uncased --resnet50 weights/resnet50.pth --sampler learned
    python examples/image_text.py --demo    # tiny generated Twitter2015 layout and tiny BERT
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from torch import nn

from examples.common import add_common_args
from examples.common.cli import DefaultsHelpFormatter
from examples.common.methods import METHODS as METHODS_TRAIN
from examples.common.released import resolve_preset
from examples.common.script import (
    DEMO_HELP,
    check_root,
    default_out,
    demo_folder,
    peek,
    run_example,
    scoring_seed,
)
from examples.common.splits import stratified_split
from examples.imtext.data import DATASETS, ImageTextDataset, Record, read_split
from examples.imtext.demo_data import make_image_text_demo_data, make_tiny_bert
from examples.imtext.models import build_image_text_model, load_tokenizer

#: ``--demo``: 8 pairs per class and split, a 1-layer BERT 16 wide, a ResNet50 1/16 wide, small
#: images, a larger learning rate for the tiny random models, 20 epochs (BSS-H: all from 10), one
#: CPU thread.
DEMO_SETTINGS: dict[str, Any] = {
    "dataset": "twitter2015",
    "resnet_width": 0.0625,
    "image_size": 64,
    "max_length": 16,
    "batch_size": 8,
    "lr": 3e-3,
    "epochs": 20,
    "t_grow": 10,
    "progress": False,
    "threads": 1,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), help="dataset layout (required, except with --demo)"
    )
    parser.add_argument("--root", help="dataset folder (layouts in the docs)")
    parser.add_argument(
        "--bert", help="local bert-base-uncased directory (required, except with --demo)"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=DEMO_HELP.format("Twitter2015 and a tiny random BERT"),
    )
    parser.add_argument(
        "--resnet50", help="local torchvision-style ResNet50 ImageNet .pth (default: random init)"
    )
    parser.add_argument("--resnet-width", type=float, default=1.0, help="ResNet50 width factor")
    parser.add_argument(
        "--image-size",
        type=int,
        help="image size in pixels; per dataset: twitter2015 384, sarcasm 224",
    )
    parser.add_argument(
        "--max-length", type=int, help="BERT tokens; per dataset: twitter2015 30, sarcasm 80"
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="without a validation file (Sarcasm without valid_data.json), hold out this "
        "stratified fraction of train for model selection (0: select on test)",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of --val-fraction")
    add_common_args(
        parser,
        methods=METHODS_TRAIN,
        default_out="runs/image_text/DATASET-METHOD-SAMPLER-seedSEED",
        augmented=True,
    )
    parser.set_defaults(optimizer="adam", lr=1e-5, batch_size=64, weight_decay=0.0)
    if peek(argv).demo:
        parser.set_defaults(**DEMO_SETTINGS)
    args = parser.parse_args(argv)
    if args.dataset is None:
        parser.error("--dataset is required (or try --demo)")
    check_root(parser, args)
    if args.bert is None and not args.demo:
        parser.error("--bert is required (or try --demo)")
    if args.out is None and not args.demo:
        args.out = default_out("image_text", args)
    return resolve_preset(args)


def load_data(
    args: argparse.Namespace,
) -> tuple[ImageTextDataset, dict[str, ImageTextDataset], ImageTextDataset]:
    """``(train, {"val", "test"}, scoring view of train)``; see ``--score-augmented``.

    Twitter2015 has no training augmentation, so its scoring view is the same either way.
    """
    tokenizer = load_tokenizer(args.bert)
    train_records = read_split(args.dataset, args.root, "train")
    assert train_records is not None
    val_records = read_split(args.dataset, args.root, "val")
    if val_records is None and args.val_fraction > 0:
        labels = [r.label for r in train_records]
        rest, held = stratified_split(labels, args.val_fraction, args.split_seed)
        val_records = [train_records[i] for i in held]
        train_records = [train_records[i] for i in rest]
        print(f"no validation file: held out {len(held)} training pairs for model selection")

    def make(records: list[Record], train: bool, seed: int = args.seed) -> ImageTextDataset:
        return ImageTextDataset(
            args.dataset,
            records,
            tokenizer,
            train=train,
            image_size=args.image_size,
            max_length=args.max_length,
            seed=seed,
        )

    test_records = read_split(args.dataset, args.root, "test")
    assert test_records is not None
    evals = {"val": make(val_records, False)} if val_records is not None else {}
    evals["test"] = make(test_records, False)
    if args.score_augmented:
        score = make(train_records, True, seed=scoring_seed(args.seed))
    else:
        score = make(train_records, False)
    return make(train_records, True), evals, score


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.demo:
        folder = demo_folder("image_text", args)
        make_image_text_demo_data(args.dataset, args.root, per_class=8, seed=args.seed)
        if args.bert is None:
            args.bert = str(make_tiny_bert(folder / "bert", seed=args.seed))
    data = load_data(args)

    def build() -> nn.Module:
        return build_image_text_model(
            data[0].num_classes, args.bert, resnet50=args.resnet50, resnet_width=args.resnet_width
        )

    return run_example(args, data, build, unit="pairs")


if __name__ == "__main__":
    main()
