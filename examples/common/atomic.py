"""Writing outputs so that a killed run leaves nothing half-written under its final name.

Every output is first written under a temporary name beside its final one (``.<name>.partial-
<pid>``, in the same folder, so on the same file system) and then renamed in one step
(``os.replace`` / ``os.rename``, atomic on POSIX). An output that exists under its final name is
therefore complete, which is what makes the preparation commands resumable. Leftover temporary
names of a killed run are removed by :func:`remove_partials` at the next start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PARTIAL", "atomic_dir", "atomic_file", "remove_partials", "write_if_changed"]

#: The marker of a temporary name (``.<final name>.partial-<pid>``).
PARTIAL = ".partial-"


def _temporary(final: Path) -> Path:
    return final.with_name(f".{final.name}{PARTIAL}{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``final``, else removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(final)
    _remove(tmp)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        _remove(tmp)


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder to fill; on success it becomes ``final`` (which must not
    exist yet), else it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(final)
    _remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
        os.rename(tmp, final)
    finally:
        _remove(tmp)


def write_if_changed(path: str | Path, content: str | bytes) -> bool:
    """Write ``content`` (text as UTF-8) to ``path`` atomically unless it already holds exactly
    those bytes (its modification time then stays); returns whether it wrote."""
    path = Path(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.is_file() and path.read_bytes() == data:
        return False
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return True


def remove_partials(folder: str | Path) -> int:
    """Remove the temporary names a killed run left directly in ``folder``; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    stale = sorted(p for p in folder.iterdir() if p.name.startswith(".") and PARTIAL in p.name)
    for path in stale:
        _remove(path)
    return len(stale)
