"""One audio-video clip from the release to the loader's layout: its 1-fps frame folder and its
wav file, each written atomically and skipped when already there (a resumed run rewrites
nothing). Runs in worker processes through :func:`examples.common.clipjobs.run_clips`."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from examples.av.media import check_wav, extract_audio, extract_frames
from examples.common.atomic import atomic_dir, atomic_file
from examples.common.clipjobs import Outcome
from examples.common.frames import list_frames

__all__ = ["ClipTask", "prepare_clip"]


@dataclass(frozen=True)
class ClipTask:
    """Where a clip comes from and where its outputs go.

    ``wav_source`` is the release's own wav file, linked (or copied) to ``wav`` after a check,
    or None to decode the audio track of ``video``.
    """

    clip: str
    video: Path
    frames: Path
    wav: Path
    wav_source: Path | None = None


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or no hard links there
        shutil.copyfile(source, target)


def _write_audio(task: ClipTask) -> None:
    with atomic_file(task.wav) as tmp:
        if task.wav_source is not None:
            check_wav(task.wav_source)
            _link_or_copy(task.wav_source, tmp)
        else:
            extract_audio(task.video, tmp)
            check_wav(tmp)


def prepare_clip(task: ClipTask) -> Outcome:
    """Write what is missing of ``task``'s frames and wav; raises when a file cannot be read."""
    wrote = False
    if not task.frames.is_dir():
        with atomic_dir(task.frames) as tmp:
            extract_frames(task.video, tmp)
        wrote = True
    same = task.wav_source is not None and task.wav.is_file() and task.wav.samefile(task.wav_source)
    if same:  # preparing in place: the release's wav is the output; check it all the same
        check_wav(task.wav)
    elif not task.wav.is_file():
        _write_audio(task)
        wrote = True
    frames = len(list_frames(task.frames))
    return Outcome(task.clip, "written" if wrote else "done", frames=frames)
