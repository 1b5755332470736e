"""PNG plots of accuracy curves (matplotlib, Agg backend; imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_comparison", "plot_history"]

Histories = Sequence[Mapping[str, Any]]


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

    ``runs`` maps a method name to its histories (one per seed). ``heads`` selects the curves:
    ``""`` is the final prediction, ``"multi"`` the fused head, a modality name its head;
    ``None`` draws every head found. One panel per split; returns ``path``.
    """
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4), squeeze=False)
    for ax, split in zip(axes[0], splits):
        for method, histories in runs.items():
            first = histories[0][0]
            keys = (
                _heads(first, split)
                if heads is None
                else [f"{split}_{h}_acc" if h else f"{split}_acc" for h in heads]
            )
            for key in keys:
                curves = np.array([[100 * row[key] for row in h] for h in histories])
                epochs = [row["epoch"] for row in histories[0]]
                head = key[len(split) + 1 : -len("_acc")] or "prediction"
                label = " ".join(x for x in (method, head) if x)
                line = ax.plot(epochs, curves.mean(0), label=label)[0]
                if len(curves) > 1:
                    ax.fill_between(
                        epochs, curves.min(0), curves.max(0), alpha=0.2, color=line.get_color()
                    )
        ax.set_xlabel("epoch")
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
