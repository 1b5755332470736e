"""``--preset official`` on NVGesture: the released loader's inputs and the released I3D (issue
28, items 3, 4 and 9), against a reference written from the documented parameters.

The reference reads an MJPG clip written with OpenCV's VideoWriter (``write_video``: frames
panning across a photograph that matplotlib ships) as the released loader is documented to: OpenCV's BGR frames
resized with ``cv2.resize`` to 256 (here 36) and normalised with the RGB ImageNet statistics in
channel order, depth from OpenCV's first channel divided by 255, every stored flow frame with
its raw values cropped as stored (never resized), black frames after a short clip in an
80-frame (here 12) container, the centre crop (testing) or a window of the container
(training); the model pools with ``nn.AvgPool3d((8, 7, 7))``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

cv2 = pytest.importorskip("cv2")
cbook = pytest.importorskip("matplotlib.cbook")

from examples import trimodal  # noqa: E402
from examples.common.frames import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from examples.common.released import RELEASED  # noqa: E402
from examples.gesture.data import ClipSpec, NVGestureDataset, flow_path, list_path  # noqa: E402
from examples.gesture.demo_data import panning_clip  # noqa: E402
from examples.gesture.flow import compute_flow  # noqa: E402
from examples.vision.i3d import I3D, pool_features  # noqa: E402
from examples.vision.video import write_video  # noqa: E402

MEAN, STD = IMAGENET_MEAN.view(3).numpy(), IMAGENET_STD.view(3).numpy()
STORED, START, STOP = 11, 1, 10  # frames in the file; the listed gesture is frames 1 .. 9
SPEC = ClipSpec(train_frames=4, test_frames=12, frame_size=36, crop=32)  # 9 frames: 3 padded
OFFICIAL = replace(SPEC, **RELEASED["nvgesture"].data)
MODALITIES = ("rgb", "flow", "depth")


def photograph() -> np.ndarray:
    """Grace Hopper's portrait (matplotlib's sample data), RGB uint8."""
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        return np.asarray(img.convert("RGB"))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nvgesture-photo")
    rel = "./Video_data/class_03/subject1_r0"
    video = panning_clip(photograph(), STORED, 48, 64)
    write_video(root / rel / "sk_color.avi", video)  # OpenCV's VideoWriter, MJPG
    grey = video.mean(-1, keepdims=True).repeat(3, -1).astype(np.uint8)
    write_video(root / rel / "sk_depth.avi", grey)
    line = f"path:{rel} depth:sk_depth:{START}:{STOP} color:sk_color:{START}:{STOP} label:3\n"
    for split in ("train", "test"):
        list_path(root, split).write_text(line)
    compute_flow(root, verbose=False)
    return root


def decode(path: Path) -> list[np.ndarray]:
    """Every frame of a video as OpenCV decodes it (BGR uint8)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def released_item(root: Path, frames: int, size: int, crop: int) -> dict[str, Tensor]:
    """The released test-time loader, from its documented parameters."""
    folder = root / "Video_data/class_03/subject1_r0"
    colour = decode(folder / "sk_color.avi")[START:STOP]
    depth = decode(folder / "sk_depth.avi")[START:STOP]
    rgb = np.zeros((frames, size, size, 3), np.float32)  # black frames after a short clip
    dep = np.zeros((frames, size, size), np.float32)
    for t in range(min(frames, len(colour))):
        rgb[t] = cv2.resize(colour[t], (size, size)) / 255.0  # BGR, as decoded
        dep[t] = cv2.resize(depth[t], (size, size))[..., 0] / 255.0
    rgb = (rgb - MEAN) / STD  # RGB statistics on BGR channels
    stored = np.load(flow_path(root, "test", 0))  # (H, W, 2, T): every stored frame, raw
    flow = np.zeros((frames - 1, *stored.shape[:2], 2), np.float32)  # never resized
    for t in range(min(frames - 1, stored.shape[-1])):
        flow[t] = stored[..., t]
    a = (size - crop) // 2
    box = (slice(None), slice(a, a + crop), slice(a, a + crop))
    return {
        "rgb": torch.from_numpy(rgb[box]).permute(3, 0, 1, 2),
        "depth": torch.from_numpy(dep[box])[None],
        "flow": torch.from_numpy(flow[box]).permute(3, 0, 1, 2),
    }


