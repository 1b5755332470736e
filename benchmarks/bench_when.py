"""When does balance-aware ordering help? A controlled sweep over the imbalance strength (CPU).

Issue 8: on an audio-visual task with strong modality imbalance and 30% of pairs with a
mismatched (strong) modality, the paper's learned order (balanced samples first every epoch) lost
to random order, and the same draw read backwards (balanced last) did not. The suspected cause:
the noisiest samples become the last gradient steps of every epoch. This benchmark sweeps

* the order: ``random``; BSS-L ``learned_first`` (paper) / ``learned_last`` (the same weighted draw
  read backwards); BSS-H ``heuristic_first`` (paper) / ``heuristic_imbfirst``
  (``order="imbalanced_first"``),
* a warm-up: ``+wu`` = ``warmup_epochs=WARMUP`` of random order before Algorithm 1 starts,
* the learning-rate schedule: ``none`` (constant), ``step`` (x0.1 at 2/3 of the run), ``cosine``,
* the imbalance strength ``rho``: the fraction of pairs (in every split) whose *strong* modality
  is mismatched, i.e. replaced by that modality of a random item of another class,

on two datasets:

* ``synthetic``: 10 Gaussian classes (2,000 training items) seen through two modalities, a
  ``strong`` one (16 features, well separated: ~75% after 8 epochs, ~80% alone when clean, ~55%
  at rho 0.3) and a ``weak`` one (32 features, a small class signal under unit noise: learns
  slowly, ~25-28% alone after 20 epochs), like the report's audio (63%) and visual (26%);
* ``mfeat_pix_mor``: the vendored UCI Multiple Features digits, ``pix`` (strong, ~95% alone) and
  ``mor`` (weak, ~67%), with the same mismatch applied to ``pix``.

Model and optimiser as in ``bench_quality``: one two-layer MLP per modality, late fusion, SGD 0.01
with momentum 0.9, batch 64, Eq. 12 prediction, trained by ``_harness.fit``. Seed
``s`` gives every method the same initial weights, so differences to random order are paired
(a warm-up run also shares random order's first ``WARMUP`` epochs exactly). Reported per cell:
test accuracy at the best validation epoch and at the last epoch, the mean paired difference to
random order with a 95% t-interval, and each head's test accuracy (unimodal accuracies).

    python benchmarks/bench_when.py --quick          # ~15-25 min on 2 shared CPU cores
    python benchmarks/bench_when.py --jobs 16        # full grid, 10 seeds (parallel processes)
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import _common
import torch
from _harness import fit
from _tasks import DATASETS, mlp_classifier
from bench_quality import aggregate, base_config, summarise_run

from examples.common.plots import plot_comparison
from examples.common.runtime import seed_everything
from examples.common.tabular import MfeatDataset, MfeatSplits

EPOCHS = 20
WARMUP = 4  #: warm-up epochs of the ``+wu`` methods (20% of the run)
T_GROW = 7  #: heuristic pacing: all samples after 7 of 20 epochs (the paper's ratio ~1/3)
LR_STEP = 14  #: StepLR at 70% of the run (the paper's 70 of 100)
HIDDEN = 32
BASELINE = "random"
IMBALANCES = (0.0, 0.3, 0.5)
SCHEDULES = ("none", "step", "cosine")

_ORDERS: dict[str, dict[str, Any]] = {
    "random": {"sampler": "random"},
    "learned_first": {"sampler": "learned", "order": "balanced_first"},
    "learned_last": {"sampler": "learned", "order": "balanced_last"},
    "heuristic_first": {"sampler": "heuristic", "order": "balanced_first"},
    "heuristic_imbfirst": {"sampler": "heuristic", "order": "imbalanced_first"},
}
#: Method name -> ``TrainConfig`` overrides; ``<order>+wu`` adds the warm-up (not for random,
#: where it would change nothing).
METHODS: dict[str, dict[str, Any]] = {
    **_ORDERS,
    **{f"{k}+wu": {**v, "warmup_epochs": WARMUP} for k, v in _ORDERS.items() if k != BASELINE},
}
KEY_METHODS = ("random", "learned_first", "learned_last")


# ---- data -------------------------------------------------------------------------------------


def mismatch(splits: MfeatSplits, view: str, fraction: float, seed: int = 0) -> MfeatSplits:
    """Replace ``view`` by that of a random item of another class in ``fraction`` of each split."""
    g = torch.Generator().manual_seed(seed)

    def corrupt(ds: MfeatDataset) -> MfeatDataset:
        n = len(ds)
        rows = torch.randperm(n, generator=g)[: round(fraction * n)]
        x = ds.views[view].clone()
        for i in rows.tolist():
            others = (ds.targets != ds.targets[i]).nonzero().flatten()
            j = others[torch.randint(len(others), (1,), generator=g)]
            x[i] = ds.views[view][j]
        return MfeatDataset({**ds.views, view: x}, ds.targets)

    return MfeatSplits(corrupt(splits.train), corrupt(splits.val), corrupt(splits.test))


def synthetic(
    sizes: Sequence[int] = (2000, 500, 1000),
    *,
    classes: int = 10,
    strong: tuple[int, float] = (16, 0.7),
    weak: tuple[int, float] = (32, 0.2),
    seed: int = 0,
) -> MfeatSplits:
    """Two Gaussian modalities: ``(features, class-mean scale)`` each, unit noise, balanced
    classes; ``sizes`` = (train, val, test). The data depend on ``seed`` only."""
    g = torch.Generator().manual_seed(seed)
    means = {
        name: scale * torch.randn(classes, dim, generator=g)
        for name, (dim, scale) in {"strong": strong, "weak": weak}.items()
    }

    def split(n: int) -> MfeatDataset:
        y = torch.arange(n) % classes
        views = {k: m[y] + torch.randn(n, m.shape[1], generator=g) for k, m in means.items()}
        return MfeatDataset(views, y)

    train, val, test = (split(n) for n in sizes)
    return MfeatSplits(train, val, test, num_classes=classes)


@dataclass(frozen=True)
class Task:
    """A dataset of the sweep and the modality the imbalance knob mismatches."""

    load: Callable[[], MfeatSplits]
    strong: str
    note: str


TASKS: dict[str, Task] = {
    "synthetic": Task(
        synthetic, "strong", "Gaussian classes, strong (fast) + weak (slow) modality"
    ),
    "mfeat_pix_mor": Task(DATASETS["mfeat_pix_mor"].load, "pix", "UCI digits, pix + mor views"),
}


def load_task(name: str, imbalance: float) -> MfeatSplits:
    task = TASKS[name]
    return mismatch(task.load(), task.strong, imbalance)


# ---- grid -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A rectangular part of the grid: every combination of these values."""

    tasks: Sequence[str]
    imbalances: Sequence[float]
    schedules: Sequence[str]
    methods: Sequence[str]

    def cells(self) -> Iterable[tuple[str, float, str, str]]:
        return itertools.product(self.tasks, self.imbalances, self.schedules, self.methods)


