"""Writing small real media files with PyAV, for the demo releases and the tests: a container
holding a video stream and, optionally, an audio track, encoded by FFmpeg's own encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from examples.av.media import require

__all__ = ["CODECS", "write_clip"]

#: Container suffix -> (video encoder, audio encoder); FLV is CREMA-D's (Sorenson H.263).
CODECS = {
    ".flv": ("flv", "pcm_s16le"),
    ".mp4": ("mpeg4", "aac"),
    ".mov": ("mpeg4", "pcm_s16le"),
    ".mkv": ("mpeg4", "pcm_s16le"),
}


def write_clip(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 30,
    *,
    audio: np.ndarray | None = None,
    rate: int = 44_100,
    audio_codec: str | None = None,
) -> Path:
    """Encode RGB uint8 ``frames (T, H, W, 3)`` at ``fps`` and, when given, ``audio`` (float
    ``(samples, channels)`` in [-1, 1] at ``rate``) into ``path``; the encoders follow the
    suffix (:data:`CODECS`), ``audio_codec`` overrides the audio one."""
    av = require("av")
    path = Path(path)
    if path.suffix not in CODECS:
        raise ValueError(f"path must end with one of {sorted(CODECS)}, got {path.name!r}")
    video_codec, default_audio = CODECS[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream(video_codec, rate=fps)
        video.height, video.width = frames.shape[1:3]
        video.pix_fmt = "yuv420p"
        sound = None
        if audio is not None:
            sound = container.add_stream(audio_codec or default_audio, rate=rate)
            sound.layout = "mono" if audio.shape[1] == 1 else "stereo"
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None and audio is not None:
            planar = np.ascontiguousarray(audio.T, dtype=np.float32)
            step = 1024
            for start in range(0, planar.shape[1], step):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(planar[:, start : start + step]),
                    format="fltp",
                    layout=sound.layout.name,
                )
                chunk.sample_rate, chunk.pts = rate, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path
