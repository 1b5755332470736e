"""``examples/integrations/accelerate_ddp.py``: prepare(), register_for_checkpointing, resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

pytest.importorskip("accelerate", reason="the `accelerate` extra is not installed")

from _toy import ToyAV

from .oracles import load_records, verify_run

BATCH_SIZE = 4  # the recipe's default; BatchSamplerShard deals whole batches round-robin


def test_batches_match_one_process_and_resume_mid_epoch(
    tmp_path: Path, torchrun: Callable[..., object]
) -> None:
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    # 16 batches per epoch, 8 per rank: step 10 lies in epoch 1, after its first 2 batches
    torchrun("accelerate_ddp.py", "--epochs", "3", "--out", str(full), "--checkpoint-at", "10")
    records = verify_run(full, "learned", ToyAV(64), world_size=2, chunk=BATCH_SIZE)
    assert [len(entry["indices"]) for entry in records[0]] == [32, 32, 32]

    torchrun(
        "accelerate_ddp.py",
        "--epochs",
        "3",
        "--out",
        str(resumed),
        "--resume",
        str(full / "checkpoint"),
    )
    assert load_records(resumed) == records
    final = torch.load(full / "final-model.pt", weights_only=True)
    again = torch.load(resumed / "final-model.pt", weights_only=True)
    assert all(torch.equal(final[name], again[name]) for name in final)