FULL = (Block(tuple(TASKS), IMBALANCES, SCHEDULES, tuple(METHODS)),)
#: Quick mode: every method only on synthetic, rho 0.3, constant and cosine; elsewhere the key
#: comparison (random, learned_first, learned_last) plus learned_first+wu.
QUICK = (
    Block(("synthetic",), (0.3,), ("none", "cosine"), tuple(METHODS)),
    Block(("synthetic",), (0.3,), ("step",), KEY_METHODS),
    Block(("synthetic",), (0.0, 0.5), ("none",), (*KEY_METHODS, "learned_first+wu")),
    Block(("mfeat_pix_mor",), (0.3,), ("none", "cosine"), (*KEY_METHODS, "learned_first+wu")),
)


def grid(blocks: Sequence[Block]) -> dict[tuple[str, float, str], list[str]]:
    """``(task, imbalance, schedule) -> methods`` (random first), in the blocks' order."""
    out: dict[tuple[str, float, str], list[str]] = {}
    for task, rho, schedule, method in itertools.chain.from_iterable(b.cells() for b in blocks):
        methods = out.setdefault((task, rho, schedule), [BASELINE])
        if method not in methods:
            methods.append(method)
    return out


# ---- runs -------------------------------------------------------------------------------------


def run_one(
    task: str, imbalance: float, schedule: str, method: str, seed: int
) -> list[dict[str, Any]]:
    """One training run; returns the per-epoch history of ``fit``."""
    torch.set_num_threads(1)
    splits = load_task(task, imbalance)
    seed_everything(seed)
    model = mlp_classifier(splits, HIDDEN)
    cfg = replace(
        base_config(seed),
        epochs=EPOCHS,
        t_grow=T_GROW,
        lr_schedule=schedule,
        lr_step=LR_STEP,
        **METHODS[method],
    )
    return fit(model, splits.train, {"val": splits.val, "test": splits.test}, cfg)


def _run_job(job: tuple[str, float, str, str, int]) -> dict[str, Any]:
    return summarise_run(run_one(*job))


def run_grid(
    cells: Mapping[tuple[str, float, str], Sequence[str]], seeds: int, jobs: int
) -> dict[tuple[str, float, str, str], list[dict[str, Any]]]:
    """Every (cell, method, seed); results per (task, imbalance, schedule, method), seed order."""
    work = [(*cell, m, s) for cell, methods in cells.items() for s in range(seeds) for m in methods]
    tic = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_run_job, work, chunksize=4))
    else:
        results = []
        for i, job in enumerate(work):
            results.append(_run_job(job))
            if (i + 1) % 20 == 0:
                print(f"{i + 1}/{len(work)} runs, {time.perf_counter() - tic:.0f} s", flush=True)
    out: dict[tuple[str, float, str, str], list[dict[str, Any]]] = {}
    for job, result in zip(work, results):
        out.setdefault(job[:4], []).append(result)
    return out


# ---- report -----------------------------------------------------------------------------------


def _ci(diff: Mapping[str, float] | None) -> str:
    if diff is None:
        return "-"
    return f"{100 * diff['mean']:+.2f} [{100 * diff['low']:+.2f}, {100 * diff['high']:+.2f}]"


