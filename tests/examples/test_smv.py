"""``--method smv`` / ``smv-modality`` in the example scripts: the epochs hold the originals and
the copies the valuation calls for, their masks reach the model, a resume is exact."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from bss_sampler import SMVSampler
from bss_sampler.smv import copy_counts
from examples.common.models import ConcatClassifier
from examples.common.records import format_row
from examples.common.smv import valuation_columns, valuation_forward

NEEDS = {"image_text": "transformers", "trimodal": "cv2"}
MODALITIES = {"audio_video": 2, "image_text": 2, "trimodal": 3}


def spy(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Tensor], list[Tensor]]:
    """Record every valuation the sampler uses and every training mask the model receives."""
    values: list[Tensor] = []
    masks: list[Tensor] = []
    set_values, forward = SMVSampler.set_values, ConcatClassifier.forward

    def record_values(self: SMVSampler, v: Any, name: str = "contributions") -> Tensor:
        used = set_values(self, v, name)
        values.append(used.clone())
        return used

    def record_masks(
        self: ConcatClassifier, *, mask: Tensor | None = None, **inputs: Tensor
    ) -> Any:
        if mask is not None:
            masks.append(mask.cpu())
        return forward(self, mask=mask, **inputs)

    monkeypatch.setattr(SMVSampler, "set_values", record_values)
    monkeypatch.setattr(ConcatClassifier, "forward", record_masks)
    return values, masks


@pytest.mark.parametrize("script", ["audio_video", "image_text", "trimodal"])
def test_demo_trains_on_the_originals_and_their_single_modality_copies(
    script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if script in NEEDS:
        pytest.importorskip(NEEDS[script])
    module = importlib.import_module(f"examples.{script}")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    values, masks = spy(monkeypatch)
    history = module.main(["--demo", "--method", "smv", "--epochs", "2", "--warmup-epochs", "1"])
    m = MODALITIES[script]
    n = history[0]["train_samples"]  # the warm-up epoch: random order, every sample once
    assert "smv_epoch" not in history[0] and len(values) == 1 and values[0].shape == (n, m)
    copies = copy_counts(values[0])  # the released thresholds
    row = history[1]
    assert row["train_samples"] == row["smv_epoch_length"] == n + int(copies.sum())
    seen = torch.cat(masks)  # only the SMV epoch's batches carry masks
    assert len(seen) == n + int(copies.sum())
    assert int(seen.all(1).sum()) == n  # the originals keep every modality
    for k in range(m):  # each copy keeps exactly one modality
        alone = seen[:, k] & (seen.sum(1) == 1)
        assert int(alone.sum()) == int(copies[:, k].sum())
    mean = values[0].double().mean(0)
    torch.testing.assert_close(torch.tensor([row[c] for c in row if c.endswith("_contribution")],
                                            dtype=torch.float64), mean)  # fmt: skip
    assert "| valuation fused " in capsys.readouterr().out


def test_modality_level_copies_keep_the_weaker_modality(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples import audio_video

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    values, masks = spy(monkeypatch)
    history = audio_video.main(["--demo", "--method", "smv-modality", "--epochs", "3",
                                "--warmup-epochs", "1", "--smv-alpha", "2", "--quiet"])  # fmt: skip
    for valuation, row, epoch_masks in zip(values, history[1:], torch.cat(masks).split(
        [r["train_samples"] for r in history[1:]]
    )):  # fmt: skip
        means = valuation.double().mean(0)
        copies = epoch_masks[~epoch_masks.all(1)]
        assert len(copies) == row["train_samples"] - history[0]["train_samples"]
        if len(copies):  # every copy keeps the modality of the lowest mean contribution
            assert (copies.float().argmax(1) == means.argmin()).all()


def test_resume_matches_uninterrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from examples import audio_video

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    args = ["--demo", "--method", "smv", "--warmup-epochs", "1", "--quiet"]
    full = audio_video.main([*args, "--epochs", "3", "--out", str(tmp_path / "full")])
    audio_video.main([*args, "--epochs", "2", "--out", str(tmp_path / "part")])
    state = torch.load(tmp_path / "part" / "last.pt", weights_only=False)
    assert (
        state["sampler"]["config"]["level"] == "sample" and state["sampler"]["scores"] is not None
    )
    resumed = audio_video.main([*args, "--epochs", "3", "--out", str(tmp_path / "part"),
                                "--resume", str(tmp_path / "part" / "last.pt")])  # fmt: skip

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in rows]

    assert strip(resumed) == strip(full)


def test_valuation_forward_needs_encode_and_fuse() -> None:
    forward = valuation_forward(torch.device("cpu"))
    batch = {"a": torch.zeros(2, 1), "target": torch.zeros(2, dtype=torch.long)}
    with pytest.raises(TypeError, match=r"needs a model with encode\(\*\*inputs\) and fuse"):
        forward(torch.nn.Linear(1, 1), batch)


def test_a_valuation_row_prints_each_modality() -> None:
    from bss_sampler.smv import ValuationReport

    report = ValuationReport(4, 0.75, (0.5, 0.25), (1.0, 0.5), (0.25, 0.5))
    row = {"epoch": 2, "train_loss": 0.5, "train_samples": 7, "test_acc": 0.5, "test_map": 0.5,
           "test_f1": 0.5, **valuation_columns(report, 1, ["audio", "visual"], 7)}  # fmt: skip
    assert format_row(row, ["test"]).endswith(
        "| valuation fused 75.0, audio 1.00 (none 25.0%) visual 0.50 (none 50.0%), "
        "7 samples this epoch"
    )


def test_help_says_what_three_modalities_compute(capsys: pytest.CaptureFixture[str]) -> None:
    from examples import audio_video

    with pytest.raises(SystemExit):
        audio_video.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Shapley contribution to each sample (exact over all subsets of modalities, also for " \
        "three)" in text  # fmt: skip
    assert "--smv-function {linear,power1.5,square,tanh}" in text


def test_quickstart_compares_concat_in_random_order_with_smv(tmp_path: Path) -> None:
    from examples import quickstart

    runs = quickstart.main(["--method", "smv", "--seeds", "0", "--epochs", "2",
                            "--out", str(tmp_path)])  # fmt: skip
    assert list(runs) == ["Concat, random order", "SMV"]
    (concat,), (smv,) = runs.values()
    n = concat[0]["train_samples"]  # random order: every sample once
    assert all("smv_epoch" not in row for row in concat)
    assert all(row["train_samples"] == row["smv_epoch_length"] > n for row in smv)
    assert "| SMV " in (tmp_path / "accuracy.md").read_text()
