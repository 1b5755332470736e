"""Shared helpers for the hand-run benchmarks: timing, machine facts, JSON output, statistics.

Every speed figure in ``benchmarks/`` is a *ratio* against a baseline measured in the same process
run: the cases of one comparison are timed round-robin (the order rotated each round, so that a
burst of load from another process hits every case alike) and each case is summarised by the
median of its repetitions. Absolute seconds are recorded too, but only the ratios are meant to be
compared across machines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from statistics import mean, median, stdev
from typing import Any

import torch

__all__ = [
    "REPO_ROOT",
    "RESULTS_DIR",
    "interleaved_timings",
    "machine_info",
    "paired_difference",
    "print_table",
    "ratio_table",
    "rss_kib",
    "t_quantile",
    "write_json",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

# The benchmarks import ``bss_sampler`` and ``examples.common`` from the checkout they live in.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def run_cli(run: Callable[[bool], object], description: str, quick_help: str) -> None:
    """The command line of a benchmark script: ``--quick`` and ``--threads``, then ``run``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run(args.quick)


def machine_info() -> dict[str, Any]:
    """Facts about the machine and software that produced a result file."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "memory_gib": mem_gib,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def write_json(name: str, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (plus :func:`machine_info`) to ``benchmarks/results/<name>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine_info(), **payload}, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO_ROOT)}")
    return path


def interleaved_timings(
    cases: Mapping[str, Callable[[], object]], repeats: int, *, warmup: int = 1
) -> dict[str, dict[str, list[float]]]:
    """Time each zero-argument callable ``repeats`` times, round-robin.

    Returns ``{case: {"wall": [seconds...], "cpu": [seconds...]}}``: wall-clock time
    (``perf_counter``) and this process's CPU time (``process_time``). On a machine shared with
    other jobs the CPU time is far less sensitive to their load than the wall time (with one torch
    thread the work runs on one core either way), so both are kept.

    ``warmup`` untimed rounds run first. Round ``r`` starts at case ``r % len(cases)``, so no case
    is always first (cold caches) or always last.
    """
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in names}
    for r in range(repeats):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            wall, cpu = time.perf_counter(), time.process_time()
            cases[name]()
            times[name]["cpu"].append(time.process_time() - cpu)
            times[name]["wall"].append(time.perf_counter() - wall)
    return times


def ratio_table(
    times: Mapping[str, Mapping[str, Sequence[float]]], baseline: str
) -> dict[str, dict[str, Any]]:
    """Per case: median wall and CPU seconds, their ratios to the baseline's, the raw samples.

    ``ratio`` is the CPU-time ratio (the headline figure, see :func:`interleaved_timings`);
    ``ratio_wall`` the wall-clock one.
    """
    base_cpu, base_wall = median(times[baseline]["cpu"]), median(times[baseline]["wall"])
    return {
        name: {
            "ratio": median(t["cpu"]) / base_cpu,
            "ratio_wall": median(t["wall"]) / base_wall,
            "median_s": median(t["cpu"]),
            "median_wall_s": median(t["wall"]),
            "repeats": len(t["cpu"]),
            "cpu_s": [round(x, 6) for x in t["cpu"]],
            "wall_s": [round(x, 6) for x in t["wall"]],
        }
        for name, t in times.items()
    }


def print_table(title: str, table: Mapping[str, Mapping[str, Any]]) -> None:
    """One line per case: CPU-time ratio, wall-clock ratio and median CPU milliseconds."""
    for name, row in table.items():
        print(
            f"{title} {name}: {row['ratio']:.3f}x cpu, {row['ratio_wall']:.3f}x wall "
            f"({row['median_s'] * 1e3:.1f} ms cpu)",
            flush=True,
        )


def rss_kib() -> dict[str, int]:
    """Current resident set size and its high-water mark (KiB) from ``/proc/self/status``."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


def reset_rss_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs`` 5); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


# ---- statistics -------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)`` for ``0 <= x <= 1``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t distribution (scipy when installed, else bisection on the CDF)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    try:
        from scipy.stats import t as student_t  # optional dependency
    except ImportError:
        lo, hi = -1e3, 1e3
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
        return 0.5 * (lo + hi)
    return float(student_t.ppf(p, df))


def paired_difference(
    candidate: Sequence[float], baseline: Sequence[float], level: float = 0.95
) -> dict[str, float]:
    """Mean paired difference ``candidate - baseline`` (same seeds) and its t-based interval."""
    if len(candidate) != len(baseline):
        raise ValueError(f"paired samples differ in length: {len(candidate)} vs {len(baseline)}")
    diffs = [c - b for c, b in zip(candidate, baseline)]
    n = len(diffs)
    d_mean = mean(diffs)
    if n < 2:
        return {"mean": d_mean, "low": math.nan, "high": math.nan, "n": n}
    half = t_quantile(0.5 + level / 2.0, n - 1) * stdev(diffs) / math.sqrt(n)
    return {"mean": d_mean, "low": d_mean - half, "high": d_mean + half, "n": n}