def markdown(tables: Mapping[tuple[str, float, str], Mapping[str, Any]]) -> str:
    """One table: a row per (task, imbalance, schedule, method); accuracies in %."""
    lines = [
        "| task | rho | lr | method | test acc | diff vs random [95% CI] | last-epoch diff "
        "[95% CI] | fused head | strong head | weak head |",
        "|---" * 10 + "|",
    ]
    for (task, rho, schedule), table in tables.items():
        strong = TASKS[task].strong
        weak = next(h for h in table[BASELINE]["heads"] if h not in ("multi", strong))
        for method, row in table.items():
            heads = [f"{100 * row['heads'][h]['mean']:.1f}" for h in ("multi", strong, weak)]
            acc = row["test_acc"]
            lines.append(
                f"| {task} | {rho:g} | {schedule} | {method} | {100 * acc['mean']:.2f} ± "
                f"{100 * acc['std']:.2f} | {_ci(row.get('diff_vs_random'))} | "
                f"{_ci(row.get('last_diff_vs_random'))} | " + " | ".join(heads) + " |"
            )
    return "\n".join(lines)


def plot_differences(tables: Mapping[tuple[str, float, str], Mapping[str, Any]], path: Any) -> None:
    """Paired difference to random order (best-val test acc) with 95% CIs, a panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(task for task, _, _ in tables))
    methods = [m for m in METHODS if m != BASELINE]
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(len(tasks), 1, figsize=(11, 3.6 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        cells = [(rho, s) for t, rho, s in tables if t == task]
        for x, (rho, schedule) in enumerate(cells):
            table = tables[(task, rho, schedule)]
            shown = [m for m in methods if m in table]
            for k, method in enumerate(shown):
                d = table[method]["diff_vs_random"]
                offset = (k - (len(shown) - 1) / 2) * 0.8 / max(len(shown), 1)
                err = [[100 * (d["mean"] - d["low"])], [100 * (d["high"] - d["mean"])]]
                ax.errorbar(
                    x + offset,
                    100 * d["mean"],
                    yerr=err,
                    fmt="o",
                    ms=4,
                    capsize=2,
                    color=colours[method],
                    label=method,
                )
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xticks(range(len(cells)), [f"rho={r:g}\nlr {s}" for r, s in cells])
        ax.set_ylabel("test acc - random (pp)")
        ax.set_title(f"{task}: paired difference to random order, 95% CI")
        ax.grid(alpha=0.3, axis="y")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(
    results: Mapping[tuple[str, float, str, str], Sequence[Mapping[str, Any]]], n_seeds: int
) -> None:
    """Test accuracy per epoch of the key comparison (synthetic, rho 0.3, constant rate)."""
    key = ("synthetic", 0.3, "none")
    curves = {
        m: [[{"epoch": e + 1, "test_acc": a} for e, a in enumerate(r["curve"])] for r in runs]
        for m in KEY_METHODS
        if (runs := results.get((*key, m)))
    }
    if curves:
        title = f"synthetic, rho=0.3, constant lr: {n_seeds} seeds"
        plot_comparison(curves, _common.RESULTS_DIR / "when_curves.png", title=title)


def run(quick: bool, seeds: int | None, jobs: int) -> None:
    n_seeds = seeds if seeds is not None else (5 if quick else 10)
    cells = grid(QUICK if quick else FULL)
    tic = time.perf_counter()
    results = run_grid(cells, n_seeds, jobs)
    _common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    tables = {
        cell: aggregate({m: results[(*cell, m)] for m in methods})
        for cell, methods in cells.items()
    }
    text = markdown(tables)
    print(text, f"\n({time.perf_counter() - tic:.0f} s)", flush=True)
    plot_differences(tables, _common.RESULTS_DIR / "when.png")
    plot_curves(results, n_seeds)
    (_common.RESULTS_DIR / "when.md").write_text(text + "\n")
    _common.write_json(
        "when",
        {
            "benchmark": "when",
            "mode": "quick" if quick else "full",
            "seeds": n_seeds,
            "epochs": EPOCHS,
            "warmup_epochs": WARMUP,
            "config": {
                **{k: v for k, v in vars(base_config(0)).items() if not callable(v)},
                "epochs": EPOCHS,
                "t_grow": T_GROW,
                "lr_step": LR_STEP,
                "hidden": HIDDEN,
            },
            "methods": METHODS,
            "tasks": {k: t.note for k, t in TASKS.items()},
            "selection": "test accuracy at the epoch of best validation accuracy",
            "cells": [
                {
                    "task": task,
                    "imbalance": rho,
                    "lr_schedule": schedule,
                    "table": tables[(task, rho, schedule)],
                    "runs": {m: results[(task, rho, schedule, m)] for m in ms},
                }
                for (task, rho, schedule), ms in cells.items()
            ],
            "wall_s": time.perf_counter() - tic,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the QUICK grid, 5 seeds")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..n-1 (5 quick, 10 full)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (1 thread each)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run(args.quick, args.seeds, args.jobs)


if __name__ == "__main__":
    main()
