"""Audio for the audio-video example: wav reading (``wave`` + NumPy), resampling, tiling and the
log-magnitude STFT of the OGM-GE/BSS pipelines (``n_fft=512``, ``hop=353``, ``log(|S| + 1e-7)``)."""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["AudioSpec", "load_spectrogram", "log_spectrogram", "read_wav", "resample", "tile"]

_PCM = {1: (np.uint8, 128.0, 128.0), 2: (np.int16, 0.0, 32768.0), 4: (np.int32, 0.0, 2.0**31)}


@dataclass(frozen=True)
class AudioSpec:
    """How a clip becomes a spectrogram: ``(1, n_fft // 2 + 1, 1 + samples // hop)``."""

    sample_rate: int = 22_050
    seconds: float = 20.0
    n_fft: int = 512
    hop: int = 353

    @property
    def num_samples(self) -> int:
        return round(self.sample_rate * self.seconds)


def read_wav(path: str | Path) -> tuple[Tensor, int]:
    """``(mono float32 waveform in [-1, 1], sample rate)`` of an 8/16/32-bit PCM wav file."""
    with wave.open(str(path), "rb") as fh:
        width, channels, rate = fh.getsampwidth(), fh.getnchannels(), fh.getframerate()
        raw = fh.readframes(fh.getnframes())
    if width not in _PCM:
        raise ValueError(f"sample width must be 1, 2 or 4 bytes, got {width} in {path}")
    dtype, offset, scale = _PCM[width]
    samples = (np.frombuffer(raw, dtype=dtype).astype(np.float32) - offset) / scale
    return torch.from_numpy(samples.reshape(-1, channels).mean(axis=1)), rate


def _lowpass(wave_: Tensor, cutoff: float, taps: int = 63) -> Tensor:
    """Hann-windowed sinc low-pass at ``cutoff`` (fraction of the sample rate, < 0.5)."""
    t = torch.arange(taps, dtype=torch.float32) - (taps - 1) / 2
    kernel = 2 * cutoff * torch.sinc(2 * cutoff * t) * torch.hann_window(taps, periodic=False)
    kernel = kernel / kernel.sum()
    return F.conv1d(wave_.view(1, 1, -1), kernel.view(1, 1, -1), padding=taps // 2).view(-1)


def resample(wave_: Tensor, orig_rate: int, new_rate: int) -> Tensor:
    """Linear-interpolation resampling, low-pass filtered first when downsampling."""
    if orig_rate == new_rate:
        return wave_
    if new_rate < orig_rate:
        wave_ = _lowpass(wave_, 0.5 * new_rate / orig_rate)
    length = max(1, math.floor(len(wave_) * new_rate / orig_rate))
    out = F.interpolate(wave_.view(1, 1, -1), size=length, mode="linear", align_corners=False)
    return out.view(-1)


def tile(wave_: Tensor, num_samples: int) -> Tensor:
    """Repeat the clip end to end and cut it to exactly ``num_samples``."""
    if len(wave_) == 0:
        raise ValueError("cannot tile an empty waveform")
    return wave_.repeat(math.ceil(num_samples / len(wave_)))[:num_samples]


def log_spectrogram(wave_: Tensor, spec: AudioSpec) -> Tensor:
    """``log(|STFT| + 1e-7)`` with a Hann window, centred frames: ``(1, n_fft // 2 + 1, T)``."""
    stft = torch.stft(
        wave_,
        n_fft=spec.n_fft,
        hop_length=spec.hop,
        window=torch.hann_window(spec.n_fft),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return torch.log(stft.abs() + 1e-7).unsqueeze(0)


def load_spectrogram(path: str | Path, spec: AudioSpec) -> Tensor:
    """Read, resample to ``spec.sample_rate``, tile to ``spec.seconds``, clip to [-1, 1], STFT."""
    wave_, rate = read_wav(path)
    wave_ = tile(resample(wave_, rate, spec.sample_rate), spec.num_samples).clamp(-1.0, 1.0)
    return log_spectrogram(wave_, spec)
