"""Precompute NVGesture optical flow: ``flow_data/{split}/<position>.npy`` for every listed clip.

For each line of ``nvgesture_{split}_correct_v2.lst`` (``position`` = 0-based line number), the
colour frames ``S .. E - 1`` of ``<path>/sk_color.avi`` go through OpenCV's Farneback method
(:func:`examples.vision.video.farneback_flow`); the result is saved as float32
``(H, W, 2, E - S - 1)``. NVGesture's 320x240 clips take about 48 MB each at full resolution
(about 75 GB for both splits); ``--size 128 128`` keeps 1/4.7 of that and the loader resizes
the flow (and rescales its vectors) to the training frame size anyway. Each file is written under
a temporary name and renamed when complete, so existing files are complete and kept unless
``--overwrite`` (a second run computes nothing that is done).

    python examples/prepare.py nvgesture-flow data/nvgesture --size 128 128
    python -m examples.gesture.flow --root data/nvgesture --size 128 128   # the older command
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from examples.common.atomic import atomic_file, remove_partials
from examples.common.clipjobs import Outcome, run_clips
from examples.gesture.data import flow_path, read_list
from examples.vision.video import farneback_flow, read_frames

__all__ = ["DESCRIPTION", "FlowTask", "add_arguments", "compute_flow", "flow_job", "main", "run"]

DESCRIPTION = """ROOT: the NVGesture folder, holding nvgesture_{train,test}_correct_v2.lst and the
Video_data/ clips they list (<path>/sk_color.avi). The flow of each listed clip is written to
ROOT/flow_data/{split}/<position>.npy (float32, H x W x 2 x frames-1), where the loader reads it.
Needs OpenCV (pip install 'bss-sampler[opencv]')."""


@dataclass(frozen=True)
class FlowTask:
    """One clip's colour video, frame range and flow file (``clip``: ``<split>/<position>``)."""

    clip: str
    video: Path
    start: int
    stop: int
    out: Path
    size: tuple[int, int] | None
    overwrite: bool = False


def flow_job(task: FlowTask) -> Outcome:
    """Write ``task``'s flow file unless it exists (or ``overwrite``)."""
    if task.out.is_file() and not task.overwrite:
        return Outcome(task.clip, "done")
    frames = read_frames(task.video, task.start, task.stop)
    flow = farneback_flow(frames, task.size)
    with atomic_file(task.out) as tmp, tmp.open("wb") as fh:
        np.save(fh, flow)
    return Outcome(task.clip, "written", frames=flow.shape[-1])


def compute_flow(
    root: str | Path,
    splits: tuple[str, ...] = ("train", "test"),
    *,
    size: tuple[int, int] | None = None,
    overwrite: bool = False,
    verbose: bool = True,
    workers: int = 1,
    skip_bad: bool = False,
) -> list[Outcome]:
    """Write the flow file of every clip of ``splits``; one outcome per clip. Raises
    ``ValueError`` naming every clip that could not be read, unless ``skip_bad``."""
    tasks = []
    for split in splits:
        remove_partials(flow_path(root, split, 0).parent)
        for clip in read_list(root, split):
            tasks.append(
                FlowTask(
                    f"{split}/{clip.position}",
                    Path(root) / clip.path / "sk_color.avi",
                    *clip.color,
                    flow_path(root, split, clip.position),
                    size,
                    overwrite,
                )
            )
    outcomes = run_clips(flow_job, tasks, workers=workers, desc="flow", show_progress=verbose)
    bad = [o for o in outcomes if o.status == "bad"]
    if bad and not skip_bad:
        lines = "\n".join(
            f"  {o.clip} ({t.video}): {o.reason}"
            for o, t in zip(outcomes, tasks)
            if o.status == "bad"
        )
        raise ValueError(f"{len(bad)} clips could not be read:\n{lines}")
    return outcomes


def add_arguments(parser: argparse.ArgumentParser, *, root_flag: bool = False) -> None:
    """The command's flags; ROOT positional (``prepare.py nvgesture-flow``) or ``--root``."""
    if root_flag:
        parser.add_argument("--root", required=True, help="NVGesture folder (holds the lists)")
    else:
        parser.add_argument("root", metavar="ROOT", help="NVGesture folder (see above)")
    parser.add_argument("--splits", nargs="+", default=["train", "test"])
    parser.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="resize first")
    parser.add_argument("--overwrite", action="store_true", help="recompute existing files")
    parser.add_argument("--workers", type=int, default=1, help="processes computing flow")
    parser.add_argument(
        "--skip-bad", action="store_true", help="write every readable clip, list the others"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no bar")


def run(args: argparse.Namespace) -> int:
    """Compute the flow as ``args`` say and print a summary; returns the exit status."""
    size = (args.size[0], args.size[1]) if args.size else None
    try:
        outcomes = compute_flow(
            args.root,
            tuple(args.splits),
            size=size,
            overwrite=args.overwrite,
            verbose=args.progress,
            workers=args.workers,
            skip_bad=args.skip_bad,
        )
    except ValueError as err:
        print(f"nvgesture-flow: error: {err}", file=sys.stderr)
        return 1
    counts = {s: sum(o.status == s for o in outcomes) for s in ("written", "done", "bad")}
    print(
        f"nvgesture-flow: {len(outcomes)} clips: {counts['written']} written, {counts['done']} "
        f"already done, {counts['bad']} skipped; under {Path(args.root) / 'flow_data'}"
    )
    for o in outcomes:
        if o.status == "bad":
            print(f"skipped {o.clip}: {o.reason}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The older command, kept as an alias of ``prepare.py nvgesture-flow``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, root_flag=True)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
