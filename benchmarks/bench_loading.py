"""Loading speed of CREMA-D-shaped clips: spectrograms on the fly against the cache.

One DataLoader worker is one process reading items one after another, so items per second in a
single process is the rate of one worker. The dataset is ``examples.av.datasets.cremad`` over a
generated CREMA-D layout of the real sizes: 16 kHz mono 16-bit wavs of 2.0-3.5 s of speech-like
audio (CREMA-D's clips last 1.3-5 s, about 2.5 s on average) and one 480x360 JPEG frame per
clip, read as the training view (random crop and flip to 224 px). Cases, timed round-robin in one
process (``_common.interleaved_timings``):

* ``on_the_fly``: each item reads the wav, resamples to 22,050 Hz (soxr HQ), tiles to 20 s and
  computes the ``257 x 1250`` log-STFT (the default CREMA-D pipeline);
* ``cached_float16`` / ``cached_float32``: the same items with the spectrogram read from a cache
  written by ``examples.av.spectrograms.write_spectrograms`` (timed once, per clip, as
  ``write_s_per_clip``).

``audio_only`` times the audio part alone (``load_spectrogram`` against the cache's ``load``).

Workers needed for a training rate R samples/s: ``ceil(R / clips per second per worker)``
(``--train-rate``, several values allowed). The cache is read from the page cache here (the
files were just written); a cold disk adds its read time (642 KB per float16 clip).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import _common
import numpy as np
import torch

from examples.av.audio import AudioSpec, load_spectrogram
from examples.av.datasets import AVClipDataset, FrameSpec, cremad
from examples.av.spectrograms import SpectrogramCache, open_cache, write_spectrograms

SPEC = AudioSpec()  # CREMA-D: 22,050 Hz x 20 s -> 257 x 1250
EMOTIONS = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")


def make_layout(root: Path, clips: int, rng: np.random.Generator) -> None:
    """``clips`` CREMA-D clips: speech-like 16 kHz wavs and one 480x360 JPEG frame each."""
    import soundfile
    from PIL import Image

    (root / "AudioWAV").mkdir(parents=True)
    rows = []
    for i in range(clips):
        name = f"{1001 + i}_DFA_{EMOTIONS[i % 6]}_XX"
        n = round(16_000 * rng.uniform(2.0, 3.5))
        t = np.arange(n) / 16_000
        phase = 2 * np.pi * np.cumsum(150 + 60 * np.sin(2 * np.pi * 0.8 * t)) / 16_000
        voiced = sum(np.sin(k * phase) / k for k in range(1, 36))
        wave = 0.2 * voiced * (t % 0.4 < 0.25) + 0.02 * rng.standard_normal(n)
        soundfile.write(root / "AudioWAV" / f"{name}.wav", wave, 16_000, subtype="PCM_16")
        y, x = np.mgrid[0:360, 0:480]
        face = 200 * np.exp(-(((x - 240) / 90) ** 2 + ((y - 170) / 120) ** 2))
        pixels = np.stack([face + 40, 0.8 * face + 30, 0.6 * face + 30], -1)
        pixels += rng.normal(0, 6, pixels.shape)
        folder = root / "Image-01-FPS" / name
        folder.mkdir(parents=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / "00000.jpg")
        rows.append(f"{name},{EMOTIONS[i % 6]}\n")
    (root / "train.csv").write_text("".join(rows))


def read_all(data: AVClipDataset) -> None:
    for i in range(len(data)):
        data[i]


def read_cache(cache: SpectrogramCache, wavs: list[Path]) -> None:
    for wav in wavs:
        cache.load(wav)


def run(clips: int, repeats: int, train_rates: list[float]) -> dict[str, object]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_layout(root, clips, rng)
        frames = FrameSpec(1, 224)
        wavs = sorted((root / "AudioWAV").glob("*.wav"))
        datasets = {"on_the_fly": cremad(root, "train", audio=SPEC, frames=frames)}
        audio_cases: dict[str, Callable[[], object]] = {  # the audio alone
            "on_the_fly": lambda: [load_spectrogram(w, SPEC) for w in wavs]
        }
        write_s: dict[str, float] = {}
        sizes: dict[str, int] = {}
        for dtype in ("float16", "float32"):
            folder = root / f"cache-{dtype}"
            tic = time.perf_counter()
            write_spectrograms(folder, wavs, SPEC, dtype)
            write_s[dtype] = (time.perf_counter() - tic) / clips
            sizes[dtype] = sum(p.stat().st_size for p in folder.glob("*.npy")) // clips
            cache = open_cache(folder, SPEC)
            if cache is None:
                raise RuntimeError(f"the cache just written in {folder} does not open")
            datasets[f"cached_{dtype}"] = cremad(
                root, "train", audio=SPEC, frames=frames, spectrograms=cache
            )
            audio_cases[f"cached_{dtype}"] = partial(read_cache, cache, wavs)
        cases = {name: (lambda d=d: read_all(d)) for name, d in datasets.items()}
        table = _common.ratio_table(_common.interleaved_timings(cases, repeats), "on_the_fly")
        audio = _common.ratio_table(_common.interleaved_timings(audio_cases, repeats), "on_the_fly")
    out: dict[str, dict[str, object]] = {}
    for name, row in table.items():
        per_worker = clips / float(median(row["wall_s"]))
        per_worker_cpu = clips / float(row["median_s"])
        out[name] = {
            "clips_per_s_per_worker": round(per_worker, 1),
            "clips_per_s_per_worker_cpu": round(per_worker_cpu, 1),
            "speedup_wall": round(1 / row["ratio_wall"], 2),
            "speedup_cpu": round(1 / row["ratio"], 2),
            "workers_at": {f"{rate:g}": math.ceil(rate / per_worker_cpu) for rate in train_rates},
            **row,
        }
        print(
            f"{name}: {per_worker_cpu:.1f} clips/s per worker (cpu), {per_worker:.1f} (wall), "
            f"{1 / row['ratio']:.2f}x on the fly (cpu); workers at "
            + ", ".join(f"{r:g}/s: {math.ceil(r / per_worker_cpu)}" for r in train_rates),
            flush=True,
        )
    audio_ms = {k: round(1e3 * v["median_s"] / clips, 2) for k, v in audio.items()}
    print(f"audio alone, cpu ms per clip: {audio_ms}")
    print(f"write once: {write_s} s per clip; bytes per clip: {sizes}")
    payload: dict[str, object] = {
        "benchmark": "loading",
        "dataset": f"{clips} CREMA-D-shaped clips: 16 kHz mono PCM16 wav of 2.0-3.5 s, one "
        "480x360 JPEG frame; training view (random crop + flip, 224 px)",
        "audio": {
            "sample_rate": SPEC.sample_rate,
            "seconds": SPEC.seconds,
            "shape": list(SPEC.shape),
        },
        "repeats": repeats,
        "train_rates": train_rates,
        "write_s_per_clip": write_s,
        "cache_bytes_per_clip": sizes,
        "cases": out,
        "audio_only": {"cpu_ms_per_clip": audio_ms, "timings": audio},
    }
    _common.write_json("loading", payload)
    write_table(payload)
    return payload


def write_table(payload: dict[str, object]) -> Path:
    """``results/loading.md``: the table ``docs/benchmarks.md`` quotes (a test compares them)."""
    rates = " / ".join(f"{r:g}" for r in payload["train_rates"])  # type: ignore[attr-defined]
    lines = [
        f"| case | clips/s per worker (CPU) | (wall, shared box) | speed-up (CPU / wall) | "
        f"workers for {rates} samples/s |",
        "|---|---|---|---|---|",
    ]
    cases: dict[str, dict[str, Any]] = payload["cases"]  # type: ignore[assignment]
    for name, row in cases.items():
        speedup = (
            "1x"
            if name == "on_the_fly"
            else f"**{row['speedup_cpu']:.1f}x** / {row['speedup_wall']:.2f}x"
        )
        workers = " / ".join(str(n) for n in row["workers_at"].values())
        lines.append(
            f"| `{name}` | {row['clips_per_s_per_worker_cpu']} | {row['clips_per_s_per_worker']} "
            f"| {speedup} | {workers} |"
        )
    path = _common.RESULTS_DIR / "loading.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path.relative_to(_common.REPO_ROOT)}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48, help="clips in the generated layout")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per case")
    parser.add_argument(
        "--train-rate",
        type=float,
        nargs="+",
        default=[500.0, 1000.0, 2000.0],
        help="training rates (samples/s) to size the worker count for",
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="rewrite results/loading.md from results/loading.json without measuring",
    )
    args = parser.parse_args()
    if args.table_only:
        write_table(json.loads((_common.RESULTS_DIR / "loading.json").read_text()))
        return
    torch.set_num_threads(1)  # as in a DataLoader worker
    run(args.clips, args.repeats, args.train_rate)


if __name__ == "__main__":
    main()
