"""Spectrograms computed once and stored, for audio that is the same every epoch.

CREMA-D's audio has no augmentation in the community pipelines (read, resample, tile, clip,
STFT), so its ``257 x 1250`` spectrogram can be written once and read back instead of being
recomputed every epoch. Only such unaugmented, per-clip-deterministic audio is cacheable: a
pipeline with random crops, gains or time shifts of the waveform must not use this cache.

Layout of a cache folder (by default ``<root>/Spectrograms``)::

    spectrograms.json     {"format", "pipeline", "dtype", "spec": AudioSpec fields, "shape"}
    <clip>.npy            one (F, T) array per clip, <clip> = the audio file's stem

``write_spectrograms`` writes each clip once (temporary file + rename, so an interrupted run
leaves no partial file, and a second run skips what is done); `open_cache` returns a reader
only when the folder was made with the same `AudioSpec` and pipeline version, and warns (then
returns ``None``: the values are computed on the fly) otherwise.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from examples.av.audio import AudioSpec, load_spectrogram
from examples.common.atomic import atomic_file
from examples.common.clipjobs import Outcome, run_clips

__all__ = [
    "CACHE_DIR",
    "DTYPES",
    "META_FILE",
    "PIPELINE_VERSION",
    "SpectrogramCache",
    "SpectrogramSummary",
    "open_cache",
    "write_spectrogram",
    "write_spectrograms",
]

#: Default cache folder under a dataset root.
CACHE_DIR = "Spectrograms"
#: The metadata file in a cache folder.
META_FILE = "spectrograms.json"
#: Storage dtypes: float32 is the on-the-fly value exactly; float16 within its relative
#: precision (2**-11, i.e. about 0.008 on a log-magnitude of 16).
DTYPES = ("float16", "float32")
#: Bumped whenever `examples.av.audio.load_spectrogram` changes its values: version 1 is the
#: librosa-equivalent pipeline (soundfile + soxr HQ + float64 STFT).
PIPELINE_VERSION = 1
_FORMAT = 1


@dataclass(frozen=True)
class SpectrogramSummary:
    """What `write_spectrograms` did: clips written, clips already there, clips that failed
    (name -> reason)."""

    written: int
    skipped: int
    failed: dict[str, str] = field(default_factory=dict)


def _meta(spec: AudioSpec, dtype: str) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "pipeline": PIPELINE_VERSION,
        "dtype": dtype,
        # ``repeats`` only when set: a cache of the full-length spec reads as before it existed
        "spec": {k: v for k, v in asdict(spec).items() if k != "repeats" or v is not None},
        "shape": list(spec.shape[1:]),
    }


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")


def write_spectrogram(wav: str | Path, folder: str | Path, spec: AudioSpec, dtype: str) -> bool:
    """Write ``folder/<wav stem>.npy`` unless it exists; ``True`` when it was written.

    Does not write the folder's metadata: call `write_spectrograms` (which does) or make sure
    the folder's ``spectrograms.json`` records ``spec`` and ``dtype``.
    """
    _check_dtype(dtype)
    out = Path(folder) / f"{Path(wav).stem}.npy"
    if out.exists():
        return False
    values = load_spectrogram(wav, spec)[0].numpy().astype(dtype)
    with atomic_file(out) as tmp, tmp.open("wb") as fh:
        np.save(fh, values)
    return True


@dataclass(frozen=True)
class _Job:
    """One clip's spectrogram to write (a task of `examples.common.clipjobs.run_clips`)."""

    wav: Path
    folder: Path
    spec: AudioSpec
    dtype: str

    @property
    def clip(self) -> str:
        return self.wav.stem


def _write_one(job: _Job) -> Outcome:
    written = write_spectrogram(job.wav, job.folder, job.spec, job.dtype)
    return Outcome(job.clip, "written" if written else "done")


