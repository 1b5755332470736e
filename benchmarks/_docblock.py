"""Generated blocks in the Markdown: numbers a script measured, written by that script.

A block sits between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`; the script that
measures its numbers rewrites it from its results file (`replace`), and `tests/test_docblocks.py`
fails when a block and its results file disagree (`read`).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["read", "replace"]


def _pattern(name: str) -> re.Pattern[str]:
    name = re.escape(name)
    return re.compile(
        rf"(<!-- generated:{name} [^>]*-->\n)(.*?)(<!-- /generated:{name} -->)", re.DOTALL
    )


def read(path: Path, name: str) -> str:
    """The text of block `name` in `path`; `ValueError` naming both when there is none."""
    found = _pattern(name).search(path.read_text(encoding="utf-8"))
    if found is None:
        raise ValueError(f"{path} has no block <!-- generated:{name} ... -->")
    return found.group(2)


def replace(path: Path, name: str, text: str) -> None:
    """Rewrite block `name` in `path` with `text` (which ends with a newline)."""
    read(path, name)  # fails loudly when the markers are missing
    source = path.read_text(encoding="utf-8")
    new = _pattern(name).sub(lambda m: m.group(1) + text + m.group(3), source)
    path.write_text(new, encoding="utf-8")
