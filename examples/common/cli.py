"""Command-line flags shared by every example script (defaults: the paper's hyperparameters).

A leaf module: argparse only. Each script reads the parsed flags itself, in its own loop.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from bss_sampler.smv import GAP_FUNCTIONS
from examples.common.evaluation import PREDICTIONS
from examples.common.released import PAPER_ALPHA
from examples.common.smv import SMV_LEVELS

__all__ = ["DEFAULTS", "DefaultsHelpFormatter", "add_common_args", "check_common_args"]

#: The flags' defaults (the paper's hyperparameters), by destination name.
DEFAULTS: dict[str, Any] = {
    "sampler": "learned",
    "preset": "paper",
    "epochs": 100,
    "lr": 1e-2,
    "batch_size": 64,
    "eval_batch_size": None,
    "optimizer": "sgd",
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "lr_schedule": "none",
    "lr_step": 70,
    "lr_gamma": 0.1,
    "method": "joint",
    "predict": "all",
    "order": "balanced_first",
    "criteria": ("similarity", "loss"),
    "beta": None,
    "update_every": None,
    "temperature": 1.0,
    "lambda0": 0.1,
    "t_grow": 40,
    "pacing": "root",
    "rescore_every": None,
    "warmup_epochs": 0,
    "scoring": "pass",
    "score_train_mode": None,
    "report_every": 0,
    "seed": 0,
    "device": "auto",
    "amp": False,
    "workers": 0,
    "select_split": "val",
    "resume": None,
    "smv_alpha": 1.0,
    "smv_function": "linear",
}


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each flag's default in plain words: ``(default: 0.01)``, lists as ``a b``.

    Flags without a default (``None``), switches and flags whose help already names the default
    are left as written.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default in (None, "", argparse.SUPPRESS) or action.nargs == 0 or "default" in text:
            return text
        if isinstance(default, (list, tuple)):
            default = " ".join(str(v) for v in default)
        return f"{text} (default: {str(default).replace('%', '%%')})"


def _flag(group: argparse._ArgumentGroup, name: str, help: str, **kwargs: Any) -> None:
    """Add ``--name-with-dashes`` with destination ``name`` and default ``DEFAULTS[name]``."""
    group.add_argument(
        "--" + name.replace("_", "-"), dest=name, default=DEFAULTS[name], help=help, **kwargs
    )


def add_common_args(
    parser: argparse.ArgumentParser,
    *,
    methods: Iterable[str],
    default_out: str = "",
    augmented: bool = False,
    resumable: bool = True,
) -> argparse.ArgumentParser:
    """Add the training flags (defaults: the paper's hyperparameters) and ``--out``.

    ``methods``: the script's choices of ``--method`` (its own table of methods; argparse
    validates the flag against them, once). ``default_out`` describes, for ``--help``, the
    folder used when ``--out`` is not given.
    ``augmented`` (a dataset with training augmentation) adds ``--score-augmented``;
    ``resumable`` (a script that trains one run) adds ``--resume``.
    """
    g = parser.add_argument_group("training")
    g.add_argument(  # None until check_common_args: --method smv has its own order
        "--sampler",
        choices=("random", "heuristic", "learned"),
        help=f"training order: random, BSS-H or BSS-L (default: {DEFAULTS['sampler']}; "
        "not with --method smv / smv-modality, which order the epochs themselves)",
    )
    _flag(
        g,
        "preset",
        "sampler preset: the paper's or the released code's",
        choices=("paper", "official"),
    )
    _flag(g, "epochs", "training epochs T", type=int)
    _flag(g, "lr", "learning rate", type=float)
    _flag(g, "batch_size", "training batch size", type=int)
    _flag(g, "eval_batch_size", "scoring/evaluation batch size (default: --batch-size)", type=int)
    _flag(g, "optimizer", "optimiser", choices=("sgd", "adam"))
    _flag(g, "momentum", "SGD momentum", type=float)
    _flag(g, "weight_decay", "weight decay", type=float)
    _flag(g, "lr_schedule", "per-epoch schedule", choices=("none", "step", "cosine"))
    _flag(g, "lr_step", "StepLR period in epochs", type=int)
    _flag(g, "lr_gamma", "StepLR factor", type=float)
    _flag(g, "method", "training method", choices=sorted(methods))
    g.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="Eq. 5 weight of the unimodal losses, in the scores and the training loss (default: "
        f"{PAPER_ALPHA}, the paper's; with --preset official the released script's loss weights, "
        "CREMA-D 0.1 CE_multi + 0.9 sum CE_uni, the others the unweighted sum)",
    )
    _flag(
        g,
        "predict",
        "test logits: Eq. 12 (all heads) or a released-code variant",
        choices=PREDICTIONS,
    )
    g = parser.add_argument_group("BSS")
    _flag(
        g,
        "order",
        "balanced samples first (paper) or last",
        choices=("balanced_first", "imbalanced_first", "balanced_last"),
    )
    _flag(
        g,
        "criteria",
        "balance criteria (Table 3 ablation)",
        nargs="+",
        choices=("similarity", "loss"),
    )
    _flag(g, "beta", "Eq. 9 EMA weight (BSS-L; default: preset's, paper 0.6)", type=float)
    _flag(
        g,
        "update_every",
        "E, epochs between re-scorings (BSS-L; default: preset's, paper 5)",
        type=int,
    )
    _flag(g, "temperature", "Eq. 10 softmax temperature (BSS-L)", type=float)
    _flag(g, "lambda0", "Eq. 7 initial fraction (BSS-H)", type=float)
    _flag(g, "t_grow", "Eq. 7 epochs to reach all samples (BSS-H)", type=int)
    _flag(g, "pacing", "pacing function (BSS-H)", choices=("root", "linear", "baby_step"))
    _flag(g, "rescore_every", "re-rank every N epochs (BSS-H; default: scored once)", type=int)
    _flag(
        g,
        "warmup_epochs",
        "random order for the first k epochs, then score and start BSS (0: the paper)",
        type=int,
    )
    _flag(
        g,
        "scoring",
        "extra scoring pass, or online from the training batches",
        choices=("pass", "online"),
    )
    _flag(
        g,
        "score_train_mode",
        "score in train mode like the released code (default: preset's; with --preset official "
        "train mode, except Twitter2015's learned script: eval mode)",
        action=argparse.BooleanOptionalAction,
    )
    _flag(
        g,
        "report_every",
        "a report-only scoring pass every N epochs when BSS does not score (random order too): "
        "each head's training accuracy in history.csv and report.png (0: only BSS's scorings)",
        type=int,
    )
    g = parser.add_argument_group(
        "SMV (--method smv: sample level, smv-modality: modality level)",
        "SMV (Wei et al., CVPR 2024) trains the Concat model; before every epoch after "
        "--warmup-epochs of random order (released code: 5), a valuation pass gives each "
        "modality's Shapley contribution to each sample (exact over all subsets of modalities, "
        "also for three), and the epoch adds single-modality copies of the samples a modality "
        "contributes little to (3, 2, 1 copies for -0.5, 0, 0.5).",
    )
    _flag(g, "smv_alpha", "modality level: scale of the copy ratio f(gap) * alpha", type=float)
    _flag(g, "smv_function", "modality level: f of the gap", choices=sorted(GAP_FUNCTIONS))
    if augmented:
        g.add_argument(
            "--score-augmented",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="the scoring pass sees the training augmentations, as the released code's "
            "(default: on with --preset official; off otherwise: an unaugmented copy)",
        )
    g = parser.add_argument_group("run")
    _flag(g, "seed", "seed of the order and the model initialisation", type=int)
    _flag(g, "device", "auto, cpu, cuda or cuda:N", type=str)
    _flag(g, "amp", "mixed precision (fp16 on CUDA, bf16 on CPU)", action="store_true")
    _flag(g, "workers", "DataLoader worker processes", type=int)
    g.add_argument(
        "--drop-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop the last incomplete training batch (default: on with --preset official, as "
        "the released loaders; off otherwise)",
    )
    _flag(g, "select_split", "split selecting the best epoch (test when absent)", type=str)
    if resumable:
        _flag(g, "resume", "resume from this last.pt", type=str)
    g.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads; 0 leaves torch's choice (all cores), 1 is faster for tiny models",
    )
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bars")
    g.add_argument("--quiet", dest="verbose", action="store_false", help="no per-epoch lines")
    out_help = "output folder (history, checkpoints, plots)"
    if default_out:
        out_help += f"; default: {default_out}"
    g.add_argument("--out", default=None, help=out_help)
    return parser


def check_common_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject values of the training flags that argparse's types and choices let through, with
    ``parser.error`` (exit 2) naming the flag, the value and what was expected.

    Sets ``args.sampler``: the flag's value (default `DEFAULTS`'), or ``"smv"`` for the SMV
    methods, which refuse ``--sampler``, ``--scoring online`` and BSS's ``--preset official``.
    """
    if args.method in SMV_LEVELS:
        if args.sampler is not None:
            parser.error(
                f"--method {args.method} orders the epochs itself (SMVSampler): drop --sampler, "
                f"got --sampler {args.sampler}"
            )
        if args.scoring != "pass":
            parser.error(
                f"--method {args.method} values the modalities in a pass: --scoring must be "
                f"'pass', got {args.scoring!r}"
            )
        if args.preset != "paper":
            parser.error(
                f"--preset sets BSS's released choices; --method {args.method} has none: drop "
                f"--preset, got {args.preset!r}"
            )
        args.sampler = "smv"
    elif args.sampler is None:
        args.sampler = DEFAULTS["sampler"]
    if args.smv_alpha < 0:
        parser.error(f"--smv-alpha must be >= 0, got {args.smv_alpha}")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0 <= args.warmup_epochs < args.epochs:
        parser.error(
            f"--warmup-epochs must lie in [0, epochs - 1] = [0, {args.epochs - 1}], "
            f"got {args.warmup_epochs}"
        )
    if args.report_every < 0:
        parser.error(f"--report-every must be >= 0, got {args.report_every}")
    if args.scoring == "online" and args.sampler == "heuristic" and args.rescore_every:
        parser.error(
            "--scoring online needs every sample once per epoch; the heuristic sampler shows "
            f"a growing subset, so --rescore-every must be unset, got {args.rescore_every}"
        )
