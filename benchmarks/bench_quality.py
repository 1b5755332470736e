"""Does BSS help? Test accuracy of every method on small real multi-view datasets (CPU).

Datasets (``_tasks.DATASETS``): the vendored UCI Multiple Features digits as view pairs (one with
a clearly weaker view) and a view triple, and scikit-learn's bundled ``load_digits`` cut into
top / bottom halves. Model: one two-layer MLP per view, late fusion (concat head + one head per
view), trained by the benchmarks' loop ``_harness.fit`` with the paper's optimiser
(SGD, lr 0.01, momentum 0.9, weight decay 1e-4, batch 64) and the Eq. 12 prediction.

Each method is a set of ``TrainConfig`` overrides (``QUALITY_METHODS``); every (dataset, method)
runs the same seeds, and seed ``s`` gives every method the same initial weights, so the
differences to random order are *paired*. ``random`` trains with the joint loss of Eq. 5 (fused
and unimodal heads); ``concat`` is the paper's baseline (fused-head loss only, random order), so
``concat`` vs ``random`` is the gain of the joint loss and the BSS rows vs ``random`` the gain
of the order. Reported per method: mean and standard deviation over
seeds of the test accuracy at the epoch of best validation accuracy (and of each unimodal head
there, and of the last epoch), and the mean paired difference to random order with a 95%
t-interval.

Adding a method (e.g. IPRM, which changes the model, not the order)::

    from bench_quality import QUALITY_METHODS, QualityMethod
    QUALITY_METHODS["iprm"] = QualityMethod({"method": "iprm", "sampler": "random"}, note="...")
    QUALITY_METHODS["iprm+learned"] = QualityMethod({"method": "iprm", "sampler": "learned"}, ...)

or run ``--methods random,iprm,...`` once the harness knows the method (``_harness.METHODS``);
:func:`register_iprm_rows` adds the IPRM rows when ``"iprm"`` is one of them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import mean, stdev
from typing import Any

import _common
import torch
from _harness import METHODS, TrainConfig, fit
from _tasks import DATASETS
from torch import nn

from examples.common.plots import plot_comparison
from examples.common.runtime import seed_everything

#: Epochs per run; the heuristic pacing reaches all samples at ``T_GROW`` (the paper's
#: T_grow / epochs ratio on CREMA-D is 40 / 120, kept here as 10 / 30).
EPOCHS = 30
T_GROW = 10
BASELINE = "random"


@dataclass(frozen=True)
class QualityMethod:
    """``TrainConfig`` overrides, an optional model wrapper (for model-changing methods), a note."""

    overrides: Mapping[str, Any]
    wrap_model: Callable[[nn.Module], nn.Module] | None = None
    note: str = ""
    tags: Sequence[str] = field(default_factory=tuple)


QUALITY_METHODS: dict[str, QualityMethod] = {
    "random": QualityMethod({"sampler": "random"}, note="shuffled order (baseline)"),
    "concat": QualityMethod(
        {"method": "concat", "sampler": "random", "predict": "multimodal"},
        note="the paper's Concat (Table 1): fused-head loss only, random order, fused prediction; "
        "its head columns are the fused head's per-modality parts (OGM-GE)",
    ),
    "heuristic": QualityMethod({"sampler": "heuristic"}, note="BSS-H, root pacing, lambda0=0.1"),
    "learned_paper": QualityMethod(
        {"sampler": "learned", "preset": "paper"}, note="BSS-L, paper: softmax, EMA 0.6, E=5"
    ),
    "learned_official": QualityMethod(
        {"sampler": "learned", "preset": "official"},
        note="BSS-L, released code: linear weights, no EMA, E=1, train-mode scoring",
    ),
    "anti_curriculum": QualityMethod(
        {"sampler": "heuristic", "order": "imbalanced_first"},
        note="heuristic pacing, imbalanced samples first",
    ),
    "similarity_only": QualityMethod(
        {"sampler": "learned", "criteria": ("similarity",)}, note="BSS-L, Eq. 4 criterion only"
    ),
    "loss_only": QualityMethod(
        {"sampler": "learned", "criteria": ("loss",)}, note="BSS-L, Eq. 5 criterion only"
    ),
    "smv": QualityMethod(
        {"method": "concat", "sampler": "smv", "predict": "multimodal"},
        note="SMV (Wei et al., CVPR 2024), sample level: the Concat model over the originals and "
        "single-modality copies from a Shapley valuation before every epoch",
    ),
    "smv_modality": QualityMethod(
        {"method": "concat", "sampler": "smv", "smv_level": "modality", "predict": "multimodal"},
        note="SMV, modality level: copies of uniformly drawn samples keeping the modality with "
        "the lowest mean contribution (linear gap, alpha 1)",
    ),
    "online": QualityMethod(
        {"sampler": "learned", "scoring": "online"},
        note="BSS-L scored from the training step's logits (no extra pass after epoch 0)",
    ),
}


def register_iprm_rows() -> None:
    """Add ``iprm`` and ``iprm+learned`` rows when the harness has a method ``"iprm"``."""
    if "iprm" in METHODS and "iprm" not in QUALITY_METHODS:
        QUALITY_METHODS["iprm"] = QualityMethod(
            {"method": "iprm", "sampler": "random"}, note="IPRM, random order"
        )
        QUALITY_METHODS["iprm+learned"] = QualityMethod(
            {"method": "iprm", "sampler": "learned"}, note="IPRM with BSS-L (paper preset)"
        )


def base_config(seed: int) -> TrainConfig:
    return TrainConfig(
        epochs=EPOCHS,
        t_grow=T_GROW,
        seed=seed,
        eval_batch_size=256,
        device="cpu",
        progress=False,
        verbose=False,
    )


def run_one(dataset: str, method: str, seed: int) -> list[dict[str, Any]]:
    """One training run; returns the per-epoch history of ``fit``."""
    spec, how = DATASETS[dataset], QUALITY_METHODS[method]
    splits = spec.load()
    seed_everything(seed)  # same initial weights for every method at this seed
    model = spec.model(splits)
    if how.wrap_model is not None:
        model = how.wrap_model(model)
    cfg = replace(base_config(seed), **how.overrides)
    return fit(model, splits.train, {"val": splits.val, "test": splits.test}, cfg)


def summarise_run(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Test metrics at the epoch of best validation accuracy (first such epoch) and at the end."""
    best = max(history, key=lambda row: (row["val_acc"], -row["epoch"]))
    heads = [
        k[len("test_") : -len("_acc")]
        for k in best
        if k.startswith("test_") and k.endswith("_acc") and k != "test_acc"
    ]
    return {
        "best_epoch": best["epoch"],
        "test_acc": best["test_acc"],
        "last_test_acc": history[-1]["test_acc"],
        "heads": {h: best[f"test_{h}_acc"] for h in heads},
        "curve": [row["test_acc"] for row in history],
    }


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {"mean": mean(values), "std": stdev(values) if len(values) > 1 else 0.0}


