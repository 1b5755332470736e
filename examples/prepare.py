"""Prepare a downloaded dataset for the example scripts: prepare.py DATASET SOURCE ROOT.

SOURCE is the dataset as downloaded (left untouched); ROOT receives the layout the example's
loader reads (see docs/data.md). Clips are decoded with PyAV (``pip install 'bss-sampler[av]'``)
in parallel; a second run rewrites nothing that is done; a clip that cannot be read is named
with the reason and the command exits with status 1 (``--skip-bad``: prepare the rest and list
the skipped clips, also in ROOT/prepare.json).

    python examples/prepare.py cremad data/CREMA-D-release data/CREMA-D --split-from splits/
    python examples/prepare.py ks data/kinetics-download data/KS --classes ks31.txt
    python examples/prepare.py vggsound data/vggsound-download data/VGGSound
    python examples/prepare.py nvgesture-flow data/nvgesture --size 128 128
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from examples.av.audio import CONVENTIONS, AudioSpec
from examples.av.media import require
from examples.av.prepare import (
    MANIFEST,
    Options,
    Result,
    prepare_cremad,
    prepare_ks,
    prepare_vggsound,
)
from examples.av.spectrograms import DTYPES
from examples.common.cli import DefaultsHelpFormatter
from examples.common.clipjobs import Outcome
from examples.gesture import flow

CREMAD_SOURCE = """SOURCE: the CREMA-D release as downloaded: VideoFlash/<clip>.flv (the
videos, 30 fps; required), AudioWAV/<clip>.wav (16 kHz mono; a clip without one gets the audio
track of its flv) and optionally processedResults/summaryTable.csv (its FileName column: clips
it lists without files are reported). Clip names are <actor>_<sentence>_<emotion>_<level>; the
emotion (NEU HAP SAD FEA DIS ANG) is the label. ROOT receives Image-01-FPS/<clip>/{count:05d}.jpg
(the first frame of each second), AudioWAV/<clip>.wav (hard links to the release's, or copies),
train.csv and test.csv (rows clip,LABEL) and prepare.json."""

KS_SOURCE = """SOURCE: annotations/train.csv and annotations/test.csv (a header naming at least
youtube_id and label, e.g. Kinetics' own lists, whose time_start/time_end columns are used to
find the file; use Kinetics' validate.csv as test.csv) and the downloaded videos with their
audio track anywhere under SOURCE, named <youtube_id>_<start:06d>_<end:06d>.<ext> (the
Kinetics downloader's names) or <youtube_id>.<ext>, ext one of mp4 mkv webm mov avi flv m4v.
ROOT receives {train,test}_img/Image-01-FPS/<id>/{count:05d}.jpg, {train,test}_wav/<id>.wav,
annotations/{train,test}.csv (youtube_id,label), classes.txt and prepare.json."""

VGGSOUND_SOURCE = """SOURCE: vggsound.csv (VGGSound's list: rows youtube_id,start_seconds,
label,split with split train or test) and the downloaded 10 s videos with their audio track
anywhere under SOURCE, named <youtube_id>_<start:06d>.<ext> or <youtube_id>_<start>.<ext>
(ext as for ks). ROOT receives Image-01-FPS/<clip>/, AudioWAV/<clip>.wav (clip =
<youtube_id>_<start:06d>), train.csv and test.csv (rows youtube_id,label, clip: a space
before the clip, as the released loader reads it),
label_encoding.json (sorted labels -> ids) and prepare.json."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="the download (see above)")
    parser.add_argument("root", metavar="ROOT", help="the folder the example's --root reads")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes decoding clips (default: the number of CPUs, at most 8)",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="prepare every readable clip and list the others (also in ROOT/prepare.json) "
        "instead of failing",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no bar")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="prepare.py DATASET --help says what SOURCE must hold and what ROOT receives.",
        formatter_class=DefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    fmt = DefaultsHelpFormatter

    cremad = sub.add_parser(
        "cremad", help="CREMA-D", description=CREMAD_SOURCE, formatter_class=fmt
    )
    _common(cremad)
    cremad.add_argument(
        "--split-from",
        metavar="DIR",
        help="copy DIR/train.csv and DIR/test.csv exactly (e.g. the community's 6,698/744 split "
        "of OGM-GE's data/CREMAD/); without it, a seeded stratified split",
    )
    cremad.add_argument(
        "--test-fraction",
        type=float,
        help="without --split-from: the test share of each emotion (default: 0.1)",
    )
    cremad.add_argument(
        "--seed", type=int, help="without --split-from: the split's seed (default: 0)"
    )
    cremad.add_argument(
        "--spectrograms",
        choices=DTYPES,
        help="also write every clip's spectrogram to ROOT/Spectrograms/ in this precision; "
        "audio_video.py reads them instead of recomputing them when its --audio, "
        "--sample-rate and --audio-seconds are the ones given here",
    )
    cremad.add_argument(
        "--audio",
        choices=sorted(CONVENTIONS),
        help="with --spectrograms: the audio convention, as audio_video.py --audio (default: bss)",
    )
    cremad.add_argument(
        "--sample-rate", type=int, help="with --spectrograms: as audio_video.py --sample-rate"
    )
    cremad.add_argument(
        "--audio-seconds", type=float, help="with --spectrograms: as audio_video.py --audio-seconds"
    )

    ks = sub.add_parser("ks", help="Kinetics-Sounds", description=KS_SOURCE, formatter_class=fmt)
    _common(ks)
    ks.add_argument(
        "--classes",
        metavar="FILE",
        help="the class names to keep, one per line (papers use 31, 32 or 34 classes); "
        "without it, every class of annotations/train.csv",
    )

    vgg = sub.add_parser(
        "vggsound", help="VGGSound", description=VGGSOUND_SOURCE, formatter_class=fmt
    )
    _common(vgg)

    nvflow = sub.add_parser(
        "nvgesture-flow",
        help="NVGesture optical flow",
        description=flow.DESCRIPTION,
        formatter_class=fmt,
    )
    flow.add_arguments(nvflow)

    args = parser.parse_args(argv)
    command = {"cremad": cremad, "ks": ks, "vggsound": vgg, "nvgesture-flow": nvflow}[args.dataset]
    if args.workers is None:
        args.workers = min(8, os.cpu_count() or 1)
    if args.workers < 1:
        command.error(f"--workers must be >= 1, got {args.workers}")
    if args.dataset == "cremad":
        if args.split_from is not None and not Path(args.split_from).is_dir():
            command.error(f"--split-from must be a folder, got {args.split_from!r}")
        _check_cremad(command, args)
        try:
            args.audio_spec = audio_spec(args.audio, args.sample_rate, args.audio_seconds)
        except ValueError as err:
            command.error(f"--audio {args.audio}: {err}")
    return args


def _check_cremad(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse flags that would be ignored; fill in the defaults of the others."""
    split = [
        f
        for f, v in (("--test-fraction", args.test_fraction), ("--seed", args.seed))
        if v is not None
    ]
    if args.split_from is not None and split:
        parser.error(f"{split[0]} sets the seeded split, which --split-from replaces: drop one")
    audio = [
        flag
        for flag, value in (
            ("--audio", args.audio),
            ("--sample-rate", args.sample_rate),
            ("--audio-seconds", args.audio_seconds),
        )
        if value is not None
    ]
    if args.spectrograms is None and audio:
        parser.error(
            f"{audio[0]} sets how --spectrograms computes them; without --spectrograms the wavs "
            "are kept as they are: add --spectrograms or drop it"
        )
    args.test_fraction = 0.1 if args.test_fraction is None else args.test_fraction
    args.seed = 0 if args.seed is None else args.seed
    args.audio = args.audio or "bss"
    if not 0.0 < args.test_fraction < 1.0:
        parser.error(f"--test-fraction must lie in (0, 1), got {args.test_fraction}")


def audio_spec(convention: str, sample_rate: int | None, seconds: float | None) -> AudioSpec:
    """CREMA-D's spectrogram as ``audio_video.py --dataset cremad`` makes it with these flags:
    the convention's rate and length, else CREMA-D's (BSS: 22,050 Hz, 20 s)."""
    chosen, cremad = CONVENTIONS[convention], AudioSpec()
    return chosen.spec(
        sample_rate or chosen.sample_rate or cremad.sample_rate,
        seconds or chosen.seconds or cremad.seconds,
    )


def report(result: Result) -> None:
    """The summary on stdout; the unreadable clips, with their reasons, on stderr."""
    ok = [o for o in result.outcomes if o.status != "bad"]
    frames = [o.frames for o in ok]
    counts = {s: sum(o.status == s for o in result.outcomes) for s in ("written", "done")}
    print(
        f"{result.dataset}: {len(result.outcomes)} clips: {counts['written']} written, "
        f"{counts['done']} already done, {len(result.bad)} could not be read"
    )
    if frames:
        print(f"  frames per clip: min {min(frames)}, mean {mean(frames):.1f}, max {max(frames)}")
    for note in result.notes:
        print(f"  {note}")
    for name, rows in result.lists.items():
        print(f"  {result.root / name}: {rows} rows")
    _name_bad(result.bad, skipped=not result.failed)
    if result.failed:
        print(
            f"{len(result.bad)} clips could not be read (above); no list was written. Fix or "
            "remove them, or rerun with --skip-bad (done clips are not redone)",
            file=sys.stderr,
        )
    elif result.bad:
        print(f"  skipped {len(result.bad)} clips, listed in {result.root / MANIFEST}")


def _name_bad(bad: list[Outcome], *, skipped: bool) -> None:
    word = "skipped" if skipped else "cannot read"
    for o in bad:
        print(f"{word} {o.clip}: {o.reason}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (0: done, 1: unreadable clips, 2: bad input)."""
    args = parse_args(argv)
    if args.dataset == "nvgesture-flow":
        return flow.run(args)
    require("av"), require("soundfile")  # before any worker starts: say how to install them
    options = Options(workers=args.workers, skip_bad=args.skip_bad, progress=args.progress)
    try:
        if args.dataset == "cremad":
            result = prepare_cremad(
                args.source,
                args.root,
                split_from=args.split_from,
                test_fraction=args.test_fraction,
                seed=args.seed,
                spectrograms=args.spectrograms,
                audio=args.audio_spec,
                options=options,
            )
        elif args.dataset == "ks":
            result = prepare_ks(args.source, args.root, classes=args.classes, options=options)
        else:
            result = prepare_vggsound(args.source, args.root, options=options)
    except (ValueError, OSError) as err:
        print(f"prepare.py {args.dataset}: error: {err}", file=sys.stderr)
        return 2
    report(result)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
