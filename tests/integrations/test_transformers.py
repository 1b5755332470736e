"""``bss_sampler.integrations.transformers``: what the Trainer refuses, in one process, and through
``examples/integrations/transformers_ddp.py`` the order and an exact resume on 2 processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("transformers", reason="transformers is not installed")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate")

from _toy import ToyAV, make_sampler
from transformers import TrainingArguments
from transformers_ddp import ToyAVLabels, ToyHFModel

from bss_sampler.integrations.transformers import SAMPLER_FILE, BalanceSamplingTrainer

from .oracles import load_records, verify_run

BATCH_SIZE = 4


def _args(out: Path, **overrides: Any) -> TrainingArguments:
    settings: dict[str, Any] = {
        "output_dir": str(out),
        "per_device_train_batch_size": BATCH_SIZE,
        "num_train_epochs": 3,
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        **overrides,
    }
    return TrainingArguments(**settings)


class TwoProcesses(TrainingArguments):
    """Arguments that report 2 processes, as under torchrun (the check reads only this)."""

    @property
    def world_size(self) -> int:
        return 2


def test_trainer_refuses_what_would_change_the_order(tmp_path: Path) -> None:
    dataset = ToyAVLabels(24)
    learned = make_sampler("learned", dataset, global_order=True)

    def trainer(sampler: Any, args: TrainingArguments | None = None, **kwargs: Any) -> Any:
        return BalanceSamplingTrainer(
            model=ToyHFModel(),
            args=args or _args(tmp_path),
            train_dataset=kwargs.pop("train_dataset", dataset),
            bss_sampler=sampler,
        )

    with pytest.raises(ValueError, match="build it with global_order=True .* sharded 2 ways"):
        sharded = make_sampler("learned", dataset, num_replicas=2, rank=0)
        trainer(sharded, TwoProcesses(output_dir=str(tmp_path), use_cpu=True, report_to="none"))
    with pytest.raises(ValueError, match="built for 24 samples, train_dataset has 30"):
        trainer(learned, train_dataset=ToyAVLabels(30))
    growing = make_sampler("heuristic", dataset, global_order=True)  # 6, 14, 19 samples
    with pytest.raises(ValueError, match="fixes the number of steps per epoch .* from 6 to 19"):
        trainer(growing).train()

    (tmp_path / "checkpoint-3").mkdir()  # resume_from_checkpoint=True finds the newest one
    with pytest.raises(FileNotFoundError, match=f"checkpoint-3/{SAMPLER_FILE} does not exist"):
        trainer(learned).train(resume_from_checkpoint=True)


def test_ddp_recipe_batches_match_one_process_and_resume_mid_epoch(
    tmp_path: Path, torchrun: Callable[..., object]
) -> None:
    full = tmp_path / "full"
    # 60 samples in batches of 4: 15 batches, dealt to 2 processes as 8 each (the 16th batch
    # repeats the first); checkpoints at steps 10 (epoch 1, after 2 batches), 20 and the end.
    # Then, in the same processes, a new model, sampler and Trainer resume from step 10.
    torchrun(
        "transformers_ddp.py",
        *("--epochs", "3", "--num-samples", "60", "--out", str(full)),
        *("--save-steps", "10", "--then-resume-from", "10"),
    )
    records = verify_run(full, "learned", ToyAV(60), world_size=2, chunk=BATCH_SIZE)
    assert [len(entry["indices"]) for entry in records[0]] == [32, 32, 32]
    scores = [entry["scores"] for entry in records[0]]
    assert scores[0] == scores[1] != scores[2]  # update_every=2: scored before epochs 0 and 2
    assert (full / "checkpoint-10" / SAMPLER_FILE).is_file()

    assert load_records(full / "resumed") == records
    final = torch.load(full / "final-model.pt", weights_only=True)
    again = torch.load(full / "resumed" / "final-model.pt", weights_only=True)
    assert all(torch.equal(final[name], again[name]) for name in final)
