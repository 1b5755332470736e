"""PNG plots of accuracy curves and balance reports (matplotlib, Agg backend; imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_comparison", "plot_history", "plot_report", "report_rows"]

Histories = Sequence[Mapping[str, Any]]

#: (line style, marker) of the n-th method, so that overlapping curves stay visible.
STYLES: list[tuple[Any, str]] = [
    ("-", "o"),
    ("--", "s"),
    (":", "^"),
    ("-.", "D"),
    ((0, (5, 1)), "v"),
]


def _save(fig: Any, path: str | Path, title: str | None) -> Path:
    """Title, lay out and write ``fig`` as a PNG at ``path`` (folders created), then close it."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(
    history: Histories, path: str | Path, *, splits: Sequence[str] = ("test",), title: str = ""
) -> Path:
    """Accuracy per epoch of one run: the prediction and each head, one panel per split."""
    return plot_comparison({"": [history]}, path, splits=splits, heads=None, title=title)


def _heads(row: Mapping[str, Any], split: str) -> list[str]:
    """Metric keys ``<split>_acc`` and ``<split>_<head>_acc`` present in a row."""
    prefix = f"{split}_"
    return [k for k in row if k.startswith(prefix) and k.endswith("_acc")]


def plot_comparison(
    runs: Mapping[str, Sequence[Histories]],
    path: str | Path,
    *,
    splits: Sequence[str] = ("test",),
    heads: Sequence[str] | None = ("",),
    title: str = "",
) -> Path:
    """Accuracy curves of several methods, each the mean over its runs with a min-max band.

    ``runs`` maps a method name to its histories (one per seed); each method (or, for one
    method, each head) has its own line style and marker, so equal curves stay visible.
    ``heads`` selects the curves: ``""`` is the final prediction, ``"multi"`` the fused head, a
    modality name its head; ``None`` draws every head found. One panel per split; returns ``path``.
    """
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4), squeeze=False)
    for ax, split in zip(axes[0], splits):
        for m, (method, histories) in enumerate(runs.items()):
            first = histories[0][0]
            keys = (
                _heads(first, split)
                if heads is None
                else [f"{split}_{h}_acc" if h else f"{split}_acc" for h in heads]
            )
            for k, key in enumerate(keys):
                style = m if len(runs) > 1 else k  # one style per method, or per head
                linestyle, marker = STYLES[style % len(STYLES)]
                curves = np.array([[100 * row[key] for row in h] for h in histories])
                epochs = [row["epoch"] for row in histories[0]]
                head = key[len(split) + 1 : -len("_acc")] or "prediction"
                label = " ".join(x for x in (method, head if len(keys) > 1 else "") if x) or head
                step = max(1, len(epochs) // 10)  # about 10 markers, shifted per method
                line = ax.plot(
                    epochs,
                    curves.mean(0),
                    label=label,
                    linestyle=linestyle,
                    marker=marker,
                    markersize=4,
                    markevery=(style * step // max(len(runs), len(keys)), step),
                )[0]
                if len(curves) > 1:
                    ax.fill_between(
                        epochs, curves.min(0), curves.max(0), alpha=0.2, color=line.get_color()
                    )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_ylabel(f"{split} accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path, title)


def report_rows(history: Histories) -> list[Mapping[str, Any]]:
    """The rows of a history that hold a balance report (``report_*`` columns)."""
    return [row for row in history if "report_epoch" in row]


def _report_heads(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(label, column prefix)`` of the fused head and each modality in a report row."""
    names = [
        key[len("report_") : -len("_confidence_ratio")]
        for key in row
        if key.startswith("report_") and key.endswith("_confidence_ratio")
    ]
    return [("fused", "report_multimodal"), *((n, f"report_{n}") for n in names)]


def plot_report(runs: Mapping[str, Histories], path: str | Path, *, title: str = "") -> Path:
    """What the balance reports of each run say, one row of two panels per run.

    Left: the training-set accuracy (solid) and mean confidence in the target (dashed) of the
    fused head and of each modality's head at each scoring, against the epochs trained before
    it; the legend gives the imbalance ratio (largest over smallest modality confidence) at the
    first and last scoring. Right: the histogram of the balance scores (Eq. 6) of each scoring,
    as a fraction of the samples, from light (first) to dark (last). Runs without a report are
    left out; returns ``path``.
    """
    import numpy as np

    with_reports = {name: report_rows(h) for name, h in runs.items() if report_rows(h)}
    if not with_reports:
        raise ValueError("no history has a balance report (report_* columns) to plot")
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(with_reports), 2, figsize=(11, 3.6 * len(with_reports)), squeeze=False
    )
    cmap = plt.get_cmap("viridis_r")
    for (ax_acc, ax_hist), (name, rows) in zip(axes, with_reports.items()):
        epochs = [row["report_epoch"] for row in rows]
        for k, (label, prefix) in enumerate(_report_heads(rows[0])):
            marker = STYLES[k % len(STYLES)][1]
            line = ax_acc.plot(
                epochs,
                [100 * row[f"{prefix}_accuracy"] for row in rows],
                marker=marker,
                markersize=4,
                label=f"{label} accuracy",
            )[0]
            ax_acc.plot(
                epochs,
                [100 * row[f"{prefix}_confidence"] for row in rows],
                linestyle="--",
                color=line.get_color(),
                label=f"{label} confidence",
            )
        first, last = rows[0]["report_imbalance_ratio"], rows[-1]["report_imbalance_ratio"]
        ax_acc.plot([], [], " ", label=f"imbalance ratio {first:.2f} -> {last:.2f}")
        ax_acc.set_xlabel("epochs trained before the scoring")
        ax_acc.set_ylabel("training set (%)")
        ax_acc.set_ylim(0, 100)
        ax_acc.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax_acc.grid(alpha=0.3)
        ax_acc.legend(fontsize=7, ncol=2)
        ax_acc.set_title(f"{name}: each head at each scoring" if name else "each head")
        bins = sum(1 for key in rows[0] if key.startswith("report_score_bin"))
        centres = -1 + (np.arange(bins) + 0.5) * 2 / bins
        for j, row in enumerate(rows):
            counts = np.array([row[f"report_score_bin{b}"] for b in range(bins)], dtype=float)
            shade = cmap(0.15 + 0.85 * j / max(1, len(rows) - 1))
            ax_hist.step(
                centres,
                counts / row["report_num_samples"],
                where="mid",
                color=shade,
                label=f"epoch {row['report_epoch']}" if j in (0, len(rows) - 1) else None,
            )
        ax_hist.set_xlim(-1, 1)
        ax_hist.set_xlabel("balance score (Eq. 6)")
        ax_hist.set_ylabel("fraction of samples")
        ax_hist.grid(alpha=0.3)
        ax_hist.legend(fontsize=7)
        ax_hist.set_title("score histogram at each scoring")
    return _save(fig, path, title)


def plot_run(history: Histories, out: Path, *, splits: Sequence[str], title: str) -> None:
    """The figures of one script run in ``out`` (``accuracy.png``, and ``report.png`` when a
    scoring pass ran), then one line saying what ``out`` holds."""
    plot_history(history, out / "accuracy.png", splits=splits, title=title)
    reports = ""
    if report_rows(history):
        plot_report({title: history}, out / "report.png")
        reports = ", report.png (each head's accuracy and the scores at each scoring)"
    print(
        f"outputs in {out}: history.csv and history.json (metrics per epoch), "
        f"accuracy.png (curves){reports}, best.json, best.pt, last.pt (continue with --resume)"
    )