def aggregate(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """Per method: mean/std over seeds and the paired difference to the baseline."""
    base = runs.get(BASELINE)
    table: dict[str, Any] = {}
    for method, rs in runs.items():
        row: dict[str, Any] = {
            "test_acc": _stats([r["test_acc"] for r in rs]),
            "last_test_acc": _stats([r["last_test_acc"] for r in rs]),
            "heads": {h: _stats([r["heads"][h] for r in rs]) for h in rs[0]["heads"]},
            "seeds": len(rs),
        }
        if base is not None and method != BASELINE:
            row["diff_vs_random"] = _common.paired_difference(
                [r["test_acc"] for r in rs], [r["test_acc"] for r in base]
            )
            row["last_diff_vs_random"] = _common.paired_difference(
                [r["last_test_acc"] for r in rs], [r["last_test_acc"] for r in base]
            )
        table[method] = row
    return table


def markdown_table(dataset: str, table: Mapping[str, Any]) -> str:
    """The per-dataset table as Markdown (accuracies in %)."""
    heads = list(next(iter(table.values()))["heads"])
    lines = [
        f"**{dataset}** ({DATASETS[dataset].note})",
        "",
        "| method | test acc | diff vs random [95% CI] | last-epoch acc | "
        + " | ".join(heads)
        + " |",
        "|---" * (4 + len(heads)) + "|",
    ]
    for method, row in table.items():
        diff = row.get("diff_vs_random")
        cell = (
            "-"
            if diff is None
            else (
                f"{100 * diff['mean']:+.2f} [{100 * diff['low']:+.2f}, {100 * diff['high']:+.2f}]"
            )
        )
        acc, last = row["test_acc"], row["last_test_acc"]
        head_cells = [f"{100 * row['heads'][h]['mean']:.1f}" for h in heads]
        lines.append(
            f"| {method} | {100 * acc['mean']:.2f} ± {100 * acc['std']:.2f} | {cell} | "
            f"{100 * last['mean']:.2f} | " + " | ".join(head_cells) + " |"
        )
    return "\n".join(lines)


def run(
    quick: bool,
    seeds: int | None,
    methods: Sequence[str],
    datasets: Sequence[str],
    name: str = "quality",
) -> None:
    """Train every (dataset, method, seed); write ``results/<name>.{json,md}`` and
    ``results/<name>_<dataset>.png``."""
    n_seeds = seeds if seeds is not None else (2 if quick else 10)
    results: dict[str, Any] = {}
    tables: list[str] = []
    for dataset in datasets:
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        histories: dict[str, list[list[dict[str, Any]]]] = {m: [] for m in methods}
        tic = time.perf_counter()
        for seed in range(n_seeds):
            for method in methods:
                history = run_one(dataset, method, seed)
                histories[method].append(history)
                runs[method].append(summarise_run(history))
        table = aggregate(runs)
        tables.append(markdown_table(dataset, table))
        print(tables[-1], f"\n({time.perf_counter() - tic:.0f} s)\n", flush=True)
        plot = _common.RESULTS_DIR / f"{name}_{dataset}.png"
        plot_comparison(histories, plot, splits=("test",), title=f"{dataset}: {n_seeds} seeds")
        results[dataset] = {"note": DATASETS[dataset].note, "table": table, "runs": runs}
    _common.write_json(
        name,
        {
            "benchmark": "quality",
            "mode": "quick" if quick else "full",
            "seeds": n_seeds,
            "epochs": EPOCHS,
            "config": {k: v for k, v in vars(base_config(0)).items() if not callable(v)},
            "methods": {
                m: {
                    "overrides": dict(QUALITY_METHODS[m].overrides),
                    "note": QUALITY_METHODS[m].note,
                }
                for m in methods
            },
            "selection": "test accuracy at the epoch of best validation accuracy",
            "datasets": results,
        },
    )
    (_common.RESULTS_DIR / f"{name}.md").write_text("\n\n".join(tables) + "\n")


def main() -> None:
    register_iprm_rows()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds instead of 10")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ...)")
    parser.add_argument("--methods", default=",".join(QUALITY_METHODS), help="comma-separated")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--name",
        default="quality",
        help="results/<name>.{json,md} and <name>_<dataset>.png (another name keeps the full "
        "results of the default one when running a subset)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = args.methods.split(",")
    if BASELINE not in methods:
        methods.insert(0, BASELINE)
    for m in methods:
        if m not in QUALITY_METHODS:
            parser.error(f"--methods: unknown method {m!r}; known: {sorted(QUALITY_METHODS)}")
    datasets = args.datasets.split(",")
    for d in datasets:
        if d not in DATASETS:
            parser.error(f"--datasets: unknown dataset {d!r}; known: {sorted(DATASETS)}")
    run(args.quick, args.seeds, methods, datasets, args.name)
    print(json.dumps({"wrote": str(_common.RESULTS_DIR / f"{args.name}.md")}))


if __name__ == "__main__":
    main()
