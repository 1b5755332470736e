"""The README's main job, ``python examples/quickstart.py``, in a short mode (1 seed, 3 epochs)."""

from __future__ import annotations

import json
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


def test_short_run_prints_and_plots_the_balance_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = quickstart.main(["--seeds", "0", "--epochs", "6", "--out", str(tmp_path)])
    # every run reports at epochs 0 and 5 (--report-every 5: BSS-L's own re-scoring at 5)
    for histories in runs.values():
        reported = [r["report_epoch"] for r in histories[0] if "report_epoch" in r]
        assert reported == [0, 5]
    out = capsys.readouterr().out
    assert "Balance report of the trained model (random order, seed 0):" in out
    assert re.search(r"^  pix    accuracy +\d+\.\d\d%  confidence 0\.\d{3}  ratio", out, re.M)
    assert re.search(r"^  imbalance ratio \d+\.\d\d \(strongest: pix\)", out, re.M)
    table = (tmp_path / "report.md").read_text(encoding="utf-8")
    header = "| method | fused acc | pix acc | mor acc | pix conf | mor conf | imbalance ratio |"
    assert header in table
    assert f"report table: {tmp_path / 'report.md'}" in out
    saved = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert list(saved) == ["random order", "BSS-H", "BSS-L"]
    assert saved["random order"][0]["num_samples"] == 1190
    assert len(saved["random order"][0]["unimodal_accuracy"]) == 2

    from PIL import Image

    for path in [tmp_path / "report.png"] + [
        tmp_path / f"{s}-seed0" / "report.png" for s in ("random", "heuristic", "learned")
    ]:
        with Image.open(path) as png:
            assert png.format == "PNG" and png.size[0] > 400
    with Image.open(tmp_path / "report.png") as png:
        assert png.size[1] > 2.5 * 400  # one row of panels per method
