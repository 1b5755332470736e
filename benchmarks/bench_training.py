"""End-to-end training overhead of BSS against random order, with the benchmarks' training loop.

``_harness.fit`` (the benchmarks' training loop) trains the same two-view CNN (``load_digits``
top / bottom halves, batch 64, SGD) for the same number of epochs, with no evaluation split (so
that only training and scheduling are timed), under four orders, timed round-robin in one
process:

* ``random``: shuffled order (the loop's ``DistributedSampler(shuffle=True)``), the baseline;
* ``learned_pass``: ``LearnedBalanceSampler`` (paper preset, E=5), a full sequential scoring pass
  before epoch 0 and every E epochs;
* ``learned_online``: the same sampler scored online from the training step's logits (one initial
  pass, then ``BalanceScorer.update`` in the loop in the epochs before each update);
* ``heuristic``: ``HeuristicCurriculumSampler`` at ``lambda0=1`` (all samples every epoch, so the
  work equals random order's and only the scheduling costs), scored once before epoch 0.

Each case builds a fresh model from the same seed; the figure is the median wall time of
``fit`` over the repetitions, as a ratio to ``random``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import _common
import torch
from _harness import TrainConfig, fit
from _tasks import cnn_classifier, digits_halves

CASES: dict[str, dict[str, object]] = {
    "random": {"sampler": "random"},
    "learned_pass": {"sampler": "learned", "scoring": "pass"},
    "learned_online": {"sampler": "learned", "scoring": "online"},
    "heuristic": {"sampler": "heuristic", "lambda0": 1.0},
}


def run(quick: bool, channels: int = 32) -> dict[str, object]:
    splits = digits_halves(images=True)
    epochs = 10 if quick else 20
    base = TrainConfig(epochs=epochs, device="cpu", progress=False, verbose=False, seed=0)

    def case(overrides: dict[str, object]) -> Callable[[], object]:
        cfg = replace(base, **overrides)  # type: ignore[arg-type]

        def train() -> object:
            torch.manual_seed(0)
            return fit(cnn_classifier(splits, channels), splits.train, {}, cfg)

        return train

    cases = {name: case(overrides) for name, overrides in CASES.items()}
    repeats = 3 if quick else 5
    table = _common.ratio_table(_common.interleaved_timings(cases, repeats), "random")
    _common.print_table(f"training {epochs} epochs", table)
    payload: dict[str, object] = {
        "benchmark": "training_overhead",
        "mode": "quick" if quick else "full",
        "dataset": f"load_digits top/bottom halves, train split ({len(splits.train)} items)",
        "model": f"two-view CNN, widths {channels}/{2 * channels}, late fusion",
        "epochs": epochs,
        "config": {"batch_size": base.batch_size, "optimizer": base.optimizer, "lr": base.lr},
        "cases": CASES,
        "timings": table,
    }
    _common.write_json("training_overhead", payload)
    return payload


def main() -> None:
    _common.run_cli(run, __doc__.splitlines()[0], "10 epochs, 3 repetitions")


if __name__ == "__main__":
    main()
