"""Peak memory of `BalanceScorer.compute()` per sample, at N = 2^24 by default.

Each measurement runs in a fresh subprocess and reads the kernel's own figures for it, no
tracemalloc: the resident set (``VmRSS``) before the scorer exists, after the updates (the
steady state) and the high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs`` just
before ``compute()``) after ``compute()``. The peak per sample is ``(VmHWM - VmRSS before the
scorer) / N``: the state and everything ``compute()`` adds, as a caller sees it. Updates come
in batches of 2^20 samples (two modalities, 8 classes, float32 logits). Freed heap pages are
handed back (``malloc_trim``) before each reading, so that the update phase's garbage does not
count as the scorer's state.

``--baseline DIR`` also measures the ``bss_sampler`` package under ``DIR`` (e.g. ``git archive
main bss_sampler``), at ``--baseline-samples`` (2^20 by default: its peak at 2^24 is several GiB;
per-sample figures do not depend on N). Linux only. The result goes to
``benchmarks/results/scorer_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import _common

_CHILD = r"""
import importlib.util, json, sys, torch
torch.set_num_threads(1)
folder, n = sys.argv[1], int(sys.argv[2])
if folder:
    spec = importlib.util.spec_from_file_location(
        "bss_sampler", f"{folder}/bss_sampler/__init__.py",
        submodule_search_locations=[f"{folder}/bss_sampler"])
    module = importlib.util.module_from_spec(spec); sys.modules["bss_sampler"] = module
    spec.loader.exec_module(module)
from bss_sampler import BalanceScorer

import ctypes
trim = ctypes.CDLL("libc.so.6").malloc_trim  # hand freed heap pages back before each reading

def status(key):
    trim(0)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

batch, classes = 1 << 20, 8
g = torch.Generator().manual_seed(0)
multi = torch.randn(batch, classes, generator=g)
uni = [torch.randn(batch, classes, generator=g) for _ in range(2)]
targets = torch.randint(0, classes, (batch,), generator=g)
before = status("VmRSS")
scorer = BalanceScorer(n)
for start in range(0, n, batch):
    size = min(batch, n - start)
    scorer.update(torch.arange(start, start + size), multi[:size], [u[:size] for u in uni],
                  targets[:size])
getattr(scorer, "flush", getattr(scorer, "_flush", lambda: None))()  # run pending maths
steady = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current resident set
scores = scorer.compute()
peak = status("VmHWM")
print(json.dumps({"num_samples": n, "before_bytes": before, "steady_bytes": steady,
                  "peak_bytes": peak, "scores": len(scores)}))
"""


def measure(folder: str, num_samples: int) -> dict[str, float]:
    """One subprocess: the bytes per sample of the state and of ``compute()``'s peak."""
    env = {**os.environ, "PYTHONPATH": str(_common.REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, folder, str(num_samples)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    raw = json.loads(out.strip().splitlines()[-1])
    n = raw["num_samples"]
    result = {
        **raw,
        "steady_bytes_per_sample": (raw["steady_bytes"] - raw["before_bytes"]) / n,
        "peak_bytes_per_sample": (raw["peak_bytes"] - raw["before_bytes"]) / n,
        "compute_extra_bytes_per_sample": (raw["peak_bytes"] - raw["steady_bytes"]) / n,
    }
    print(
        f"{folder or 'this checkout'} at N = {n}: steady {result['steady_bytes_per_sample']:.1f} "
        f"B/sample, compute() peak {result['peak_bytes_per_sample']:.1f} B/sample",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1 << 24, help="N for this checkout")
    parser.add_argument("--baseline", metavar="DIR", help="also measure bss_sampler under DIR")
    parser.add_argument("--baseline-samples", type=int, default=1 << 20, help="N for DIR")
    args = parser.parse_args()
    if not Path("/proc/self/clear_refs").exists():
        raise SystemExit("bench_memory needs Linux's /proc/self/clear_refs")
    payload: dict[str, object] = {
        "benchmark": "scorer_memory",
        "what": "BalanceScorer.compute() peak resident bytes per sample (VmHWM), 2 modalities",
        "ours": measure("", args.samples),
    }
    if args.baseline:
        payload["baseline_dir"] = args.baseline
        payload["baseline"] = measure(args.baseline, args.baseline_samples)
    _common.write_json("scorer_memory", payload)


if __name__ == "__main__":
    main()
