"""``examples/integrations/torchrun_ddp.py``: 2 gloo ranks, explicit sharding, mid-epoch resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from _toy import ToyAV, verify_run

EPOCHS, CHECKPOINT_AT = "3", "10"  # 8 steps per epoch: the checkpoint falls inside epoch 1


def test_ranks_match_one_process_and_resume_continues_exactly(
    tmp_path: Path, torchrun: Callable[..., object]
) -> None:
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    torchrun(
        "torchrun_ddp.py", "--epochs", EPOCHS, "--out", str(full), "--checkpoint-at", CHECKPOINT_AT
    )
    records = verify_run(full, "learned", ToyAV(64), world_size=2)
    assert [entry["length"] for entry in records[0]] == [32, 32, 32]

    # a fresh pair of processes that only has the step-10 checkpoint (as after a kill)
    torchrun("torchrun_ddp.py", "--epochs", EPOCHS, "--out", str(resumed), "--resume", str(full))
    assert (resumed / "record-rank0.json").read_text() == (full / "record-rank0.json").read_text()
    assert (resumed / "record-rank1.json").read_text() == (full / "record-rank1.json").read_text()
    final = torch.load(full / "final-model.pt", weights_only=True)
    again = torch.load(resumed / "final-model.pt", weights_only=True)
    assert all(torch.equal(final[name], again[name]) for name in final)
