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
    python examples/quickstart.py --method smv    # Concat in random order vs SMV (docs/smv.md)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from bss_sampler import (
    BalanceReport,
    BalanceScorer,
    HeuristicCurriculumSampler,
    LearnedBalanceSampler,
    SMVSampler,
    score_dataset,
)
from bss_sampler.presets import get_preset
from examples.common.checkpoint import save_checkpoint, save_training_state
from examples.common.cli import DefaultsHelpFormatter, add_common_args, check_common_args
from examples.common.evaluation import evaluate, split_batch
from examples.common.iprm import IPRMClassifier, iprm_loss
from examples.common.models import (
    ConcatClassifier,
    LateFusionClassifier,
    joint_loss,
    mlp_encoder,
)
from examples.common.plots import plot_comparison, plot_report, report_rows
from examples.common.records import format_row, report_columns, write_history, write_json
from examples.common.released import resolve_preset
from examples.common.runtime import (
    autocast,
    progress,
    seed_everything,
    setup_runtime,
    teardown_runtime,
)
from examples.common.smv import SMV_LEVELS, smv_order, valuation_columns, valuation_forward
from examples.common.tabular import MFEAT_VIEWS, MfeatSplits, load_mfeat

#: ``--method`` -> the model it trains, made from the late-fusion model: ``joint`` (paper Eq. 5,
#: every head), ``concat`` (the paper's Concat baseline: the fused head's loss alone), ``iprm``
#: (IPRM's geodesic-mixup fusion, re-balanced at every step), ``smv`` / ``smv-modality`` (SMV's
#: sample- or modality-level re-sampling of the Concat model, `SMVSampler`). The loss is
#: `training_step`'s.
METHODS: dict[str, Callable[[LateFusionClassifier], nn.Module]] = {
    "joint": lambda model: model,
    "concat": ConcatClassifier.from_model,
    "iprm": IPRMClassifier.from_model,
    "smv": ConcatClassifier.from_model,
    "smv-modality": ConcatClassifier.from_model,
}


#: Row name -> ``--sampler``.
ORDERS = {"random order": "random", "BSS-H": "heuristic", "BSS-L": "learned"}
#: Row name -> ``--sampler`` with ``--method smv`` / ``smv-modality``: the Concat model in random
#: order (the paper's Concat baseline) against SMV's re-sampling of it.
SMV_ORDERS = {"Concat, random order": "random", "SMV": "smv"}
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
    add_common_args(parser, methods=METHODS, resumable=False)
    parser.set_defaults(epochs=60, device="cpu", progress=False, verbose=False, threads=1)
    parser.set_defaults(report_every=5)
    parser.set_defaults(out="runs/quickstart")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    return resolve_preset(args)


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
        "method": "training order: random order, BSS-H (heuristic curriculum), BSS-L (learned); "
        "with --method smv the Concat model in random order or re-sampled by SMV",
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


def training_step(
    model: nn.Module,
    train_model: nn.Module,
    batch: dict[str, Tensor],
    args: argparse.Namespace,
    device: torch.device,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, list[Tensor], Tensor, Tensor | None]:
    """``(loss, multimodal logits, unimodal logits, targets, indices)`` of one batch.

    ``train_model`` is ``model`` itself or its DDP wrapper; the logits feed online scoring.
    ``mask``: SMV's ``(B, M)`` modality masks; the model zeroes the dropped modalities' features
    before fusion.
    """
    inputs, targets, indices = split_batch(batch, device)
    if args.method == "iprm":  # probe, then learn under the instantaneous balance
        out = train_model(**inputs, rebalance=True)
        model.update_ema(out.weights)  # type: ignore[operator]
        return iprm_loss(out, targets), out.probe_logits, out.unimodal_logits, targets, indices
    multimodal, unimodal = train_model(**inputs, mask=None if mask is None else mask.to(device))
    if args.method == "concat" or args.method in SMV_LEVELS:  # the fused head alone (SMV too)
        loss = F.cross_entropy(multimodal.float(), targets)
    else:  # Eq. 5, or the released script's weights (--preset official)
        loss = joint_loss(multimodal, unimodal, targets, args.loss_weights)
    return loss, multimodal, list(unimodal), targets, indices


