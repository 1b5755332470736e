"""Numbers in the docs are the ones their script measured: each generated block matches its file.

`benchmarks/compat.py` and `benchmarks/quickstart_docs.py` keep their results under
`benchmarks/results/` and write a generated block (`<!-- generated:NAME ... -->`) in the docs;
editing either by hand, or re-running a script without its docs, fails here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = ("compat", "quickstart_docs")


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import `_docblock` beside them
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_generated_block_matches_its_results_file(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _load(name, monkeypatch)
    results = json.loads(script.RESULTS.read_text(encoding="utf-8"))
    docblock = sys.modules["_docblock"]
    assert docblock.read(script.DOCS, script.BLOCK) == script.render(results), (
        f"{script.DOCS.relative_to(ROOT)} disagrees with {script.RESULTS.relative_to(ROOT)}: "
        f"run `python benchmarks/{name}.py --docs-only`"
    )


def test_a_block_edited_by_hand_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docblock = _load("_docblock", monkeypatch)
    page = tmp_path / "page.md"
    page.write_text("a\n<!-- generated:t by x -->\n| 1 |\n<!-- /generated:t -->\nb\n", "utf-8")
    assert docblock.read(page, "t") == "| 1 |\n"
    docblock.replace(page, "t", "| 2 |\n")
    assert (
        page.read_text("utf-8") == "a\n<!-- generated:t by x -->\n| 2 |\n<!-- /generated:t -->\nb\n"
    )
    with pytest.raises(ValueError, match=r"has no block <!-- generated:other"):
        docblock.read(page, "other")
