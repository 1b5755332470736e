"""Put the repository root and ``benchmarks/`` on ``sys.path``: the benchmarks' modules import
each other as top-level modules (``import _common``), as they do when run from that folder."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT, ROOT / "benchmarks"):  # examples' leaf modules, then the benchmarks'
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# Tiny models: one thread is faster than two contended ones on a small shared CPU.
torch.set_num_threads(1)
