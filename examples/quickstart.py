"""Quickstart: random order vs BSS-H vs BSS-L on the vendored UCI digits, on CPU in minutes.

Two feature views of the UCI Multiple Features digits act as two modalities: ``pix`` (240 pixel
averages; about 95% accuracy alone) is the strong one and ``mor`` (6 morphological features;
about 70% alone) the clearly weaker one, so the pair is imbalanced by construction. The split
is fixed (stratified: 30% test, then 15% of the rest for validation, which selects the best
epoch); features are standardised with training statistics. Every method trains the same
small late-fusion MLP from the same seeds; the table reports test accuracy at the best
validation epoch, mean ± std over seeds, and is written to ``accuracy.md`` beside the curves
(``accuracy.png``).

Is the model imbalanced at all? Every run scores the training set every 5 epochs
(``--report-every``; BSS-L's own re-scorings, report-only passes otherwise) and the trained
model once more at the end: each head's training accuracy, its mean confidence in the target
and the imbalance ratio between the views (`bss_sampler.BalanceReport`). The final reports are
printed and written to ``report.md`` (every field: ``report.json``); ``report.png`` shows each
method's reports over training (the first seed) and each run's folder has its own
``report.png``.

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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

import torch
from torch.utils.data import DataLoader

from bss_sampler import BalanceReport, score_dataset
from examples.common import (
    LateFusionClassifier,
    add_common_args,
    config_from_args,
    fit,
    mlp_encoder,
    seed_everything,
)
from examples.common.cli import DefaultsHelpFormatter
from examples.common.methods import METHODS as METHODS_TRAIN
from examples.common.plots import plot_comparison, plot_report, report_rows
from examples.common.records import write_json
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
    add_common_args(parser, methods=METHODS_TRAIN)
    parser.set_defaults(epochs=60, device="cpu", progress=False, verbose=False, threads=1)
    parser.set_defaults(report_every=5)
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


def final_report(model: torch.nn.Module, train: torch.utils.data.Dataset[Any]) -> BalanceReport:
    """The trained model's balance report on the training set: one scoring pass, eval mode."""
    size = len(train)  # type: ignore[arg-type]
    loader = DataLoader(train, batch_size=256)
    _, report = score_dataset(model, loader, size, progress=False, return_report=True)
    return report


def report_table(reports: dict[str, list[BalanceReport]], views: list[str]) -> list[list[str]]:
    """Header and one row per method: the final reports, mean ± std over seeds."""
    table = [
        [
            "method",
            "fused acc",
            *(f"{v} acc" for v in views),
            *(f"{v} conf" for v in views),
            "imbalance ratio",
            "similarity",
        ]
    ]

    def cell(values: list[float], percent: bool) -> str:
        scale = 100 if percent else 1
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        digits = 2 if percent else 3
        return f"{scale * statistics.mean(values):.{digits}f} ± {scale * spread:.{digits}f}"

    for name, rs in reports.items():
        table.append(
            [
                name,
                cell([r.multimodal_accuracy for r in rs], True),
                *(cell([r.unimodal_accuracy[m] for r in rs], True) for m in range(len(views))),
                *(cell([r.unimodal_confidence[m] for r in rs], False) for m in range(len(views))),
                cell([r.imbalance_ratio for r in rs], False),
                cell([r.similarity for r in rs], False),
            ]
        )
    return table


def report_notes(views: list[str]) -> dict[str, str]:
    """One line per column of the report table."""
    return {
        "fused acc": "training-set accuracy of the fused head (the trained model, eval mode)",
        **{f"{v} acc": f"training-set accuracy of the {v} head alone" for v in views},
        **{
            f"{v} conf": f"mean softmax probability the {v} head gives the true class"
            for v in views
        },
        "imbalance ratio": "largest over smallest view confidence (OGM-GE's ratio; 1 = balanced)",
        "similarity": "mean cosine of the view heads' softmax outputs (Eq. 4)",
    }


def show_table(caption: str, table: list[list[str]], notes: dict[str, str], width: int) -> None:
    """Print ``table`` (first column the method) under ``caption``, then what each column means."""
    print(f"\n{caption}")
    for row in table:
        print(f"{row[0]:14s}" + "".join(f"{c:>{width}s}" for c in row[1:]))
    print("columns:")
    label = max(map(len, notes)) + 2
    for name, text in notes.items():
        print(f"  {name:{label}s}{text}")


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
    reports: dict[str, list[BalanceReport]] = {}
    for name, sampler in METHODS.items():
        runs[name], reports[name] = [], []
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
            reports[name].append(final_report(model, data.train))
            if report_rows(history):
                run_dir = out / f"{sampler}-seed{seed}"
                plot_report({f"{name}, seed {seed}": history}, run_dir / "report.png")
            print(f"{name:12s} seed {seed}: test acc {100 * best_row(history)['test_acc']:.2f}")

    seeds = f"{len(args.seeds)} seed{'s' if len(args.seeds) > 1 else ''}"
    caption = (
        f"Test accuracy (%) at the best validation epoch, mean ± std over {seeds} "
        f"({' '.join(map(str, args.seeds))}), {args.epochs} epochs."
    )
    table = results_table(runs, args.views)
    notes = column_notes(args.views)
    show_table(caption, table, notes, width=16)
    path = write_markdown(out / "accuracy.md", title, caption, table, notes)
    print(f"table: {path}")
    path = plot_comparison(
        runs,
        out / "accuracy.png",
        splits=("val", "test"),
        title=f"{title}: mean of {seeds}, band from min to max",
    )
    print(f"curves: {path}")

    # Is the model imbalanced? The trained models' balance reports on the training set.
    first = next(iter(METHODS))
    print(f"\nBalance report of the trained model ({first}, seed {args.seeds[0]}):")
    print(reports[first][0].summary(args.views))
    caption = (
        f"Balance report of the trained models on the training set after {args.epochs} epochs, "
        f"mean ± std over {seeds}."
    )
    table = report_table(reports, args.views)
    notes = report_notes(args.views)
    show_table(caption, table, notes, width=17)
    path = write_markdown(out / "report.md", title, caption, table, notes)
    write_json(
        out / "report.json",
        {name: [dataclasses.asdict(r) for r in rs] for name, rs in reports.items()},
    )
    print(f"report table: {path} (every field of every run: report.json)")
    first_runs = {name: histories[0] for name, histories in runs.items()}
    if any(report_rows(history) for history in first_runs.values()):
        path = plot_report(
            first_runs,
            out / "report.png",
            title=f"{title}: balance reports over training, seed {args.seeds[0]}",
        )
        print(f"reports over training: {path} (and report.png in each run's folder)")
    return runs


if __name__ == "__main__":
    main()
