"""What every example script shares: --help in plain words, --demo, and the required flags."""

from __future__ import annotations

import importlib
import re
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = ["quickstart", "audio_video", "image_text", "trimodal"]
NEEDS = {"image_text": "transformers", "trimodal": "cv2"}


def load(script: str) -> ModuleType:
    if script in NEEDS:
        pytest.importorskip(NEEDS[script])
    return importlib.import_module(f"examples.{script}")


def help_text(script: str, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        load(script).parse_args([*argv, "--help"])
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines at any space


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_defaults_in_plain_words(
    script: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(script, capsys)
    assert "--seed SEED seed of the order and the model initialisation (default: 0)" in text
    assert "(default: similarity loss)" in text  # a list default, without Python's brackets
    assert "(default: None)" not in text and not re.search(r"default: [\[(']", text)
    assert "``" not in text and not re.search(r":(func|class|meth|data):", text)


def test_help_shows_the_defaults_that_dataset_and_demo_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "vggsound 384 (default: 384)" in help_text(
        "audio_video", capsys, "--dataset", "vggsound"
    )
    assert "vggsound 384 (default: 32)" in help_text("audio_video", capsys, "--demo")
    quickstart = help_text("quickstart", capsys)
    assert "(default: pix mor)" in quickstart and "tiny models (default: 1)" in quickstart


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("audio_video", [], "--dataset is required (or try --demo)"),
        ("audio_video", ["--dataset", "ks"], "--root is required (or try --demo)"),
        (
            "image_text",
            ["--dataset", "sarcasm", "--root", "r", "--resnet-width", "0.5"],
            "--resnet-width 0.5 has no pretrained weights (only 1.0): add --random-init",
        ),
        ("trimodal", [], "--root is required (or try --demo)"),
        ("trimodal", ["--demo", "--root", "r"], "--demo writes its own dataset: drop --root"),
        (
            "audio_video",
            ["--demo", "--epochs", "3", "--warmup-epochs", "3"],
            "--warmup-epochs must lie in [0, epochs - 1] = [0, 2], got 3",
        ),
        (
            "quickstart",
            ["--scoring", "online", "--sampler", "heuristic", "--rescore-every", "2"],
            "--scoring online needs every sample once per epoch",
        ),
        (
            "audio_video",
            ["--demo", "--method", "smv", "--sampler", "learned"],
            "--method smv orders the epochs itself (SMVSampler): drop --sampler, got --sampler "
            "learned",
        ),
        (
            "trimodal",
            ["--demo", "--method", "smv-modality", "--scoring", "online"],
            "--method smv-modality values the modalities in a pass: --scoring must be 'pass', "
            "got 'online'",
        ),
        (
            "audio_video",
            ["--demo", "--method", "smv", "--preset", "official"],
            "--preset sets BSS's released choices; --method smv has none: drop --preset, got "
            "'official'",
        ),
        ("audio_video", ["--demo", "--smv-alpha", "-1"], "--smv-alpha must be >= 0, got -1.0"),
    ],
)
def test_required_flags(
    script: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        load(script).parse_args(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("script", ["audio_video", "image_text", "trimodal"])
def test_demo_trains_in_a_temporary_folder(
    script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load(script)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    history = module.main(["--demo", "--epochs", "3", "--quiet"])  # the demo runs 20 epochs
    (folder,) = tmp_path.glob(f"bss-{script}-demo-*")
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert 0.0 <= history[-1]["test_acc"] <= 1.0
    assert {"history.csv", "accuracy.png", "best.pt", "last.pt"} <= {
        p.name for p in (folder / "run").iterdir()
    }
    assert any((folder / "data").iterdir())
    out = capsys.readouterr().out
    assert f"to {folder / 'data'}" in out and f"outputs in {folder / 'run'}:" in out
