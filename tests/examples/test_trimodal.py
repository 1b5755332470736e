"""The tri-modal example (NVGesture) end to end on a tiny fixture, and its parts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("cv2")

from examples import trimodal
from examples.gesture.data import ClipSpec, NVGestureDataset, flow_path, parse_line, read_list
from examples.gesture.demo_data import make_nvgesture_demo_data
from examples.vision.i3d import I3D
from examples.vision.video import farneback_flow, read_frames, write_video
from examples.vision.weights import load_local_weights

TINY = [
    "--i3d-width", "0.0625", "--i3d-endpoint", "Mixed_4f", "--train-frames", "8",
    "--test-frames", "11", "--frame-size", "36", "--crop", "32", "--epochs", "2",
    "--no-progress", "--quiet", "--device", "cpu", "--lambda0", "0.5", "--update-every", "1",
    "--random-init",
]  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_nvgesture_demo_data(tmp_path_factory.mktemp("nvgesture"))


@pytest.mark.parametrize("sampler", ["random", "heuristic", "learned"])
def test_end_to_end(root: Path, tmp_path: Path, sampler: str) -> None:
    history = trimodal.main(["--root", str(root), "--out", str(tmp_path), *TINY,
                             "--sampler", sampler])  # fmt: skip
    assert [row["epoch"] for row in history] == [1, 2]
    for head in ("", "multi_", "rgb_", "flow_", "depth_"):
        assert 0.0 <= history[-1][f"test_{head}acc"] <= 1.0
        assert 0.0 <= history[-1][f"test_{head}f1"] <= 1.0
    assert math.isfinite(history[-1]["train_loss"])
    assert {"history.csv", "last.pt", "best.pt", "accuracy.png"} <= {
        p.name for p in tmp_path.iterdir()
    }


def test_paper_defaults() -> None:
    cfg = trimodal.parse_args(["--root", "r"])
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.batch_size) == ("sgd", 1e-2, 0.9, 2)


def test_list_line_and_errors() -> None:
    line = "path:./V/class_25/s1 depth:sk_depth:3:40 color:sk_color:2:41 label:25"
    clip = parse_line(line, position=7)
    assert (clip.path, clip.depth, clip.color, clip.label, clip.position) == (
        "./V/class_25/s1",
        (3, 40),
        (2, 41),
        24,
        7,
    )
    with pytest.raises(ValueError, match=r"label must lie in \[1, 25\], got 26"):
        parse_line(line.replace("label:25", "label:26"))
    with pytest.raises(ValueError, match="list line lacks"):
        parse_line("path:./V/x label:1")


def test_list_files_name_the_file_and_line(tmp_path: Path) -> None:
    """The public lists read with CRLF and a byte-order mark; a line that does not parse names
    the file, the line and the shape expected (before: the BOM hid 'path', and a bare
    "dictionary update sequence" or "not enough values to unpack"); an empty list is refused."""
    good = (
        "path:./Video_data/class_01/subject13_r0 depth:sk_depth:138:218 "
        "color:sk_color:138:218 duo_left:duo_left:161:254 label:1"
    )
    path = tmp_path / "nvgesture_train_correct_v2.lst"
    path.write_bytes(("\ufeff" + good + "\r\n" + good + "\r\n").encode())
    assert [(c.color, c.label, c.position) for c in read_list(tmp_path, "train")] == [
        ((138, 218), 0, 0),
        ((138, 218), 0, 1),
    ]
    cases = {
        good + " extra": "line 2: field 'extra' is not 'key:value'",
        good.replace("sk_color:138:218", "sk_color:138"): "line 2: color:'sk_color:138' is not",
        good.replace("label:1", "label:x"): "line 2: label must lie in \\[1, 25\\], got x",
    }
    for bad, message in cases.items():
        path.write_text(good + "\n" + bad + "\n")
        with pytest.raises(ValueError, match=f"{path} {message}"):
            read_list(tmp_path, "train")
    path.write_text("\n")
    with pytest.raises(ValueError, match="lists no clip"):
        read_list(tmp_path, "train")


def test_items_align_modalities_and_are_seeded(root: Path) -> None:
    clips = read_list(root, "train")
    assert [c.label for c in clips] == [0, 0, 1, 1, 2, 2]
    spec = ClipSpec(train_frames=5, test_frames=20, frame_size=36, crop=32)
    train = NVGestureDataset(root, "train", spec=spec, seed=3)
    item = train[2]
    assert item["rgb"].shape == (3, 5, 32, 32) and item["flow"].shape == (2, 5, 32, 32)
    assert item["depth"].shape == (1, 5, 32, 32) and int(item["target"]) == 1
    assert item["flow"].abs().max() <= 1.0 and item["depth"].abs().max() <= 1.0
    assert torch.equal(train[2]["rgb"], item["rgb"])
    test = NVGestureDataset(root, "test", spec=spec)
    assert test[0]["rgb"].shape[1] == 20  # 11 frames, the last one repeated


def test_video_round_trip_and_flow(tmp_path: Path) -> None:
    frames = np.zeros((4, 24, 32, 3), dtype=np.uint8)
    frames[..., 0] = 220  # red: BGR order must come back as RGB
    write_video(tmp_path / "v.avi", frames)
    back = read_frames(tmp_path / "v.avi", 1, 3)
    assert back.shape == (2, 24, 32, 3)
    assert back[..., 0].mean() > 180 and back[..., 2].mean() < 40
    flow = farneback_flow(read_frames(tmp_path / "v.avi"), size=(12, 16))
    assert flow.shape == (12, 16, 2, 3) and flow.dtype == np.float32


def test_flow_files_follow_the_list(root: Path) -> None:
    clip = read_list(root, "test")[4]
    flow = np.load(flow_path(root, "test", clip.position))
    assert flow.shape == (24, 32, 2, clip.color[1] - clip.color[0] - 1)


def test_i3d_full_size_and_depth_from_rgb_weights(tmp_path: Path) -> None:
    assert I3D(3).out_features == 1024
    rgb = I3D(3, width=0.0625, final_endpoint="Mixed_3c")
    assert "Mixed_3c.b1b.conv3d.weight" in rgb.state_dict()
    torch.save({**rgb.state_dict(), "logits.conv3d.weight": torch.zeros(1)}, tmp_path / "i.pt")
    depth = I3D(1, width=0.0625, final_endpoint="Mixed_3c")
    missing, skipped = load_local_weights(depth, tmp_path / "i.pt", verbose=False)
    assert missing == [] and skipped == ["logits.conv3d.weight"]
    w = rgb.Conv3d_1a_7x7.conv3d.weight
    assert torch.allclose(depth.Conv3d_1a_7x7.conv3d.weight, w.sum(1, keepdim=True), atol=1e-6)
    assert depth(torch.randn(2, 1, 4, 16, 16)).shape == (2, depth.out_features)


def test_official_preset_end_to_end(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The released inputs (BGR, raw flow of every stored frame, depth in [0, 1], black padding)
    and I3D pooling run through training; the pooling window is cut to the small feature map;
    the scoring pass takes one clip at a time, as the released scripts' (batch_size=1)."""
    sizes: list[int] = []

    class Recording(trimodal.DataLoader):  # type: ignore[misc,name-defined]
        def __init__(self, dataset: object, batch_size: int = 1, **kwargs: object) -> None:
            sizes.append(batch_size)
            super().__init__(dataset, batch_size, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trimodal, "DataLoader", Recording)
    history = trimodal.main(["--root", str(root), "--out", str(tmp_path), *TINY,
                             "--sampler", "heuristic", "--preset", "official", "--epochs", "1"])  # fmt: skip
    assert math.isfinite(history[0]["train_loss"]) and 0.0 <= history[0]["test_acc"] <= 1.0
    assert sizes.count(1) == 1 and 2 in sizes  # the scoring loader; training and test
    argv = ["--root", str(root)]
    assert trimodal.parse_args([*argv, "--preset", "official"]).score_batch_size == 1
    assert trimodal.parse_args(argv).score_batch_size is None  # the evaluation batch size
    explicit = [*argv, "--preset", "official", "--score-batch-size", "4"]
    assert trimodal.parse_args(explicit).score_batch_size == 4
