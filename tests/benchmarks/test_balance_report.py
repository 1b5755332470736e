"""The benchmarks' harness's balance reports: ``report_*`` history columns, ``--report-every``, the figure,
and the paper's ``concat`` baseline (fused-head loss only)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from _harness import METHODS, TrainConfig, fit
from torch import Tensor

from bss_sampler import BalanceScorer
from examples.common.models import ConcatClassifier, LateFusionClassifier, mlp_encoder
from examples.common.plots import plot_report, report_rows
from examples.common.records import format_row, write_history
from examples.common.tabular import MfeatDataset

N = 48


def _data() -> MfeatDataset:
    g = torch.Generator().manual_seed(0)
    targets = torch.arange(N) % 3
    views = {"a": torch.randn(N, 3, generator=g) + targets[:, None], "b": torch.randn(N, 2)}
    return MfeatDataset(views, targets)


def _model() -> LateFusionClassifier:
    torch.manual_seed(0)
    return LateFusionClassifier(
        {"a": mlp_encoder(3, 4), "b": mlp_encoder(2, 4)}, {"a": 4, "b": 4}, 3
    )


def _fit(tmp_path: Path | None = None, **overrides: object) -> list[dict[str, object]]:
    data = _data()
    cfg = TrainConfig(
        epochs=5, batch_size=16, device="cpu", progress=False, verbose=False, **overrides
    )  # type: ignore[arg-type]
    return fit(_model(), data, {"test": data}, cfg, out_dir=tmp_path)  # type: ignore[arg-type]


def _reported(history: list[dict[str, object]]) -> list[int]:
    return [int(row["report_epoch"]) for row in history if "report_epoch" in row]  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("overrides", "epochs"),
    [
        ({"sampler": "learned", "update_every": 2}, [0, 2, 4]),  # BSS-L's own scorings
        ({"sampler": "learned", "update_every": 2, "scoring": "online"}, [0, 2, 4]),
        ({"sampler": "heuristic", "lambda0": 1.0}, [0]),  # scored once
        ({"sampler": "heuristic", "lambda0": 1.0, "report_every": 2}, [0, 2, 4]),
        ({"sampler": "random"}, []),
        ({"sampler": "random", "report_every": 2}, [0, 2, 4]),
        ({"sampler": "learned", "warmup_epochs": 2, "report_every": 3}, [0, 2, 3]),
    ],
)
def test_history_rows_hold_the_reports(overrides: dict[str, object], epochs: list[int]) -> None:
    history = _fit(**overrides)
    assert _reported(history) == epochs
    for row in history:
        if "report_epoch" not in row:
            assert not any(key.startswith("report_") for key in row)
            continue
        assert row["report_epoch"] == row["epoch"] - 1  # type: ignore[operator]
        for key in ("multimodal", "a", "b"):  # named after the model's encoders
            assert 0.0 <= row[f"report_{key}_accuracy"] <= 1.0  # type: ignore[operator]
        assert sum(row[f"report_score_bin{k}"] for k in range(20)) == N  # type: ignore[misc]
        assert row["report_imbalance_ratio"] >= 1.0  # type: ignore[operator]


def test_online_report_is_the_scorers(monkeypatch: pytest.MonkeyPatch) -> None:
    """An online re-scoring hands the scorer's report to the sampler, EMA quantiles added."""
    reports = []
    compute = BalanceScorer.compute

    def spy(self: BalanceScorer, **kwargs: bool) -> object:
        out = compute(self, **kwargs)  # type: ignore[call-overload]
        reports.append(self.last_report)
        return out

    monkeypatch.setattr(BalanceScorer, "compute", spy)
    history = _fit(sampler="learned", update_every=2, scoring="online")
    online = [row for row in history if row.get("report_epoch") in (2, 4)]
    assert len(reports) >= 2 and len(online) == 2
    for row, report in zip(online, reports[-2:]):
        assert row["report_multimodal_accuracy"] == report.multimodal_accuracy
        assert row["report_score_q50"] == report.score_quantiles[3]


def test_history_files_and_printed_line(tmp_path: Path) -> None:
    history = _fit(tmp_path, sampler="random", report_every=2)
    with (tmp_path / "history.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 and "report_a_accuracy" in rows[0]
    assert [bool(r["report_epoch"]) for r in rows] == [True, False, True, False, True]
    line = format_row(history[0], ["test"])  # type: ignore[arg-type]
    assert line.endswith(f"ratio {history[0]['report_imbalance_ratio']:.2f}")
    assert " | train heads fused " in line and " a " in line and " b " in line
    assert "train heads" not in format_row(history[1], ["test"])  # type: ignore[arg-type]
    write_history([{"epoch": 1}, {"epoch": 2, "extra": 3}], tmp_path)
    assert (tmp_path / "history.csv").read_text().splitlines() == ["epoch,extra", "1,", "2,3"]


def test_report_figure(tmp_path: Path) -> None:
    history = _fit(sampler="learned", update_every=2)
    path = plot_report({"learned": history, "none": history[1:2]}, tmp_path / "report.png")
    from PIL import Image

    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > png.size[1]  # one row of two panels
        colours = png.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 50
    assert report_rows(history[1:2]) == []
    with pytest.raises(ValueError, match="no history has a balance report"):
        plot_report({"none": history[1:2]}, tmp_path / "none.png")


# -- the paper's Concat baseline ----------------------------------------------------------------
def test_concat_model_splits_the_fused_head() -> None:
    """OGM-GE's unimodal outputs of a concat head: ``W_m z_m + b / M``, summing to the fused."""
    model = _model()
    wrap = METHODS["concat"][0]
    concat = wrap(model)
    assert isinstance(concat, ConcatClassifier)
    assert wrap(concat) is concat
    assert concat.fusion_head is model.fusion_head and concat.encoders is not None
    assert not any(p is q for p in concat.parameters() for q in model.heads.parameters())
    data = _data()
    inputs = {"a": data.views["a"], "b": data.views["b"]}
    fused, parts = concat(**inputs)
    assert torch.allclose(fused, model(**inputs)[0])
    assert torch.allclose(parts[0] + parts[1], fused, atol=1e-6)
    za = model.encoders["a"](inputs["a"])
    w, b = model.fusion_head.weight, model.fusion_head.bias
    assert torch.allclose(parts[0], za @ w[:, :4].T + b / 2, atol=1e-6)
    with pytest.raises(TypeError, match="method 'concat' needs a model with an `encoders`"):
        ConcatClassifier.from_model(torch.nn.Linear(2, 2))


def test_concat_trains_the_fused_head_alone() -> None:
    concat = ConcatClassifier.from_model(_model())
    data = _data()
    inputs: dict[str, Tensor] = {"a": data.views["a"], "b": data.views["b"]}
    out = METHODS["concat"][1](concat, inputs, data.targets, TrainConfig(method="concat"))
    assert torch.allclose(out.loss, F.cross_entropy(out.multimodal_logits, data.targets))
    history = _fit(method="concat", sampler="random", report_every=2)
    # Eq. 12 sums the fused head and its own parts: twice the fused logits, the same argmax
    assert all(row["test_acc"] == row["test_multi_acc"] for row in history)
    assert _reported(history) == [0, 2, 4]


def test_report_columns_are_plain_numbers() -> None:
    history = _fit(sampler="learned", update_every=2)
    row = history[0]
    report_keys = [k for k in row if k.startswith("report_")]
    assert len(report_keys) > 40 and all(type(row[k]) in (int, float) for k in report_keys)
