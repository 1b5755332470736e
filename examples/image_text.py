"""Image-text classification with BSS: Twitter2015 or Sarcasm (paper Table 1).

A ResNet50 image encoder (torchvision's ImageNet weights, downloaded once and hash-checked, or a
local file) and a BERT-base text encoder (``bert-base-uncased`` from the Hugging Face hub and its
cache, or a local directory), pooled [CLS], a concat head and one linear head per modality,
trained with the paper's joint loss (Eq. 5) and predicted with Eq. 12. Paper defaults: Adam, lr
1e-5, batch 64. The best epoch is selected on the validation split (Twitter2015 ``dev``, Sarcasm
``valid_data.json``) and test is reported at that epoch. ``--preset official`` also gives the
released code's inputs and models (docs/presets.md). See docs/examples/image_text.md for the
layouts and the commands of the paper's rows.

    python examples/image_text.py --dataset twitter2015 --root data/twitter2015 --sampler learned
    python examples/image_text.py --demo    # tiny generated Twitter2015 layout and tiny BERT
    python examples/image_text.py --demo --method smv    # SMV's re-sampling (docs/smv.md)
"""

from __future__ import annotations

import argparse
import math
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
    BalanceScorer,
    HeuristicCurriculumSampler,
    LearnedBalanceSampler,
    SMVSampler,
    score_dataset,
)
from bss_sampler.presets import get_preset
from examples.common.checkpoint import load_training_state, save_checkpoint, save_training_state
from examples.common.cli import DefaultsHelpFormatter, add_common_args, check_common_args
from examples.common.evaluation import evaluate, split_batch
from examples.common.iprm import IPRMClassifier, iprm_loss
from examples.common.models import ConcatClassifier, LateFusionClassifier, joint_loss
from examples.common.plots import plot_run
from examples.common.records import format_row, report_columns, write_history, write_json
from examples.common.released import resolve_preset
from examples.common.runtime import (
    autocast,
    progress,
    seed_everything,
    setup_runtime,
    teardown_runtime,
)
from examples.common.script import (
    DEMO_HELP,
    check_root,
    default_out,
    demo_folder,
    peek,
    scoring_seed,
)
from examples.common.smv import SMV_LEVELS, smv_order, valuation_columns, valuation_forward
from examples.common.splits import stratified_split
from examples.imtext.data import DATASETS, ImageTextDataset, Record, read_split
from examples.imtext.demo_data import make_image_text_demo_data, make_tiny_bert
from examples.imtext.models import build_image_text_model, load_tokenizer
from examples.vision.weights import fill_weight_flags

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

