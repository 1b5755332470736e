"""Cost of one epoch order: build it and iterate it fully, against ``RandomSampler``.

For each dataset size ``N`` this times, round-robin in one process (see ``_common``):

* ``random``: ``torch.utils.data.RandomSampler`` (``randperm`` + ``tolist``), the baseline;
* ``multinomial``: ``torch.multinomial(softmax(s), N, replacement=False)`` + ``tolist``, the
  released code's weighted permutation (only where torch accepts it, ``N <= 2**24``);
* ``learned``: ``LearnedBalanceSampler`` (``set_epoch`` + full iteration; scores already set);
* ``heuristic``: ``HeuristicCurriculumSampler`` at ``lambda = 1`` (``lambda0=1.0``), same timing.

Each timed call consumes the whole epoch with ``collections.deque(iterable, maxlen=0)``, the
cheapest consumer Python has, so the ratios are as harsh as they can be; a DataLoader adds the
same per-index collation cost to every sampler. An epoch right after ``set_scores`` (the heuristic
sampler's ranking sort, the learned sampler's EMA) is timed separately against the same baseline.

Peak memory is measured in a fresh subprocess per (sampler, N): after building the scores and the
sampler, the RSS high-water mark is reset (Linux ``/proc/self/clear_refs``); then ``set_scores``
(for the BSS samplers), ``set_epoch`` and one full iteration run and the new high-water mark minus
the RSS before them is the peak extra memory, divided by ``N``. Large tensors are ``mmap``-ed by the
allocator and returned to the OS when freed, so RSS tracks them; Python ints produced by
``tolist()`` are counted as well (they are real memory a DataLoader also pays for).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import _common
import torch
from torch.utils.data import RandomSampler

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler

MULTINOMIAL_LIMIT = 2**24
SIZES_QUICK = (10**4, 10**5, 10**6)
SIZES_FULL = (10**4, 10**5, 10**6, 10**7, 2**27)
MEMORY_SIZES_QUICK = (10**6,)
MEMORY_SIZES_FULL = (10**6, 10**7, 2**27)
KINDS = ("random", "multinomial", "learned", "heuristic")


def _consume(iterable: Iterable[int]) -> None:
    deque(iterable, maxlen=0)


def _scores(n: int) -> torch.Tensor:
    """Balance scores as the scorer produces them: float32 in [-1, 1]."""
    g = torch.Generator().manual_seed(1234)
    return torch.rand(n, generator=g).mul_(2.0).sub_(1.0)


def _make_sampler(
    kind: str, n: int
) -> RandomSampler | LearnedBalanceSampler | HeuristicCurriculumSampler:
    data = range(n)
    if kind == "random":
        return RandomSampler(data, generator=torch.Generator().manual_seed(0))
    if kind == "learned":
        return LearnedBalanceSampler(data, seed=0)
    if kind == "heuristic":
        return HeuristicCurriculumSampler(data, lambda0=1.0, seed=0)
    raise ValueError(f"kind must be 'random', 'learned' or 'heuristic', got {kind!r}")


def _epoch_case(sampler: object) -> Callable[[], None]:
    epoch = [0]

    def run() -> None:
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch[0])
            epoch[0] += 1
        _consume(sampler)  # type: ignore[arg-type]

    return run


def _multinomial_case(scores: torch.Tensor) -> Callable[[], None]:
    probs = torch.softmax(scores, dim=0)
    g = torch.Generator().manual_seed(0)

    def run() -> None:
        _consume(torch.multinomial(probs, len(probs), replacement=False, generator=g).tolist())

    return run


def time_epochs(n: int, repeats: int) -> dict[str, dict[str, float]]:
    """Epoch cost of every kind at size ``n``; ratios against ``random``."""
    scores = _scores(n)
    cases: dict[str, Callable[[], None]] = {"random": _epoch_case(_make_sampler("random", n))}
    if n <= MULTINOMIAL_LIMIT:
        cases["multinomial"] = _multinomial_case(scores)
    for kind in ("learned", "heuristic"):
        sampler = _make_sampler(kind, n)
        sampler.set_scores(scores)  # type: ignore[union-attr]
        cases[kind] = _epoch_case(sampler)
    # One warm-up round: first-touch page faults, and the heuristic sampler's lazy ranking sort.
    table = _common.ratio_table(_common.interleaved_timings(cases, repeats), "random")
    del cases
    gc.collect()
    return table


def time_rescored_epoch(n: int, repeats: int) -> dict[str, dict[str, float]]:
    """``set_scores`` followed by one full epoch (an epoch right after re-scoring), vs ``random``.

    The heuristic sampler ranks lazily, so its sort lands in this first epoch; the learned
    sampler applies the Eq. 9 EMA in ``set_scores``.
    """
    scores = _scores(n)
    cases: dict[str, Callable[[], None]] = {"random": _epoch_case(_make_sampler("random", n))}
    for kind in ("learned", "heuristic"):
        sampler = _make_sampler(kind, n)
        epoch = _epoch_case(sampler)

        def rescored(s: object = sampler, run_epoch: Callable[[], None] = epoch) -> None:
            s.set_scores(scores)  # type: ignore[attr-defined]
            run_epoch()

        cases[kind] = rescored
    return _common.ratio_table(_common.interleaved_timings(cases, repeats), "random")


def memory_child(kind: str, n: int) -> dict[str, Any]:
    """Run in a fresh process: peak extra RSS of ``set_scores`` + one full epoch."""
    scores = _scores(n)
    sampler = _make_sampler(kind, n)
    gc.collect()
    if not _common.reset_rss_peak():
        raise RuntimeError("cannot reset the RSS high-water mark (/proc/self/clear_refs)")
    before = _common.rss_kib()["VmRSS"]
    if kind != "random":
        sampler.set_scores(scores)  # type: ignore[union-attr]
    _epoch_case(sampler)()
    peak = _common.rss_kib()["VmHWM"]
    extra = (peak - before) * 1024
    return {"kind": kind, "n": n, "peak_extra_bytes": extra, "bytes_per_sample": extra / n}


def measure_memory(kind: str, n: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--memory-child", kind, str(n)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def repeats_for(n: int, quick: bool) -> int:
    if n <= 10**5:
        return 11 if quick else 31
    if n <= 10**6:
        return 5 if quick else 11
    return 5 if n <= 10**7 else 3


def run(quick: bool) -> dict[str, object]:
    sizes = SIZES_QUICK if quick else SIZES_FULL
    epochs: dict[str, dict[str, dict[str, float]]] = {}
    rescored: dict[str, dict[str, dict[str, float]]] = {}
    for n in sizes:
        epochs[str(n)] = time_epochs(n, repeats_for(n, quick))
        _common.print_table(f"epoch order N={n}", epochs[str(n)])
        if n <= 10**7:
            rescored[str(n)] = time_rescored_epoch(n, repeats_for(n, quick))
            _common.print_table(f"epoch after set_scores N={n}", rescored[str(n)])
    memory = []
    for n in MEMORY_SIZES_QUICK if quick else MEMORY_SIZES_FULL:
        for kind in ("random", "learned", "heuristic"):
            memory.append(measure_memory(kind, n))
            print(f"memory {kind} N={n}: {memory[-1]['bytes_per_sample']:.1f} B/sample", flush=True)
    payload: dict[str, object] = {
        "benchmark": "epoch_order",
        "mode": "quick" if quick else "full",
        "consumer": "collections.deque(iter(sampler), maxlen=0)",
        "epoch": epochs,
        "epoch_after_set_scores": rescored,
        "memory": memory,
    }
    _common.write_json("epoch_order", payload)
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes up to 1e6 only")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--memory-child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child[0], int(args.memory_child[1]))))
        return
    run(args.quick)


if __name__ == "__main__":
    main()
