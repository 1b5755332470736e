"""examples/prepare.py on real encoded media: frames, audio, lists, resuming, damaged files,
and the prepared CREMA-D trained by examples/audio_video.py."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from examples import audio_video, prepare
from examples.av.datasets import cremad, kinetics_sounds, vggsound
from examples.av.demo_data import sine, write_release, write_sine_wav
from examples.av.encode import write_clip

av = pytest.importorskip("av")
#: CREMA-D's FLVs carry MP3 audio; PyAV's wheels hold the LAME encoder (else: PCM).
FLV_AUDIO = "libmp3lame" if "libmp3lame" in av.codecs_available else "pcm_s16le"
EMOTIONS = ("NEU", "HAP", "SAD")
PER_CLASS = 4  # CREMA-D clips per emotion
BITS = 8  # each frame shows its index in binary: 8 vertical stripes of 4 px


def indexed_frames(count: int) -> np.ndarray:
    """``(count, 24, 32, 3)`` frames; frame ``i`` is white in stripe ``b`` iff bit ``b`` of
    ``i`` is set, so a decoded frame says which frame it is."""
    frames = np.zeros((count, 24, 32, 3), np.uint8)
    for i in range(count):
        for b in range(BITS):
            if (i >> b) & 1:
                frames[i, :, 4 * b : 4 * b + 4] = 255
    return frames


def frame_index(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as img:
        pixels = np.asarray(img.convert("L"), dtype=np.float64)
    return sum(1 << b for b in range(BITS) if pixels[:, 4 * b + 1 : 4 * b + 3].mean() > 128)


def clip_name(emotion: str, j: int) -> str:
    return f"{1001 + j}_DFA_{emotion}_XX"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CREMA-D release of real files: 3-s FLV videos at 30 fps (with an MP3 track), wavs at
    16 kHz mono (as CREMA-D's), 44.1 kHz stereo and 16 kHz stereo, and one clip without wav."""
    root = tmp_path_factory.mktemp("cremad-release")
    wav_kinds = [(16_000, 1), (44_100, 2), (16_000, 2), (16_000, 1)]
    for c, emotion in enumerate(EMOTIONS):
        for j in range(PER_CLASS):
            clip = clip_name(emotion, j)
            audio = sine(300.0 * (c + 1), 22_050, 3.0, 1)
            write_clip(root / "VideoFlash" / f"{clip}.flv", indexed_frames(90), 30, audio=audio,
                       rate=22_050, audio_codec=FLV_AUDIO)  # fmt: skip
            if (c, j) != (2, 3):  # 1004_DFA_SAD_XX: no wav, its flv's track is used
                rate, channels = wav_kinds[j]
                write_sine_wav(root / "AudioWAV" / f"{clip}.wav", 300.0 * (c + 1), rate=rate,
                               seconds=1.0, channels=channels)  # fmt: skip
    return root