def train(
    args: argparse.Namespace,
    data: MfeatSplits,
    out: Path,
    device: torch.device,
    rank: int,
    world_size: int,
) -> tuple[nn.Module, list[dict[str, Any]]]:
    """One run (``args.sampler``, ``args.seed``): Algorithm 1 around an ordinary training loop.

    Returns the trained model and one row of metrics per epoch; rank 0 writes ``out``.
    """
    distributed = world_size > 1
    show = args.progress and rank == 0
    log = print if args.verbose and rank == 0 else (lambda *a, **k: None)

    # -- data --------------------------------------------------------------------------------------
    train_set, score_set = data.train, data.train
    eval_sets = {"val": data.val, "test": data.test}
    loader_opts: dict[str, Any] = {"num_workers": args.workers, "pin_memory": device.type == "cuda"}
    eval_batch = args.eval_batch_size or args.batch_size
    eval_loaders = {
        k: DataLoader(v, batch_size=eval_batch, **loader_opts) for k, v in eval_sets.items()
    }
    score_loader = DataLoader(  # unshuffled; under torchrun each rank scores its share
        score_set,
        batch_size=eval_batch,
        sampler=DistributedSampler(score_set, world_size, rank, shuffle=False)
        if distributed
        else None,
        **loader_opts,
    )

    # -- model and optimiser (same initial weights for every sampler at a seed) --------------------
    seed_everything(args.seed)
    model = METHODS[args.method](build_model(args.views, args.hidden)).to(device)
    train_model: nn.Module = model
    if distributed:
        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if args.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    if args.lr_schedule == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, args.lr_step, gamma=args.lr_gamma)
    elif args.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp and device.type == "cuda")

    # -- the order: random, BSS-H (Eq. 7) or BSS-L (Eqs. 9-10); under torchrun each rank its share
    random_order: DistributedSampler[Any] = DistributedSampler(
        train_set, world_size, rank, shuffle=True, seed=args.seed, drop_last=args.drop_last
    )
    bss: HeuristicCurriculumSampler | LearnedBalanceSampler | None = None
    if args.sampler == "heuristic":
        bss = HeuristicCurriculumSampler(
            train_set,
            lambda0=args.lambda0,
            t_grow=args.t_grow,
            pacing=args.pacing,
            order=args.order,
            rescore_every=args.rescore_every,
            preset=args.preset,
            seed=args.seed,
            drop_last=args.drop_last,
        )
    elif args.sampler == "learned":
        bss = LearnedBalanceSampler(
            train_set,
            beta=args.beta,
            update_every=args.update_every,
            temperature=args.temperature,
            order=args.order,
            preset=args.preset,
            seed=args.seed,
            drop_last=args.drop_last,
        )
    # -- or SMV's: the originals and single-modality copies from a valuation before each epoch,
    #    a loader of ModalityMaskedDataset(train_set, 2) in its order: [items, (B, 2) masks]
    smv: SMVSampler | None = None
    smv_loader = None
    if args.sampler == "smv":
        smv, smv_loader = smv_order(train_set, args, 2, **loader_opts)
    random_loader = DataLoader(
        train_set, args.batch_size, sampler=random_order, drop_last=args.drop_last, **loader_opts
    )
    bss_loader = None
    if bss is not None:
        bss_loader = DataLoader(
            train_set, args.batch_size, sampler=bss, drop_last=args.drop_last, **loader_opts
        )
    # Scoring settings go to each scoring pass (Eq. 5's alpha, Eq. 6's criteria, the mode).
    scoring = {"alpha": args.alpha, "criteria": args.criteria, "train_mode": args.score_train_mode}
    scorer = None  # --scoring online: scores from the training batches' own logits
    if args.scoring == "online" and bss is not None:
        scorer = BalanceScorer(
            len(train_set), alpha=args.alpha, criteria=args.criteria, device=device
        )

    select = args.select_split if args.select_split in eval_sets else "test"
    out_dir = out if rank == 0 else None
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "split": select, "acc": -math.inf}
    stateful = {  # what last.pt holds, by key
        "model": model,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "scaler": scaler,
        "sampler": bss if bss is not None else smv,
        "scorer": scorer,
    }
    saved_args = {k: v for k, v in vars(args).items() if k != "seeds"}
    for epoch in range(args.epochs):
        tic = time.perf_counter()
        # -- Algorithm 1: score before BSS's first epoch (after --warmup-epochs of random
        #    order), then whenever the sampler asks; online, from the last epoch's batches
        t = epoch - args.warmup_epochs  # the sampler's epoch
        report = None
        valued = smv is not None and t >= 0 and smv.needs_update(t)
        if smv is not None and valued:  # SMV: every coalition's fused logits, Shapley values
            with autocast(device, args.amp):
                smv.update_values(
                    model, score_loader, forward=valuation_forward(device), progress=show
                )
        elif bss is not None and t >= 0 and bss.needs_update(t):
            if scorer is not None and t > 0:
                bss.set_scores(scorer.compute(), report=scorer.last_report)
            else:
                with autocast(device, args.amp):
                    bss.update_scores(model, score_loader, progress=show, **scoring)
            report = bss.last_report
        elif args.report_every and epoch % args.report_every == 0:  # report only, as BSS would
            with autocast(device, args.amp):
                _, report = score_dataset(
                    model,
                    score_loader,
                    len(score_set),
                    alpha=args.alpha,
                    criteria=args.criteria,
                    train_mode=get_preset(args.preset).train_mode
                    if args.score_train_mode is None
                    else args.score_train_mode,
                    progress=show,
                    return_report=True,
                )
        loader: DataLoader[Any]
        if smv is not None and smv_loader is not None and t >= 0:
            smv.set_epoch(t)  # its length: the originals and this valuation's copies
            loader = smv_loader
        elif bss is not None and bss_loader is not None and t >= 0:
            bss.set_epoch(t)  # a resumed epoch keeps its position
            loader = bss_loader
        else:
            random_order.set_epoch(epoch)
            loader = random_loader

        # -- one epoch of training ---------------------------------------------------------------
        collect = scorer is not None and bss is not None and t >= 0 and bss.needs_update(t + 1)
        if collect and scorer is not None:
            scorer.reset()
        lr = optimizer.param_groups[0]["lr"]
        train_model.train()
        total = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, samples
        for batch in progress(loader, enabled=show, desc=f"epoch {epoch + 1}"):
            mask = None
            if loader is smv_loader:  # SMV: [items, modality masks]
                batch, mask = batch
            with autocast(device, args.amp):
                loss, multimodal, unimodal, targets, indices = training_step(
                    model, train_model, batch, args, device, mask
                )
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(scaler.scale(loss))  # typed, unlike Tensor.backward
            scaler.step(optimizer)
            scaler.update()
            if collect and scorer is not None and indices is not None:
                scorer.update(
                    indices.to(device),
                    multimodal.detach().float(),
                    [u.detach().float() for u in unimodal],
                    targets,
                )
            total[0] += loss.detach().double() * len(targets)
            total[1] += len(targets)
        if distributed:
            dist.all_reduce(total)
        if scheduler is not None:
            scheduler.step()

        # -- evaluation, records, checkpoints ------------------------------------------------------
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": float(total[0] / total[1].clamp(min=1)),
            "train_samples": int(total[1]),
            "lr": lr,
        }
        for split, eval_loader in eval_loaders.items():
            metrics = evaluate(model, eval_loader, device, predict=args.predict, amp=args.amp)
            row.update({f"{split}_{k}": v for k, v in metrics.items()})
        row["time_s"] = time.perf_counter() - tic
        if report is not None:
            row.update(report_columns(report, epoch, args.views))
        if smv is not None and smv.last_report is not None and valued:
            columns = valuation_columns(smv.last_report, epoch, args.views, len(smv) * world_size)
            row.update(columns)
        history.append(row)
        log(format_row(row, list(eval_loaders)))
        if row[f"{select}_acc"] > best["acc"]:
            best = {"epoch": epoch + 1, "split": select, "acc": row[f"{select}_acc"]}
            if out_dir is not None:
                save_checkpoint(out_dir / "best.pt", {"model": model.state_dict(), "row": row})
                write_json(out_dir / "best.json", {**best, "row": row})
        if out_dir is not None:
            write_history(history, out)
            save_training_state(
                out_dir / "last.pt", epoch, stateful, history=history, best=best, args=saved_args
            )

    return model, history


