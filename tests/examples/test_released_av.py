"""``--preset official`` on the audio-video datasets against the released loaders' behaviour
(njustkmg/IJCAI25-BSS ``CREMA-D/dataset/CramedDataset.py``, ``KS/dataset/KS.py``,
``VGGSound/dataset/VGGSoundDataset.py``), each rule written here from its documented
parameters: the frames read are the first entries of ``os.listdir`` (the random choice the
loaders compute is never used), Kinetics-Sounds' csv columns are read by name and its class ids
follow the training clips' first appearance, CREMA-D tiles at most 20 copies of a clip,
VGGSound looks labels up as written.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from examples.av.audio import AudioSpec
from examples.av.datasets import AVClipDataset, FrameSpec, cremad, kinetics_sounds, vggsound
from examples.av.spectrograms import CACHE_DIR, write_spectrograms
from examples.common.frames import IMAGENET_MEAN, IMAGENET_STD
from examples.common.released import RELEASED

soundfile = pytest.importorskip("soundfile")

SMALL = {"audio": AudioSpec(8_000, 0.25), "frames": FrameSpec(count=1, size=8)}
COLOURS = [(250, 10, 10), (10, 250, 10), (10, 10, 250), (250, 250, 10), (10, 250, 250)]


def write_clip(wav: Path, frames: Path, *, seconds: float = 0.25, rate: int = 8_000) -> None:
    """A sine wav and one solid-colour PNG per entry of :data:`COLOURS`."""
    wav.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(rate * seconds)) / rate
    soundfile.write(wav, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    frames.mkdir(parents=True, exist_ok=True)
    for i, colour in enumerate(COLOURS):
        Image.new("RGB", (12, 10), colour).save(frames / f"frame_{i:05d}.png")


def colours(visual: torch.Tensor) -> list[tuple[int, ...]]:
    """The solid colour of each ``(3, S, S)`` frame of ``(K, 3, S, S)``, in 0-255."""
    rgb = visual * IMAGENET_STD + IMAGENET_MEAN
    return [tuple(round(float(c) * 255) for c in f.mean((1, 2))) for f in rgb]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.fixture
def cremad_root(tmp_path: Path) -> Path:
    for split in ("train", "test"):
        write_csv(tmp_path / f"{split}.csv", [[f"{split}_0", "NEU"], [f"{split}_1", "ANG"]])
        for i in range(2):
            name = f"{split}_{i}"
            write_clip(tmp_path / "AudioWAV" / f"{name}.wav", tmp_path / "Image-01-FPS" / name)
    return tmp_path


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("count", [1, 3])
def test_official_frames_are_the_first_entries_of_os_listdir(
    cremad_root: Path, split: str, count: int
) -> None:
    frames = FrameSpec(count=count, size=8)
    opts = {**SMALL, "frames": frames, "spectrograms": None}
    official = cremad(cremad_root, split, **opts, **RELEASED["cremad"].data)
    ours = cremad(cremad_root, split, **opts)
    for index, clip in enumerate(official.clips):
        listed = [n for n in os.listdir(clip.frames) if n.endswith(".png")][:count]
        expected = [COLOURS[int(n[6:11])] for n in listed]  # what the released loader reads
        got = colours(official[index]["visual"])
        assert all(np.allclose(g, e, atol=2) for g, e in zip(got, expected)), (got, expected)
    listing = os.listdir(official.clips[0].frames)
    if listing != sorted(listing) and split == "test":  # ours: evenly spaced sorted frames
        middle = [COLOURS[(2 * i + 1) * 5 // (2 * count)] for i in range(count)]
        assert all(np.allclose(g, e, atol=2) for g, e in zip(colours(ours[0]["visual"]), middle))


def test_every_audio_video_preset_reads_the_listed_frames() -> None:
    for name in ("cremad", "ks", "vggsound"):
        assert RELEASED[name].data["frame_choice"] == "listdir", name
    with pytest.raises(ValueError, match="frame_choice must be one of"):
        AVClipDataset([], 2, **SMALL, train=False, frame_choice="random")  # type: ignore[arg-type]


# -- Kinetics-Sounds: the public csv shape, class ids ------------------------------------------


def ks_root(tmp_path: Path, rows: dict[str, list[tuple[str, str]]], missing: set[str]) -> Path:
    """Kinetics' public annotation columns (``label,youtube_id,time_start,time_end,split``)."""
    for split, clips in rows.items():
        write_csv(
            tmp_path / "annotations" / f"{split}.csv",
            [["label", "youtube_id", "time_start", "time_end", "split"]]
            + [[label, vid, "0", "10", split] for vid, label in clips],
        )
        for vid, _ in clips:
            if vid not in missing:
                write_clip(
                    tmp_path / f"{split}_wav" / f"{vid}.wav",
                    tmp_path / f"{split}_img" / "Image-01-FPS" / vid,
                )
    return tmp_path


