"""Reading real media for the preparation commands: PyAV (FFmpeg) for containers, soundfile
(libsndfile) for wav files. Both are in the ``av`` extra and imported on first use.

* :func:`extract_frames`: the first frame of each second of a video, as the community
  extraction does (OGM-GE's ``video_preprocessing.py``: ``fps = int(frame rate)``, keep the
  0-based frame ``count`` when ``count % fps == 0``, save it as ``{count:05d}.jpg``).
* :func:`extract_audio`: a container's first audio track as a 16-bit PCM wav at its own rate and
  channel count (what ``ffmpeg -i clip.mp4 clip.wav`` writes).
* :func:`check_wav`: a wav file must decode, hold samples and not be shorter than its header.

Each raises ``ValueError`` (or PyAV's / soundfile's own error) saying why a file is unusable.
"""

from __future__ import annotations

import os
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["JPEG_QUALITY", "TRUNCATION_TOLERANCE_S", "check_wav", "extract_audio", "extract_frames"]

#: JPEG quality of the extracted frames: OpenCV's ``imencode`` default, as the community wrote.
JPEG_QUALITY = 95
#: A video whose frames end more than this many seconds before the duration its container
#: declares is reported as truncated (it would lose at least one 1-fps frame); one with a gap
#: longer than this (plus a frame period) between two frames, as damaged.
TRUNCATION_TOLERANCE_S = 1.0
#: The data size a wav written to a pipe declares (its length unknown when the header went
#: out): ``0xFFFFFFFF``, what FFmpeg and SoX write there; libsndfile then reads to the end.
_UNKNOWN_SIZE = 0xFFFFFFFF


def require(name: str) -> Any:
    """Import ``av`` or ``soundfile``, or raise an ImportError saying how to install them.

    The ``examples/`` folder is left out of the search path for the import: a script run as
    ``python examples/script.py`` has it first on ``sys.path``, where ``examples/av/`` (this
    package) would be found as ``av`` instead of PyAV.
    """
    import importlib

    examples = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    saved = sys.path[:]
    sys.path[:] = [p for p in saved if os.path.abspath(p or os.curdir) != examples]
    try:
        module = importlib.import_module(name)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"preparing audio-video data needs PyAV and soundfile ({name} is missing): "
            "pip install 'bss-sampler[av]' (or pip install av soundfile)"
        ) from err
    finally:
        sys.path[:] = saved
    if os.path.abspath(getattr(module, "__file__", None) or os.curdir).startswith(
        examples + os.sep
    ):
        raise ImportError(f"{name!r} was imported from {module.__file__}, not the library")
    return module


