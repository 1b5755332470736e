"""Per-epoch records: one printed line, and the whole history as CSV and JSON in ``out_dir``."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bss_sampler import BalanceReport

__all__ = ["format_row", "report_columns", "write_history", "write_json"]


def format_row(row: dict[str, float], splits: Sequence[str]) -> str:
    """``epoch 3 | loss 1.2345 | n 640 | val acc 71.20 map 75.01 f1 70.02 | test ...`` (percent),
    then ``| train heads fused 80.1 audio 75.3 video 40.2, ratio 1.62`` when the row has a
    balance report (training-set accuracy of each head, imbalance ratio), or ``| valuation fused
    80.1, audio 0.61 (none 12.0%) visual 0.30 (none 40.2%), epoch 1130`` when it has an SMV
    valuation (fused training accuracy, each modality's mean Shapley contribution and the
    percentage of samples it contributes nothing to, the epoch's length over all ranks with the
    copies)."""
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
    if "report_multimodal_accuracy" in row:
        heads = [f"fused {100 * row['report_multimodal_accuracy']:.1f}"]
        heads += [
            f"{key[len('report_') : -len('_accuracy')]} {100 * value:.1f}"
            for key, value in row.items()
            if key.startswith("report_")
            and key.endswith("_accuracy")
            and key != "report_multimodal_accuracy"
        ]
        parts.append(f"train heads {' '.join(heads)}, ratio {row['report_imbalance_ratio']:.2f}")
    if "smv_fused_accuracy" in row:
        values = " ".join(
            f"{key[len('smv_') : -len('_contribution')]} {value:.2f} "
            f"(none {100 * row[key[: -len('contribution')] + 'none']:.1f}%)"
            for key, value in row.items()
            if key.startswith("smv_") and key.endswith("_contribution")
        )
        parts.append(
            f"valuation fused {100 * row['smv_fused_accuracy']:.1f}, {values}, "
            f"{row['smv_epoch_length']} samples this epoch"
        )
    return " | ".join(parts)


def write_history(history: Sequence[dict[str, float]], out_dir: Path) -> None:
    """Rewrite ``history.csv`` and ``history.json`` (one row per epoch) in ``out_dir``.

    The CSV has every column of any row (``report_*`` columns only where a report was made),
    blank where a row lacks it.
    """
    write_json(out_dir / "history.json", list(history))
    if not history:
        return
    columns = list(dict.fromkeys(key for row in history for key in row))
    with (out_dir / "history.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, creating the parent folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")


def report_columns(
    report: BalanceReport, epoch: int, names: list[str] | None = None
) -> dict[str, Any]:
    """A history row's ``report_*`` columns: ``report_epoch`` (epochs trained before the
    scoring) and `BalanceReport.as_dict` prefixed ``report_``."""
    if names is not None and len(names) != report.num_modalities:
        names = None  # the model's encoders do not name its unimodal heads
    columns: dict[str, Any] = {"report_epoch": epoch}
    columns.update({f"report_{k}": v for k, v in report.as_dict(names).items()})
    return columns