def main(argv: list[str] | None = None) -> dict[str, list[list[dict[str, float]]]]:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    data = load_mfeat(args.views)
    out = Path(args.out)
    title = f"UCI digits, views {args.views[0]} and {args.views[1]}"
    print(f"{title}: train {len(data.train)}, val {len(data.val)}, test {len(data.test)}")
    runs: dict[str, list[list[dict[str, float]]]] = {}
    reports: dict[str, list[BalanceReport]] = {}
    orders = SMV_ORDERS if args.method in SMV_LEVELS else ORDERS
    runtime = setup_runtime(args.device)  # joins the process group under torchrun
    try:
        for name, sampler in orders.items():
            runs[name], reports[name] = [], []
            for seed in args.seeds:
                run = argparse.Namespace(**{**vars(args), "sampler": sampler, "seed": seed})
                run_dir = out / f"{sampler}-seed{seed}"
                model, history = train(
                    run, data, run_dir, runtime.device, runtime.rank, runtime.world_size
                )
                runs[name].append(history)
                reports[name].append(final_report(model, data.train))
                if report_rows(history):
                    plot_report({f"{name}, seed {seed}": history}, run_dir / "report.png")
                acc = 100 * best_row(history)["test_acc"]
                print(f"{name:12s} seed {seed}: test acc {acc:.2f}")
    finally:
        teardown_runtime(runtime)

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
    first = next(iter(orders))
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