#: ``--demo``: 8 pairs per class and split, a 1-layer BERT 16 wide, a ResNet50 1/16 wide, both
#: from random weights (nothing is downloaded), small images, a larger learning rate for the tiny
#: random models, 20 epochs (BSS-H: all from 10), one CPU thread.
DEMO_SETTINGS: dict[str, Any] = {
    "dataset": "twitter2015",
    "random_init": True,
    "resnet_width": 0.0625,
    "image_size": 64,
    "max_length": 16,
    "batch_size": 8,
    "lr": 3e-3,
    "epochs": 20,
    "t_grow": 10,
    "progress": False,
    "threads": 1,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), help="dataset layout (required, except with --demo)"
    )
    parser.add_argument("--root", help="dataset folder (layouts in the docs)")
    parser.add_argument(
        "--bert",
        help="BERT: a Hugging Face hub name (from the hub, then its cache HF_HOME) or a local "
        "directory (config.json, weights, vocab.txt); default: bert-base-uncased, with --demo a "
        "tiny random one",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=DEMO_HELP.format("Twitter2015 and a tiny random BERT"),
    )
    parser.add_argument(
        "--resnet50",
        help="ResNet50 weights: 'imagenet' (torchvision's IMAGENET1K_V1, resnet50-0676ba61.pth, "
        "downloaded once into TORCH_HOME and hash-checked), an http(s):// or file:// URL, or a "
        "local torchvision-style .pth (default: imagenet)",
    )
    parser.add_argument(
        "--random-init",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="start both encoders from random weights (BERT keeps --bert's architecture and "
        "vocabulary); announced on stderr (default: off; on with --demo)",
    )
    parser.add_argument("--resnet-width", type=float, default=1.0, help="ResNet50 width factor")
    parser.add_argument(
        "--image-size",
        type=int,
        help="image size in pixels; per dataset: twitter2015 384, sarcasm 224",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        help="BERT tokens; per dataset: twitter2015 30, sarcasm 80 (twitter2015 with --preset "
        "official: not truncated, as the released code, unless this flag is given)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="without a validation file (Sarcasm without valid_data.json), hold out this "
        "stratified fraction of train for model selection (0: select on test)",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of --val-fraction")
    add_common_args(
        parser,
        methods=METHODS,
        default_out="runs/image_text/DATASET-METHOD-SAMPLER-seedSEED",
        augmented=True,
    )
    parser.set_defaults(optimizer="adam", lr=1e-5, batch_size=64, weight_decay=0.0)
    if peek(argv).demo:
        parser.set_defaults(**DEMO_SETTINGS)
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if args.dataset is None:
        parser.error("--dataset is required (or try --demo)")
    check_root(parser, args)
    check_weights(parser, args)
    if args.out is None and not args.demo:
        args.out = default_out("image_text", args)
    return resolve_preset(args)


def check_weights(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill ``--bert`` and ``--resnet50`` in (pretrained unless ``--random-init``), refusing
    combinations that would not load what they say."""
    fill_weight_flags(parser, args, {"resnet50": "imagenet"}, width_flag="resnet_width")
    if args.bert is None and not args.demo:
        args.bert = "bert-base-uncased"


def load_data(
    args: argparse.Namespace,
) -> tuple[ImageTextDataset, dict[str, ImageTextDataset], ImageTextDataset]:
    """``(train, {"val", "test"}, scoring view of train)``; see ``--score-augmented``.

    Twitter2015 has no training augmentation, so its scoring view is the same either way.
    """
    tokenizer = load_tokenizer(args.bert)
    official = args.preset == "official"
    train_records = read_split(args.dataset, args.root, "train", official=official)
    assert train_records is not None
    val_records = read_split(args.dataset, args.root, "val", official=official)
    if val_records is None and args.val_fraction > 0:
        labels = [r.label for r in train_records]
        rest, held = stratified_split(labels, args.val_fraction, args.split_seed)
        val_records = [train_records[i] for i in held]
        train_records = [train_records[i] for i in rest]
        print(f"no validation file: held out {len(held)} training pairs for model selection")

    def make(records: list[Record], train: bool, seed: int = args.seed) -> ImageTextDataset:
        return ImageTextDataset(
            args.dataset,
            records,
            tokenizer,
            train=train,
            image_size=args.image_size,
            max_length=args.max_length,
            seed=seed,
            official=official,
        )

    test_records = read_split(args.dataset, args.root, "test", official=official)
    assert test_records is not None
    evals = {"val": make(val_records, False)} if val_records is not None else {}
    evals["test"] = make(test_records, False)
    if args.score_augmented:
        score = make(train_records, True, seed=scoring_seed(args.seed))
    else:
        score = make(train_records, False)
    return make(train_records, True), evals, score


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


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Train and evaluate as the flags say; returns one row of metrics per epoch."""
    args = parse_args(argv)
    if args.demo:
        folder = demo_folder("image_text", args)
        make_image_text_demo_data(args.dataset, args.root, per_class=8, seed=args.seed)
        if args.bert is None:
            args.bert = str(make_tiny_bert(folder / "bert", seed=args.seed))
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    runtime = setup_runtime(args.device)  # joins the process group under torchrun
    try:
        return train(args, runtime.device, runtime.rank, runtime.world_size)
    finally:
        teardown_runtime(runtime)


def train(
    args: argparse.Namespace, device: torch.device, rank: int, world_size: int
) -> list[dict[str, Any]]:
    """Algorithm 1 of the paper around an ordinary training loop."""
    distributed = world_size > 1
    show = args.progress and rank == 0
    log = print if args.verbose and rank == 0 else (lambda *a, **k: None)

    # -- data --------------------------------------------------------------------------------------
    train_set, eval_sets, score_set = load_data(args)
    sizes = ", ".join(f"{len(v)} {k}" for k, v in eval_sets.items())
    print(f"{args.dataset}: {len(train_set)} train pairs, {sizes}")
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
    model = METHODS[args.method](
        build_image_text_model(
            train_set.num_classes,
            args.bert,
            resnet50=args.resnet50,
            resnet_width=args.resnet_width,
            random_init=args.random_init,
            dataset=args.dataset,
            official=args.preset == "official",
        )
    ).to(device)
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

    # -- resume ------------------------------------------------------------------------------------
    select = args.select_split if args.select_split in eval_sets else "test"
    log(f"model selection on split {select!r}" + (" (no validation split)" * (select == "test")))
    out = Path(args.out) if rank == 0 else None
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "split": select, "acc": -math.inf}
    start = 0
    stateful = {  # what last.pt holds, by key
        "model": model,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "scaler": scaler,
        "sampler": bss if bss is not None else smv,
        "scorer": scorer,
    }
    if args.resume:
        ckpt = load_training_state(args.resume, stateful)
        history, best, start = list(ckpt["history"]), dict(ckpt["best"]), ckpt["epoch"] + 1
        log(f"resumed from {args.resume} after epoch {start}")

    for epoch in range(start, args.epochs):
        tic = time.perf_counter()
        # -- Algorithm 1: score before BSS's first epoch (after --warmup-epochs of random
        #    order), then whenever the sampler asks; online, from the last epoch's batches
        t = epoch - args.warmup_epochs  # the sampler's epoch
        report = None
        valued = smv is not None and t >= 0 and smv.needs_update(t)
        if smv is not None and valued:  # SMV: every coalition's fused logits, Shapley values
            score_set.set_epoch(epoch)
            with autocast(device, args.amp):
                smv.update_values(
                    model, score_loader, forward=valuation_forward(device), progress=show
                )
        elif bss is not None and t >= 0 and bss.needs_update(t):
            if scorer is not None and t > 0:
                bss.set_scores(scorer.compute(), report=scorer.last_report)
            else:
                score_set.set_epoch(epoch)  # an augmented view draws this epoch's augmentations
                with autocast(device, args.amp):
                    bss.update_scores(model, score_loader, progress=show, **scoring)
            report = bss.last_report
        elif args.report_every and epoch % args.report_every == 0:  # report only, as BSS would
            score_set.set_epoch(epoch)
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
        train_set.set_epoch(epoch)  # this epoch's augmentations

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
            row.update(report_columns(report, epoch, ["image", "text"]))
        if smv is not None and smv.last_report is not None and valued:
            row.update(
                valuation_columns(smv.last_report, epoch, ["image", "text"], len(smv) * world_size)
            )
        history.append(row)
        log(format_row(row, list(eval_loaders)))
        if row[f"{select}_acc"] > best["acc"]:
            best = {"epoch": epoch + 1, "split": select, "acc": row[f"{select}_acc"]}
            if out is not None:
                save_checkpoint(out / "best.pt", {"model": model.state_dict(), "row": row})
                write_json(out / "best.json", {**best, "row": row})
        if out is not None:
            write_history(history, out)
            save_training_state(
                out / "last.pt", epoch, stateful, history=history, best=best, args=vars(args)
            )

    if out is not None:
        plot_run(history, out, splits=list(eval_sets), title=args.dataset)
    return history


if __name__ == "__main__":
    main()
