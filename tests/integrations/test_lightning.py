"""``examples/integrations/lightning_ddp.py``: Trainer(strategy="ddp", devices=2) on CPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("lightning", reason="the `lightning` extra is not installed")

from _toy import ToyAV

from .oracles import load_records, verify_run


def test_growing_curriculum_and_resume_from_epoch_checkpoint(
    tmp_path: Path, run_recipe: Callable[..., object]
) -> None:
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    common = ["lightning_ddp.py", "--sampler", "heuristic", "--epochs", "3"]
    run_recipe([*common, "--out", str(full)])
    records = verify_run(full, "heuristic", ToyAV(64), world_size=2)
    # 16, 39, 53 samples (root pacing, lambda0=0.25, t_grow=3), split over 2 ranks with padding
    assert [entry["length"] for entry in records[0]] == [8, 20, 27]

    # a fresh Trainer from the checkpoint written after epoch 0 trains epochs 1 and 2 identically
    run_recipe([*common, "--out", str(resumed), "--resume", str(full / "checkpoints/epoch=0.ckpt")])
    again = verify_run(resumed, "heuristic", ToyAV(64), world_size=2)
    assert again == [rank_records[1:] for rank_records in load_records(full)]
