"""Per-epoch records: one printed line, and the whole history as CSV and JSON in ``out_dir``."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["format_row", "write_history", "write_json"]


def format_row(row: dict[str, float], splits: Sequence[str]) -> str:
    """``epoch 3 | loss 1.2345 | n 640 | val acc 71.20 map 75.01 f1 70.02 | test ...`` (percent)."""
    parts = [
        f"epoch {int(row['epoch'])}",
        f"loss {row['train_loss']:.4f}",
        f"n {row['train_samples']}",
    ]
    for split in splits:
        parts.append(
            f"{split} acc {100 * row[f'{split}_acc']:.2f} map {100 * row[f'{split}_map']:.2f}"
            f" f1 {100 * row[f'{split}_f1']:.2f}"
        )
    return " | ".join(parts)


def write_history(history: Sequence[dict[str, float]], out_dir: Path) -> None:
    """Rewrite ``history.csv`` and ``history.json`` (one row per epoch) in ``out_dir``."""
    write_json(out_dir / "history.json", list(history))
    if not history:
        return
    with (out_dir / "history.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, creating the parent folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")
