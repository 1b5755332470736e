"""Reading the examples' text files (csv, tsv, json, lists) as UTF-8, loudly."""

from __future__ import annotations

from pathlib import Path

__all__ = ["read_utf8"]


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
