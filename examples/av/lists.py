"""The lists of the audio-video datasets: reading what a release ships (clip names, annotation
csvs, split files) and writing what the loaders of `examples.av.datasets` read.

Every problem in a list is a ``ValueError`` naming the file, the line and the value: a wrong
list would train silently on the wrong clips or labels.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from examples.av.datasets import CREMAD_CLASSES
from examples.common.splits import stratified_split
from examples.common.textfiles import read_utf8

__all__ = [
    "VIDEO_SUFFIXES",
    "Row",
    "cremad_label",
    "cremad_split",
    "csv_text",
    "index_videos",
    "read_classes",
    "read_cremad_split",
    "read_ks_list",
    "read_vggsound_list",
]

#: The container suffixes searched for Kinetics-Sounds and VGGSound videos.
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".flv", ".m4v")


@dataclass(frozen=True)
class Row:
    """One listed clip: its id in the prepared layout, its class name and the file stems its
    video may have in the download (tried in order)."""

    clip: str
    label: str
    stems: tuple[str, ...]


def csv_text(rows: Iterable[Sequence[object]], header: Sequence[str] | None = None) -> str:
    """Rows as csv text (``\\n`` line ends, quoted where a field needs it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _read(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    """The rows of a csv file (by default a byte-order mark, as spreadsheet programs write,
    dropped, and a file that is not UTF-8 refused naming its line: `read_utf8`)."""
    if not path.is_file():
        raise ValueError(f"{path} does not exist")
    if encoding == "utf-8-sig":
        return list(csv.reader(io.StringIO(read_utf8(path), newline="")))
    with path.open(newline="", encoding=encoding) as fh:
        return list(csv.reader(fh))


# -- CREMA-D ---------------------------------------------------------------------------------------
def cremad_label(clip: str) -> str:
    """The emotion code of a CREMA-D clip name ``<actor>_<sentence>_<emotion>_<level>``."""
    parts = clip.split("_")
    if len(parts) != 4 or parts[2] not in CREMAD_CLASSES:
        raise ValueError(
            f"clip name {clip!r} is not <actor>_<sentence>_<emotion>_<level> with an emotion "
            f"in {' '.join(CREMAD_CLASSES)}"
        )
    return parts[2]


def cremad_split(
    clips: Sequence[str], test_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """``(train, test)`` clip names: ``round(test_fraction * n_c)`` test clips per emotion,
    drawn with ``seed`` (:func:`examples.common.splits.stratified_split`); both sorted."""
    labels = [CREMAD_CLASSES.index(cremad_label(c)) for c in clips]
    rest, held = stratified_split(labels, test_fraction, seed)
    return sorted(clips[i] for i in rest), sorted(clips[i] for i in held)


def read_cremad_split(folder: Path) -> dict[str, list[str]]:
    """The clips of ``folder/train.csv`` and ``folder/test.csv`` (rows ``clip,LABEL``), checked:
    two fields, the label the clip's name gives, no clip twice."""
    out: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for split in ("train", "test"):
        path = folder / f"{split}.csv"
        out[split] = []
        # Plain UTF-8: these files are copied as they are, and the loader reads them so.
        for line, row in enumerate(_read(path, "utf-8"), start=1):
            if not row:
                continue
            if len(row) != 2:
                raise ValueError(f"{path} line {line}: expected 'clip,LABEL', got {row}")
            clip, label = row
            if cremad_label(clip) != label:
                raise ValueError(
                    f"{path} line {line}: label {label!r} differs from the clip name's "
                    f"{cremad_label(clip)!r} ({clip})"
                )
            if clip in seen:
                raise ValueError(f"{path} line {line}: {clip} is listed already in {seen[clip]}")
            seen[clip] = path.name
            out[split].append(clip)
    return out


# -- Kinetics-Sounds and VGGSound ------------------------------------------------------------------
def index_videos(source: Path) -> dict[str, list[Path]]:
    """Every video file under ``source`` (any depth) by file stem; paths sorted."""
    index: dict[str, list[Path]] = {}
    for path in sorted(source.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            index.setdefault(path.stem, []).append(path)
    return index


def _unique(rows: list[Row], path: Path) -> list[Row]:
    seen: set[str] = set()
    for row in rows:
        if row.clip in seen:
            raise ValueError(f"{path} lists clip {row.clip!r} twice")
        seen.add(row.clip)
    return rows


def read_ks_list(path: Path) -> list[Row]:
    """A Kinetics annotation csv with a header holding ``youtube_id`` and ``label`` (Kinetics'
    own lists also hold ``time_start``/``time_end``, which give the downloader's file name
    ``<id>_<start:06d>_<end:06d>``)."""
    rows = _read(path)
    if not rows:
        raise ValueError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    missing = {"youtube_id", "label"} - set(header)
    if missing:
        raise ValueError(
            f"{path}: the header must name youtube_id and label, got {header} "
            f"(no {sorted(missing)})"
        )
    col = {name: header.index(name) for name in header}
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < len(header):
            raise ValueError(f"{path} line {line}: {len(header)} fields expected, got {row}")
        vid, label = row[col["youtube_id"]], row[col["label"]]
        stems: tuple[str, ...] = (vid,)
        if "time_start" in col and "time_end" in col:
            start, end = (int(float(row[col[k]])) for k in ("time_start", "time_end"))
            stems = (f"{vid}_{start:06d}_{end:06d}", vid)
        out.append(Row(vid, label, stems))
    return _unique(out, path)


def read_vggsound_list(path: Path) -> dict[str, list[Row]]:
    """VGGSound's ``vggsound.csv``: rows ``youtube_id,start_seconds,label,split`` (split
    ``train`` or ``test``; a header line is skipped). The clip id is ``<id>_<start:06d>``."""
    out: dict[str, list[Row]] = {"train": [], "test": []}
    for line, row in enumerate(_read(path), start=1):
        if not row:
            continue
        if len(row) != 4:
            raise ValueError(
                f"{path} line {line}: expected 'youtube_id,start_seconds,label,split', got {row}"
            )
        vid, start, label, split = (field.strip() for field in row)
        if line == 1 and split not in out:
            continue  # a header
        if split not in out:
            raise ValueError(f"{path} line {line}: split must be train or test, got {split!r}")
        seconds = int(float(start))
        clip = f"{vid}_{seconds:06d}"
        out[split].append(Row(clip, label, (clip, f"{vid}_{seconds}")))
    for rows in out.values():
        _unique(rows, path)
    return out


def read_classes(path: Path) -> list[str]:
    """Class names, one per line (blank lines and ``#`` comments ignored)."""
    names = [n.strip() for n in read_utf8(path).splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise ValueError(f"{path} names no class")
    if len(set(names)) != len(names):
        raise ValueError(f"{path} names a class twice")
    return names
