"""Run every benchmark: ``benchmarks/results/*.json`` (+ PNGs, ``quality.md``, ``when.md``).

    python benchmarks/run_all.py --quick   # cost + quality, about 10-15 minutes on 2 CPU cores
    python benchmarks/run_all.py --quick --with when   # adds the ordering study (+ ~10 min)
    python benchmarks/run_all.py --quick --with loading   # adds the loading study (+ ~1 min)
    python benchmarks/run_all.py           # full: N up to 2**27, 10 seeds (hours on 2 cores)

Run by hand, never as a timed test. Every speed figure is a ratio against a baseline timed in the
same process (see ``_common.py``). Torch runs with one intra-op thread unless ``--threads``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import _common  # noqa: F401  (puts the repository root on sys.path)
import bench_order
import bench_quality
import bench_scoring
import bench_training
import bench_when
import torch
from _tasks import DATASETS


def _loading(quick: bool) -> object:
    import bench_loading  # imported here: it needs the audio extra (soundfile, soxr)

    return bench_loading.run(24 if quick else 48, 3 if quick else 5, [500.0, 1000.0, 2000.0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--skip", default="", help="comma-separated: order,scoring,training,quality"
    )
    parser.add_argument(
        "--with",
        dest="extra",
        default="",
        help="comma-separated optional studies: when, loading (needs the audio extra)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(","))) | (
        {"when", "loading"} - set(args.extra.split(","))
    )
    bench_quality.register_iprm_rows()
    steps: dict[str, Callable[[], object]] = {
        "order": lambda: bench_order.run(args.quick),
        "scoring": lambda: bench_scoring.run(args.quick),
        "training": lambda: bench_training.run(args.quick),
        "quality": lambda: bench_quality.run(
            args.quick,
            2 if args.quick else None,
            list(bench_quality.QUALITY_METHODS),
            list(DATASETS),
        ),
        "when": lambda: bench_when.run(args.quick, None, 1),
        "loading": lambda: _loading(args.quick),
    }
    for name, step in steps.items():
        if name in skip:
            continue
        tic = time.perf_counter()
        step()
        print(f"== {name} done in {time.perf_counter() - tic:.0f} s", flush=True)


if __name__ == "__main__":
    main()
