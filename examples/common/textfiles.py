"""Reading the examples' text files (csv, tsv, json, lists) as UTF-8, loudly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

__all__ = ["numbered_rows", "read_utf8"]


class _Rows(Protocol):
    """A ``csv.reader``: its rows, and the line it has read up to."""

    def __iter__(self) -> Iterator[list[str]]: ...

    @property
    def line_num(self) -> int: ...


def numbered_rows(reader: _Rows) -> list[tuple[int, list[str]]]:
    r"""``(line the row starts on, fields)`` of the non-empty rows of a ``csv.reader`` (a quoted
    field may span lines, so the number is where the row starts, for messages).

    >>> import csv, io
    >>> numbered_rows(csv.reader(io.StringIO('a,b\n\n"c\nd",e\n', newline="")))
    [(1, ['a', 'b']), (3, ['c\nd', 'e'])]
    """
    rows, last = [], 0
    for row in reader:
        if row:
            rows.append((last + 1, row))
        last = reader.line_num
    return rows


def read_utf8(path: str | Path) -> str:
    """The text of ``path`` decoded as UTF-8, a leading byte-order mark dropped, line breaks
    untranslated (``csv`` splits them). Another encoding (a UTF-16 or Latin-1 export) raises
    ``ValueError`` naming the file, the line and the byte, instead of a bare
    ``UnicodeDecodeError``.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write("ok\\ncaf\\xe9\\n".encode("latin-1"))
    >>> try:
    ...     read_utf8(f.name)
    ... except ValueError as err:
    ...     print(str(err).split(": ", 1)[1])
    line 2 is not UTF-8 (byte 0xe9 at offset 6); save the file as UTF-8
    >>> os.unlink(f.name)
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path}: line {line} is not UTF-8 (byte 0x{data[err.start]:02x} at offset "
            f"{err.start}); save the file as UTF-8"
        ) from None