def extract_frames(video: str | Path, folder: str | Path) -> int:
    """Write frame ``count`` of ``video`` as ``folder/{count:05d}.jpg`` whenever
    ``count % int(fps) == 0``; returns how many were written."""
    av = require("av")
    folder = Path(folder)
    _not_empty(video)
    with av.open(str(video)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        rate = stream.guessed_rate or stream.average_rate
        fps = int(rate) if rate else 0
        if fps < 1:
            raise ValueError(f"frame rate must be >= 1 fps, got {rate}")
        declared, of_all = _declared_seconds(container, stream)
        count = written = 0
        first: float | None = None  # the first and the last frame's presentation time
        last: float | None = None
        packets = _Span()  # the time every stream's packets cover
        gap = (0.0, 0.0)  # the longest time between two consecutive frames
        for packet in container.demux():  # every stream: the container's duration spans them
            packets.add(packet)
            if packet.stream.index != stream.index:
                continue
            for frame in packet.decode():
                if count % fps == 0:
                    image = frame.to_image()
                    image.save(folder / f"{count:05d}.jpg", "JPEG", quality=JPEG_QUALITY)
                    written += 1
                if frame.time is not None:
                    first = frame.time if first is None else first
                    if last is not None and frame.time - last > gap[1] - gap[0]:
                        gap = (last, frame.time)
                    last = frame.time
                count += 1
    if count == 0:
        raise ValueError("the video stream holds no frame")
    # The span the frames cover: from their timestamps (plus one frame period), right whatever
    # frame rate the stream claims; from the count when they carry none. Against the
    # container's duration (a file whose streams declare none: FLV, Matroska, WebM), the span
    # of all streams: a valid file's audio may outlast its video.
    period = 1 / float(rate)
    decoded = count * period if first is None or last is None else last - first + period
    if of_all:
        decoded = max(decoded, packets.seconds)
    if gap[1] - gap[0] > TRUNCATION_TOLERANCE_S + period:
        raise ValueError(
            f"damaged: no frame decodes between {gap[0]:.2f} s and {gap[1]:.2f} s "
            f"({count} frames decoded)"
        )
    if declared is not None and decoded < declared - TRUNCATION_TOLERANCE_S:
        raise ValueError(
            f"truncated: its {count} frames {'and its other streams ' if of_all else ''}last "
            f"{decoded:.2f} s, the container declares {declared:.2f} s"
        )
    return written


def _not_empty(path: str | Path) -> None:
    """Raise when ``path`` is a file of 0 bytes (a failed download), which decoders report
    only as invalid data."""
    if Path(path).stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes)")


def _declared_seconds(container: Any, stream: Any) -> tuple[float | None, bool]:
    """The video stream's duration in seconds, else the container's (which spans all its
    streams: the flag says so), else None."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base), False
    if container.duration is not None:
        return float(container.duration) / 1_000_000, True  # AV_TIME_BASE
    return None, False


class _Span:
    """The seconds from the earliest packet start to the latest packet end seen."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None

    def add(self, packet: Any) -> None:
        if packet.pts is None or packet.time_base is None:
            return
        start = float(packet.pts * packet.time_base)
        end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        self.start = start if self.start is None else min(self.start, start)
        self.end = end if self.end is None else max(self.end, end)

    @property
    def seconds(self) -> float:
        return 0.0 if self.start is None or self.end is None else self.end - self.start


def extract_audio(video: str | Path, wav: str | Path) -> int:
    """Write the first audio track of ``video`` to ``wav`` (16-bit PCM, its own rate and
    channels); returns the number of samples per channel."""
    av, soundfile = require("av"), require("soundfile")
    chunks: list[np.ndarray] = []
    with av.open(str(video)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        rate = stream.rate
        resampler = av.AudioResampler(format="s16p")  # planar int16, same rate and channels
        for frame in container.decode(stream):
            chunks += [out.to_ndarray() for out in resampler.resample(frame)]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    if not chunks or sum(c.shape[1] for c in chunks) == 0:
        raise ValueError("the audio stream holds no sample")
    pcm = np.concatenate(chunks, axis=1).T  # (samples, channels)
    soundfile.write(str(wav), pcm, rate, subtype="PCM_16", format="WAV")
    return len(pcm)


def check_wav(path: str | Path) -> int:
    """Decode ``path`` entirely; returns its samples per channel, or raises if it cannot be
    read, holds no sample or is shorter than its header declares (a truncated file)."""
    soundfile = require("soundfile")
    _not_empty(path)
    data, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    if len(data) == 0:
        raise ValueError(f"{path} holds no sample, as its header reads")
    declared: int | None
    try:  # the header's own count, for the PCM wavs that the standard library parses
        with wave.open(str(path), "rb") as fh:
            declared = fh.getnframes()
            if declared >= _UNKNOWN_SIZE // (fh.getsampwidth() * fh.getnchannels()):
                declared = None  # a wav written to a stream: its size was unknown
    except (wave.Error, EOFError):
        declared = None
    if declared is not None and declared > len(data):
        raise ValueError(f"truncated: {len(data)} of the {declared} samples its header declares")
    return len(data)
