"""The README's main job, ``python examples/quickstart.py``, in a short mode (1 seed, 3 epochs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from examples import quickstart


def test_short_run_writes_the_table_and_the_curves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = quickstart.main(["--seeds", "0", "--epochs", "3", "--out", str(tmp_path)])
    assert list(runs) == ["random order", "BSS-H", "BSS-L"]
    assert all(len(h) == 1 and [r["epoch"] for r in h[0]] == [1, 2, 3] for h in runs.values())

    table = (tmp_path / "accuracy.md").read_text(encoding="utf-8")
    assert table.startswith("# UCI digits, views pix and mor\n")
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0] == "| method | prediction | multi | pix | mor |"
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| random order", "| BSS-H", "| BSS-L"]
    for row in rows[1:]:
        cells = row.strip("| ").split(" | ")[1:]
        assert len(cells) == 4
        for cell in cells:
            match = re.fullmatch(r"(\d+\.\d\d) ± (\d+\.\d\d)", cell)
            assert match is not None, cell
            assert 0.0 <= float(match[1]) <= 100.0 and float(match[2]) == 0.0  # one seed: no spread
    # The printed table is the file's, and each column is explained in the output.
    out = capsys.readouterr().out
    best = max(runs["BSS-L"][0], key=lambda r: r["val_acc"])
    assert f"{100 * best['test_acc']:.2f} ± 0.00" in rows[3] and rows[3].split(" | ")[1] in out
    for column in ("method", "prediction", "multi", "pix", "mor"):
        assert re.search(rf"^  {column} +\S", out, re.MULTILINE)
    assert f"table: {tmp_path / 'accuracy.md'}" in out

    from PIL import Image

    with Image.open(tmp_path / "accuracy.png") as png:
        assert png.format == "PNG" and png.size[0] > 2 * png.size[1] > 400  # two panels
        colours = png.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 50  # curves, not a blank canvas
