"""Audio-video classification with BSS: CREMA-D, Kinetics-Sounds or VGGSound (paper Tables 1-2).

Two ResNet18 encoders trained from scratch (1-channel log-STFT audio; frames folded into the
batch and averaged over time), a concat head and one linear head per modality, trained with the
paper's joint loss (Eq. 5) and predicted with Eq. 12. See docs/examples/audio_video.md for the
data layouts and the command lines of the paper's rows.

    python examples/audio_video.py --dataset cremad --root data/CREMA-D --sampler learned
    python examples/audio_video.py --demo        # tiny generated CREMA-D layout, seconds on CPU
    python examples/audio_video.py --demo --method smv   # SMV's re-sampling (docs/smv.md)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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
from examples.av.audio import CONVENTIONS
from examples.av.datasets import AVClipDataset, FrameSpec, cremad, kinetics_sounds, vggsound
from examples.av.demo_data import make_av_demo_data
from examples.av.resnet import AudioEncoder, VisualEncoder
from examples.common.checkpoint import load_training_state, save_checkpoint, save_training_state
from examples.common.cli import DefaultsHelpFormatter, add_common_args, check_common_args
from examples.common.evaluation import evaluate, split_batch
from examples.common.iprm import IPRMClassifier, iprm_loss
from examples.common.models import (
    ConcatClassifier,
    LateFusionClassifier,
    joint_loss,
    xavier_heads,
)
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


@dataclass(frozen=True)
class DatasetDefaults:
    """Per-dataset defaults: the community pipelines' audio/frames, the paper's batch size."""

    load: Callable[..., AVClipDataset]
    sample_rate: int
    audio_seconds: float
    frames: int
    image_size: int
    batch_size: int


DATASETS = {
    "cremad": DatasetDefaults(cremad, 22_050, 20.0, 1, 224, 64),
    "ks": DatasetDefaults(kinetics_sounds, 35_400, 10.0, 3, 224, 64),
    "vggsound": DatasetDefaults(vggsound, 35_400, 20.0, 1, 384, 16),
}

#: ``--demo``: 8 clips per class and split, 3 classes; a narrow ResNet18, small frames, short
#: audio, 20 epochs (BSS-H sees every clip from epoch 10), one CPU thread.
DEMO_SETTINGS: dict[str, Any] = {
    "width": 8,
    "frames": 2,
    "image_size": 32,
    "sample_rate": 8_000,
    "audio_seconds": 0.25,
    "batch_size": 8,
    "epochs": 20,
    "t_grow": 10,
    "progress": False,
    "threads": 1,
}


def _per_dataset(field: str) -> str:
    values = ", ".join(f"{k} {getattr(d, field)}" for k, d in DATASETS.items())
    return f"per dataset: {values}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), help="dataset layout (required, except with --demo)"
    )
    parser.add_argument("--root", help="dataset folder (layouts in the docs)")
    parser.add_argument("--demo", action="store_true", help=DEMO_HELP.format("CREMA-D"))
    parser.add_argument("--width", type=int, default=64, help="ResNet18 base width")
    parser.add_argument("--frames", type=int, help="frames per clip; " + _per_dataset("frames"))
    parser.add_argument(
        "--image-size", type=int, help="frame size in pixels; " + _per_dataset("image_size")
    )
    parser.add_argument(
        "--audio",
        choices=sorted(CONVENTIONS),
        default="bss",
        help="audio convention: "
        + "; ".join(f"{k}: {c.source}" for k, c in CONVENTIONS.items())
        + " (--sample-rate and --audio-seconds override its rate and length)",
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        help="audio sample rate (Hz); default: --audio's (bss " + _per_dataset("sample_rate") + ")",
    )
    parser.add_argument(
        "--audio-seconds",
        type=float,
        help="audio tiled to this length; default: --audio's (ogm-ge 3 s, pmr 10 s, bss "
        + _per_dataset("audio_seconds")
        + ")",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="carve a stratified validation split from train for model selection (0: none, "
        "the best epoch is then selected on test as in the released code)",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of --val-fraction")
    add_common_args(
        parser,
        methods=METHODS,
        default_out="runs/audio_video/DATASET-METHOD-SAMPLER-seedSEED",
        augmented=True,
    )
    known = peek(argv)
    if known.demo and known.dataset is None:
        parser.set_defaults(dataset="cremad")
        known.dataset = "cremad"
    if known.dataset in DATASETS:
        d = DATASETS[known.dataset]
        parser.set_defaults(
            frames=d.frames,
            image_size=d.image_size,
            batch_size=d.batch_size,
        )
    if known.demo:
        parser.set_defaults(**DEMO_SETTINGS)
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if args.dataset is None:
        parser.error("--dataset is required (or try --demo)")
    check_root(parser, args)
    convention, d = CONVENTIONS[args.audio], DATASETS[args.dataset]
    if args.sample_rate is None:  # the convention's rate and length, recorded in the run's args
        args.sample_rate = convention.sample_rate or d.sample_rate
    if args.audio_seconds is None:
        args.audio_seconds = convention.seconds or d.audio_seconds
    try:
        convention.spec(args.sample_rate, args.audio_seconds)
    except ValueError as exc:
        parser.error(
            f"--audio {args.audio} with --sample-rate {args.sample_rate} and "
            f"--audio-seconds {args.audio_seconds}: {exc}"
        )
    if args.out is None and not args.demo:
        args.out = default_out("audio_video", args)
    return resolve_preset(args)


def load_data(
    args: argparse.Namespace,
) -> tuple[AVClipDataset, dict[str, AVClipDataset], AVClipDataset]:
    """``(train, eval splits, scoring view of train)``; see ``--score-augmented``."""
    opts: dict[str, Any] = {
        "audio": CONVENTIONS[args.audio].spec(args.sample_rate, args.audio_seconds),
        "frames": FrameSpec(count=args.frames, size=args.image_size),
        "seed": args.seed,
        **args.data_options,  # --preset official: the released loader's choices
    }
    load = DATASETS[args.dataset].load
    train = load(args.root, "train", **opts)
    evals = {"test": load(args.root, "test", **opts)}
    score_seed = scoring_seed(args.seed) if args.score_augmented else None
    return hold_out_validation(
        train, evals, args.val_fraction, args.split_seed, score_seed=score_seed
    )


def build_model(num_classes: int, width: int, method: str, head_init: str = "default") -> nn.Module:
    """Audio and visual ResNet18 encoders, concat head and one linear head per modality, as
    ``--method`` trains them (`METHODS`); ``head_init="xavier"`` (``--preset official``): the
    heads initialised as the released scripts do (`xavier_heads`)."""
    encoders = {"audio": AudioEncoder(width), "visual": VisualEncoder(width)}
    dims = {k: e.out_features for k, e in encoders.items()}
    model = LateFusionClassifier(encoders, dims, num_classes)
    return METHODS[method](xavier_heads(model) if head_init == "xavier" else model)


def output_classes(num_classes: int, head_classes: int | None) -> int:
    """The heads' width: the dataset's classes, or ``head_classes`` (``--preset official``: the
    released model's fixed ``n_classes``, e.g. VGGSound's 310 for 309 classes), which must hold
    every class id."""
    if head_classes is None:
        return num_classes
    if head_classes < num_classes:
        raise ValueError(
            f"the released model has {head_classes} outputs (--preset official), the dataset "
            f"{num_classes} classes: run without --preset official"
        )
    return head_classes


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
        demo_folder("audio_video", args)
        make_av_demo_data(args.dataset, args.root, per_class=8, seed=args.seed)
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
        batch_size=eval_batch,
        sampler=DistributedSampler(score_set, world_size, rank, shuffle=False)
        if distributed
        else None,
        **loader_opts,
    )

    # -- model and optimiser (same initial weights for every sampler at a seed) --------------------
    seed_everything(args.seed)
    classes = output_classes(train_set.num_classes, args.head_classes)
    model = build_model(classes, args.width, args.method, args.head_init).to(device)
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
            row.update(report_columns(report, epoch, ["audio", "visual"]))
        if smv is not None and smv.last_report is not None and valued:
            row.update(
                valuation_columns(
                    smv.last_report, epoch, ["audio", "visual"], len(smv) * world_size
                )
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
