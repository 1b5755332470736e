"""Quickstart: random order vs BSS-H vs BSS-L on the vendored UCI digits, on CPU in minutes.

Two feature views of the UCI Multiple Features digits act as two modalities: ``pix`` (240 pixel
averages; about 95% accuracy alone) is the strong one and ``mor`` (6 morphological features;
about 70% alone) the clearly weaker one, so the pair is imbalanced by construction. The split
is fixed (stratified: 30% test, then 15% of the rest for validation, which selects the best
epoch); features are standardised with training statistics. Every method trains the same
small late-fusion MLP from the same seeds; the table reports test accuracy at the best
validation epoch, mean ± std over seeds, and is written to ``accuracy.md`` beside the curves
(``accuracy.png``).

    python examples/quickstart.py                 # 3 seeds, 60 epochs, writes runs/quickstart
    python examples/quickstart.py --seeds 0 1 2 3 4 --epochs 80
    python examples/quickstart.py --seeds 0 --epochs 3    # a check that everything runs
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

import torch

from examples.common import (
    LateFusionClassifier,
    add_common_args,
    config_from_args,
    fit,
    mlp_encoder,
    seed_everything,
)
from examples.common.cli import DefaultsHelpFormatter
from examples.common.plots import plot_comparison
from examples.common.released import resolve_preset
from examples.common.tabular import MFEAT_VIEWS, load_mfeat

#: Row name -> ``--sampler``.
METHODS = {"random order": "random", "BSS-H": "heuristic", "BSS-L": "learned"}
#: What each UCI Multiple Features view holds.
VIEW_CONTENTS = {
    "fac": "216 profile correlations",
    "fou": "76 Fourier coefficients of the character shapes",
    "kar": "64 Karhunen-Loeve coefficients",
    "mor": "6 morphological features",
    "pix": "240 pixel averages in 2 x 3 windows",
    "zer": "47 Zernike moments",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument(
        "--views",
        nargs=2,
        default=["pix", "mor"],
        choices=sorted(MFEAT_VIEWS),
        metavar="VIEW",
        help="the two feature views used as modalities, from " + ", ".join(sorted(MFEAT_VIEWS)),
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per method and seed"
    )
    parser.add_argument("--hidden", type=int, default=64, help="encoder width")
    add_common_args(parser)
    parser.set_defaults(epochs=60, device="cpu", progress=False, verbose=False, threads=1)
    parser.set_defaults(out="runs/quickstart")
    return resolve_preset(parser.parse_args(argv))


def build_model(views: list[str], hidden: int) -> LateFusionClassifier:
    """One MLP encoder per view, a concat head and one linear head per view."""
    encoders = {v: mlp_encoder(MFEAT_VIEWS[v], hidden) for v in views}
    return LateFusionClassifier(encoders, dict.fromkeys(views, hidden), num_classes=10)


def best_row(history: list[dict[str, float]]) -> dict[str, float]:
    """The epoch with the best validation accuracy (the first of ties)."""
    return max(history, key=lambda row: row["val_acc"])


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * spread:.2f}"


def column_notes(views: list[str]) -> dict[str, str]:
    """One line per table column: what it measures."""
    return {
        "method": "training order: random order, BSS-H (heuristic curriculum), BSS-L (learned)",
        "prediction": "the model's answer: fused and view heads' logits summed (paper Eq. 12)",
        "multi": "the fused head alone (both views' features concatenated)",
        **{v: f"the {v} head alone ({VIEW_CONTENTS[v]})" for v in views},
    }


def results_table(
    runs: dict[str, list[list[dict[str, float]]]], views: list[str]
) -> list[list[str]]:
    """Header and one row per method: test accuracy (%) at the best validation epoch."""
    heads = ["", "multi", *views]
    table = [["method", "prediction", "multi", *views]]
    for name, histories in runs.items():
        rows = [best_row(h) for h in histories]
        cells = [mean_std([r[f"test_{h}_acc" if h else "test_acc"] for r in rows]) for h in heads]
        table.append([name, *cells])
    return table


def write_markdown(
    path: Path, title: str, caption: str, table: list[list[str]], notes: dict[str, str]
) -> Path:
    """The table as Markdown, with its caption and one line per column."""
    lines = [f"# {title}", "", caption, ""]
    lines.append("| " + " | ".join(table[0]) + " |")
    lines.append("|" + "---|" * len(table[0]))
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    lines += ["", "Columns:", ""] + [f"- {name}: {text}" for name, text in notes.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> dict[str, list[list[dict[str, float]]]]:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    base = config_from_args(args)
    data = load_mfeat(args.views)
    out = Path(args.out)
    title = f"UCI digits, views {args.views[0]} and {args.views[1]}"
    print(f"{title}: train {len(data.train)}, val {len(data.val)}, test {len(data.test)}")
    runs: dict[str, list[list[dict[str, float]]]] = {}
    for name, sampler in METHODS.items():
        runs[name] = []
        for seed in args.seeds:
            cfg = dataclasses.replace(base, sampler=sampler, seed=seed)
            seed_everything(seed)
            model = build_model(args.views, args.hidden)
            history = fit(
                model,
                data.train,
                {"val": data.val, "test": data.test},
                cfg,
                out_dir=out / f"{sampler}-seed{seed}",
            )
            runs[name].append(history)
            print(f"{name:12s} seed {seed}: test acc {100 * best_row(history)['test_acc']:.2f}")

    seeds = f"{len(args.seeds)} seed{'s' if len(args.seeds) > 1 else ''}"
    caption = (
        f"Test accuracy (%) at the best validation epoch, mean ± std over {seeds} "
        f"({' '.join(map(str, args.seeds))}), {args.epochs} epochs."
    )
    table = results_table(runs, args.views)
    notes = column_notes(args.views)
    print(f"\n{caption}")
    for row in table:
        print(f"{row[0]:14s}" + "".join(f"{c:>16s}" for c in row[1:]))
    print("columns:")
    for name, text in notes.items():
        print(f"  {name:12s}{text}")
    path = write_markdown(out / "accuracy.md", title, caption, table, notes)
    print(f"table: {path}")
    path = plot_comparison(
        runs,
        out / "accuracy.png",
        splits=("val", "test"),
        title=f"{title}: mean of {seeds}, band from min to max",
    )
    print(f"curves: {path}")
    return runs


if __name__ == "__main__":
    main()
