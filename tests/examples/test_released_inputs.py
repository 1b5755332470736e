"""``--preset official`` feeds what the released loaders feed and builds the released models
(issue 28: VGGSound ids and frame counts, csv byte-order marks, Kinetics-Sounds' per-frame
augmentation, NVGesture's colour, flow, depth, padding, pooling and unloaded depth layer).

The released transforms are written here from their documented parameters (OpenCV decoding and
``cv2.resize``, ImageNet statistics, ``AvgPool3d((8, 7, 7))``, torchvision's RandomResizedCrop
and flip as PIL operations) and run on a photograph that matplotlib ships, as JPEG frames and
as an MJPG clip written with OpenCV's VideoWriter.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from examples import audio_video
from examples.av.datasets import cremad, kinetics_sounds, vggsound
from examples.av.demo_data import make_av_demo_data
from examples.common.frames import IMAGENET_MEAN, IMAGENET_STD, load_frames, random_resized_crop
from examples.common.released import RELEASED

cbook = pytest.importorskip("matplotlib.cbook")

MEAN, STD = IMAGENET_MEAN.view(3).numpy(), IMAGENET_STD.view(3).numpy()


def photograph(height: int, width: int) -> np.ndarray:
    """Grace Hopper's portrait (matplotlib's sample data), RGB uint8, resized."""
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        return np.asarray(img.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))


# -- csv files of the public shape -----------------------------------------------------------


def rewrite(path: Path, rows: list[list[str]], *, bom: bool = False) -> None:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        csv.writer(fh).writerows(rows)


def read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [row for row in csv.reader(fh) if row]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("public")
    return {k: make_av_demo_data(k, base / k, per_class=1) for k in ("cremad", "ks", "vggsound")}


@pytest.mark.parametrize(
    ("kind", "load", "csv_name"),
    [
        ("cremad", cremad, "test.csv"),
        ("ks", kinetics_sounds, "annotations/test.csv"),
        ("vggsound", vggsound, "test.csv"),
    ],
)
def test_a_byte_order_mark_does_not_lose_the_first_row(
    tiny: dict[str, Path], tmp_path: Path, kind: str, load: object, csv_name: str
) -> None:
    root = tmp_path / kind
    shutil.copytree(tiny[kind], root)
    rows = read(root / csv_name)
    plain = load(root, "test")  # type: ignore[operator]
    rewrite(root / csv_name, rows, bom=True)  # as spreadsheets export "CSV UTF-8"
    marked = load(root, "test")  # type: ignore[operator]
    assert [c.wav for c in marked.clips] == [c.wav for c in plain.clips]
    assert len(marked) == 3  # one clip per class, the first row included


def vgg_official(root: Path, split: str) -> object:
    args = audio_video.parse_args(["--dataset", "vggsound", "--root", str(root), "--preset",
                                   "official"])  # fmt: skip
    return vggsound(root, split, **args.data_options)


def test_vggsound_reads_the_public_csv_as_the_released_loader(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "vgg"
    shutil.copytree(tiny["vggsound"], root)
    rows = read(root / "test.csv")
    assert all(row[2].startswith(" ") for row in rows)  # the demo writes the public shape
    ids = [row[2][1:] for row in rows]  # what the released loader reads
    expected = [root / "AudioWAV" / f"{i}.wav" for i in ids]
    for how in ("auto", "written", "released"):
        assert [c.wav for c in vggsound(root, "test", clip_ids=how).clips] == expected
    assert [c.wav for c in vgg_official(root, "test").clips] == expected  # type: ignore[attr-defined]

    rewrite(root / "test.csv", [[r[0], r[1], "'" + r[2][1:]] for r in rows])  # another char
    assert [c.wav for c in vggsound(root, "test").clips] == expected  # auto: released reading
    with pytest.raises(ValueError, match=r"read as 'written'.*\"'(\S+)\" -> \"'\1\""):
        vggsound(root, "test", clip_ids="written")

    rewrite(root / "test.csv", [[r[0], r[1], r[2][1:]] for r in rows])  # bare ids
    assert [c.wav for c in vggsound(root, "test").clips] == expected
    with pytest.raises(ValueError, match=r"as 'released' \(clip_ids='released'\).*finds 3 clips"):
        vgg_official(root, "test")  # the released reading drops a real character: loud


def test_vggsound_keeps_clips_of_more_than_3_frames_under_official(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "vgg"
    shutil.copytree(tiny["vggsound"], root)
    short = root / "Image-01-FPS" / sorted(row[2][1:] for row in read(root / "test.csv"))[0]
    for frame in sorted(short.iterdir())[3:]:
        frame.unlink()  # 3 frames left
    assert len(vggsound(root, "test")) == 3  # ours: 1 frame or more
    kept = vgg_official(root, "test").clips  # type: ignore[attr-defined]
    assert len(kept) == 2 and short not in [c.frames for c in kept]


# -- Kinetics-Sounds: a crop and a flip per frame ---------------------------------------------


def released_frame(img: Image.Image, size: int, gen: torch.Generator) -> torch.Tensor:
    """torchvision's RandomResizedCrop(size) (scale 0.08-1, ratio 3/4-4/3, bilinear) and
    RandomHorizontalFlip, ToTensor, Normalize(ImageNet), as PIL operations on one frame."""
    top, left, h, w = random_resized_crop((img.height, img.width), gen)
    out = img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))
    if bool(torch.rand(1, generator=gen) < 0.5):
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    array = np.asarray(out, dtype=np.float32) / 255.0
    return torch.from_numpy((array - MEAN) / STD).permute(2, 0, 1).float()


def test_kinetics_sounds_draws_a_crop_and_a_flip_per_frame(tmp_path: Path) -> None:
    photo = photograph(96, 80)
    paths = []
    for i in range(3):  # the same photograph three times: only the draws tell frames apart
        paths.append(tmp_path / f"frame_{i:05d}.jpg")
        Image.fromarray(photo).save(paths[-1], quality=95)
    per_clip = load_frames(paths, 48, torch.Generator().manual_seed(5))
    assert torch.equal(per_clip[0], per_clip[1]) and torch.equal(per_clip[1], per_clip[2])

    seed = 5
    ours = load_frames(paths, 48, torch.Generator().manual_seed(seed), per_frame=True)
    gen = torch.Generator().manual_seed(seed)
    with Image.open(paths[0]) as img:
        reference = torch.stack([released_frame(img.convert("RGB"), 48, gen) for _ in paths])
    assert not torch.allclose(ours[0], ours[1]) and not torch.allclose(ours[1], ours[2])
    # torch's antialiased bilinear resize against PIL's: same draws, interpolation round-off
    assert (ours - reference).abs().mean() < 0.02
    assert RELEASED["ks"].data["frame_augment"] == "frame"


def test_kinetics_sounds_official_run_draws_per_frame(av_roots: dict[str, Path]) -> None:
    argv = ["--dataset", "ks", "--root", str(av_roots["ks"]), "--frames", "3",
            "--image-size", "16", "--sample-rate", "8000", "--audio-seconds", "0.25"]  # fmt: skip
    train, _, _ = audio_video.load_data(audio_video.parse_args([*argv, "--preset", "official"]))
    assert train.frame_augment == "frame" and train.subset([0]).frame_augment == "frame"
    default, _, _ = audio_video.load_data(audio_video.parse_args(argv))
    assert default.frame_augment == "clip"


@pytest.mark.parametrize("dataset", ["ks", "vggsound"])
def test_official_runs_end_to_end(av_roots: dict[str, Path], tmp_path: Path, dataset: str) -> None:
    history = audio_video.main(["--root", str(av_roots[dataset]), "--out", str(tmp_path),
                                "--dataset", dataset, "--preset", "official", "--epochs", "1",
                                "--width", "4", "--frames", "2", "--image-size", "16",
                                "--sample-rate", "8000", "--audio-seconds", "0.25",
                                "--batch-size", "4", "--no-progress", "--quiet"])  # fmt: skip
    assert 0.0 <= history[0]["test_acc"] <= 1.0 and history[0]["train_samples"] == 4
