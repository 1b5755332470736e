"""Which Python, torch, numpy and typing-extensions the package is tested on: the core tests.

For every interpreter given (default: each CPython >= the declared `requires-python` under
`~/.pyenv/versions`), two combinations: the *lowest* version of each dependency (torch, numpy,
typing-extensions) the registry serves for that interpreter at or above its declared lower bound,
and the *newest* it serves. Each runs in its own fresh venv: the wheel built from this checkout
(not editable) with its `test` extra, and the core tests (`tests/test_*.py`) run from outside the
checkout, so the installed wheel is what is tested. Results go to `benchmarks/results/compat.json`
(merged: a run of some combinations keeps the others' rows) and into the table of
`docs/installation.md`.

    python benchmarks/compat.py                     # every combination (about 10 min each here)
    python benchmarks/compat.py --only 3.9-lowest --only 3.13-newest
    python benchmarks/compat.py --docs-only         # rewrite the docs table from the results

The registry's torch wheels for Linux are CUDA builds (2-4 GB with their nvidia packages); the
venvs live under `--workdir` and each is deleted after its run. pip here may carry a constraints
file that caps torch: the script runs pip with no config file (`PIP_CONFIG_FILE=/dev/null`) so
that the registry's own newest is what gets installed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import _docblock

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "compat.json"
DOCS = ROOT / "docs" / "installation.md"
BLOCK = "compat"
SELF_TEST = "test_docblocks.py"
DEPENDENCIES = ("torch", "numpy", "typing-extensions")
WHEELS_ONLY = {"torch"}  # publishes no sdists: every version `pip index` lists has wheels
PIP_ENV = {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
SUMMARY = re.compile(r"^=*\s*(.*\d+ (?:passed|failed).*?) in [\d.]+s", re.MULTILINE)
# pytest's short test summary (`-rfE`): `FAILED path::test[id] - message` or `ERROR ...`.
# A test id's parameters may hold spaces and " - ": they end at a "]" before " - " or the end.
SHORT = re.compile(
    r"^(FAILED|ERROR) \S*?(tests/[^\s\[]+(?:\[.*?\](?= - |$))?)(?: - (.*))?$", re.MULTILINE
)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def _short(version: str) -> str:
    return ".".join(version.split(".")[:2])


MARKER = re.compile(r"""^python_version\s*>=\s*["'](\d+(?:\.\d+)*)["']$""")


def declared(
    python: tuple[int, ...] | None = None,
) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    """The `requires-python` and the `>=` lower bound of each dependency in pyproject.toml.

    ``python``: the interpreter's version, for which a requirement with a
    ``python_version >= "X.Y"`` marker also counts (e.g. ``torch>=2.6`` on Python 3.13); without
    it, only the unconditional bounds.
    """
    import tomllib  # Python 3.11: the script runs there; tests import `render` on older ones

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bounds: dict[str, tuple[int, ...]] = {}
    for requirement in project["dependencies"]:
        spec, _, marker = (part.strip() for part in requirement.partition(";"))
        if marker:
            match = MARKER.match(marker)
            if match is None:
                raise ValueError(f"compat.py reads only python_version >= markers: {requirement}")
            if python is None or python[:2] < _version(match.group(1))[:2]:
                continue
        name, _, bound = spec.partition(">=")
        bounds[name.strip()] = max(bounds.get(name.strip(), ()), _version(bound))
    minimum = _version(project["requires-python"].removeprefix(">="))
    return minimum, {name: bounds[name] for name in DEPENDENCIES}


def _run(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **PIP_ENV}
    return subprocess.run(list(cmd), env=env, capture_output=True, text=True, **kwargs)


@functools.cache  # one `pip index` per interpreter and name: `pick` and the raises reuse it
def served(python: Path, name: str) -> list[str]:
    """The versions of `name` with a wheel for `python`'s interpreter, newest first."""
    # Run with the interpreter itself, so that pip filters by its tags.
    done = _run([str(python), "-m", "pip", "index", "versions", name, "--only-binary=:all:"])
    match = re.search(r"Available versions: (.*)", done.stdout)
    if match is None:
        raise RuntimeError(f"pip index versions {name} failed for {python}: {done.stderr}")
    return [v.strip() for v in match.group(1).split(",") if "+" not in v]


def has_wheel(python: Path, name: str, version: str) -> bool:
    """Whether a wheel of `name==version` installs on `python` (`pip index` counts sdists too)."""
    if name in WHEELS_ONLY:
        return True
    pip = [str(python), "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed"]
    return _run([*pip, "--only-binary=:all:", f"{name}=={version}"]).returncode == 0


def pinned(pins: Mapping[str, str]) -> list[str]:
    """``name==version`` requirements for pip."""
    return [f"{name}=={version}" for name, version in pins.items()]


def installs(python: Path, pins: Mapping[str, str]) -> bool:
    """Whether `pins` (name -> version) install together (a dry run)."""
    pip = [str(python), "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q"]
    return _run([*pip, "--only-binary=:all:", *pinned(pins)]).returncode == 0


def pick(python: Path, bounds: dict[str, tuple[int, ...]]) -> dict[str, dict[str, str]]:
    """The lowest (at or above each bound) and the newest version served, per dependency.

    The lowest versions must also install together: a dependency below what the lowest torch
    requires (torch 2.2.0 asks `typing-extensions>=4.8.0`) is raised to the lowest version
    served that installs beside that torch.
    """
    picks: dict[str, dict[str, str]] = {"lowest": {}, "newest": {}}
    ascending: dict[str, list[str]] = {}
    for name, bound in bounds.items():
        ascending[name] = [v for v in reversed(served(python, name)) if _version(v) >= bound]
        newest = next((v for v in reversed(ascending[name]) if has_wheel(python, name, v)), None)
        lowest = next((v for v in ascending[name] if has_wheel(python, name, v)), None)
        if newest is None or lowest is None:
            raise RuntimeError(f"no {name} >= {bound} has a wheel for {python}")
        picks["newest"][name], picks["lowest"][name] = newest, lowest
    lowest_pins = picks["lowest"]
    if not installs(python, lowest_pins):
        torch_pin = {"torch": lowest_pins["torch"]}
        for name in bounds:
            if name != "torch":
                later = ascending[name][ascending[name].index(lowest_pins[name]) :]
                lowest_pins[name] = next(
                    (v for v in later if installs(python, {**torch_pin, name: v})),
                    lowest_pins[name],
                )
    return picks


MODULES = {"torch": "torch", "numpy": "numpy", "typing-extensions": "typing_extensions"}


def culprit(traceback: str) -> str | None:
    """The dependency (not torch) whose own code raised in ``traceback``, from its last frame
    inside an installed package; ``None`` when it was torch or something else."""
    packages = re.findall(r"site-packages/(\w+)", traceback)
    by_module = {module: name for name, module in MODULES.items() if name != "torch"}
    return by_module.get(packages[-1]) if packages else None


def raise_until_importable(
    python: Path, venv_python: Path, pins: dict[str, str]
) -> tuple[list[str], str | None]:
    """Raise a dependency the installed torch cannot import beside, one served version at a time
    (typing-extensions 4.8.0 installs beside torch 2.5.0 on Python 3.13, but typing-extensions
    supports 3.13 only from 4.12), updating ``pins``: what was raised and why, one line per
    dependency, and the last import error if the imports never worked."""
    first: dict[str, tuple[str, str]] = {}  # name -> (the version pinned, its import error)
    pip = [str(venv_python), "-m", "pip", "install", "-q"]
    error: str | None = "gave up after 30 raises"
    for _ in range(30):
        done = _run([str(venv_python), "-c", f"import {', '.join(MODULES.values())}"])
        if done.returncode == 0:
            error = None
            break
        name = culprit(done.stderr)
        newer = (
            []
            if name is None
            else [v for v in reversed(served(python, name)) if _version(v) > _version(pins[name])]
        )
        if name is None or not newer or _run([*pip, f"{name}=={newer[0]}"]).returncode != 0:
            error = done.stderr[-2000:]
            break
        first.setdefault(name, (pins[name], done.stderr.strip().splitlines()[-1]))
        pins[name] = newer[0]
    raised = [
        f"{name} {pinned} -> {pins[name]}: torch {pins['torch']} does not import beside the "
        f"versions below ({message})"
        for name, (pinned, message) in first.items()
    ]
    return raised, error


def run_one(
    python: Path, pins: dict[str, str], wheel: Path, workdir: Path, *, lowest: bool = False
) -> dict[str, Any]:
    """Install `pins` and the wheel into a fresh venv and run the core tests from outside.

    ``lowest``: a dependency torch does not import beside is raised (`raise_until_importable`);
    the versions in the result are those tested.
    """
    venv = Path(tempfile.mkdtemp(dir=workdir))
    started = time.monotonic()
    try:
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        installed = _run([*pip, *pinned(pins), f"{wheel}[test]"])
        if installed.returncode != 0:
            return {"status": "install failed", "log": installed.stderr[-2000:]}
        pins = dict(pins)
        raised: list[str] = []
        if lowest:
            raised, error = raise_until_importable(python, venv / "bin" / "python", pins)
            if error is not None:
                return {"status": "import failed", **pins, "raised": raised, "log": error}
        # test_docblocks.py checks this checkout's docs against the results file that this
        # script is in the middle of rewriting; CI runs it.
        tests = [str(p) for p in sorted((ROOT / "tests").glob("test_*.py")) if p.name != SELF_TEST]
        cmd = [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider"]
        done = subprocess.run(
            [*cmd, *tests],
            cwd=venv,
            env=run_env(os.environ),
            capture_output=True,
            text=True,
        )
        return {
            "status": "passed" if done.returncode == 0 else f"pytest exit {done.returncode}",
            **pins,
            **({"raised": raised} if raised else {}),
            **outcome(done.stdout),
            # pytest's own report of what failed (a fixture's error may have no one-line message)
            **({} if done.returncode == 0 else {"log": (done.stdout + done.stderr)[-6000:]}),
            "minutes": round((time.monotonic() - started) / 60, 1),
        }
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def run_env(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` for the test run, less `PYTHONPATH`: one naming a checkout would test that
    checkout, not the installed wheel (`test_the_tested_package_is_the_installed_one` fails)."""
    kept = {name: value for name, value in environ.items() if name != "PYTHONPATH"}
    return {**kept, "BSS_SAMPLER_INSTALLED": "1", "MPLBACKEND": "Agg"}


def outcome(stdout: str) -> dict[str, Any]:
    """pytest's counts, the tests that failed or errored, and each one's short-summary line."""
    summary = SUMMARY.findall(stdout)
    short = SHORT.findall(stdout)
    return {
        "summary": summary[-1] if summary else stdout[-500:],
        "failures": [test for _, test, _ in short],
        "details": [f"{kind} {test}: {message}"[:300] for kind, test, message in short],
    }


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("bss_sampler-*.whl")
    return wheel


def interpreters(minimum: tuple[int, ...]) -> list[Path]:
    found = []
    for path in sorted((Path.home() / ".pyenv" / "versions").glob("3.*/bin/python3")):
        if _version(path.parent.parent.name)[:2] >= minimum[:2]:
            found.append(path)
    return sorted(found, key=lambda p: _version(p.parent.parent.name))


def render(results: dict[str, Any]) -> str:
    """The Markdown table of `results` (the generated block of the docs)."""
    lines = [
        f"| Python | versions | {' | '.join(DEPENDENCIES)} | core tests |",
        "|---|---|" + "---|" * len(DEPENDENCIES) + "---|",
    ]
    for row in results["runs"]:
        outcome = row.get("summary", "")
        if row["status"] != "passed":
            failed = ", ".join(
                f"`tests/{f.split('tests/', 1)[-1]}`" for f in row.get("failures", [])
            )
            outcome = f"**{row['status']}**: {outcome}; {failed or 'see the results file'}"
        if row.get("raised"):
            outcome += "; raised: " + "; ".join(row["raised"])
        # A row from before a dependency was compared installed whatever pip chose: "-".
        pins = " | ".join(row.get(name, "-") for name in DEPENDENCIES)
        lines.append(f"| {row['python']} | {row['which']} | {pins} | {outcome} |")
    lines.append("")
    lines.append(f"Run on {results['machine']}, {results['date']}.")
    return "\n".join(lines) + "\n"


def write_docs(results: dict[str, Any]) -> None:
    _docblock.replace(DOCS, BLOCK, render(results))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", type=Path, action="append", help="interpreter (repeatable)")
    parser.add_argument("--only", action="append", help="run only e.g. 3.9-lowest (repeatable)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--docs-only", action="store_true", help="only rewrite the docs table")
    args = parser.parse_args(argv)

    results: dict[str, Any] = (
        json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {"runs": []}
    )
    if args.docs_only:
        write_docs(results)
        return
    minimum, bounds = declared()
    wheel = build_wheel(Path(tempfile.mkdtemp(dir=args.workdir)))
    rows = {(_short(row["python"]), row["which"]): row for row in results["runs"]}
    for python in args.python or interpreters(minimum):
        version = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        short = _short(version)
        for which, pins in pick(python, declared(_version(version))[1]).items():
            if args.only and f"{short}-{which}" not in args.only:
                continue
            print(f"Python {version} {which}: {pins}", flush=True)
            row = {"python": version, "which": which, **pins}
            row.update(run_one(python, pins, wheel, args.workdir, lowest=which == "lowest"))
            print(f"  {row['status']}: {row.get('summary', '')}", flush=True)
            rows[(short, which)] = row
            results = {
                "machine": f"{platform.machine()} Linux, CPU only",
                "date": time.strftime("%Y-%m-%d"),
                "declared": {"python": minimum, **bounds},
                "runs": sorted(rows.values(), key=lambda r: (_version(r["python"]), r["which"])),
            }
            RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
            write_docs(results)


if __name__ == "__main__":
    main()