def write_spectrograms(
    folder: str | Path,
    wavs: Iterable[str | Path],
    spec: AudioSpec,
    dtype: str = "float16",
    *,
    workers: int = 1,
    progress: bool = False,
    strict: bool = True,
) -> SpectrogramSummary:
    """Write the spectrogram of every audio file in ``wavs`` to ``folder`` (created), once.

    ``folder/spectrograms.json`` records ``spec``, ``dtype`` and the pipeline version; a folder
    made with other ones is refused (``ValueError``: delete it or pass the same values). Clips
    already written are skipped, so an interrupted run resumes. ``workers > 1`` computes in that
    many processes. Clips that cannot be read are all attempted first, then: ``strict`` raises a
    ``RuntimeError`` naming each with its reason; otherwise they are listed in the summary's
    ``failed``. Two audio files with the same stem are refused (they would share a file).
    """
    _check_dtype(dtype)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    paths = [Path(w) for w in wavs]
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"audio files must have distinct names (stems), repeated: {dup[:5]}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta, meta_path = _meta(spec, dtype), folder / META_FILE
    if meta_path.exists():
        found = json.loads(meta_path.read_text())
        if found != meta:
            raise ValueError(
                f"{folder} holds spectrograms made with {found}, not with {meta}: delete the "
                "folder or pass the same spec and dtype"
            )
    else:
        with atomic_file(meta_path) as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
    jobs = [_Job(p, folder, spec, dtype) for p in paths]
    outcomes = run_clips(
        _write_one, jobs, workers=workers, desc="spectrograms", show_progress=progress
    )  # a clip that raises comes back "bad" with the reason; the others go on
    failed = {o.clip: o.reason for o in outcomes if o.status == "bad"}
    written = sum(o.status == "written" for o in outcomes)
    skipped = sum(o.status == "done" for o in outcomes)
    if failed and strict:
        listing = "\n".join(f"  {k}: {v}" for k, v in sorted(failed.items()))
        raise RuntimeError(
            f"{len(failed)} of {len(jobs)} clips could not be made into spectrograms "
            f"({written} written, {skipped} already there):\n{listing}"
        )
    return SpectrogramSummary(written, skipped, failed)


class SpectrogramCache:
    """A cache folder made with a known spec (from `open_cache`): ``load(wav)`` reads a clip."""

    def __init__(self, folder: Path, spec: AudioSpec, dtype: str) -> None:
        self.folder, self.spec, self.dtype = folder, spec, dtype

    def path(self, wav: str | Path) -> Path:
        return self.folder / f"{Path(wav).stem}.npy"

    def missing(self, wavs: Iterable[str | Path]) -> list[Path]:
        """The audio files in ``wavs`` whose spectrogram is not in the cache."""
        return [Path(w) for w in wavs if not self.path(w).is_file()]

    def load(self, wav: str | Path) -> Tensor | None:
        """The float32 ``(1, F, T)`` spectrogram of ``wav``, or ``None`` if not cached."""
        path = self.path(wav)
        if not path.is_file():
            return None
        values = np.load(path)
        if values.shape != self.spec.shape[1:] or values.dtype != np.dtype(self.dtype):
            raise ValueError(
                f"{path} holds a {values.dtype} array of shape {values.shape}, expected "
                f"{self.dtype} of shape {self.spec.shape[1:]} (the cache is damaged: delete it)"
            )
        return torch.from_numpy(values.astype(np.float32)).unsqueeze(0)


def open_cache(folder: str | Path, spec: AudioSpec) -> SpectrogramCache | None:
    """The cache in ``folder`` if it was made with ``spec`` and this pipeline version.

    ``None`` without a warning when there is no cache; ``None`` with a ``UserWarning`` naming
    both specs when it was made with another spec, dtype field or pipeline version (the loader
    then computes every spectrogram on the fly: never a stale cache silently used).
    """
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return None
    found = json.loads(meta_path.read_text())
    dtype = found.get("dtype")
    if dtype not in DTYPES or found != _meta(spec, dtype):
        warnings.warn(
            f"ignoring the spectrogram cache {folder}: it was made with {found}, this run needs "
            f"{_meta(spec, dtype if dtype in DTYPES else 'float16|float32')}; spectrograms are "
            "computed on the fly (rewrite the cache with this spec to use one)",
            stacklevel=2,
        )
        return None
    return SpectrogramCache(folder, spec, dtype)