def test_official_test_items_equal_the_released_loader(root: Path) -> None:
    ours = NVGestureDataset(root, "test", spec=OFFICIAL)[0]
    ref = released_item(root, OFFICIAL.test_frames, OFFICIAL.frame_size, OFFICIAL.crop)
    for key in ("rgb", "depth", "flow"):
        assert ours[key].shape == ref[key].shape, key
    # cv2.resize interpolates uint8 frames in fixed point and rounds: within one grey level
    # (1 / 255, divided by the smallest std for RGB), a fifth of one on average
    level = 1 / 255
    assert (ours["rgb"] - ref["rgb"]).abs().max() < level / 0.225
    assert (ours["rgb"] - ref["rgb"]).abs().mean() < 0.2 * level / 0.225
    assert (ours["depth"] - ref["depth"]).abs().max() < level
    torch.testing.assert_close(ours["flow"], ref["flow"], atol=1e-4, rtol=1e-4)
    black = torch.from_numpy(-MEAN / STD).float().view(3, 1, 1, 1)
    assert torch.allclose(ours["rgb"][:, 9:], black.expand(3, 3, 32, 32))  # 3 padded frames
    assert ours["depth"][:, 9:].abs().max() == 0 and ours["flow"][:, 8:].abs().max() == 0
    assert float(ours["flow"].abs().max()) > 1.0  # raw pixels, not scaled to [-1, 1]


def test_official_training_window_is_drawn_in_the_zero_padded_container(root: Path) -> None:
    """The released loader draws the window start in [0, 80 - 64] over the 80-frame container
    whatever the clip's length (a 9-frame clip here: 12-frame container, 4-frame window)."""
    train = NVGestureDataset(root, "train", spec=OFFICIAL)
    starts = set()
    black = torch.from_numpy(-MEAN / STD).float().view(3, 1, 1)
    for epoch in range(40):
        train.set_epoch(epoch)
        rgb = train[0]["rgb"]
        is_black = [bool(torch.allclose(rgb[:, t], black.expand_as(rgb[:, t]))) for t in range(4)]
        starts.add(9 - is_black.index(True) if any(is_black) else -1)
    # windows ending in the black tail: starts 6, 7 and 8 of [0, 8] (never in ours)
    assert {6, 7, 8} & starts
    ours = NVGestureDataset(root, "train", spec=SPEC)
    for epoch in range(40):
        ours.set_epoch(epoch)
        rgb = ours[0]["rgb"]
        assert not torch.allclose(rgb[:, -1], black.expand_as(rgb[:, -1]))


def test_official_flow_is_cropped_as_stored_and_resized_only_when_too_small(root: Path) -> None:
    stored = torch.from_numpy(np.load(flow_path(root, "test", 0))).permute(2, 3, 0, 1)
    item = NVGestureDataset(root, "test", spec=OFFICIAL)[0]
    assert stored.shape[2:] == (48, 64)  # larger than frame_size 36: the released crop fits
    assert torch.equal(item["flow"][:, :8], stored[:, :, 2:34, 2:34])
    big = replace(OFFICIAL, frame_size=56, crop=48)  # stored smaller than 56: resized, warned
    with pytest.warns(UserWarning, match=r"flow stored at \(48, 64\).*must be written at 56x56"):
        assert NVGestureDataset(root, "test", spec=big)[0]["flow"].shape == (2, 11, 48, 48)


def test_official_flow_feeds_every_stored_frame(root: Path, tmp_path: Path) -> None:
    """Flow files of the released data hold as many frames as the clip (the released model's
    comment: ``of: (2, 2, 80, 224, 224)``): every one is fed, none cut to ``test_frames - 1``."""
    import shutil

    copy = tmp_path / "nv"
    shutil.copytree(root, copy)
    stored = np.random.default_rng(0).normal(size=(48, 64, 2, 12)).astype(np.float32)
    for split in ("train", "test"):
        np.save(flow_path(copy, split, 0), stored)
    expected = torch.from_numpy(stored).permute(2, 3, 0, 1)[:, :, 2:34, 2:34]
    assert torch.equal(NVGestureDataset(copy, "test", spec=OFFICIAL)[0]["flow"], expected)
    assert NVGestureDataset(copy, "train", spec=OFFICIAL)[0]["flow"].shape == (2, 12, 32, 32)


def test_official_depth_is_opencvs_first_channel(root: Path, tmp_path: Path) -> None:
    """The released loader keeps ``frame[..., 0]`` of OpenCV's BGR decoding: blue."""
    import shutil

    copy = tmp_path / "nv"
    shutil.copytree(root, copy)
    folder = copy / "Video_data/class_03/subject1_r0"
    shutil.copy(folder / "sk_color.avi", folder / "sk_depth.avi")  # channels that differ
    blue = np.stack([cv2.resize(f, (36, 36))[..., 0] for f in decode(folder / "sk_depth.avi")])
    ref = torch.from_numpy(blue[START:STOP, 2:34, 2:34] / 255.0).float()
    depth = NVGestureDataset(copy, "test", spec=OFFICIAL)[0]["depth"][0, :9]
    assert (depth - ref).abs().max() < 1 / 255
    red = NVGestureDataset(copy, "test", spec=SPEC)[0]["depth"][0, :9]
    assert ((red + 1) / 2 - ref).abs().mean() > 0.01  # ours reads red: documented, grey depth


