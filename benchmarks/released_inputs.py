"""Measure what ``--preset official`` changes in the NVGesture inputs and model (docs/presets.md).

A hand-run measurement, not a benchmark of speed. An NVGesture-sized clip (320x240, 80 frames of
a camera panning 2 and 3 pixels a frame across the photograph matplotlib ships, written as MJPG
with OpenCV, Farneback flow at full resolution) is loaded at the paper's sizes (256 resize, 224
crop, 80 test frames) with our defaults and with the released loader's choices, one at a time,
and the I3D features of the clip are pooled both ways (random initialisation, full width).
Prints one line per difference: the mean and max absolute difference of the model input, or the
relative difference of the features. About a minute on one CPU core.

    python benchmarks/released_inputs.py
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from PIL import Image

from examples.common.released import RELEASED
from examples.gesture.data import ClipSpec, NVGestureDataset, list_path
from examples.gesture.demo_data import panning_clip
from examples.gesture.flow import compute_flow
from examples.vision.i3d import I3D, pool_features
from examples.vision.video import write_video


def make_clip(root: Path, frames: int) -> None:
    """One clip of ``frames`` listed frames in the NVGesture layout, under ``root``."""
    import matplotlib.cbook as cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        video = panning_clip(np.asarray(img.convert("RGB")), frames + 1, 240, 320)
    rel = "./Video_data/class_01/subject1_r0"
    write_video(root / rel / "sk_color.avi", video)
    grey = video.mean(-1, keepdims=True).repeat(3, -1).astype(np.uint8)
    write_video(root / rel / "sk_depth.avi", grey)
    line = f"path:{rel} depth:sk_depth:1:{frames + 1} color:sk_color:1:{frames + 1} label:1\n"
    list_path(root, "test").write_text(line)
    compute_flow(root, ("test",), verbose=False)


def main() -> None:
    torch.set_num_threads(1)
    official = RELEASED["nvgesture"].data
    with tempfile.TemporaryDirectory() as tmp:
        full, short = Path(tmp, "full"), Path(tmp, "short")
        make_clip(full, 80)
        make_clip(short, 60)
        base = NVGestureDataset(full, "test", spec=ClipSpec())[0]
        for field, value in official.items():
            item = NVGestureDataset(full, "test", spec=replace(ClipSpec(), **{field: value}))[0]
            key = {"colour": "rgb", "flow": "flow", "depth": "depth", "pad": "rgb"}[field]
            if field == "pad":
                ours = NVGestureDataset(short, "test", spec=ClipSpec())[0]["rgb"]
                padded = NVGestureDataset(short, "test", spec=replace(ClipSpec(), pad=value))
                diff = (ours - padded[0]["rgb"]).abs()
                print(f"pad={value} (60-frame clip): rgb mean |diff| {diff.mean():.3f}, "
                      f"max {diff.max():.2f}, frames 61-80 black instead of frame 60")  # fmt: skip
                continue
            a, b = base[key], item[key]
            line = f"{field}={value}:"
            if a.shape == b.shape:
                diff = (a - b).abs()
                line += f" {key} mean |diff| {diff.mean():.3f}, max {diff.max():.2f}"
            print(line)
            print(f"  ours {tuple(a.shape)} in [{a.min():.2f}, {a.max():.2f}], mean |x| "
                  f"{a.abs().mean():.3f}; released {tuple(b.shape)} in [{b.min():.2f}, "
                  f"{b.max():.2f}], mean |x| {b.abs().mean():.3f}")  # fmt: skip
        torch.manual_seed(0)
        model = I3D(3).eval()
        maps: list[torch.Tensor] = []
        last = model.get_submodule("Mixed_5c")
        last.register_forward_hook(lambda m, i, o: maps.append(o))
        with torch.no_grad():
            model(base["rgb"][None])
        mean, released = pool_features(maps[0], "mean"), pool_features(maps[0], "released")
        rel = (mean - released).norm() / mean.norm()
        cos = torch.nn.functional.cosine_similarity(mean, released).item()
        print(f"pool: feature map {tuple(maps[0].shape[2:])}; AvgPool3d((8, 7, 7)) vs the mean: "
              f"relative difference {rel:.3f}, cosine {cos:.4f}")  # fmt: skip
    depth = I3D(1)
    stem = depth.state_dict()["Conv3d_1a_7x7.conv3d.weight"].numel()
    total = sum(p.numel() for p in depth.parameters())
    print(f"depth stem: {stem:,} of the depth I3D's {total:,} parameters left random")


if __name__ == "__main__":
    main()
