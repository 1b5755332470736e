"""Numbers in the docs are the ones their script measured: each generated block matches its file.

`benchmarks/compat.py` and `benchmarks/quickstart_docs.py` keep their results under
`benchmarks/results/` and write a generated block (`<!-- generated:NAME ... -->`) in the docs;
editing either by hand, or re-running a script without its docs, fails here. The quality
tables of `docs/benchmarks.md` must be rows of the tables the benchmarks wrote.
"""

from __future__ import annotations

import importlib.util
import json
import re
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


def _table_rows(text: str) -> list[str]:
    # Docs put a modality's part of a fused score in brackets, "(94.9)"; the results files do not.
    rows = (line for line in text.splitlines() if line.startswith("|"))
    return [re.sub(r"\((-?[\d.]+)\)", r"\1", row) for row in rows if set(row) - set("|-: ")]


def test_quality_tables_in_the_docs_are_rows_of_the_results_files() -> None:
    # Sections 4 and 5 of the benchmarks page copy tables that `bench_quality.py` and
    # `bench_when.py` wrote; a number edited by hand, or a re-run not copied, fails here.
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    quoted = page[page.index("## 4. Quality") : page.index("## Missing")]
    written = {
        row
        for path in sorted((BENCHMARKS / "results").glob("*.md"))
        for row in _table_rows(path.read_text(encoding="utf-8"))
    }
    rows = _table_rows(quoted)
    assert len(rows) > 20, "the quality section lost its tables"
    assert [row for row in rows if row not in written] == []
