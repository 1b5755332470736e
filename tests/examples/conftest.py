"""Make ``examples`` importable (the repository root on ``sys.path``) and share AV fixtures."""

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
    """One tiny dataset per audio-video layout (2 clips per class and split)."""
    from examples.common.fixtures import FIXTURES, make_av_fixture

    base = tmp_path_factory.mktemp("av")
    return {kind: make_av_fixture(kind, base / kind, per_class=2) for kind in FIXTURES}
