"""Shared fixtures of the integration tests: the recipes' folder on ``sys.path`` and a launcher.

Each test runs a recipe from ``examples/integrations/`` for real (CPU, gloo, 2 processes where
the framework needs them) and then checks the records the ranks wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "examples" / "integrations"
if str(RECIPES) not in sys.path:
    sys.path.insert(0, str(RECIPES))


def _run(
    args: Sequence[str], *, timeout: float = 120.0, returncode: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in the recipes' folder, one thread per process; fail with its output
    unless it exits with ``returncode``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, *args],
        cwd=RECIPES,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != returncode:
        pytest.fail(
            f"{' '.join(args)} exited with {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def _torchrun(script: str, *args: str, nproc: int = 2) -> subprocess.CompletedProcess[str]:
    return _run(
        ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", script, *args]
    )


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_recipe() -> Runner:
    """``run_recipe([script, *args], returncode=0)``: run ``python script args`` in the recipes'
    folder."""
    return _run


@pytest.fixture
def torchrun() -> Runner:
    """``torchrun(script, *args, nproc=2)``: launch with ``torchrun --standalone``."""
    return _torchrun