@pytest.fixture
def damaged(release: Path, tmp_path: Path) -> Path:
    """The release plus a truncated flv, a garbage flv, a truncated wav, an empty flv and a
    wav of 0 samples."""
    import soundfile

    source = tmp_path / "damaged"
    shutil.copytree(release, source)
    flv = (source / "VideoFlash" / f"{clip_name('NEU', 0)}.flv").read_bytes()
    (source / "VideoFlash" / "1010_DFA_ANG_XX.flv").write_bytes(flv[: len(flv) // 2])
    (source / "VideoFlash" / "1011_DFA_ANG_XX.flv").write_bytes(b"\x00garbage" * 300)
    (source / "VideoFlash" / "1013_DFA_ANG_XX.flv").write_bytes(b"")
    (source / "VideoFlash" / "1014_DFA_ANG_XX.flv").write_bytes(flv)
    soundfile.write(source / "AudioWAV" / "1014_DFA_ANG_XX.wav", np.zeros(0), 16_000)
    write_clip(source / "VideoFlash" / "1012_DFA_ANG_XX.flv", indexed_frames(60), 30)
    wav = (source / "AudioWAV" / f"{clip_name('NEU', 0)}.wav").read_bytes()
    (source / "AudioWAV" / "1012_DFA_ANG_XX.wav").write_bytes(wav[: len(wav) // 2])
    return source


def run(*argv: object) -> int:
    return prepare.main([str(a) for a in argv] + ["--no-progress", "--workers", "1"])


def mtimes(root: Path) -> dict[str, int]:
    """Every file's modification time (folders change when entries come and go)."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_frames_are_the_first_of_each_second(release: Path, tmp_path: Path) -> None:
    assert run("cremad", release, tmp_path) == 0
    folder = tmp_path / "Image-01-FPS" / clip_name("HAP", 2)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["00000.jpg", "00030.jpg", "00060.jpg"]  # count % 30 == 0 of 90 frames
    assert [frame_index(folder / n) for n in names] == [0, 30, 60]
    clips = sorted(p.name for p in (tmp_path / "Image-01-FPS").iterdir())
    assert len(clips) == len(EMOTIONS) * PER_CLASS


def test_audio_is_the_release_wav_or_the_flv_track(release: Path, tmp_path: Path) -> None:
    import soundfile

    assert run("cremad", release, tmp_path) == 0
    linked = tmp_path / "AudioWAV" / f"{clip_name('HAP', 1)}.wav"
    assert linked.read_bytes() == (release / "AudioWAV" / linked.name).read_bytes()
    decoded = soundfile.info(str(tmp_path / "AudioWAV" / f"{clip_name('SAD', 3)}.wav"))
    assert (decoded.samplerate, decoded.channels, decoded.subtype) == (22_050, 1, "PCM_16")
    assert abs(decoded.frames - 3 * 22_050) < 2048  # the whole 3-s track


def test_seeded_stratified_split(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("cremad", release, tmp_path / "a", "--test-fraction", "0.5", "--seed", "3") == 0
    assert (
        "seeded stratified split (0.5 of each emotion for test, seed 3)" in capsys.readouterr().out
    )
    rows = {s: list(csv.reader((tmp_path / "a" / f"{s}.csv").open())) for s in ("train", "test")}
    for split in ("train", "test"):
        assert sorted(label for _, label in rows[split]) == sorted(EMOTIONS * 2)
        assert all(clip.split("_")[2] == label for clip, label in rows[split])
    assert not {c for c, _ in rows["train"]} & {c for c, _ in rows["test"]}
    assert run("cremad", release, tmp_path / "b", "--test-fraction", "0.5", "--seed", "3") == 0
    assert (tmp_path / "b" / "test.csv").read_bytes() == (tmp_path / "a" / "test.csv").read_bytes()
    assert run("cremad", release, tmp_path / "c", "--test-fraction", "0.5", "--seed", "4") == 0
    capsys.readouterr()
    assert run("cremad", release, tmp_path / "d") == 0  # 0.1 of 4 clips per emotion: none
    assert "WARNING: test.csv is empty: 0.1 of each emotion's 4 clips" in capsys.readouterr().out
    assert (tmp_path / "c" / "test.csv").read_bytes() != (tmp_path / "a" / "test.csv").read_bytes()


def test_split_from_is_kept_exactly(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = tmp_path / "split"
    given.mkdir()
    clips = [clip_name(e, j) for e in EMOTIONS for j in range(PER_CLASS)]
    train = "".join(f"{c},{c.split('_')[2]}\r\n" for c in clips[1:])  # Windows line ends
    (given / "train.csv").write_bytes(train.encode())
    (given / "test.csv").write_bytes(f"{clips[0]},NEU\r\n".encode())
    assert run("cremad", release, tmp_path / "root", "--split-from", given) == 0
    for name in ("train.csv", "test.csv"):
        assert (tmp_path / "root" / name).read_bytes() == (given / name).read_bytes()
    assert "kept exactly (--split-from)" in capsys.readouterr().out
    assert len(cremad(tmp_path / "root", "train")) == len(clips) - 1

    (given / "test.csv").write_text(f"{clips[0]},HAP\n")  # a label that is not the name's
    assert run("cremad", release, tmp_path / "root", "--split-from", given) == 2
    assert (
        "test.csv line 1: label 'HAP' differs from the clip name's 'NEU'" in capsys.readouterr().err
    )


def test_second_run_rewrites_nothing(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spectrograms = ("--spectrograms", "float16", "--sample-rate", "8000", "--audio-seconds", "0.5")
    assert run("cremad", release, tmp_path, *spectrograms) == 0
    assert len(list((tmp_path / "Spectrograms").glob("*.npy"))) == 12
    before = mtimes(tmp_path)
    capsys.readouterr()
    assert run("cremad", release, tmp_path, *spectrograms) == 0
    assert mtimes(tmp_path) == before
    assert "12 clips: 0 written, 12 already done, 0 could not be read" in capsys.readouterr().out

    # A killed run: one clip's frames never renamed into place, a temporary folder left behind.
    clip = clip_name("NEU", 1)
    shutil.rmtree(tmp_path / "Image-01-FPS" / clip)
    (tmp_path / "Image-01-FPS" / f".{clip}.partial-99").mkdir()
    assert run("cremad", release, tmp_path, *spectrograms) == 0
    assert "12 clips: 1 written, 11 already done" in capsys.readouterr().out
    after = mtimes(tmp_path)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {f"Image-01-FPS/{clip}/{n:05d}.jpg" for n in (0, 30, 60)}
    assert not any(".partial-" in k for k in after)


def test_damaged_files_are_named_and_fail(
    damaged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("cremad", damaged, tmp_path) == 1
    err = capsys.readouterr().err
    assert "cannot read 1010_DFA_ANG_XX: ValueError: truncated: its" in err
    assert "cannot read 1011_DFA_ANG_XX: InvalidDataError" in err
    assert (
        "cannot read 1012_DFA_ANG_XX: ValueError: truncated:" in err
        and "samples its header declares" in err
    )
    assert (
        f"cannot read 1013_DFA_ANG_XX: ValueError: {damaged}/VideoFlash/1013_DFA_ANG_XX.flv is empty (0 bytes)"
        in err
    )
    assert (
        f"cannot read 1014_DFA_ANG_XX: ValueError: {damaged}/AudioWAV/1014_DFA_ANG_XX.wav holds no sample"
        in err
    )
    assert "5 clips could not be read (above); no list was written" in err
    assert not (tmp_path / "train.csv").exists() and not (tmp_path / "prepare.json").exists()

    assert run("cremad", damaged, tmp_path, "--skip-bad") == 0
    out = capsys.readouterr()
    assert "17 clips: 0 written, 12 already done, 5 could not be read" in out.out
    assert "skipped 1011_DFA_ANG_XX: InvalidDataError" in out.err
    manifest = json.loads((tmp_path / "prepare.json").read_text())
    assert [s["clip"] for s in manifest["skipped"]] == [f"101{i}_DFA_ANG_XX" for i in range(5)]
    assert manifest["prepared"] == 12
    assert not any(p.name.startswith("1011") for p in (tmp_path / "Image-01-FPS").iterdir())
    # The skipped clips stay in train.csv; the loader leaves them out and says so.
    with pytest.warns(UserWarning, match=r"train.csv: 5 of its 17 clips have no wav or no frame"):
        assert len(cremad(tmp_path, "train")) == 12


def test_extensions_in_upper_case_are_the_release_files(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``.FLV``/``.WAV`` (archives made on Windows) are found; the release's wav is used, not
    the flv's track in its place; two files differing only in case are named, not guessed; a
    hidden file (macOS's ``._<name>``) is no clip."""
    source = tmp_path / "release"
    (source / "VideoFlash").mkdir(parents=True)
    (source / "AudioWAV").mkdir()
    for clip in (clip_name("NEU", 0), clip_name("HAP", 0), clip_name("SAD", 0)):
        shutil.copyfile(
            release / "VideoFlash" / f"{clip}.flv", source / "VideoFlash" / f"{clip}.FLV"
        )
        shutil.copyfile(release / "AudioWAV" / f"{clip}.wav", source / "AudioWAV" / f"{clip}.WAV")
    (source / "VideoFlash" / f"._{clip_name('NEU', 0)}.flv").write_bytes(b"\x00\x05\x16\x07")
    sad = source / "AudioWAV" / f"{clip_name('SAD', 0)}"
    shutil.copyfile(sad.with_suffix(".WAV"), sad.with_suffix(".wav"))
    assert run("cremad", source, tmp_path / "root", "--skip-bad") == 0
    captured = capsys.readouterr()
    assert "3 clips: 2 written, 0 already done, 1 could not be read" in captured.out
    assert f"skipped {clip_name('SAD', 0)}: 2 files differ only in case" in captured.err
    for clip in (clip_name("NEU", 0), clip_name("HAP", 0)):
        wav = (tmp_path / "root" / "AudioWAV" / f"{clip}.wav").read_bytes()
        assert wav == (source / "AudioWAV" / f"{clip}.WAV").read_bytes()
        assert len(list((tmp_path / "root" / "Image-01-FPS" / clip).iterdir())) == 3


@pytest.mark.parametrize("suffix", [".mkv", ".flv"])
def test_audio_outlasting_the_video_is_no_truncation(tmp_path: Path, suffix: str) -> None:
    """Matroska, WebM and FLV streams declare no duration of their own; the container's spans
    the audio too, which may outlast the video in a whole file. A cut file is still caught."""
    from examples.av.media import extract_frames

    whole = write_clip(tmp_path / f"whole{suffix}", indexed_frames(20), 10,
                       audio=sine(440.0, 8_000, 4.0), rate=8_000)  # fmt: skip
    (tmp_path / "a").mkdir()
    assert extract_frames(whole, tmp_path / "a") == 2  # 2 s of video, 4 s of audio
    assert frame_index(tmp_path / "a" / "00010.jpg") == 10
    longer = write_clip(tmp_path / f"long{suffix}", indexed_frames(60), 10,
                        audio=sine(440.0, 8_000, 6.0), rate=8_000)  # fmt: skip
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(longer.read_bytes()[: longer.stat().st_size // 3])
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="truncated: its .* the container declares 6"):
        extract_frames(cut, tmp_path / "b")


def test_a_video_damaged_in_the_middle_is_named(release: Path, tmp_path: Path) -> None:
    """Garbage over most of an FLV: FFmpeg resyncs on the last packets, so the frames reach the
    declared end, but nothing decodes in between (the community extraction keeps 1 frame)."""
    from examples.av.media import extract_frames

    data = bytearray((release / "VideoFlash" / f"{clip_name('NEU', 0)}.flv").read_bytes())
    start, stop = len(data) // 10, len(data) * 8 // 10
    data[start:stop] = np.random.default_rng(0).integers(0, 256, stop - start, np.uint8).tobytes()
    damaged = tmp_path / "damaged.flv"
    damaged.write_bytes(bytes(data))
    (tmp_path / "frames").mkdir()
    with pytest.raises(ValueError, match=r"damaged: no frame decodes between 0\.\d+ s and 2\."):
        extract_frames(damaged, tmp_path / "frames")


def test_a_streamed_wav_of_unknown_size_is_whole(tmp_path: Path) -> None:
    """A wav written to a pipe declares the data size 0xFFFFFFFF (unknown), not 2**31 samples;
    a header declaring more samples than the file holds is still a truncated file."""
    import struct

    from examples.av.media import check_wav

    write_sine_wav(tmp_path / "a.wav", 440.0, rate=8_000, seconds=0.5)
    data = bytearray((tmp_path / "a.wav").read_bytes())
    size = data.index(b"data") + 4
    data[4:8] = data[size : size + 4] = struct.pack("<I", 0xFFFFFFFF)
    (tmp_path / "streamed.wav").write_bytes(bytes(data))
    assert check_wav(tmp_path / "streamed.wav") == 4_000
    data[size : size + 4] = struct.pack("<I", 10_000)  # 5,000 samples of 2 bytes
    (tmp_path / "short.wav").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="truncated: 4000 of the 5000 samples"):
        check_wav(tmp_path / "short.wav")


def test_prepared_cremad_trains_and_resumes(release: Path, tmp_path: Path) -> None:
    from examples.av.audio import AudioSpec, load_spectrogram

    assert run("cremad", release, tmp_path / "data", "--test-fraction", "0.5",
               "--spectrograms", "float32", "--sample-rate", "8000", "--audio-seconds", "0.25") == 0  # fmt: skip
    test = cremad(tmp_path / "data", "test", audio=AudioSpec(8_000, 0.25))
    assert test.spectrograms is not None  # the loader reads what prepare wrote
    assert test.spectrograms.load(test.clips[0].wav) is not None
    assert torch.equal(
        test[0]["audio"], load_spectrogram(test.clips[0].wav, AudioSpec(8_000, 0.25))
    )
    tiny = ["--root", str(tmp_path / "data"), "--dataset", "cremad", "--out", str(tmp_path / "run"),
            "--width", "4", "--frames", "2", "--image-size", "16", "--sample-rate", "8000",
            "--audio-seconds", "0.25", "--batch-size", "4", "--no-progress", "--quiet",
            "--sampler", "learned", "--update-every", "1"]  # fmt: skip
    first = audio_video.main([*tiny, "--epochs", "1"])
    resumed = audio_video.main(
        [*tiny, "--epochs", "2", "--resume", str(tmp_path / "run" / "last.pt")]
    )
    assert [r["epoch"] for r in resumed] == [1, 2] and resumed[0] == first[0]
    assert resumed[-1]["train_samples"] == len(EMOTIONS) * PER_CLASS // 2


def test_ks_from_kinetics_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_release("ks", tmp_path / "src", per_class=1)
    (tmp_path / "classes.txt").write_text("barking\nplaying drums\n")
    assert run("ks", source, tmp_path / "all", "--workers", "2") == 0
    assert "the 3 classes of annotations/train.csv, sorted" in capsys.readouterr().out
    assert run("ks", source, tmp_path / "two", "--classes", tmp_path / "classes.txt") == 0
    out = capsys.readouterr().out
    assert "rows of other classes left out: 1 train, 1 test" in out
    assert (tmp_path / "two" / "classes.txt").read_text() == "barking\nplaying drums\n"
    train = kinetics_sounds(tmp_path / "two", "train")
    assert len(train) == 2 and train.num_classes == 2
    assert sorted(p.name for p in train.clips[0].frames.iterdir()) == [
        f"000{n}0.jpg" for n in range(4)
    ]

    (tmp_path / "classes.txt").write_text("barking\nsnoring\n")
    assert run("ks", source, tmp_path / "bad", "--classes", tmp_path / "classes.txt") == 2
    assert "class 'snoring' has no row in annotations/train.csv" in capsys.readouterr().err


def test_vggsound_without_audio_track_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_release("vggsound", tmp_path / "src", per_class=1)
    silent = sorted((source / "video").iterdir())[0]
    write_clip(silent, indexed_frames(20), fps=10)  # overwritten without audio
    assert run("vggsound", source, tmp_path / "root") == 1
    assert f"cannot read {silent.stem}: ValueError: no audio stream" in capsys.readouterr().err
    assert run("vggsound", source, tmp_path / "root", "--skip-bad") == 0
    encoding = json.loads((tmp_path / "root" / "label_encoding.json").read_text())
    assert encoding == {"dog barking": 0, "engine accelerating, revving, vroom": 1, "rain": 2}
    test = vggsound(tmp_path / "root", "test")
    assert sorted(test.targets) == [0, 1, 2]
    with pytest.warns(UserWarning, match=f"1 of its 3 clips .* left out .e.g. {silent.stem}"):
        assert len(vggsound(tmp_path / "root", "train")) == 2  # the silent clip is left out
    released = vggsound(tmp_path / "root", "test", clip_ids="released", min_frames=4)
    assert [c.wav for c in released.clips] == [c.wav for c in test.clips]  # --preset official


def test_runs_as_a_plain_script(release: Path, tmp_path: Path) -> None:
    """``python examples/prepare.py``: the script's folder holds ``examples/av``, which must not
    shadow PyAV's ``import av`` in the worker processes."""
    script = Path(prepare.__file__)
    done = subprocess.run(
        [sys.executable, str(script), "cremad", str(release), str(tmp_path / "root"), "--workers", "2",
         "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cremad: 12 clips: 12 written, 0 already done, 0 could not be read" in done.stdout


def test_the_demo_runs_as_a_plain_script(tmp_path: Path) -> None:
    """``python examples/audio_video.py --demo`` writes its release with PyAV, which the
    script's own folder (holding ``av/``) must not shadow."""
    script = Path(audio_video.__file__)
    done = subprocess.run(
        [sys.executable, str(script), "--demo", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # the demo's data folder
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "last.pt").is_file()


def test_help_says_what_source_holds(capsys: pytest.CaptureFixture[str]) -> None:
    for dataset, phrase in [("cremad", "VideoFlash/<clip>.flv"), ("ks", "annotations/train.csv"),
                            ("vggsound", "vggsound.csv"), ("nvgesture-flow", "correct_v2.lst")]:  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            prepare.parse_args([dataset, "--help"])
        assert stop.value.code == 0
        assert phrase in " ".join(capsys.readouterr().out.split())


def test_nvgesture_flow_under_prepare_and_its_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("cv2")
    from examples.gesture import flow
    from examples.gesture.demo_data import make_nvgesture_demo_data

    root = make_nvgesture_demo_data(tmp_path, classes=1, per_class=1, frames=6)
    capsys.readouterr()
    (root / "flow_data" / "test" / "0.npy").unlink()
    assert prepare.main(["nvgesture-flow", str(root), "--no-progress"]) == 0
    assert "2 clips: 1 written, 1 already done, 0 skipped" in capsys.readouterr().out
    assert flow.main(["--root", str(root), "--no-progress"]) == 0
    assert "2 clips: 0 written, 2 already done" in capsys.readouterr().out
    video = next((root / "Video_data").rglob("sk_color.avi"))
    video.write_bytes(b"garbage")
    (root / "flow_data" / "train" / "0.npy").unlink()
    assert prepare.main(["nvgesture-flow", str(root), "--no-progress"]) == 1
    assert "train/0" in capsys.readouterr().err


def test_an_interrupted_clip_is_not_counted_as_done(
    release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clip whose extraction dies after writing some frames leaves nothing under its final
    name, so the next run does it again (instead of keeping a folder with missing frames)."""
    from examples.av import clipjob

    real = clipjob.extract_frames

    def dies_halfway(video: Path, folder: Path) -> int:
        (Path(folder) / "00000.jpg").write_bytes(b"half a frame")
        raise KeyboardInterrupt  # not an Exception: the run stops, as when killed

    monkeypatch.setattr(clipjob, "extract_frames", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        run("cremad", release, tmp_path)
    assert not any((tmp_path / "Image-01-FPS").iterdir())  # no clip folder, no temporary one
    monkeypatch.setattr(clipjob, "extract_frames", real)
    assert run("cremad", release, tmp_path) == 0
    assert len(list((tmp_path / "Image-01-FPS").iterdir())) == len(EMOTIONS) * PER_CLASS


def test_an_interrupted_flow_file_is_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The flow command used to save straight to the final name: a run killed while saving left
    a truncated .npy that every later run kept as done."""
    pytest.importorskip("cv2")
    from examples.gesture import flow
    from examples.gesture.demo_data import make_nvgesture_demo_data

    root = make_nvgesture_demo_data(tmp_path, classes=1, per_class=1, frames=6)
    target = root / "flow_data" / "train" / "0.npy"
    target.unlink()

    def dies_while_saving(file: object, array: np.ndarray) -> None:
        handle = open(file, "wb") if isinstance(file, (str, Path)) else file  # noqa: SIM115
        handle.write(b"\x93NUMPY half")  # type: ignore[union-attr]
        raise KeyboardInterrupt

    monkeypatch.setattr(flow.np, "save", dies_while_saving)
    with pytest.raises(KeyboardInterrupt):
        flow.compute_flow(root, ("train",), verbose=False)
    assert not target.exists() and not list(target.parent.glob(".*partial*"))
    monkeypatch.undo()
    capsys.readouterr()
    assert prepare.main(["nvgesture-flow", str(root), "--splits", "train", "--no-progress"]) == 0
    assert "1 clips: 1 written, 0 already done" in capsys.readouterr().out
    assert np.load(target).dtype == np.float32


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cremad", "s", "r", "--split-from", ".", "--seed", "3"],
         "--seed sets the seeded split, which --split-from replaces: drop one"),
        (["cremad", "s", "r", "--sample-rate", "8000"],
         "--sample-rate sets how --spectrograms computes them; without --spectrograms the wavs"),
        (["cremad", "s", "r", "--test-fraction", "1"], "--test-fraction must lie in (0, 1), got 1.0"),
        (["cremad", "s", "r", "--split-from", "no-such-dir"], "--split-from must be a folder, got 'no-such-dir'"),
        (["ks", "s", "r", "--workers", "0"], "ks: error: --workers must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_flags_that_would_be_ignored_or_are_wrong_are_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        prepare.parse_args(argv)
    assert stop.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())
