"""The audio-video example end to end on tiny fixtures, and its building blocks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from examples import audio_video
from examples.av.audio import AudioSpec, load_spectrogram
from examples.av.datasets import FrameSpec, cremad, kinetics_sounds
from examples.common.frames import choose_frames

TINY = [
    "--width", "4", "--frames", "2", "--image-size", "16", "--sample-rate", "8000",
    "--audio-seconds", "0.25", "--batch-size", "4", "--no-progress", "--quiet",
    "--lambda0", "0.5", "--update-every", "1",
]  # fmt: skip


def run(root: Path, out: Path, *extra: str) -> list[dict[str, float]]:
    return audio_video.main(["--root", str(root), "--out", str(out), *TINY, *extra])


@pytest.mark.parametrize("sampler", ["random", "heuristic", "learned"])
@pytest.mark.parametrize("dataset", ["cremad", "ks", "vggsound"])
def test_end_to_end(av_roots: dict[str, Path], tmp_path: Path, dataset: str, sampler: str) -> None:
    history = run(av_roots[dataset], tmp_path, "--dataset", dataset, "--sampler", sampler,
                  "--epochs", "2")  # fmt: skip
    assert [row["epoch"] for row in history] == [1, 2]
    for key in ("test_acc", "test_map", "test_f1", "test_multi_acc", "test_audio_acc"):
        assert 0.0 <= history[-1][key] <= 1.0
    assert math.isfinite(history[-1]["train_loss"])
    assert {"history.csv", "history.json", "last.pt", "best.pt", "accuracy.png"} <= {
        p.name for p in tmp_path.iterdir()
    }


def test_resume_matches_uninterrupted_run(av_roots: dict[str, Path], tmp_path: Path) -> None:
    args = ("--dataset", "cremad", "--sampler", "learned", "--scoring", "online")
    full = run(av_roots["cremad"], tmp_path / "full", *args, "--epochs", "2")
    run(av_roots["cremad"], tmp_path / "part", *args, "--epochs", "1")
    resumed = run(av_roots["cremad"], tmp_path / "part", *args, "--epochs", "2",
                  "--resume", str(tmp_path / "part" / "last.pt"))  # fmt: skip

    def strip(rows: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in rows]

    assert strip(resumed) == strip(full)


def test_stft_shape_of_the_paper_setting(tmp_path: Path) -> None:
    from examples.av.demo_data import write_sine_wav

    write_sine_wav(tmp_path / "a.wav", 440.0, rate=16_000, seconds=0.3)
    spec = load_spectrogram(tmp_path / "a.wav", AudioSpec(sample_rate=22_050, seconds=20.0))
    assert spec.shape == (1, 257, 1250)  # CREMA-D: 20 s at 22,050 Hz, hop 353
    assert torch.isfinite(spec).all()


def test_frame_choice() -> None:
    assert choose_frames(10, 3, None) == [1, 5, 8]
    assert choose_frames(2, 3, None) == [0, 1, 0]
    draw = [choose_frames(10, 3, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert draw[0] == draw[1] and draw[0] == sorted(draw[0])


def test_dataset_items_are_deterministic(av_roots: dict[str, Path]) -> None:
    spec = {"audio": AudioSpec(8_000, 0.25), "frames": FrameSpec(2, 16)}
    test = cremad(av_roots["cremad"], "test", **spec)
    assert torch.equal(test[0]["visual"], test[0]["visual"])
    train = kinetics_sounds(av_roots["ks"], "train", **spec)
    assert len(train) == 6  # the clip with 3 frames is skipped
    first = train[1]["visual"]
    assert torch.equal(first, train[1]["visual"])  # same (seed, epoch, index): same item
    train.set_epoch(1)
    assert not torch.equal(first, train[1]["visual"])
    assert train[1]["visual"].shape == (2, 3, 16, 16) and train[1]["index"] == 1


@pytest.mark.parametrize("method", ["concat", "iprm"])
def test_methods_under_cpu_autocast(av_roots: dict[str, Path], tmp_path: Path, method: str) -> None:
    """``--amp`` (bfloat16 autocast on CPU) through each method's branch of ``training_step``."""
    history = run(av_roots["cremad"], tmp_path, "--dataset", "cremad", "--method", method,
                  "--amp", "--epochs", "1", "--scoring", "online")  # fmt: skip
    assert math.isfinite(history[0]["train_loss"]) and 0.0 <= history[0]["test_acc"] <= 1.0
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert ("lambdas" in state["model"]) == (method == "iprm")
    assert state["sampler"] is not None and state["scorer"] is not None
