"""PNG plots of accuracy curves (matplotlib, Agg backend; imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_comparison", "plot_history"]

Histories = Sequence[Mapping[str, Any]]

#: (line style, marker) of the n-th method, so that overlapping curves stay visible.
STYLES: list[tuple[Any, str]] = [
    ("-", "o"),
    ("--", "s"),
    (":", "^"),
    ("-.", "D"),
    ((0, (5, 1)), "v"),
]


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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