def test_kinetics_sounds_reads_the_public_columns_and_the_released_class_ids(
    tmp_path: Path,
) -> None:
    rows = {
        "train": [("gone", "bowling"), ("a1", "playing drums"), ("b1", "bowling"),
                  ("c1", "chopping wood")],
        "test": [("t1", "chopping wood"), ("t2", "playing drums"), ("t3", "bowling")],
    }  # fmt: skip
    root = ks_root(tmp_path, rows, missing={"gone"})
    ours = kinetics_sounds(root, "test", **SMALL)
    assert [c.frames.name for c in ours.clips] == ["t1", "t2", "t3"]  # ids from 'youtube_id'
    names = ["bowling", "chopping wood", "playing drums"]
    assert ours.targets == [names.index(n) for _, n in rows["test"]] and ours.num_classes == 3
    # released: {label: i} over the training clips found on disk, in order of appearance
    first_seen = ["playing drums", "bowling", "chopping wood"]
    official = kinetics_sounds(root, "test", **SMALL, **RELEASED["ks"].data)
    assert official.targets == [first_seen.index(n) for _, n in rows["test"]]
    with pytest.warns(UserWarning, match=r"train.csv: 1 of its 4 clips .* \(e.g. gone"):
        train = kinetics_sounds(root, "train", **SMALL, **RELEASED["ks"].data)
    assert train.targets == [0, 1, 2]
    write_csv(root / "annotations" / "test.csv", [["youtube_id", "labels"], ["t1", "bowling"]])
    with pytest.raises(
        ValueError, match=r"test.csv: the header .* lacks the column\(s\) \['label'"
    ):
        kinetics_sounds(root, "test", **SMALL)
    # a row too short for the columns (before: silently dropped) names its line
    write_csv(
        root / "annotations" / "test.csv", [["label", "youtube_id"], ["bowling", "t1"], ["x"]]
    )
    with pytest.raises(ValueError, match="test.csv line 3: 1 fields, expected the header's 2"):
        kinetics_sounds(root, "test", **SMALL)


# -- CREMA-D: 20 copies of a clip at most -----------------------------------------------------


