"""Audio for the audio-video example: the community pipelines' waveform-to-spectrogram steps,
through maintained libraries (soundfile reads, soxr resamples, ``torch.stft`` or SciPy
transforms).

The default (``AudioSpec().transform == "log-stft"``) is the released BSS/OGM-GE loader's
``librosa.load(path, sr=rate)`` (soundfile, mono by averaging channels, soxr ``"HQ"``
resampling, zero-padded or cut to ``ceil(n * rate / native)`` samples), ``np.tile`` to the clip
length, clipping to [-1, 1] and ``log(|librosa.stft(n_fft=512, hop_length=353)| + 1e-7)``
(periodic Hann window, centred frames, zero padding), without importing librosa.
``"log-psd-zscore"`` is PMR's: ``scipy.signal.spectrogram(nperseg=512, noverlap=353)``,
``log(S + 1e-7)``, then a per-clip z-score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CONVENTIONS",
    "TRANSFORMS",
    "AudioConvention",
    "AudioSpec",
    "fills",
    "load_spectrogram",
    "load_waveform",
    "log_spectrogram",
    "read_audio",
    "resample",
    "tile",
]

#: The spectrogram kinds `AudioSpec.transform` accepts.
TRANSFORMS = ("log-stft", "log-psd-zscore")

_EPS = 1e-7  # log floor of every community pipeline: log(|S| + 1e-7)


@dataclass(frozen=True)
class AudioSpec:
    """How a clip becomes a spectrogram of shape ``(1, n_fft // 2 + 1, frames)``.

    ``transform="log-stft"``: centred STFT frames, ``frames = 1 + samples // hop``;
    ``"log-psd-zscore"`` (PMR): uncentred frames of ``n_fft`` samples every ``hop``,
    ``frames = 1 + (samples - n_fft) // hop``.

    ``repeats``: at most that many copies of the clip are tiled (``np.tile(wave,
    repeats)[:samples]``, the released CREMA-D loader's 20), so a clip shorter than
    ``seconds / repeats`` gives fewer samples and fewer frames than :attr:`shape` (which such
    clips cannot be batched with); ``None``: as many as the length needs.
    """

    sample_rate: int = 22_050
    seconds: float = 20.0
    n_fft: int = 512
    hop: int = 353
    transform: str = "log-stft"
    repeats: int | None = None

    def __post_init__(self) -> None:
        if self.repeats is not None and self.repeats < 1:
            raise ValueError(f"repeats must be None or >= 1, got {self.repeats}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {self.transform!r}")
        if self.sample_rate <= 0 or self.seconds <= 0:
            raise ValueError(
                f"sample_rate and seconds must be positive, got {self.sample_rate}, {self.seconds}"
            )
        if self.hop <= 0 or self.n_fft <= 0:
            raise ValueError(f"n_fft and hop must be positive, got {self.n_fft}, {self.hop}")
        if self.transform == "log-psd-zscore" and self.num_samples < self.n_fft:
            raise ValueError(
                f"{self.transform} needs at least n_fft={self.n_fft} samples, "
                f"got {self.num_samples} ({self.seconds} s at {self.sample_rate} Hz)"
            )

    @property
    def num_samples(self) -> int:
        return round(self.sample_rate * self.seconds)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The spectrogram's shape ``(1, F, T)``."""
        if self.transform == "log-stft":
            frames = 1 + self.num_samples // self.hop
        else:
            frames = 1 + (self.num_samples - self.n_fft) // self.hop
        return (1, self.n_fft // 2 + 1, frames)


@dataclass(frozen=True)
class AudioConvention:
    """A community pipeline's audio settings; ``None`` rate or length: the dataset's own."""

    sample_rate: int | None
    seconds: float | None
    hop: int
    transform: str
    source: str

    def spec(self, sample_rate: int | None = None, seconds: float | None = None) -> AudioSpec:
        """The `AudioSpec` of this convention; ``sample_rate``/``seconds`` override its own."""
        rate = sample_rate if sample_rate is not None else self.sample_rate
        length = seconds if seconds is not None else self.seconds
        if rate is None or length is None:
            raise ValueError(f"this convention takes the dataset's rate and length: {self.source}")
        return AudioSpec(rate, length, hop=self.hop, transform=self.transform)


#: ``audio_video.py --audio``: the conventions of the released code (data-preparation notes).
CONVENTIONS = {
    "bss": AudioConvention(
        None,
        None,
        353,
        "log-stft",
        "BSS's released loaders (CREMA-D/dataset/CramedDataset.py, KS/dataset/KS.py): "
        "librosa.load at CREMA-D 22,050 Hz x 20 s, Kinetics-Sounds and VGGSound 35,400 Hz "
        "x 10 / 20 s, tiled, clipped, log(|librosa.stft(n_fft=512, hop_length=353)| + 1e-7)",
    ),
    "ogm-ge": AudioConvention(
        22_050,
        3.0,
        353,
        "log-stft",
        "OGM-GE's CREMA-D loader (OGM-GE_CVPR2022 dataset/CramedDataset.py): the same at "
        "22,050 Hz x 3 s (257 x 188)",
    ),
    "pmr": AudioConvention(
        16_000,
        10.0,
        159,
        "log-psd-zscore",
        "PMR's extractWav: 16 kHz x 10 s, scipy.signal.spectrogram(nperseg=512, "
        "noverlap=353), log, z-scored per clip (257 x 1004)",
    ),
}


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """``(mono float32 waveform, native sample rate)``: soundfile's samples (PCM scaled to
    [-1, 1]) averaged over the channels, as ``librosa.load(mono=True)`` does."""
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise ValueError(f"cannot read audio file {path}: {exc}") from exc
    if samples.shape[0] == 0:
        raise ValueError(f"audio file {path} has no samples")
    return samples.mean(axis=1, dtype=np.float32), int(rate)


def resample(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """soxr's ``"HQ"`` resampling, fixed to ``ceil(len * new / orig)`` samples (zero padding or
    cut): ``librosa.resample(res_type="soxr_hq")``."""
    if orig_rate == new_rate:
        return wave
    import soxr

    out = soxr.resample(wave, orig_rate, new_rate, quality="HQ")
    length = math.ceil(len(wave) * new_rate / orig_rate)
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return np.asarray(out[:length], dtype=wave.dtype)


def tile(wave: np.ndarray, num_samples: int, repeats: int | None = None) -> np.ndarray:
    """Repeat the clip end to end and cut it to ``num_samples`` (``np.tile``); with
    ``repeats``, at most that many copies (fewer samples when the clip is short)."""
    if len(wave) == 0:
        raise ValueError("cannot tile an empty waveform")
    copies = math.ceil(num_samples / len(wave))
    return np.tile(wave, copies if repeats is None else min(copies, repeats))[:num_samples]


def fills(path: str | Path, spec: AudioSpec) -> bool:
    """Whether the clip at ``path`` fills ``spec``'s length after at most ``spec.repeats``
    copies (read from the file's header), i.e. its spectrogram has the full :attr:`shape`."""
    import soundfile

    if spec.repeats is None:
        return True
    info = soundfile.info(str(path))
    resampled = math.ceil(int(info.frames) * spec.sample_rate / int(info.samplerate))
    return resampled * spec.repeats >= spec.num_samples


def load_waveform(path: str | Path, spec: AudioSpec) -> np.ndarray:
    """Read, resample to ``spec.sample_rate``, tile to ``spec.seconds`` (at most
    ``spec.repeats`` copies), clip to [-1, 1]."""
    wave, rate = read_audio(path)
    tiled = tile(resample(wave, rate, spec.sample_rate), spec.num_samples, spec.repeats)
    return np.clip(tiled, -1.0, 1.0, out=tiled)


def log_spectrogram(wave: np.ndarray | Tensor, spec: AudioSpec) -> Tensor:
    """The float32 ``(1, F, T)`` spectrogram of ``spec.transform``.

    ``"log-stft"``: ``log(|STFT| + 1e-7)``, periodic Hann window, centred frames with zero
    padding (``librosa.stft``'s defaults), computed in float64 and stored as complex64 as
    librosa does: a float32 FFT differs by up to 0.1 on average where the clip is nearly
    silent (|S| near 1e-7, e.g. above 8 kHz of a 16 kHz clip). ``"log-psd-zscore"``: SciPy's
    periodogram frames (Tukey window, mean removed, density scaling), ``log(S + 1e-7)``, then
    ``(x - mean) / (std + 1e-9)`` over the clip.
    """
    if spec.transform == "log-psd-zscore":
        from scipy.signal import spectrogram

        data = wave.numpy() if isinstance(wave, Tensor) else wave
        _, _, power = spectrogram(
            data, spec.sample_rate, nperseg=spec.n_fft, noverlap=spec.n_fft - spec.hop
        )
        logs = np.log(power + _EPS)
        logs = (logs - logs.mean()) / (logs.std() + 1e-9)
        return torch.from_numpy(logs.astype(np.float32)).unsqueeze(0)
    samples = torch.as_tensor(wave, dtype=torch.float32).double()
    stft = torch.stft(  # in float64, as librosa's window product and FFT are, then complex64
        samples,
        n_fft=spec.n_fft,
        hop_length=spec.hop,
        window=torch.hann_window(spec.n_fft, periodic=True, dtype=torch.float64),
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).to(torch.complex64)
    return torch.log(stft.abs() + _EPS).unsqueeze(0)


def load_spectrogram(path: str | Path, spec: AudioSpec) -> Tensor:
    """The ``(1, F, T)`` spectrogram of the audio file at ``path`` (`load_waveform`, then
    `log_spectrogram`)."""
    return log_spectrogram(load_waveform(path, spec), spec)
