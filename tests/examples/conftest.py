"""Make ``examples`` importable (the repository root on ``sys.path``) and share AV datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tiny models: one thread is faster than two contended ones on a small shared CPU.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def av_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny dataset per audio-video layout (2 clips per class and split).

    Kinetics-Sounds also gets a training clip with 3 frames, which its loader must skip.
    """
    from examples.av.demo_data import LAYOUTS, make_av_demo_data

    base = tmp_path_factory.mktemp("av")
    roots = {kind: make_av_demo_data(kind, base / kind, per_class=2) for kind in LAYOUTS}
    add_short_clip(roots["ks"])
    return roots


def add_short_clip(root: Path) -> None:
    """Append a clip with only 3 frames to a Kinetics-Sounds layout's training list."""
    import csv

    import numpy as np

    from examples.av.demo_data import write_frames, write_sine_wav

    with (root / "annotations" / "train.csv").open("a", newline="") as fh:
        csv.writer(fh).writerow(["short_clip", "playing drums"])
    write_sine_wav(root / "train_wav" / "short_clip.wav", 200.0)
    write_frames(
        root / "train_img/Image-01-FPS/short_clip", (0, 128, 255), 3, np.random.default_rng(0)
    )
