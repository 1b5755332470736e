"""From a downloaded audio-video dataset to the layout its loader reads (`examples.av.datasets`).

Each ``prepare_*`` function finds the clips of a release, runs :func:`examples.av.clipjob.
prepare_clip` on each (1-fps frames and a wav, in parallel, resumable), then writes the lists
the loader reads and ``prepare.json`` (the counts and every skipped clip with its reason). A clip
that cannot be read makes the run fail before any list is written, unless ``skip_bad``.
``python examples/prepare.py`` is the command line over these functions.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from examples.av.audio import AudioSpec
from examples.av.clipjob import ClipTask, prepare_clip
from examples.av.lists import (
    Row,
    cremad_label,
    cremad_split,
    csv_text,
    index_videos,
    read_classes,
    read_cremad_split,
    read_ks_list,
    read_vggsound_list,
)
from examples.av.spectrograms import CACHE_DIR, write_spectrograms
from examples.common.atomic import remove_partials, write_if_changed
from examples.common.clipjobs import Outcome, run_clips
from examples.common.textfiles import read_utf8

__all__ = ["MANIFEST", "Options", "Result", "prepare_cremad", "prepare_ks", "prepare_vggsound"]

#: The file in ROOT that records a run's counts and skipped clips.
MANIFEST = "prepare.json"


@dataclass(frozen=True)
class Options:
    """How to run: worker processes, whether unreadable clips are skipped, a progress bar."""

    workers: int = 1
    skip_bad: bool = False
    progress: bool = True


@dataclass
class Result:
    """What a preparation did: one outcome per clip (in listing order), the rows of each list
    written (none when the run failed), and what the user must know about the choices made."""

    dataset: str
    root: Path
    outcomes: list[Outcome]
    lists: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def bad(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "bad"]

    @property
    def failed(self) -> bool:
        """Unreadable clips and no ``skip_bad``: nothing but the clips' own outputs written."""
        return bool(self.bad) and not self.lists


