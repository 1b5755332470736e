"""Precompute NVGesture optical flow: ``flow_data/{split}/<position>.npy`` for every listed clip.

For each line of ``nvgesture_{split}_correct_v2.lst`` (``position`` = 0-based line number), the
colour frames ``S .. E - 1`` of ``<path>/sk_color.avi`` go through OpenCV's Farneback method
(:func:`examples.vision.video.farneback_flow`); the result is saved as float32
``(H, W, 2, E - S - 1)``. NVGesture's 320x240 clips take about 48 MB each at full resolution
(about 75 GB for both splits); ``--size 128 128`` keeps 1/4.7 of that and the loader resizes
the flow (and rescales its vectors) to the training frame size anyway. Existing files are kept
unless ``--overwrite``.

    python -m examples.gesture.flow --root data/nvgesture --size 128 128
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from examples.gesture.data import flow_path, read_list
from examples.vision.video import farneback_flow, read_frames

__all__ = ["compute_flow", "main"]


def compute_flow(
    root: str | Path,
    splits: tuple[str, ...] = ("train", "test"),
    *,
    size: tuple[int, int] | None = None,
    overwrite: bool = False,
    verbose: bool = True,
) -> int:
    """Write the flow file of every clip of ``splits``; returns how many were written."""
    written = 0
    for split in splits:
        clips = read_list(root, split)
        for n, clip in enumerate(clips, start=1):
            out = flow_path(root, split, clip.position)
            if out.is_file() and not overwrite:
                continue
            frames = read_frames(Path(root) / clip.path / "sk_color.avi", *clip.color)
            out.parent.mkdir(parents=True, exist_ok=True)
            np.save(out, farneback_flow(frames, size))
            written += 1
            if verbose and (n % 50 == 0 or n == len(clips)):
                print(f"{split}: {n}/{len(clips)} clips")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="NVGesture folder (holds the .lst files)")
    parser.add_argument("--splits", nargs="+", default=["train", "test"])
    parser.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="resize first")
    parser.add_argument("--overwrite", action="store_true", help="recompute existing files")
    args = parser.parse_args(argv)
    size = tuple(args.size) if args.size else None
    written = compute_flow(args.root, tuple(args.splits), size=size, overwrite=args.overwrite)
    print(f"wrote {written} flow files under {Path(args.root) / 'flow_data'}")
    return written


if __name__ == "__main__":
    main()
