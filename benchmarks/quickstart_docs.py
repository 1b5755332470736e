"""The quickstart's table in `docs/quickstart.md`, written from a fresh run of the quickstart.

Runs `examples/quickstart.py` with its defaults (3 seeds, 60 epochs) into a temporary folder,
keeps the table it writes (`accuracy.md`) and the run's CPU and wall time in
`benchmarks/results/quickstart.json`, and rewrites the generated block of the docs from it.
`tests/test_docblocks.py` fails when the block and the results file disagree.

The table is exact for the torch version and the CPU kernels it records: on one thread the run
is deterministic, but another instruction set (AVX-512, or none) rounds some sums differently,
which can move a seed's result by a test sample (see `docs/quickstart.md`).

    python benchmarks/quickstart_docs.py              # about a minute of CPU
    python benchmarks/quickstart_docs.py --docs-only  # rewrite the docs block from the results
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _docblock
import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "quickstart.json"
DOCS = ROOT / "docs" / "quickstart.md"
BLOCK = "quickstart"
COMMAND = ["examples/quickstart.py"]


def measure() -> dict[str, Any]:
    """Run the quickstart; its caption, its table (rows of cells) and its CPU and wall time."""
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, *COMMAND, "--out", out],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = (Path(out) / "accuracy.md").read_text(encoding="utf-8").splitlines()
    rows = [line.strip("|").split("|") for line in lines if line.startswith("| ")]
    caption = next(line for line in lines if line.startswith("Test accuracy"))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "command": "python " + " ".join(COMMAND),
        "caption": caption,
        "table": [[cell.strip() for cell in row] for row in rows],
        "torch": str(torch.__version__),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the child's: same env
        "cpu_seconds": round(cpu),
        "wall_seconds": round(wall),
    }


def render(results: dict[str, Any]) -> str:
    """The docs block: the table, then the command and what it cost."""
    header, *rows = results["table"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        f"{results['caption']} `{results['command']}` (torch {results['torch']}, its "
        f"{results['cpu_capability']} CPU kernels): {results['cpu_seconds']} s of CPU time, "
        f"{results['wall_seconds']} s wall on 2 shared CPU cores, reports included.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs-only", action="store_true", help="only rewrite the docs block")
    args = parser.parse_args(argv)
    if not args.docs_only:
        RESULTS.write_text(json.dumps(measure(), indent=2) + "\n", encoding="utf-8")
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    _docblock.replace(DOCS, BLOCK, render(results))


if __name__ == "__main__":
    main()
