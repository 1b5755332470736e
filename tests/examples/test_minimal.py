"""``examples/minimal.py``: stopped at a step and resumed, it ends with the uninterrupted weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "minimal.py"


def _run(*args: str, torchrun: bool = False) -> str:
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    result = subprocess.run(
        [sys.executable, *(launcher if torchrun else []), str(SCRIPT), "--epochs", "3", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 or "stopped after step" in result.stdout + result.stderr, (
        result.stdout[-2000:] + result.stderr[-3000:]
    )
    return result.stdout


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "final-model.pt", weights_only=True)  # type: ignore[no-any-return]


def test_stop_and_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    full, part = tmp_path / "full" / "ck.pt", tmp_path / "part" / "ck.pt"
    out = _run("--checkpoint", str(full))
    assert "epoch 0: scores mean" in out and "epoch 2: train accuracy" in out
    _run("--checkpoint", str(part), "--stop-at", "37")  # inside epoch 1, 2 workers ahead
    assert not (part.parent / "final-model.pt").exists()
    _run("--checkpoint", str(part), "--resume")
    want, got = _weights(full.parent), _weights(part.parent)
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_runs_under_torchrun(tmp_path: Path) -> None:
    """Two gloo ranks: the sampler shards by the process group, the scores are synced."""
    out = _run("--checkpoint", str(tmp_path / "ck.pt"), "--num-workers", "0", torchrun=True)
    assert "epoch 2: train accuracy" in out
    assert {p.name for p in tmp_path.iterdir()} >= {"ck-rank0.pt", "ck-rank1.pt", "final-model.pt"}
