"""Cost of one scoring pass, against a bare ``torch.inference_mode()`` forward loop.

Same model (a small two-view CNN with BatchNorm on ``load_digits`` top / bottom halves), same
sequential ``DataLoader`` (batch 64, the mapping items of ``examples.common``), timed round-robin
in one process; median of the repetitions. Five cases:

* ``forward``: ``model.eval()`` and a bare forward loop under ``torch.inference_mode()``: the
  floor any scoring pass pays (the baseline);
* ``forward_train``: the same loop in ``model.train()`` (BatchNorm normalises by the batch's
  statistics and moves its running ones), on a copy of the model;
* ``forward_autograd``: the same loop in eval mode with autograd on (the graph is recorded and
  dropped): with ``forward_train``, what the released style's two differences cost apart;
* ``update_scores``: ``LearnedBalanceSampler.update_scores(model, loader)`` (scorer on the
  model's device, one host copy at the end, global min-max normalisation);
* ``released_style``: the released scripts' way, written out below as a reference: train mode,
  autograd on, a host copy and ``tolist()`` per batch, min-max normalisation over Python lists.

``--baseline DIR`` adds a fourth case, ``update_scores_baseline``: the same call on another
version of the library, e.g. the commit before a change (``mkdir DIR && git archive REV
bss_sampler | tar -x -C DIR``), imported under another name, so that before and after are timed
round-robin in one process. ``--runs N`` repeats the whole measurement N times in one process
and keeps every run, to show how much the ratios move from run to run on a shared machine.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import itertools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from statistics import median
from types import ModuleType
from typing import Any

import _common
import torch
import torch.nn.functional as F
from _tasks import cnn_classifier, digits_halves, unimodal_inputs
from torch import Tensor, nn
from torch.utils.data import DataLoader

from bss_sampler import LearnedBalanceSampler


def bare_forward(model: nn.Module, loader: Iterable[Mapping[str, Tensor]]) -> None:
    """The baseline: eval mode, inference mode, forward only, nothing kept."""
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            model(**unimodal_inputs(dict(batch)))


def bare_forward_train(model: nn.Module, loader: Iterable[Mapping[str, Tensor]]) -> None:
    """Train mode (BatchNorm on batch statistics), inference mode, forward only."""
    model.train()
    with torch.inference_mode():
        for batch in loader:
            model(**unimodal_inputs(dict(batch)))


def bare_forward_autograd(model: nn.Module, loader: Iterable[Mapping[str, Tensor]]) -> None:
    """Eval mode with autograd on: the graph of each batch is recorded, then dropped."""
    model.eval()
    with torch.enable_grad():
        for batch in loader:
            model(**unimodal_inputs(dict(batch)))


def released_style_scores(
    model: nn.Module, loader: Iterable[Mapping[str, Tensor]], alpha: float = 0.2
) -> Tensor:
    """Balance scores computed the way the released scripts do it (reference, not the library).

    Train mode with autograd on (BatchNorm statistics move), softmax cosine similarity (mean over
    modality pairs), the Eq. 5 loss per sample, a host copy per batch into Python lists, then
    min-max normalisation over the lists with no guard for ``max == min``.
    """
    model.train()
    sims: list[float] = []
    losses: list[float] = []
    for batch in loader:
        targets = batch["target"]
        multi, uni = model(**unimodal_inputs(dict(batch)))
        probs = [F.softmax(u, dim=1) for u in uni]
        pairs = list(itertools.combinations(probs, 2))
        sim = sum((F.cosine_similarity(a, b, dim=1) for a, b in pairs), torch.zeros(())) / len(
            pairs
        )
        loss = (1 - alpha) * F.cross_entropy(multi, targets, reduction="none")
        loss = loss + alpha * sum(F.cross_entropy(u, targets, reduction="none") for u in uni)
        sims += sim.detach().cpu().tolist()
        losses += loss.detach().cpu().tolist()
    s_min, s_max, l_min, l_max = min(sims), max(sims), min(losses), max(losses)
    scores = [
        (s - s_min) / (s_max - s_min) - (q - l_min) / (l_max - l_min) for s, q in zip(sims, losses)
    ]
    return torch.tensor(scores)


def load_baseline(folder: str) -> ModuleType:
    """The ``bss_sampler`` package under ``folder``, imported as ``bss_sampler_baseline``."""
    package = Path(folder) / "bss_sampler"
    spec = importlib.util.spec_from_file_location(
        "bss_sampler_baseline", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no bss_sampler package under {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def time_scoring(
    channels: int, repeats: int, batch_size: int, baseline: ModuleType | None = None
) -> dict[str, object]:
    """The cases for a CNN of width ``channels``; ratios against ``forward``."""
    torch.manual_seed(0)
    splits = digits_halves(images=True)
    model = cnn_classifier(splits, channels)
    reference_model = copy.deepcopy(model)  # train mode moves BatchNorm statistics
    train_model = copy.deepcopy(model)
    loader = DataLoader(splits.train, batch_size=batch_size, shuffle=False)
    sampler = LearnedBalanceSampler(splits.train)
    cases: dict[str, Callable[[], object]] = {
        "forward": lambda: bare_forward(model, loader),
        "forward_train": lambda: bare_forward_train(train_model, loader),
        "forward_autograd": lambda: bare_forward_autograd(model, loader),
        "update_scores": lambda: sampler.update_scores(model, loader, progress=False),
        "released_style": lambda: released_style_scores(reference_model, loader),
    }
    if baseline is not None:
        base_sampler = baseline.LearnedBalanceSampler(splits.train)
        cases["update_scores_baseline"] = lambda: base_sampler.update_scores(
            model, loader, progress=False
        )
    table = _common.ratio_table(_common.interleaved_timings(cases, repeats), "forward")
    ours, ref = table["update_scores"]["median_s"], table["released_style"]["median_s"]
    _common.print_table(f"scoring pass, width {channels},", table)
    print(f"released-style scoring takes {ref / ours:.2f}x the time of update_scores", flush=True)
    result: dict[str, object] = {
        "channels": channels,
        "forward_ms_per_batch": 1e3 * table["forward"]["median_s"] / len(loader),
        "timings": table,
        "released_style_over_update_scores": ref / ours,
    }
    if baseline is not None:
        before = table["update_scores_baseline"]["median_s"]
        result["update_scores_over_baseline"] = ours / before
        print(f"update_scores takes {ours / before:.3f}x the time of the baseline's", flush=True)
    return result


def run(
    quick: bool,
    batch_size: int = 64,
    baseline: str | None = None,
    runs: int = 1,
    name: str = "scoring_pass",
) -> dict[str, object]:
    """Time every width ``runs`` times; written to ``results/<name>.json`` (``widths``: the last
    run, ``runs``: all of them when there are several)."""
    base = None if baseline is None else load_baseline(baseline)
    repeats = 7 if quick else 21
    all_runs = [[time_scoring(c, repeats, batch_size, base) for c in (32, 96)] for _ in range(runs)]
    payload: dict[str, object] = {
        "benchmark": "scoring_pass",
        "mode": "quick" if quick else "full",
        "dataset": "load_digits top/bottom halves (1, 4, 8), train split",
        "model": "two-view CNN (2 conv + BatchNorm per view, widths c and 2c), late fusion",
        "batch_size": batch_size,
        "baseline": baseline,
        "widths": all_runs[-1],
    }
    if runs > 1:
        payload["runs"] = all_runs
        payload["ratio_ranges"] = ratio_ranges(all_runs)
    _common.write_json(name, payload)
    return payload


def ratio_ranges(runs: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, list[float]]]:
    """Per width and case: the CPU-time ratio to ``forward`` of each run, then [min, median,
    max] over the runs (``released_style/update_scores`` too)."""
    out: dict[str, dict[str, list[float]]] = {}
    for i, first in enumerate(runs[0]):
        ratios: dict[str, list[float]] = {
            case: [run[i]["timings"][case]["ratio"] for run in runs] for case in first["timings"]
        }
        ratios["released_style/update_scores"] = [
            run[i]["released_style_over_update_scores"] for run in runs
        ]
        out[f"width {first['channels']}"] = {
            case: [round(min(r), 3), round(median(r), 3), round(max(r), 3)]
            for case, r in ratios.items()
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--baseline", metavar="DIR", help="also time the bss_sampler package under DIR"
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole measurement")
    parser.add_argument("--name", default="scoring_pass", help="write benchmarks/results/NAME.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run(args.quick, baseline=args.baseline, runs=args.runs, name=args.name)


if __name__ == "__main__":
    main()