def _run(
    dataset: str,
    root: Path,
    tasks: list[ClipTask],
    unlisted: list[Outcome],
    options: Options,
    write_lists: Callable[[], dict[str, int]],
    notes: list[str],
    after: Callable[[list[ClipTask]], list[Outcome]] | None = None,
) -> Result:
    """Prepare ``tasks``; then, unless a clip is bad without ``skip_bad``, write the lists and
    the manifest. ``unlisted``: clips found bad before decoding (no file, a wrong name);
    ``after(tasks)``: a further step over the prepared clips, returning the clips it
    could not handle (as bad outcomes, which replace the clips' own)."""
    for folder in sorted({root} | {t.frames.parent for t in tasks} | {t.wav.parent for t in tasks}):
        remove_partials(folder)
    outcomes = run_clips(
        prepare_clip, tasks, workers=options.workers, desc=dataset, show_progress=options.progress
    )
    if after is not None:
        ready = [t for t, o in zip(tasks, outcomes) if o.status != "bad"]
        failed = {o.clip: o for o in after(ready)}
        outcomes = [failed.get(o.clip, o) for o in outcomes]
    everything = sorted([*outcomes, *unlisted], key=lambda o: o.clip)
    result = Result(dataset, root, everything, notes=notes)
    if result.bad and not options.skip_bad:
        return result
    result.lists = write_lists()
    manifest = {
        "dataset": dataset,
        "clips": len(result.outcomes),
        "prepared": len(result.outcomes) - len(result.bad),
        "lists": result.lists,
        "notes": notes,
        "skipped": [{"clip": o.clip, "reason": o.reason} for o in result.bad],
    }
    write_if_changed(root / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return result


def _bad(clip: str, reason: str) -> Outcome:
    return Outcome(clip, "bad", reason)


# -- CREMA-D ---------------------------------------------------------------------------------------
def _summary_clips(table: Path) -> set[str]:
    reader = csv.DictReader(io.StringIO(read_utf8(table), newline=""))
    if reader.fieldnames is None or "FileName" not in reader.fieldnames:
        raise ValueError(f"{table}: no FileName column (got {reader.fieldnames})")
    return {row["FileName"].strip() for row in reader if row["FileName"]}


def _by_stem(folder: Path, suffix: str) -> dict[str, list[Path]]:
    """The files of ``folder`` whose suffix is ``suffix`` in any case (``.flv``, ``.FLV``), by
    stem; a stem listed with several files is ambiguous. Hidden files (``._<clip>.flv``, the
    metadata macOS leaves in archives) are no clips."""
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.suffix.lower() == suffix and not path.name.startswith(".") and path.is_file():
            found.setdefault(path.stem, []).append(path)
    return found


def prepare_cremad(
    source: str | Path,
    root: str | Path,
    *,
    split_from: str | Path | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    spectrograms: str | None = None,
    audio: AudioSpec | None = None,
    options: Options = Options(),
) -> Result:
    """CREMA-D: ``VideoFlash/<clip>.flv`` -> ``Image-01-FPS/<clip>/``; ``AudioWAV/<clip>.wav``
    linked (decoded from the flv when the release lacks it); ``train.csv``/``test.csv`` copied
    byte for byte from ``split_from`` or, without it, a stratified split seeded by ``seed``.

    ``spectrograms`` (``"float16"`` or ``"float32"``): also write each clip's spectrogram as
    ``audio`` (default: BSS's, 22,050 Hz x 20 s) makes it to ``Spectrograms/``
    (:func:`examples.av.spectrograms.write_spectrograms`), which the loader reads when it uses
    the same `AudioSpec`."""
    source, root = Path(source), Path(root)
    videos_dir = source / "VideoFlash"
    if not videos_dir.is_dir():
        raise ValueError(f"SOURCE must hold CREMA-D's VideoFlash/*.flv: {videos_dir} is no folder")
    videos = _by_stem(videos_dir, ".flv")
    wavs = _by_stem(source / "AudioWAV", ".wav")
    table = source / "processedResults" / "summaryTable.csv"
    listed = _summary_clips(table) if table.is_file() else set()
    tasks, unlisted, named = [], [], []
    for clip in sorted(set(videos) | set(wavs) | listed):
        try:
            cremad_label(clip)
        except ValueError as err:
            unlisted.append(_bad(clip, str(err)))
            continue
        named.append(clip)
        twice = [found for found in (videos.get(clip, []), wavs.get(clip, [])) if len(found) > 1]
        if twice:
            names = ", ".join(p.name for p in twice[0])
            unlisted.append(_bad(clip, f"{len(twice[0])} files differ only in case: {names}"))
        elif clip not in videos:
            unlisted.append(_bad(clip, f"no VideoFlash/{clip}.flv in the release"))
        else:
            frames, wav = root / "Image-01-FPS" / clip, root / "AudioWAV" / f"{clip}.wav"
            wav_source = wavs[clip][0] if clip in wavs else None
            tasks.append(ClipTask(clip, videos[clip][0], frames, wav, wav_source))
    if not named:
        raise ValueError(f"SOURCE holds no CREMA-D clip: no .flv in {videos_dir}")

    if split_from is not None:
        folder = Path(split_from)
        splits = read_cremad_split(folder)
        known = set(named)
        for split, clips in splits.items():
            unlisted += [
                _bad(c, f"listed in {split}.csv of --split-from, not in the release")
                for c in clips
                if c not in known
            ]
        note = f"split: train.csv and test.csv of {folder}, kept exactly (--split-from)"
    else:
        train, test = cremad_split(named, test_fraction, seed)
        splits = {"train": train, "test": test}
        note = (
            f"split: seeded stratified split ({test_fraction:g} of each emotion for test, "
            f"seed {seed}); not the community's 6,698/744 split: pass --split-from DIR for that"
        )
        if not test:
            note += (
                f"; WARNING: test.csv is empty: {test_fraction:g} of each emotion's "
                f"{len(named) // len(set(map(cremad_label, named)))} clips or so rounds to 0 "
                "(raise --test-fraction)"
            )

    def write_lists() -> dict[str, int]:
        for split, clips in splits.items():
            name = f"{split}.csv"
            if split_from is not None:
                write_if_changed(root / name, (Path(split_from) / name).read_bytes())
            else:
                write_if_changed(root / name, csv_text((c, cremad_label(c)) for c in clips))
        return {f"{split}.csv": len(clips) for split, clips in splits.items()}

    notes, after = [note], None
    if spectrograms is not None:
        spec = audio or AudioSpec()
        notes.append(f"spectrograms: {spectrograms} in {CACHE_DIR}/, made as {spec}")
        after = _spectrograms(root / CACHE_DIR, spec, spectrograms, options)
    return _run("cremad", root, tasks, unlisted, options, write_lists, notes, after)


def _spectrograms(
    folder: Path, spec: AudioSpec, dtype: str, options: Options
) -> Callable[[list[ClipTask]], list[Outcome]]:
    """The step writing the spectrogram cache of the prepared clips (resumable as well)."""

    def after(tasks: list[ClipTask]) -> list[Outcome]:
        summary = write_spectrograms(
            folder,
            [t.wav for t in tasks],
            spec,
            dtype,
            workers=options.workers,
            progress=options.progress,
            strict=False,
        )
        return [_bad(clip, f"spectrogram: {reason}") for clip, reason in summary.failed.items()]

    return after


# -- Kinetics-Sounds and VGGSound ------------------------------------------------------------------
def _locate(index: dict[str, list[Path]], row: Row) -> Path | str:
    """The video file of ``row``, or why there is none."""
    for stem in row.stems:
        found = index.get(stem, [])
        if len(found) > 1:
            return f"{len(found)} video files are named {stem}: {', '.join(map(str, found))}"
        if found:
            return found[0]
    names = " or ".join(f"{s}.<ext>" for s in row.stems)
    return f"no video file {names} under SOURCE"


def _plan(
    rows: Sequence[Row], index: dict[str, list[Path]], frames: Path, wavs: Path
) -> tuple[list[ClipTask], list[Outcome]]:
    tasks, missing = [], []
    for row in rows:
        video = _locate(index, row)
        if isinstance(video, str):
            missing.append(_bad(row.clip, video))
        else:
            tasks.append(ClipTask(row.clip, video, frames / row.clip, wavs / f"{row.clip}.wav"))
    return tasks, missing


def _disjoint(lists: dict[str, list[Row]], where: str) -> None:
    both = sorted({r.clip for r in lists["train"]} & {r.clip for r in lists["test"]})
    if both:
        raise ValueError(f"{where}: {len(both)} clips are in both train and test, e.g. {both[0]}")


def prepare_ks(
    source: str | Path,
    root: str | Path,
    *,
    classes: str | Path | None = None,
    options: Options = Options(),
) -> Result:
    """Kinetics-Sounds: the rows of ``annotations/{train,test}.csv`` whose class is kept (the
    names in ``classes``, else every class of ``train.csv``) -> ``{split}_img/Image-01-FPS/
    <id>/``, ``{split}_wav/<id>.wav``, ``annotations/{split}.csv`` (``youtube_id,label``) and
    ``classes.txt`` (sorted; line ``k`` is class id ``k - 1``, as the loader numbers them)."""
    source, root = Path(source), Path(root)
    lists = {s: read_ks_list(source / "annotations" / f"{s}.csv") for s in ("train", "test")}
    _disjoint(lists, str(source / "annotations"))
    if classes is not None:
        names = sorted(read_classes(Path(classes)))
        note = f"classes: the {len(names)} of {classes} (--classes)"
    else:
        names = sorted({r.label for r in lists["train"]})
        note = (
            f"classes: the {len(names)} classes of annotations/train.csv, sorted (no --classes "
            "FILE given; papers use 31, 32 or 34)"
        )
    absent = sorted(set(names) - {r.label for r in lists["train"]})
    if absent:
        raise ValueError(f"class {absent[0]!r} has no row in annotations/train.csv")
    keep = set(names)
    kept = {s: [r for r in rows if r.label in keep] for s, rows in lists.items()}
    notes = [note]
    dropped = {s: len(lists[s]) - len(kept[s]) for s in kept}
    if any(dropped.values()):
        notes.append(
            f"rows of other classes left out: {dropped['train']} train, {dropped['test']} test"
        )
    index = index_videos(source)
    tasks: list[ClipTask] = []
    missing: list[Outcome] = []
    for split, rows in kept.items():
        frames, wavs = root / f"{split}_img" / "Image-01-FPS", root / f"{split}_wav"
        more, gone = _plan(rows, index, frames, wavs)
        tasks, missing = tasks + more, missing + gone

    def write_lists() -> dict[str, int]:
        for split, rows in kept.items():
            text = csv_text(((r.clip, r.label) for r in rows), header=("youtube_id", "label"))
            write_if_changed(root / "annotations" / f"{split}.csv", text)
        write_if_changed(root / "classes.txt", "".join(f"{n}\n" for n in names))
        counts = {f"annotations/{s}.csv": len(rows) for s, rows in kept.items()}
        return {**counts, "classes.txt": len(names)}

    result = _run("ks", root, tasks, missing, options, write_lists, notes)
    short = sum(1 for o in result.outcomes if o.status != "bad" and o.frames < 4)
    if short:
        result.notes.append(
            f"{short} clips have 3 or fewer frames: the loader leaves them out, as the released "
            "code does"
        )
    return result


def prepare_vggsound(
    source: str | Path, root: str | Path, *, options: Options = Options()
) -> Result:
    """VGGSound: the rows of ``vggsound.csv`` -> ``Image-01-FPS/<clip>/``, ``AudioWAV/<clip>.wav``
    (clip ``<youtube_id>_<start:06d>``), ``{train,test}.csv`` (rows ``youtube_id,label, clip``,
    a space before the clip as in the public csv and the released loader's reading)
    and ``label_encoding.json`` (sorted class names -> ids)."""
    source, root = Path(source), Path(root)
    lists = read_vggsound_list(source / "vggsound.csv")
    _disjoint(lists, str(source / "vggsound.csv"))
    names = sorted({r.label for rows in lists.values() for r in rows})
    index = index_videos(source)
    every = [r for rows in lists.values() for r in rows]
    tasks, missing = _plan(every, index, root / "Image-01-FPS", root / "AudioWAV")

    def write_lists() -> dict[str, int]:
        for split, rows in lists.items():
            # " <clip>": the public csv's shape, which the released loader reads (item[2][1:])
            lines = ((r.clip.rsplit("_", 1)[0], r.label, f" {r.clip}") for r in rows)
            write_if_changed(root / f"{split}.csv", csv_text(lines))
        encoding = {name: i for i, name in enumerate(names)}
        write_if_changed(root / "label_encoding.json", json.dumps(encoding, indent=1) + "\n")
        counts = {f"{s}.csv": len(rows) for s, rows in lists.items()}
        return {**counts, "label_encoding.json": len(names)}

    note = f"classes: the {len(names)} labels of vggsound.csv, sorted"
    return _run("vggsound", root, tasks, missing, options, write_lists, [note])