def test_cremad_official_tiles_at_most_20_copies(cremad_root: Path) -> None:
    librosa = pytest.importorskip("librosa")
    wav = cremad_root / "AudioWAV" / "test_1.wav"
    rate = 16_000
    t = np.arange(rate // 2) / rate  # 0.5 s: 20 copies fill 10 of the 20 s
    soundfile.write(wav, (0.4 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate)
    write_clip(cremad_root / "AudioWAV" / "test_0.wav", cremad_root / "Image-01-FPS" / "test_0",
               seconds=1.5, rate=rate)  # fmt: skip
    spec = AudioSpec()  # 22,050 Hz x 20 s
    # the released steps: librosa.load at 22,050 Hz, np.tile(samples, 20)[:441000], clip, STFT
    samples, _ = librosa.load(wav, sr=22_050)
    tiled = np.clip(np.tile(samples, 20)[: 22_050 * 20], -1.0, 1.0)
    reference = np.log(np.abs(librosa.stft(tiled, n_fft=512, hop_length=353)) + 1e-7)
    assert reference.shape == (257, 1 + 20 * 11_025 // 353)

    write_spectrograms(cremad_root / CACHE_DIR, sorted((cremad_root / "AudioWAV").glob("*")), spec)
    opts = {"audio": spec, "frames": SMALL["frames"]}
    official = cremad(cremad_root, "test", **opts, **RELEASED["cremad"].data)
    assert official.spectrograms is not None  # the full-length cache serves the long clip
    short = official[1]["audio"]
    assert short.shape == (1, *reference.shape)
    assert float(np.abs(short[0].numpy() - reference).mean()) < 0.05
    long = official[0]["audio"]
    cached = np.load(cremad_root / CACHE_DIR / "test_0.npy").astype(np.float32)
    assert long.shape == spec.shape and np.array_equal(long[0].numpy(), cached)
    assert cremad(cremad_root, "test", **opts)[1]["audio"].shape == spec.shape  # ours: 20 s


# -- VGGSound: labels as written ---------------------------------------------------------------


def test_vggsound_looks_labels_up_as_written(tmp_path: Path) -> None:
    encoding = {" dog barking": 0, " rain": 1}  # keys written with the csv's spaces
    (tmp_path / "label_encoding.json").write_text(json.dumps(encoding))
    rows = [["0", " dog barking", " clip_a"], ["1", " rain", " clip_b"]]
    write_csv(tmp_path / "test.csv", rows)
    for vid in ("clip_a", "clip_b"):
        write_clip(tmp_path / "AudioWAV" / f"{vid}.wav", tmp_path / "Image-01-FPS" / vid)
    for opts in ({}, RELEASED["vggsound"].data):
        data = vggsound(tmp_path, "test", **SMALL, **{**opts, "min_frames": 1})
        assert data.targets == [0, 1]


# -- the heads' initialisation -----------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["cremad", "ks", "vggsound"])
def test_official_heads_start_as_the_released_weight_init(tmp_path: Path, dataset: str) -> None:
    """The released scripts run ``net.apply(weight_init)``: every ``nn.Linear`` gets
    ``xavier_normal_`` weights (std ``sqrt(2 / (fan_in + fan_out))``) and zero biases."""
    from examples import audio_video

    argv = ["--dataset", dataset, "--root", str(tmp_path), "--width", "16"]
    official = audio_video.parse_args([*argv, "--preset", "official"])
    paper = audio_video.parse_args(argv)
    assert (official.head_init, paper.head_init) == ("xavier", "default")
    torch.manual_seed(0)
    model = audio_video.build_model(300, 16, "joint", official.head_init)
    heads = [*model.heads.values(), model.fusion_head]  # type: ignore[union-attr]
    for head in heads:
        fan_out, fan_in = head.weight.shape
        std = float(head.weight.std())
        assert abs(std / (2 / (fan_in + fan_out)) ** 0.5 - 1) < 0.05
        assert head.bias.abs().max() == 0
    default = audio_video.build_model(300, 16, "joint", paper.head_init)
    assert default.fusion_head.bias.abs().max() > 0  # type: ignore[union-attr]


def test_official_heads_have_the_released_models_outputs(tmp_path: Path) -> None:
    """``n_classes`` is fixed in the released models: VGGSound 310 (for 309 classes), KS 31."""
    from examples import audio_video

    for dataset, width in (("vggsound", 310), ("ks", 31), ("cremad", None)):
        argv = ["--dataset", dataset, "--root", str(tmp_path)]
        assert audio_video.parse_args([*argv, "--preset", "official"]).head_classes == width
        assert audio_video.parse_args(argv).head_classes is None
    assert audio_video.output_classes(309, 310) == 310 and audio_video.output_classes(3, None) == 3
    with pytest.raises(ValueError, match="released model has 31 outputs.*32 classes"):
        audio_video.output_classes(32, 31)


def test_vggsound_official_test_item_equals_the_released_loader(tmp_path: Path) -> None:
    """A whole test item against the released VGGSound loader written from its parameters:
    ``librosa.load(sr=35400)`` tiled to 20 s, clipped, ``log(|stft(512, 353)| + 1e-7)``; the
    first ``os.listdir`` frame, ``Resize((384, 384))`` (PIL bilinear), ImageNet statistics."""
    librosa = pytest.importorskip("librosa")
    (tmp_path / "label_encoding.json").write_text(json.dumps({"rain": 0}))
    write_csv(tmp_path / "test.csv", [["0", "rain", " clip_a"]])
    folder = tmp_path / "Image-01-FPS" / "clip_a"
    write_clip(tmp_path / "AudioWAV" / "clip_a.wav", folder, seconds=1.3, rate=16_000)
    cbook = pytest.importorskip("matplotlib.cbook")
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    for i, name in enumerate(sorted(os.listdir(folder))):  # a photograph per frame, shifted
        photo.crop((8 * i, 0, 8 * i + 400, 300)).save(folder / name)
    spec = AudioSpec(35_400, 20.0)
    item = vggsound(tmp_path, "test", audio=spec, frames=FrameSpec(1, 384),
                    **RELEASED["vggsound"].data)[0]  # fmt: skip

    samples, rate = librosa.load(tmp_path / "AudioWAV" / "clip_a.wav", sr=35_400, mono=True)
    while len(samples) / rate < 20.0:
        samples = np.tile(samples, 2)
    wave = np.clip(samples[: rate * 20], -1.0, 1.0)
    reference = np.log(np.abs(librosa.stft(wave, n_fft=512, hop_length=353)) + 1e-7)
    assert item["audio"].shape == (1, *reference.shape) == (1, 257, 2006)
    assert float(np.abs(item["audio"][0].numpy() - reference).mean()) < 0.05

    with Image.open(folder / os.listdir(folder)[0]) as img:
        resized = np.asarray(img.convert("RGB").resize((384, 384), Image.Resampling.BILINEAR))
    frame = (
        torch.from_numpy(resized / 255.0).permute(2, 0, 1).float() - IMAGENET_MEAN
    ) / IMAGENET_STD
    assert item["visual"].shape == (1, 3, 384, 384)
    assert float((item["visual"][0] - frame).abs().max()) < 1.1 / 255 / 0.225  # PIL rounds


def test_vggsound_rows_of_unknown_labels_are_refused_not_dropped(tmp_path: Path) -> None:
    """A row whose label is not in label_encoding.json while its clip is on disk is refused
    naming the line (the released loader's KeyError; before: the clip silently dropped); a
    header row passes; a csv of another layout (the public vggsound.csv) names the layout
    instead of "missing wav or frames?"."""
    (tmp_path / "label_encoding.json").write_text(json.dumps({"rain": 0, "horn, car horn": 1}))
    for vid in ("clip_a", "clip_b"):
        write_clip(tmp_path / "AudioWAV" / f"{vid}.wav", tmp_path / "Image-01-FPS" / vid)
    header = ["index", "label", "id"]
    write_csv(
        tmp_path / "test.csv",
        [header, ["0", "rain", " clip_a"], ["1", "horn, car horn", " clip_b"]],
    )
    for opts in ({}, RELEASED["vggsound"].data):
        assert vggsound(tmp_path, "test", **SMALL, **{**opts, "min_frames": 1}).targets == [0, 1]
    write_csv(tmp_path / "test.csv", [header, ["0", "rain", " clip_a"], ["1", "horn", " clip_b"]])
    with pytest.raises(ValueError, match="test.csv line 3: label 'horn' .* is not a key of"):
        vggsound(tmp_path, "test", **SMALL)
    write_csv(tmp_path / "test.csv", [["clip_a", "12", "rain", "test"]])
    with pytest.raises(ValueError, match="no row has a label of .* \\(e.g. line 1: '12'\\)"):
        vggsound(tmp_path, "test", **SMALL)


def test_no_usable_clip_says_why(tmp_path: Path) -> None:
    """Clips on disk with too few frames for ``min_frames`` are told apart from missing files
    (before: "missing wav or frames?" for both)."""
    (tmp_path / "label_encoding.json").write_text(json.dumps({"rain": 0}))
    write_clip(tmp_path / "AudioWAV" / "clip_a.wav", tmp_path / "Image-01-FPS" / "clip_a")
    write_csv(tmp_path / "test.csv", [["0", "rain", " clip_a"], ["1", "rain", " clip_b"]])
    with pytest.raises(ValueError, match="of 2 listed, 1 have their wav and frame folder, none "):
        vggsound(tmp_path, "test", **SMALL, min_frames=99)


def test_cremad_row_of_one_field_names_its_line(cremad_root: Path) -> None:
    """Before: "not enough values to unpack (expected at least 2, got 1)", no file named."""
    write_csv(cremad_root / "test.csv", [["test_0", "NEU"], ["test_1"]])
    with pytest.raises(
        ValueError, match="test.csv line 2: \\['test_1'\\], expected 'clip_id,LABEL'"
    ):
        cremad(cremad_root, "test", **SMALL, spectrograms=None)


def test_vggsound_csv_of_mixed_id_shapes_warns(tmp_path: Path) -> None:
    """Ids with a leading apostrophe (a spreadsheet's) beside bare ones: ``auto`` reads the
    larger group, the clips of the other are said to be left out (before: silently)."""
    (tmp_path / "label_encoding.json").write_text(json.dumps({"rain": 0}))
    for vid in ("clip_a", "clip_b", "clip_c"):
        write_clip(tmp_path / "AudioWAV" / f"{vid}.wav", tmp_path / "Image-01-FPS" / vid)
    rows = [["0", "rain", "'clip_a"], ["1", "rain", "'clip_b"], ["2", "rain", "clip_c"]]
    write_csv(tmp_path / "test.csv", rows)
    with pytest.warns(UserWarning, match="1 clips of .* only when .* read as 'written' .*'clip_c'"):
        data = vggsound(tmp_path, "test", **SMALL)
    assert [c.frames.name for c in data.clips] == ["clip_a", "clip_b"]


def test_csv_in_another_encoding_names_the_file_and_line(cremad_root: Path) -> None:
    """A UTF-16 (spreadsheet "Unicode text") or Latin-1 export: before, a bare
    UnicodeDecodeError with no file named."""
    (cremad_root / "test.csv").write_bytes("test_0,NEU\ntest_1,ANG\n".encode("utf-16"))
    with pytest.raises(ValueError, match="test.csv: line 1 is not UTF-8 \\(byte 0xff"):
        cremad(cremad_root, "test", **SMALL, spectrograms=None)
    (cremad_root / "test.csv").write_bytes("test_0,NEU\ncafé,ANG\n".encode("latin-1"))
    with pytest.raises(ValueError, match="test.csv: line 2 is not UTF-8 \\(byte 0xe9"):
        cremad(cremad_root, "test", **SMALL, spectrograms=None)
