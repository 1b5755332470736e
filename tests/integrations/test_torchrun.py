"""``examples/integrations/torchrun_ddp.py``: 2 gloo ranks, the README's loop with 2 DataLoader
workers per rank, killed at a random step and resumed in fresh processes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _toy import ToyAV

from ..processes import kill_tree
from .oracles import verify_run

RECIPES = Path(__file__).resolve().parents[2] / "examples" / "integrations"

EPOCHS, STEPS = "3", 24  # 64 samples, batch 4, 2 ranks: 8 steps per epoch


def _kill_at_step(out: Path, step: int) -> None:
    """Run the recipe until both ranks checkpointed ``step``, then SIGKILL the whole job: the
    launcher, the ranks (each in its own session, out of the launcher's process group) and
    their DataLoader workers."""
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            "torchrun_ddp.py",
            "--epochs",
            EPOCHS,
            "--out",
            str(out),
            "--pause-at",
            str(step),
        ],
        cwd=RECIPES,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    wanted = [out / f"checkpoint-rank{r}-step{step}.pt" for r in range(2)]
    deadline = time.monotonic() + 120
    try:
        while not all(path.exists() for path in wanted):
            assert job.poll() is None, f"the job ended before step {step}: {job.stderr.read()!r}"
            assert time.monotonic() < deadline, f"no checkpoint of step {step} after 120 s"
            time.sleep(0.1)
    finally:
        kill_tree([job.pid])
        job.wait(timeout=30)
        job.stderr.close()


def test_killed_at_a_random_step_resumes_exactly(
    tmp_path: Path, torchrun: Callable[..., object]
) -> None:
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    torchrun("torchrun_ddp.py", "--epochs", EPOCHS, "--out", str(full))
    records = verify_run(full, "learned", ToyAV(64), world_size=2)
    assert [entry["length"] for entry in records[0]] == [32, 32, 32]

    step = random.SystemRandom().randint(1, STEPS - 1)
    _kill_at_step(crashed, step)
    assert not (crashed / "record-rank0.json").exists()
    torchrun("torchrun_ddp.py", "--epochs", EPOCHS, "--out", str(crashed), "--resume", str(crashed))
    for rank in range(2):
        got = (crashed / f"record-rank{rank}.json").read_text()
        assert got == (full / f"record-rank{rank}.json").read_text(), f"killed at step {step}"
    final = torch.load(full / "final-model.pt", weights_only=True)
    again = torch.load(crashed / "final-model.pt", weights_only=True)
    assert all(torch.equal(final[name], again[name]) for name in final), f"killed at step {step}"