def test_default_items_differ_where_documented(root: Path) -> None:
    ours = NVGestureDataset(root, "test", spec=SPEC)[0]
    official = NVGestureDataset(root, "test", spec=OFFICIAL)[0]
    # colour: the same frames, the channels swapped before normalisation
    swapped = official["rgb"][:, :9] * IMAGENET_STD.unsqueeze(1) + IMAGENET_MEAN.unsqueeze(1)
    rgb = (swapped.flip(0) - IMAGENET_MEAN.unsqueeze(1)) / IMAGENET_STD.unsqueeze(1)
    torch.testing.assert_close(ours["rgb"][:, :9], rgb, atol=1e-4, rtol=0)
    assert torch.equal(ours["rgb"][:, 9:], ours["rgb"][:, 8:9].expand(3, 3, 32, 32))  # repeated
    torch.testing.assert_close(ours["depth"][:, :9], official["depth"][:, :9] * 2 - 1)
    assert ours["flow"].shape[1] == 12 and ours["flow"].abs().max() <= 1.0


def test_official_training_items_feed_every_stored_flow_frame(root: Path) -> None:
    train = NVGestureDataset(root, "train", spec=OFFICIAL, seed=1)
    item = train[0]
    assert item["rgb"].shape == (3, 4, 32, 32) and item["depth"].shape == (1, 4, 32, 32)
    assert item["flow"].shape == (2, 11, 32, 32)  # test_frames - 1, whatever the window
    assert float(item["flow"][:, :8].abs().mean()) > 0 and item["flow"][:, 8:].abs().max() == 0


def test_official_preset_reaches_the_dataset_and_the_model(root: Path) -> None:
    argv = ["--root", str(root), "--i3d-width", "0.0625", "--i3d-endpoint", "Mixed_3c",
            "--train-frames", "4", "--test-frames", "12", "--frame-size", "36", "--crop", "32",
            "--random-init"]  # fmt: skip
    args = trimodal.parse_args([*argv, "--preset", "official"])
    train, evals, _ = trimodal.load_data(args)
    assert train.spec == replace(SPEC, **RELEASED["nvgesture"].data) == evals["test"].spec
    model = trimodal.build_model(args)
    assert {k: e.pool for k, e in model.encoders.items()} == dict.fromkeys(MODALITIES, "released")
    heads = [*model.heads.values(), model.fusion_head]  # the released weight_init: zero biases
    assert all(h.bias.abs().max() == 0 for h in heads)
    default = trimodal.parse_args(argv)
    assert trimodal.load_data(default)[0].spec == SPEC
    plain = trimodal.build_model(default)
    assert {e.pool for e in plain.encoders.values()} == {"mean"}
    assert plain.fusion_head.bias.abs().max() > 0


# -- the released I3D ------------------------------------------------------------------------


def test_released_pool_averages_the_first_8_of_10_temporal_cells() -> None:
    x = torch.randn(2, 5, 10, 7, 7)
    released = nn.AvgPool3d((8, 7, 7))(x).flatten(1)
    torch.testing.assert_close(pool_features(x, "released"), released)
    torch.testing.assert_close(released, x[:, :, :8].mean(dim=(2, 3, 4)))
    assert not torch.allclose(pool_features(x, "mean"), released)
    with pytest.raises(ValueError, match="pool must be one of"):
        pool_features(x, "max")


def test_i3d_on_80_frames_pools_as_the_released_model() -> None:
    torch.manual_seed(0)
    model = I3D(3, width=1 / 32, pool="released").eval()
    seen: list[Tensor] = []
    model.Mixed_5c.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 80, 224, 224))
    assert seen[0].shape[2:] == (10, 7, 7)  # 80 frames -> 10 temporal cells
    torch.testing.assert_close(out, nn.AvgPool3d((8, 7, 7))(seen[0]).flatten(1))


def test_depth_first_convolution_stays_random_when_weights_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kwargs = {"width": 0.0625, "final_endpoint": "Mixed_3b"}
    source = I3D(3, **kwargs)
    torch.save(source.state_dict(), tmp_path / "rgb.pt")
    unloaded = RELEASED["nvgesture"].model["depth"]["random_init"]
    torch.manual_seed(3)
    fresh = I3D(1, **kwargs).state_dict()
    torch.manual_seed(3)
    released = I3D(1, **kwargs, weights=tmp_path / "rgb.pt", random_init=unloaded).state_dict()
    loaded = I3D(1, **kwargs, weights=tmp_path / "rgb.pt").state_dict()
    key = "Conv3d_1a_7x7.conv3d.weight"
    err = capsys.readouterr().err  # as loud as an encoder at random weights, on stderr
    assert f"WARNING: the depth I3D encoder's {key} starts from RANDOM weights" in err
    assert tuple(unloaded) == (key,)
    assert torch.equal(released[key], fresh[key])  # never loaded: its random initialisation
    assert torch.allclose(loaded[key], source.state_dict()[key].sum(1, keepdim=True), atol=1e-6)
    for name, tensor in source.state_dict().items():  # everything else is loaded
        if name != key:
            assert torch.equal(released[name], tensor), name
    with pytest.raises(ValueError, match="random_init names no tensor"):
        I3D(1, **kwargs, random_init=("Conv3d_1a.weight",))
